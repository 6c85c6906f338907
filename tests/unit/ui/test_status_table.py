"""The plain status table stays aligned whatever the lengths of fault names and cells."""

import io
import re

from cs_sync.status import Cell, CellState, VersionStatus
from cs_sync.ui.status_table import CELL_WIDTH, plain_table, render_version


def _status(faults):
    cells = {(f, "BB"): Cell(CellState.COMPLETE, parts=2, size=100) for f in faults}
    cells[(faults[0], "IM")] = Cell(CellState.AMBIGUOUS, parts=3, size=50,
                                   problems=["not valid part names (left alone): " + ", ".join(
                                       f"{faults[0]}_IM_-{i}.tar" for i in range(6))])
    cells[(faults[1], "IM")] = Cell(CellState.INCOMPLETE, parts=1, size=5, problems=["missing part _1"])
    return VersionStatus(version="v1", root="r:", faults=faults, types=["BB", "IM"], cells=cells,
                         other_files=["x/y.txt"])


def test_long_fault_names_and_long_cells_keep_every_row_one_aligned_line():
    faults = ["F" * 95, "Short", "G" * 61]
    out = io.StringIO()
    render_version(_status(faults), out, rich=False)
    lines = out.getvalue().splitlines()
    header = next(ln for ln in lines if ln.startswith("fault"))
    bb, im = header.index("BB"), header.index("IM")
    assert bb == 95 + 2  # the fault column is as wide as the longest name
    rows = {f: next(ln for ln in lines if ln.startswith(f + " ")) for f in faults}
    for f, row in rows.items():
        assert row[bb:].startswith("ok 2 parts"), row
        assert row[im - 2:im] == "  " and (row[im:] == "-" if f.startswith("G") else row[im] != " ")
        assert len(row) <= 97 + CELL_WIDTH * 2 + 2
    assert rows[faults[0]][im:] == "AMBIGUOUS 3 parts, 50 B (*)"  # too long for the table: its why is below
    assert rows["Short"][im:] == "INCOMPLETE 1 part, 5 B: missing part _1"  # short enough: kept in place
    text = out.getvalue()
    assert f"(*) details:\n  {faults[0]} IM: not valid part names (left alone): {faults[0]}_IM_-0.tar" in text
    assert "other files (not parts of any set, left alone): x/y.txt" in text


def test_plain_table_pads_every_column_to_its_widest_cell():
    lines = plain_table([["fault", "BB", "IM"], ["F", "x" * 70, "ok"], ["GG", "ok", "ok"]])
    im = lines[0].index("IM")
    assert im == len("fault") + 2 + 70 + 2
    assert lines[1][im:] == "ok" and lines[2][im:] == "ok"


def test_a_complete_set_without_a_sidecar_does_not_read_like_a_verified_one():
    cells = {("F", "BB"): Cell(CellState.COMPLETE, parts=2, size=100, verified=True, check="content"),
             ("F", "IM"): Cell(CellState.COMPLETE, parts=1, size=10, check="no sidecar"),
             ("F", "Source"): Cell(CellState.COMPLETE, parts=1, size=10, verified=True, check="indexed")}
    st = VersionStatus(version="v1", root="r:", faults=["F"], types=["BB", "IM", "Source"], cells=cells)
    out = io.StringIO()
    render_version(st, out, rich=False)
    row = next(ln for ln in out.getvalue().splitlines() if ln.startswith("F "))
    assert re.split(r"  +", row)[1:] == ["ok 2 parts, 100 B", "unverified 1 part, 10 B (no sidecar)",
                                   "ok 1 part, 10 B (indexed)"]
    assert "total: 1 fault, 3 complete (1 without a sidecar, 1 indexed);" in out.getvalue()
    out = io.StringIO()
    render_version(st, out, rich=True)
    assert "unverified 1 part" in out.getvalue()
