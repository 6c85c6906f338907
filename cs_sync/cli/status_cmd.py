"""``cs-sync status [CS_VER]``: what the remote holds, and whether it is complete."""

from __future__ import annotations

import argparse
import sys

HELP = "show the versions under the remote root, or one version's faults x data types"
DESCRIPTION = """\
Without CS_VER: the versions under the remote root (faults, sets, size).
With CS_VER: a table of faults x data types; each cell is complete (parts, size),
incomplete (what is missing), ambiguous, mismatch (sizes differ from the sidecar)
or absent; with --manifest also stale (sources changed since upload) or not
uploaded; a fault the remote's list.txt names with nothing on the remote is not
uploaded too. Exits 7 when anything is incomplete, ambiguous, mismatched, stale or not
uploaded; 6 when the remote or version is not there.

examples:
  cs-sync status
  cs-sync status v22p12 --remote dropbox:/QuakeCoRE/Public/Cybershake
  cs-sync status v22p12 --manifest files_to_sync.yaml --json
"""


def register(subparsers) -> None:
    from cs_sync.cli.common import add_version_view_options

    p = subparsers.add_parser("status", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_version_view_options(p)
    p.add_argument("--stocktake", default=None, metavar="CSV",
                   help="also read a stocktake.csv (per fault and pattern: found vs expected) into the JSON; "
                        "'remote' for the version's own on the remote")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table (for scripts)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and rclone commands")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cs_sync.cli.common import resolve_remote, version_arg
    from cs_sync.core.errors import UsageError
    from cs_sync.remote.rclone import Rclone
    from cs_sync.remote.redact import redact
    from cs_sync.status import list_versions, version_status
    from cs_sync.ui.status_table import render_version, render_versions, version_json, versions_json

    root = resolve_remote(args.remote)
    log = (lambda line: print(redact(line), file=sys.stderr)) if getattr(args, 'debug', False) else None
    rclone = Rclone(log=log)
    rich = not args.json and sys.stdout.isatty()
    if args.cs_ver is None:
        if args.manifest is not None or args.stocktake is not None:
            opt = "--manifest" if args.manifest is not None else "--stocktake"
            raise UsageError(f"{opt} needs a CS_VER", hint="e.g. cs-sync status v22p12 --manifest files_to_sync.yaml")
        versions = list_versions(rclone, root)
        if args.json:
            print(versions_json(redact(root), versions))
        else:
            render_versions(redact(root), versions, sys.stdout, rich=rich)
        return 0
    st = version_status(rclone, root, version_arg(args.cs_ver), args.manifest, args.stocktake)
    st.root = redact(st.root)  # shown, never used again
    if args.json:
        print(version_json(st))
    else:
        render_version(st, sys.stdout, rich=rich)
    return st.exit_code()
