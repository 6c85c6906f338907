"""cs_sync.ui.stocktake_table: the plain text a log gets, and the rich tables a terminal gets."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from cs_sync.inputs.config import load_config
from cs_sync.inputs.faultlist import FaultEntry
from cs_sync.inputs.manifest import Manifest
from cs_sync.preprocess.engine import PreprocessResult
from cs_sync.preprocess.scan import ScanStats
from cs_sync.preprocess.stocktake import Hit, check_fault, problems, stocktake_frame
from cs_sync.ui.stocktake_table import ScanDisplay, plain_report, print_report

CFG = load_config(None)
TYPES = CFG.names()


def _hits(fault, events, pertb=(), bb_drop=()):
    def h(base, rel, size=1000):
        return Hit(f"{base}/{rel}", rel, size)

    r, s, v = f"Runs/{fault}", f"Data/Sources/{fault}", f"Data/VMs/{fault}"
    return {
        "BB": {0: [h(r, f"{e}/BB/Acc/BB.bin", 2048) for e in events if e not in bb_drop]},
        "IM": {0: [h(r, f"{e}/IM_calc/{e}.csv") for e in events]},
        "Source": {0: [h(s, f"Srf/{e}.info") for e in events], 1: [h(s, f"Srf/{e}.csv") for e in events],
                   2: [h(s, f"Sim_params/{e}.yaml") for e in events]},
        "VM": {0: [h(v, "vm_params.yaml")], 1: [h(v, "nzvm.cfg")], 2: [h(v, f"{e}.pertb.csv") for e in pertb]},
    }


def make_result() -> PreprocessResult:
    checks = [
        check_fault(FaultEntry("AlpineK2T", 2), CFG, TYPES,
                    _hits("AlpineK2T", ["AlpineK2T", "AlpineK2T_REL01", "AlpineK2T_REL02"],
                          pertb=["AlpineK2T_REL01", "AlpineK2T_REL02"])),
        check_fault(FaultEntry("Hope", 3, 1), CFG, TYPES,
                    _hits("Hope", ["Hope_REL01", "Hope_REL02", "Hope_REL03"], bb_drop=["Hope_REL03"])),
    ]
    return PreprocessResult(
        version="v22p12", cs_root="/scratch/v22p12", out_file=Path("files_to_sync.yaml"),
        stocktake_csv=Path("stocktake.csv"), config=CFG, types=TYPES, checks=checks,
        problems=problems(checks), frame=stocktake_frame(checks, CFG, TYPES), manifest=Manifest(),
        stats=ScanStats(listed=7, stats=40, seconds=0.25, threads=1),
    )


def test_plain_report():
    text = plain_report(make_result())
    lines = text.splitlines()
    assert lines[0] == "stocktake of v22p12 (/scratch/v22p12)"
    assert lines[1].split() == ["fault", "rels", "median", "BB", "IM", "Source", "VM", "SAMPLE_BB"]
    assert lines[2].split() == ["AlpineK2T", "1-2", "yes", "OK", "OK", "OK", "OK", "OK", "(median)"]
    assert lines[3].split() == ["Hope", "2-3", "no", "BB.bin:", "missing", "REL03", "OK", "OK", "OK", "OK", "(REL02)"]
    # columns line up: each type's header starts where its cells start
    assert lines[1].index("IM") == lines[2].index("OK", lines[1].index("IM"))
    assert "BB                4     8.0 KiB" in text  # AlpineK2T 3 + Hope 1 BB.bin of 2 KiB
    assert "problems (2):" in text
    assert "  FAIL  Hope BB: */BB/Acc/BB.bin: found 1, expected 2; missing REL03" in text
    assert "  note  Hope: 5 files of realisations outside the list (REL02..REL03) not selected: REL01" in text
    assert "2 faults: 1 OK, 1 with failed checks" in text
    assert "scanned in 0.2 s (7 listings, 40 stats, 1 thread)" in text


def test_print_report_is_plain_when_not_a_terminal():
    buf = io.StringIO()
    print_report(make_result(), buf)
    assert buf.getvalue() == plain_report(make_result())
    assert "\x1b[" not in buf.getvalue()


def test_rich_report_renders_on_a_terminal():
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=160, color_system="standard")
    print_report(make_result(), console=console)
    out = buf.getvalue()
    assert "\x1b[" in out  # colours: it is the rich form
    assert "stocktake of v22p12" in out and ("┃" in out or "│" in out)
    assert "BB.bin: missing REL03" in out
    assert "FAIL" in out and "note" in out
    assert "1 with failed checks" in out


def test_scan_display_plain_prints_start_and_periodic_lines():
    buf = io.StringIO()
    with ScanDisplay(buf, interval=0.0) as d:
        d.task_started("scan", "3 faults", 3, kind="scan")
        d.task_advanced("scan", 2)
        d.task_finished("scan")
    lines = buf.getvalue().splitlines()
    assert lines[0] == "scanning 3 faults ..."
    assert lines[1].startswith("scanned 2/3 faults")
