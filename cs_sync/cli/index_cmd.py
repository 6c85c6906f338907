"""``cs-sync index CS_VER``: index sidecars for the sets the older scripts made."""

from __future__ import annotations

import argparse
import sys

from cs_sync.core.naming import DEFAULT_REMOTE, REMOTE_ENV

HELP = "index the sets made by the older scripts (no sidecar) by reading their TAR headers only"
DESCRIPTION = """\
For every selected set without a sidecar, read each TAR part's headers by byte
range (nothing else is downloaded) and write an index sidecar to
CS_VER/_cs_sync/ recording each member's part, byte offset, size and mtime, each
part's size and the remote's own hash (e.g. Dropbox's). Download then fetches one
member by range, and cs-sync verify compares hashes without downloading.
Data files are never modified, moved or deleted. Re-running skips what is indexed.

Without --hash-members an index proves member places and sizes and the remote's
hash at indexing time, not the content; with it every part is streamed once (no
local copy) and every member's and part's SHA-256 is recorded.

examples:
  cs-sync index v18p6 --remote dropbox:/QuakeCoRE/Public/Cybershake
  cs-sync index v18p6 -t BB --inc_fault AlpineK2T --dry-run
  cs-sync index v18p6 --hash-members --shard 0/4
exit codes: 0 every selected set has a sidecar; 7 some refused (incomplete,
ambiguous) or names matched nothing; 8 some parts are not whole TARs (named, no
sidecar written for their sets); 6 remote or version not found.
"""


def add_selection(p: argparse.ArgumentParser) -> None:
    """-t, --inc_fault, --exc_fault and --remote, as cs-sync-download spells them."""
    p.add_argument("cs_ver", metavar="CS_VER", help="version folder on the remote, e.g. v18p6")
    p.add_argument("--remote", default=None, metavar="ROOT",
                   help=f"remote root holding the versions (default: ${REMOTE_ENV}, else {DEFAULT_REMOTE})")
    p.add_argument("-t", "--data_types", dest="types", action="extend", nargs="+", default=[], metavar="TYPE",
                   help="a data type (several allowed; default: every type on the remote)")
    p.add_argument("--inc_fault", action="extend", nargs="+", default=[], metavar="F",
                   help="only this fault (several allowed; default all)")
    p.add_argument("--exc_fault", action="extend", nargs="+", default=[], metavar="F",
                   help="never this fault (several allowed; wins over --inc_fault)")


def add_index_options(p: argparse.ArgumentParser) -> None:
    from cs_sync.cli.common import positive_int

    add_selection(p)
    p.add_argument("--hash_members", action="store_true",
                   help="also stream every part once (no local copy) and record every member's and part's SHA-256")
    p.add_argument("--reindex", action="store_true",
                   help="index again the sets indexed before (e.g. after their parts changed); never sets made at upload")
    p.add_argument("--transfers", type=positive_int, default=8, metavar="N",
                   help="parts read at once (default 8: a header walk waits on round trips, not bandwidth)")
    p.add_argument("--shard", default=None, metavar="i/N",
                   help="only shard i of N (faults balanced by bytes; cs-sync slurm index sets it)")
    p.add_argument("--dry_run", action="store_true", help="list what would be indexed; read and write nothing")


def register(subparsers) -> None:
    p = subparsers.add_parser("index", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_index_options(p)
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and rclone commands")
    p.set_defaults(func=run)


def settings_from_args(args: argparse.Namespace):
    from cs_sync.cli.common import resolve_remote, version_arg
    from cs_sync.core.sharding import parse_shard
    from cs_sync.index.engine import IndexSettings

    return IndexSettings(
        version=version_arg(args.cs_ver), remote=resolve_remote(args.remote), types=tuple(args.types),
        inc_faults=tuple(args.inc_fault), exc_faults=tuple(args.exc_fault), hash_members=args.hash_members,
        reindex=args.reindex, shard=parse_shard(args.shard) if args.shard else None, dry_run=args.dry_run,
        transfers=args.transfers,
    )


def run(args: argparse.Namespace) -> int:
    from cs_sync.cli.common import finish_run
    from cs_sync.index.engine import index_version
    from cs_sync.index.result import summary_lines
    from cs_sync.remote.rclone import Rclone
    from cs_sync.ui.progress_display import make_progress

    settings = settings_from_args(args)
    log = (lambda line: print(line, file=sys.stderr)) if getattr(args, "debug", False) else None
    rclone = Rclone(log=log)
    what = " (dry run)" if settings.dry_run else ""
    print(f"cs-sync index: {settings.version} on {settings.remote}{what}", flush=True)
    with make_progress(sys.stdout) as progress:
        result = index_version(settings, rclone, progress)
    return finish_run(summary_lines(result), result.error())
