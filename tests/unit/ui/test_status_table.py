"""The plain status table stays aligned whatever the lengths of fault names and cells."""

import io

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
