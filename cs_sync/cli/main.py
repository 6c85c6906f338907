"""``cs-sync``: the umbrella command (``--version``, ``status``, ``slurm`` ...).

Each subcommand lives in its own module under ``cs_sync/cli/`` exposing
``register(subparsers)``; this file only wires them together.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

from cs_sync import __version__
from cs_sync.cli.common import make_parser, run
from cs_sync.core.errors import CsSyncError

PROG = "cs-sync"
# subcommand modules, each with register(subparsers) -> sets func=callable(args) -> int
SUBCOMMANDS = ["status", "report", "slurm"]


def version_text() -> str:
    """Our version and the rclone we would use (path and version), or why none."""
    from cs_sync.remote.rclone import Rclone, find_rclone

    try:
        binary = find_rclone()
        rc = f"rclone {Rclone(binary).version()} ({binary})"
    except CsSyncError as exc:
        rc = f"rclone: none usable: {exc.one_line()}"
    return f"cs-sync {__version__}\n{rc}"


def build_parser():
    parser = make_parser(PROG, "Archive Cybershake versions to an rclone remote; status, Slurm and more.")
    parser.add_argument("--version", action="store_true", help="print versions of cs-sync and rclone")
    subs = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f".{name}_cmd", __package__).register(subs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        print(version_text())
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run(f"{PROG} {args.command}", lambda: args.func(args), args.debug)


def entry() -> None:
    sys.exit(main())
