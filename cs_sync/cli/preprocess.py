"""``cs-sync-preprocess CS_ROOT FAULT_LIST``: find, check and list the files to archive."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from cs_sync.cli.common import add_types_option, main_wrapper, make_parser, positive_int
from cs_sync.core.errors import StocktakeFailed
from cs_sync.core.naming import STOCKTAKE_FILE
from cs_sync.core.text import plural
from cs_sync.preprocess.engine import DEFAULT_THREADS, FILES_TO_SYNC, PreprocessSettings, check_outputs, preprocess

PROG = "cs-sync-preprocess"
DESCRIPTION = """\
Find the files of every fault in FAULT_LIST under CS_ROOT, check that each data
type has the expected number, and write files_to_sync.yaml (what to archive) and
stocktake.csv (what was found). Prints a report; exits 4 when a check failed
(the outputs are still written), 3 on bad input (nothing written).

example:
  cs-sync-preprocess /scratch/Cybershake/v22p12 /scratch/Cybershake/v22p12/list.txt -t BB IM
"""


def build_parser(prog: str = PROG):
    p = make_parser(prog, DESCRIPTION)
    p.add_argument("cs_root", type=Path, metavar="CS_ROOT", help="the version folder, e.g. .../Cybershake/v22p12")
    p.add_argument("fault_list", type=Path, metavar="FAULT_LIST", help="list.txt: 'FAULT COUNT[r] [SKIP[r]]' per line")
    p.add_argument("--config", type=Path, default=None, metavar="YAML",
                   help="sync_patterns.yaml (default: the one shipped with cs_sync)")
    p.add_argument("--out_file", type=Path, default=None, metavar="PATH",
                   help=f"manifest to write (default: ./{FILES_TO_SYNC}; mtimes go in a .meta.json beside it)")
    p.add_argument("--stocktake_csv", type=Path, default=None, metavar="PATH",
                   help=f"stocktake table to write (default: ./{STOCKTAKE_FILE})")
    p.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="also write the stocktake as a self-contained HTML page (written when checks fail too)")
    add_types_option(p, "data types to take (default: all): any type of the config, or SAMPLE_BB; a type "
                        "packed into another (VM into Source) comes with it")
    p.add_argument("--threads", type=positive_int, default=DEFAULT_THREADS, metavar="N",
                   help=f"at most N directory listings and stats in flight (default {DEFAULT_THREADS}); "
                        "extra threads start only when these calls prove slow (network file systems)")
    return p


def _run(args) -> int:
    from cs_sync.ui.stocktake_table import ScanDisplay, print_report

    settings = PreprocessSettings(
        cs_root=args.cs_root,
        fault_list=args.fault_list,
        config=args.config,
        out_file=args.out_file or Path.cwd() / FILES_TO_SYNC,
        stocktake_csv=args.stocktake_csv or Path.cwd() / STOCKTAKE_FILE,
        types=tuple(args.types),
        threads=args.threads,
    )
    if args.html is not None:  # checked with the other outputs, before anything is scanned or written
        inputs = {"FAULT_LIST": args.fault_list, **({"--config": args.config} if args.config else {})}
        check_outputs({"--out_file": settings.out_file, "--stocktake_csv": settings.stocktake_csv,
                       "--html": args.html}, inputs)
    with ScanDisplay(sys.stdout) as display:
        result = preprocess(settings, display)
    print_report(result, sys.stdout)
    if args.html is not None:
        _write_html(args.html, result, args.fault_list)
    if not result.ok:
        failed = result.failed_faults
        raise StocktakeFailed(
            f"stocktake failed for {len(failed)} of {plural(len(result.checks), 'fault')} "
            f"({', '.join(failed[:5])}{' ...' if len(failed) > 5 else ''}); see {result.stocktake_csv}",
            hint="the outputs were written; fix the data or the list and re-run",
        )
    return 0


def _write_html(path: Path, result, fault_list: Path) -> None:
    from cs_sync.core.atomic import atomic_write_text
    from cs_sync.core.errors import from_os_error
    from cs_sync.ui.html_report import render_stocktake

    try:
        atomic_write_text(path, render_stocktake(result.to_dict(fault_list.resolve())))
    except OSError as exc:
        raise from_os_error(exc, f"cannot write --html {path}") from None
    print(f"wrote {path}")


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run the command; returns the exit code (also for a bad command line or --help)."""
    try:
        return main_wrapper(prog, _run, build_parser(prog), argv)
    except SystemExit as exc:  # argparse exits on its own: give its code back to the caller
        return exc.code if isinstance(exc.code, int) else int(bool(exc.code))


def entry() -> None:
    sys.exit(main())
