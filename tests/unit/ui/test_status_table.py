"""The plain status table stays aligned whatever the lengths of fault names and cells."""

import io

from cs_sync.status import Cell, CellState, VersionStatus
from cs_sync.ui.status_table import CELL_WIDTH, plain_table, render_version


def _status(faults):
    cells = {(f, "BB"): Cell(CellState.COMPLETE, parts=2, size=100) for f in faults}
    cells[(faults[0], "IM")] = Cell(CellState.AMBIGUOUS, parts=3, size=50,
                                   problems=["not valid part names (left alone): " + ", ".join(
                                       f"{faults[0]}_IM_-{i}.tar" for i in range(6))])
    return VersionStatus(version="v1", root="r:", faults=faults, types=["BB", "IM"], cells=cells,
                         other_files=["x/y.txt"])


def test_long_fault_names_keep_every_column_aligned():
    faults = ["F" * 95, "Short", "G" * 61]
    out = io.StringIO()
    render_version(_status(faults), out, rich=False)
    lines = out.getvalue().splitlines()
    header = next(ln for ln in lines if ln.startswith("fault"))
    col = header.index("BB")
    assert col == 95 + 2  # the fault column is as wide as the longest name
    for f in faults:
        row = next(ln for ln in lines if ln.startswith(f + " ") or ln == f)
        assert row[col:].startswith("ok 2 parts"), row
    assert "other files (not parts of any set, left alone): x/y.txt" in out.getvalue()


def test_a_long_cell_wraps_inside_its_column():
    rows = [["fault", "BB", "IM"], ["F", "x " * 45, "ok"], ["G", "ok", "ok"]]
    lines = plain_table(rows)
    im = lines[0].index("IM")
    assert im == len("fault") + 2 + CELL_WIDTH + 2
    assert lines[1][im:] == "ok"  # the third column did not move
    assert len(lines) == 4  # the long cell took two lines
    assert lines[2].startswith(" " * (len("fault") + 2) + "x")
    assert lines[3][im:] == "ok"
