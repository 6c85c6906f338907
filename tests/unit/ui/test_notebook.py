"""TqdmProgress: the bar of each kind sums its tasks; notes are written above the bars."""

import io

from cs_sync.ui.notebook import TqdmProgress


def test_bars_sum_tasks_per_kind_and_notes_are_written():
    out = io.StringIO()
    with TqdmProgress(file=out) as p:
        p.task_started("a", "F/F_BB_0.tar", 100, kind="download")
        p.task_started("b", "F/F_BB_1f.tar", 300, kind="download")
        p.task_advanced("a", 60)
        p.task_started("s", "3 faults", 3, kind="scan")
        p.task_advanced("s", 2)
        p.task_finished("b", ok=False, note="SHA-256 differs")
        p.note("resuming: 1 part already checked")
        bar = p._bars["download"]
        assert (bar.n, bar.total) == (60, 400)
        assert p._bars["scan"].unit == "fault" and p._bars["scan"].n == 2
        p.task_finished("a")
        assert bar.n == 100
    text = out.getvalue()
    assert "F/F_BB_1f.tar: SHA-256 differs" in text and "resuming: 1 part already checked" in text
    assert "download" in text
