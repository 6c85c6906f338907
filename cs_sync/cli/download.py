"""``cs-sync-download CS_VER``: fetch, verify and extract selected sets of a remote version."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from cs_sync.cli.common import (
    add_bwlimit_option,
    add_types_option,
    main_wrapper,
    make_parser,
    positive_int,
    resolve_remote,
    version_arg,
)
from cs_sync.core.errors import CsSyncError, ExitCode
from cs_sync.core.naming import DEFAULT_REMOTE, REMOTE_ENV

PROG = "cs-sync-download"
LOG_NAME = "cs_sync_download.log"
DESCRIPTION = f"""\
Bring sets of version CS_VER back from the remote, verified: each part is checked
(SHA-256 from the sidecar, else rclone check) and extracted to
DOWNLOAD_DIR/FAULT/TYPE/ as it arrives. Incomplete or ambiguous sets are reported
and left alone. Re-run the same command to continue after any interruption.

examples:
  {PROG} v22p12 -t BB --inc_fault AlpineK2T --download_dir /scratch/me/cs
  {PROG} v22p12 -t BB --inc_fault AlpineK2T --rel 7      # one realisation only (byte ranges)
  {PROG} v22p12 -t IM --member '*_REL01.csv' --cleanup
Files come back flat: DOWNLOAD_DIR/FAULT/BB/FAULT_REL01_BB.bin, not the Runs/... tree.
One run at a time per DOWNLOAD_DIR (and per shard): a second one stops with exit 11.

exit codes: 0 all done; 6 remote/version not found; 7 some sets refused or failed;
8 corrupted data only; 9 local disk problem; {int(ExitCode.LOCKED)} another run holds the lock
(see README, "Exit codes").
"""


def build_parser(prog: str = PROG):
    p = make_parser(prog, DESCRIPTION)
    p.add_argument("version", metavar="CS_VER", help="version folder on the remote, e.g. v22p12")
    add_types_option(p, "data types to fetch, as on the remote (default: all: BB, IM, Source, SAMPLE_BB); "
                        "VM files are in the Source sets, so -t VM fetches those")
    p.add_argument("--download_dir", type=Path, default=Path("."), metavar="DIR",
                   help="where FAULT/TYPE/ folders, TARs, tar_ok.log and the log go (default: .)")
    p.add_argument("--inc_fault", action="extend", nargs="+", default=[], metavar="F", help="only this fault (several allowed; default all)")
    p.add_argument("--exc_fault", action="extend", nargs="+", default=[], metavar="F", help="never this fault (several allowed; wins over --inc_fault)")
    p.add_argument("--rel", action="extend", nargs="+", default=[], metavar="REL",
                   help="only members of this realisation: 7, REL07, AlpineK2T_REL07 or median (several allowed)")
    p.add_argument("--member", action="extend", nargs="+", default=[], metavar="GLOB",
                   help="only members whose name matches GLOB, e.g. '*_REL01_BB.bin' (several allowed)")
    p.add_argument("--cleanup", action="store_true", help="delete each TAR once it is verified and extracted")
    p.add_argument("--no_download", action="store_true", help="fetch nothing; verify and extract the TARs already in DOWNLOAD_DIR")
    p.add_argument("--force_untar", action="store_true", help="ignore tar_ok.log: extract everything again")
    p.add_argument("--allow-incomplete", dest="allow_incomplete", action="store_true",
                   help="also fetch what is there of incomplete or ambiguous sets (verified by rclone check only)")
    p.add_argument("--remote", default=None, metavar="ROOT",
                   help=f"remote root holding the versions (default: ${REMOTE_ENV}, else {DEFAULT_REMOTE})")
    p.add_argument("--transfers", type=positive_int, default=4, metavar="N", help="parts fetched at once (default 4)")
    p.add_argument("--streams", type=positive_int, default=4, metavar="N",
                   help="streams per part for parts over 16 MiB, by rclone's multi-thread copy (default 4; "
                        "1: one stream per part); RCLONE_MULTI_THREAD_* in the environment take precedence")
    p.add_argument("--shard", default=None, metavar="i/N",
                   help="only shard i of N (faults balanced by bytes; for Slurm arrays); own state and log files")
    add_bwlimit_option(p)
    return p


def _run(args: argparse.Namespace) -> int:
    from cs_sync.core.sharding import parse_shard
    from cs_sync.download.engine import DownloadSettings, download, summary_lines
    from cs_sync.download.state import log_names
    from cs_sync.remote.rclone import Rclone
    from cs_sync.remote.redact import redact
    from cs_sync.ui.progress_display import TeeLog, make_progress

    shard = parse_shard(args.shard) if args.shard else None
    settings = DownloadSettings(
        version=version_arg(args.version),
        remote=resolve_remote(args.remote),
        download_dir=args.download_dir,
        types=tuple(args.types),
        inc_faults=tuple(args.inc_fault),
        exc_faults=tuple(args.exc_fault),
        rels=tuple(args.rel),
        members=tuple(args.member),
        cleanup=args.cleanup,
        no_download=args.no_download,
        force_untar=args.force_untar,
        transfers=args.transfers,
        streams=args.streams,
        allow_incomplete=args.allow_incomplete,
        shard=shard,
        bwlimit=args.bwlimit,
    )
    ddir = settings.download_dir
    log_name = LOG_NAME if shard is None else LOG_NAME.replace(".log", f".shard-{shard[0]}-of-{shard[1]}.log")
    log_path = ddir / log_name
    # nothing is written locally before the version is found: the log opens when the engine is ready
    log = TeeLog(log_path, deferred=True)

    ok_name, err_name = log_names(shard)

    def ready(_ddir: Path) -> None:
        try:
            log.open()
        except OSError as exc:
            from cs_sync.core.errors import from_os_error

            raise from_os_error(exc, f"cannot write {log_path}") from None
        print(f"log: {log_path} (state: {ddir / ok_name}, {ddir / err_name})", flush=True)

    print(f"{PROG}: {settings.version} from {redact(settings.remote)} into {ddir}", flush=True)
    sink = (lambda line: (log(line), print(redact(line), file=sys.stderr))) if args.debug else log
    try:
        log(f"cs-sync-download {' '.join(sys.argv[1:])}")
        rclone = Rclone(log=sink)
        with make_progress(sys.stdout, log=log) as progress:
            result = download(settings, rclone, progress, on_ready=ready)
        for line in summary_lines(result):
            print(redact(line))  # reasons quote rclone, which may quote the remote
            log(line)
        err = result.error(str(log_path))
        if err is not None:
            raise err
        log.check()  # a log that lost lines (full disk) is not a clean run: exit 9
        return 0
    except CsSyncError as exc:
        log(f"error: {exc.one_line()}")
        raise
    finally:
        log.close()


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    return main_wrapper(prog, _run, build_parser(prog), argv)


def entry() -> None:
    sys.exit(main())
