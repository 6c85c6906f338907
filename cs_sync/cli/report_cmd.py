"""``cs-sync report [CS_VER]``: the status of a version (or of every version) as one HTML page."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

HELP = "write a self-contained HTML page of a version's status (or an overview of every version)"
DESCRIPTION = """\
With CS_VER: one HTML file (default CS_VER_report.html) showing what the remote
holds: totals, a faults x data types grid coloured by state (the states of
cs-sync status; filter, only-problems and sort), bytes per fault, the stocktake
per fault and pattern (--stocktake, else the version's own stocktake.csv on the
remote), and every problem with the cs-sync-upload command that fixes it.
Without CS_VER: an overview of every version under the remote root; with --all,
-o is a folder that gets every version's page and an index.html linking them.
The page needs no network: styles, script and chart are inside it. Its data is
what cs-sync status CS_VER --json prints (embedded in the page as JSON).

exit codes: 0 the page was written (whatever it shows: cs-sync status tells by
its exit code), 2 bad command line, 3 bad input, 6 remote or version not there,
9 cannot write.

examples:
  cs-sync report v22p12 --remote dropbox:/QuakeCoRE/Public/Cybershake
  cs-sync report v22p12 --manifest files_to_sync.yaml -o /tmp/v22p12.html
  cs-sync report --all -o reports/
  cs-sync report --from_json status.json -o report.html
"""
DEFAULT_ALL_DIR = "cs_sync_reports"
VERSIONS_PAGE = "versions_report.html"


def register(subparsers) -> None:
    from cs_sync.cli.common import add_version_view_options

    p = subparsers.add_parser("report", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_view_options(p)
    p.add_argument("--stocktake", default=None, metavar="CSV",
                   help="a stocktake.csv to show per fault and pattern (default: the version's own on the remote, "
                        "if it has one; 'none' for no stocktake)")
    p.add_argument("-o", "--output", type=Path, default=None, metavar="FILE",
                   help=f"the page to write (default CS_VER_report.html, or {VERSIONS_PAGE} without CS_VER); "
                        f"with --all a folder (default {DEFAULT_ALL_DIR}/)")
    p.add_argument("--all", action="store_true",
                   help="without CS_VER: also write every version's page, and index.html linking them, into -o DIR")
    p.add_argument("--from_json", "--from-json", type=Path, default=None, metavar="STATUS_JSON",
                   help="draw the page from saved cs-sync status CS_VER --json output instead of reading the remote")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and rclone commands")
    p.set_defaults(func=run)


def _write(path: Path, text: str) -> None:
    from cs_sync.core.atomic import atomic_write_text
    from cs_sync.core.errors import from_os_error

    try:
        if path.parent != Path(""):
            path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, text)
    except OSError as exc:
        raise from_os_error(exc, f"cannot write {path}") from None


def _load_status_json(path: Path) -> dict:
    from cs_sync.core.errors import InputError

    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"{path}: not found", hint="give the output of cs-sync status CS_VER --json") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"{path}: not readable as JSON: {exc}",
                         hint="give the output of cs-sync status CS_VER --json") from None
    if not isinstance(doc, dict) or not {"version", "root", "cells", "faults", "types"} <= set(doc):
        raise InputError(f"{path}: not the status of one version (no version/cells)",
                         hint="give the output of cs-sync status CS_VER --json")
    return doc


def _stocktake_arg(given: str | None):
    from cs_sync.status import REMOTE_STOCKTAKE

    if given is None:
        return REMOTE_STOCKTAKE
    if given.lower() == "none":
        return None
    return given


def run(args: argparse.Namespace) -> int:
    from cs_sync.cli.common import resolve_remote, version_arg
    from cs_sync.core.errors import UsageError
    from cs_sync.remote.rclone import Rclone
    from cs_sync.remote.redact import redact
    from cs_sync.status import list_versions, version_status
    from cs_sync.ui.html_report import made_now, render_version, render_versions

    made = made_now()
    if args.from_json is not None:
        if args.cs_ver or args.all or args.manifest or args.stocktake:
            raise UsageError("--from_json draws a saved status: give no CS_VER, --all, --manifest or --stocktake",
                             hint="e.g. cs-sync report --from_json status.json -o report.html")
        doc = _load_status_json(args.from_json)
        out = args.output or Path(f"{doc['version']}_report.html")
        _write(out, render_version(doc, made=made))
        print(out)
        return 0
    root = resolve_remote(args.remote)
    log = (lambda line: print(redact(line), file=sys.stderr)) if getattr(args, "debug", False) else None
    rclone = Rclone(log=log)
    if args.cs_ver is not None:
        if args.all:
            raise UsageError("--all writes every version: give no CS_VER", hint="e.g. cs-sync report --all -o reports/")
        version = version_arg(args.cs_ver)
        st = version_status(rclone, root, version, args.manifest, _stocktake_arg(args.stocktake))
        st.root = redact(st.root)  # shown, never used again
        out = args.output or Path(f"{version}_report.html")
        _write(out, render_version(st.to_dict(), made=made))
        print(out)
        return 0
    if args.manifest is not None or args.stocktake is not None:
        opt = "--manifest" if args.manifest is not None else "--stocktake"
        raise UsageError(f"{opt} needs a CS_VER", hint="e.g. cs-sync report v22p12 --manifest files_to_sync.yaml")
    versions = list_versions(rclone, root)
    doc = {"root": redact(root), "versions": [asdict(v) for v in versions]}
    if args.all:
        folder = args.output or Path(DEFAULT_ALL_DIR)
        for v in versions:
            st = version_status(rclone, root, v.name, None, _stocktake_arg(None))
            st.root = redact(st.root)
            _write(folder / f"{v.name}_report.html", render_version(st.to_dict(), made=made))
            print(folder / f"{v.name}_report.html")
        out = folder / "index.html"
    else:
        out = args.output or Path(VERSIONS_PAGE)
    links = {v.name: f"{v.name}_report.html" for v in versions if (out.parent / f"{v.name}_report.html").is_file()}
    _write(out, render_versions(doc, made=made, links=links))
    print(out)
    return 0
