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
SUBCOMMANDS = ["status", "report", "index", "verify", "slurm"]
# cs-sync preprocess|upload|download ... is the same as cs-sync-preprocess|upload|download ...
ALIASES = {
    "preprocess": ("cs_sync.cli.preprocess", "find, check and list the files to archive (= cs-sync-preprocess)"),
    "upload": ("cs_sync.cli.upload", "pack and upload a version, verified (= cs-sync-upload)"),
    "download": ("cs_sync.cli.download", "fetch, verify and extract sets of a version (= cs-sync-download)"),
}


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
    for name, (_module, text) in ALIASES.items():
        subs.add_parser(name, help=text, add_help=False)  # listed in --help; main() hands these over whole
    for name in SUBCOMMANDS:
        importlib.import_module(f".{name}_cmd", __package__).register(subs)
    return parser


def _alias(argv: list[str]) -> tuple[str, list[str]] | None:
    """(command, its arguments) when ``argv`` names one of the three commands by its short name."""
    for i, a in enumerate(argv):
        if not a.startswith("-"):
            return (a, argv[:i] + argv[i + 1:]) if a in ALIASES else None
        if a not in ("--debug",):
            return None  # an option of cs-sync itself (--version, --help) comes first
    return None


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    alias = _alias(args_list)
    if alias is not None:
        name, rest = alias
        return int(importlib.import_module(ALIASES[name][0]).main(rest, prog=f"{PROG} {name}"))
    parser = build_parser()
    args = parser.parse_args(args_list)
    if args.version:
        print(version_text())
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return run(f"{PROG} {args.command}", lambda: args.func(args), args.debug)


def entry() -> None:
    sys.exit(main())
