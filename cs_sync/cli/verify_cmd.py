"""``cs-sync verify CS_VER``: check the remote's parts against their sidecars without downloading."""

from __future__ import annotations

import argparse
import sys

HELP = "check every part's hash on the remote against its sidecar, without downloading (or read a slice)"
DESCRIPTION = """\
Without --read-data nothing is downloaded: one listing with the remote's hashes
(SHA-256 where the remote offers it, else its own type such as Dropbox's), and
every part's size and hash compared with what its sidecar recorded at upload or
index time. Parts that can only be size-checked (the remote offers no hash, or the
sidecar recorded none of its types) are counted and listed; sets without a
sidecar are listed as unindexed (cs-sync index records one).

--read-data streams a slice of the parts through rclone (never to disk) and checks
every part's and member's SHA-256 and place: a percentage (5%: parts chosen at
random until 5% of the bytes) or slice K of N (1/10 ... 10/10: N runs read every
part once, each part always in the same slice).

examples:
  cs-sync verify v22p12 --remote dropbox:/QuakeCoRE/Public/Cybershake
  cs-sync verify v22p12 -t BB --read-data 1/12
exit codes: 0 everything checked agrees (size-only parts and unindexed sets are
listed); 8 a part or member differs (named); 7 parts missing, sidecars damaged, or
names matched nothing; 6 remote or version not found.
"""


def register(subparsers) -> None:
    from cs_sync.cli.common import positive_int
    from cs_sync.cli.index_cmd import add_selection

    p = subparsers.add_parser("verify", help=HELP, description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    add_selection(p)
    p.add_argument("--read_data", default=None, metavar="PCT|K/N",
                   help="also stream this slice of the parts and check their SHA-256s: 5%% or 3/10")
    p.add_argument("--transfers", type=positive_int, default=4, metavar="N",
                   help="parts streamed at once with --read-data (default 4)")
    p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and rclone commands")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from cs_sync.cli.common import finish_run, resolve_remote, version_arg
    from cs_sync.remote.rclone import Rclone
    from cs_sync.ui.progress_display import make_progress
    from cs_sync.verify.compare import parse_slice
    from cs_sync.verify.engine import VerifySettings, verify_version
    from cs_sync.verify.result import summary_lines

    settings = VerifySettings(
        version=version_arg(args.cs_ver), remote=resolve_remote(args.remote), types=tuple(args.types),
        inc_faults=tuple(args.inc_fault), exc_faults=tuple(args.exc_fault),
        read_data=parse_slice(args.read_data) if args.read_data else None, transfers=args.transfers,
    )
    log = (lambda line: print(line, file=sys.stderr)) if getattr(args, "debug", False) else None
    print(f"cs-sync verify: {settings.version} on {settings.remote}", flush=True)
    with make_progress(sys.stdout) as progress:
        result = verify_version(settings, Rclone(log=log), progress)
    return finish_run(summary_lines(result), result.error())
