"""What the progress display says: totals from the plan, rate and ETA on plain lines, MiB and
MiB/s, and no row left behind by a transfer that was stopped and started another way."""

from __future__ import annotations

import io
import re

from rich.console import Console

from cs_sync.core.progress import declare_total
from cs_sync.ui.progress_display import PlainProgress, RichProgress, format_eta, format_rate, make_progress

MiB = 1024**2


def test_plain_status_line_has_plan_totals_rate_and_eta_from_the_first_line():
    p = PlainProgress(io.StringIO(), interval=30)
    t0 = p._t0
    p.kind_total("download", 100 * MiB, 10)  # the plan: 10 parts, 100 MiB
    p.task_started("a", "F/F_BB_0.tar", 10 * MiB, kind="download")
    p.task_advanced("a", 5 * MiB)
    line = p.status_line(now=t0 + 1.0)
    assert "download 0/10" in line and "5.0 MiB/100.0 MiB (5%)" in line, line
    assert "5.0 MiB/s" in line and "19 s left" in line, line  # 95 MiB at 5 MiB/s
    p.task_finished("a")
    p.task_started("b", "F/F_BB_1f.tar", 10 * MiB, kind="download")
    p.task_advanced("b", 10 * MiB)
    line = p.status_line(now=t0 + 4.0)
    assert "download 1/10" in line and "20.0 MiB/100.0 MiB (20%)" in line, line
    assert "5.0 MiB/s" in line and "16 s left" in line, line


def test_plain_lines_go_to_the_log_too():
    logged: list[str] = []
    out = io.StringIO()
    p = PlainProgress(out, interval=30, log=logged.append)
    p.task_started("x", "F/F_IM.tar", 2048, kind="extract")
    p.task_finished("x")
    p.note("warning: something")
    assert logged == ["extract: F/F_IM.tar (2.0 KiB) done", "warning: something"]
    assert out.getvalue().splitlines() == logged


def test_rate_window_follows_the_recent_speed():
    p = PlainProgress(io.StringIO(), interval=1)  # window: 30 s
    t0 = p._t0
    p.task_started("a", "big", 1000 * MiB, kind="upload")
    for s in range(0, 61):  # 10 MiB/s for a minute, then 1 MiB/s
        p.task_advanced("a", min(s, 60) * 10 * MiB)
        p.status_line(now=t0 + s)
    for s in range(61, 121):
        p.task_advanced("a", 600 * MiB + (s - 60) * MiB)
        line = p.status_line(now=t0 + s)
    assert "1.0 MiB/s" in line, line


def test_a_restarted_key_replaces_its_row():
    p = PlainProgress(io.StringIO())
    p.task_started("k", "F/F_BB.tar", 40 * MiB, kind="download")
    p.task_advanced("k", 12 * MiB)
    p.task_started("k", "F/F_BB.tar", 40 * MiB, kind="download")
    assert p.totals() == {"download": (0, 40 * MiB, 0, 1)}


def test_rich_rows_of_a_restarted_transfer_are_replaced_and_speed_is_mib_per_s():
    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    with RichProgress(console=console) as p:
        p.kind_total("download", 80 * MiB, 2)
        for k in ("a", "b"):
            p.task_started(k, k, 40 * MiB, kind="download")
            p.task_advanced(k, 10 * MiB)
        rows = lambda: [t.description.strip() for t in p._bars.tasks]  # noqa: E731
        assert rows() == ["[bold]download", "a", "b"]
        kind = p._bars.tasks[0]
        assert kind.total == 80 * MiB and kind.completed == 20 * MiB  # the plan's total, not the rows'
        p.task_started("b", "b", 40 * MiB, kind="download")  # "b" restarted under the same key
        p.task_started("a", "a", 40 * MiB, kind="download")
        assert sorted(rows()) == ["[bold]download", "a", "b"]  # one row each, none frozen
        p.task_finished("a")
        p.task_finished("b")
        assert rows() == ["[bold]download"]
        assert p._bars.tasks[0].completed == 80 * MiB
    speed = p._bars.columns[3]
    fake = type("T", (), {"finished_speed": None, "speed": 3.5 * MiB})()
    assert str(speed.render(fake)) == "3.5 MiB/s"


def test_rich_writes_plain_status_lines_to_the_log():
    logged: list[str] = []
    console = Console(file=io.StringIO(), force_terminal=True)
    with RichProgress(console=console, log=logged.append, interval=0.05) as p:
        p.kind_total("upload", 10 * MiB, 1)
        p.task_started("u", "F/F_BB.tar", 10 * MiB, kind="upload")
        p.task_advanced("u", 5 * MiB)
        import time

        time.sleep(0.3)
        p.task_finished("u")
    status = [ln for ln in logged if ln.startswith("[")]
    assert status and re.search(r"upload 0/1, 5\.0 MiB/10\.0 MiB \(50%\)", status[0]), logged
    assert "upload: F/F_BB.tar done" in logged


def test_units_and_helpers():
    assert format_rate(12.5 * MiB) == "12.5 MiB/s" and format_rate(None) == "-"
    assert [format_eta(s) for s in (5, 600, 3 * 3600 + 300, 2 * 86400 + 4 * 3600, None)] == [
        "5 s", "10 min", "3 h 05 min", "2 d 04 h", "-"]
    assert isinstance(make_progress(io.StringIO()), PlainProgress)

    class Old:  # a Progress written before kind_total existed
        pass

    declare_total(Old(), "upload", 1)
