"""``cs-sync-upload``: stream a version's sets as capped TARs to the remote, verified.

Parses arguments into one :class:`~cs_sync.upload.engine.UploadSettings`, makes one
call to :func:`cs_sync.upload.upload`, and prints the plan or the summary.
"""

from __future__ import annotations

import io
import os
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from cs_sync.cli.common import (
    add_bwlimit_option,
    add_types_option,
    main_wrapper,
    make_parser,
    min_part_size,
    positive_int,
    positive_seconds,
    resolve_remote,
)
from cs_sync.core.errors import ExitCode, IncompleteError, InputError, PlanError, UsageError
from cs_sync.core.scratch import TMP_ENV, default_tmp_dir
from cs_sync.core.sharding import parse_shard
from cs_sync.core.sizes import format_size, parse_size
from cs_sync.core.text import plural
from cs_sync.inputs.config import load_config
from cs_sync.remote.rclone import join
from cs_sync.remote.redact import redact
from cs_sync.ui.progress_display import TeeLog, make_progress
from cs_sync.upload.engine import (
    BASE_MEMORY_PER_TRANSFER,
    DEFAULT_REMOTE,
    DEFAULT_TRANSFERS,
    REMOTE_ENV,
    VERIFY_CHECK,
    VERIFY_DOWNLOAD,
    UploadSettings,
    upload,
)
from cs_sync.upload.planning import warning_lines
from cs_sync.upload.results import CheckMode, SetStatus, UploadResult
from cs_sync.upload.run import SMALL_FILE
from cs_sync.upload.tuning import DROPBOX_CHUNK_BYTES

PROG = "cs-sync-upload"
SMALL_ENV = "CS_SYNC_SMALL_FILE"  # bytes; 0: every file by its own rclone rcat (no batches in memory)

_MEMORY_TEXT = textwrap.fill(
    "Parts are streamed from the source files to the remote (rclone rcat): nothing is staged on local disk; "
    f"--tmp_dir holds only journals and the log. Memory: about {BASE_MEMORY_PER_TRANSFER >> 20} MiB per transfer, "
    "plus the upload chunk rclone buffers per upload on remotes that upload in chunks "
    f"(Dropbox: {DROPBOX_CHUNK_BYTES >> 20} MiB, which cs-sync sets unless your rclone config or environment sets "
    f"a chunk size), so {DEFAULT_TRANSFERS} transfers to Dropbox take about "
    f"{(DEFAULT_TRANSFERS * (BASE_MEMORY_PER_TRANSFER + DROPBOX_CHUNK_BYTES)) >> 20} MiB. "
    f"Files under {SMALL_FILE >> 20} MiB go in batches through a private folder in memory "
    f"(/dev/shm, 64 MiB at a time); set {SMALL_ENV}=0 to send each by its own rcat.", width=80)

EPILOG = f"""\
The remote root is --remote, else ${REMOTE_ENV}, else {DEFAULT_REMOTE}.
The version folder on the remote is CS_ROOT's name. Re-run the same command to
continue an interrupted upload; complete sets are skipped. One run at a time per
version and tmp dir (and per shard): a second one stops with exit 11.

{_MEMORY_TEXT}

exit codes: 0 done and checked, 3 bad input or refused plan, 5 rclone missing,
6 remote unknown or unreachable, 7 some sets failed or are stale, 9 local disk
problem, {int(ExitCode.LOCKED)} another run holds the lock, 130 interrupted.
"""


def build_parser(prog: str = PROG):
    p = make_parser(prog, __doc__.splitlines()[0].replace("``", ""))
    p.epilog = EPILOG
    p.add_argument("cs_root", metavar="CS_ROOT", type=Path, help="the version folder (its name is the version)")
    p.add_argument("files_to_sync", metavar="FILES_TO_SYNC", type=Path, help="files_to_sync.yaml from cs-sync-preprocess")
    p.add_argument("--tmp_dir", type=Path, default=None, metavar="DIR",
                   help=f"journals and the log, a few KiB per set (default ${TMP_ENV}, else a private folder "
                        "$TMPDIR/cs_sync-USER (or /tmp/cs_sync-USER), made with mode 0700); must be yours; "
                        "parts are never written locally")
    add_types_option(p, "data types to upload (default: all); a type packed into another (VM into Source) "
                        "selects that set")
    p.add_argument("--inc_fault", action="extend", nargs="+", default=[], metavar="F",
                   help="only this fault (several allowed; default all): e.g. to repair one set")
    p.add_argument("-f", "--overwrite", action="store_true",
                   help="replace sets already on the remote (an interrupted --overwrite run continues where it stopped)")
    p.add_argument("--update", action="store_true", help="re-upload stale sets (sources changed since upload) only")
    p.add_argument("--no_checksum", action="store_true", help="after each upload compare sizes only, not hashes")
    p.add_argument("--verify", choices=[VERIFY_CHECK, VERIFY_DOWNLOAD], default=VERIFY_CHECK,
                   help="check: compare the remote's own hash of each part with the one computed while "
                        "streaming (default); download: also stream it back and compare SHA-256")
    p.add_argument("--remote", default=None, metavar="ROOT",
                   help=f"remote root the version folder goes under (default: ${REMOTE_ENV}, else {DEFAULT_REMOTE})")
    p.add_argument("--max-size", default="100GiB", metavar="SIZE",
                   help="part size cap (default 100GiB); 500M, 100G, plain bytes; at least 1M")
    p.add_argument("--hard-limit", default="350GB", metavar="SIZE",
                   help="refuse parts above this (default 350GB, Dropbox's limit)")
    p.add_argument("--transfers", type=positive_int, default=DEFAULT_TRANSFERS, metavar="N",
                   help=f"parts streamed at once, from any faults, largest first (default {DEFAULT_TRANSFERS}); "
                        "memory per transfer: see below")
    add_bwlimit_option(p)
    p.add_argument("--dry-run", action="store_true", help="print the plan; write nothing anywhere")
    p.add_argument("--shard", default=None, metavar="i/N", help="only shard i of N (faults balanced by bytes)")
    p.add_argument("--config", type=Path, default=None, metavar="YAML",
                   help="sync_patterns.yaml: the one preprocess used (default: the one shipped)")
    p.add_argument("--progress-interval", type=positive_seconds, default=30.0, metavar="S",
                   help="seconds between status lines when not on a terminal (default 30)")
    return p


def _small_file() -> int:
    """$CS_SYNC_SMALL_FILE: files up to this size go in batches through memory; 0 turns that off."""
    text = os.environ.get(SMALL_ENV, "").strip()
    if not text:
        return SMALL_FILE
    return 0 if text == "0" else parse_size(text, option=SMALL_ENV)


def settings_from_args(args) -> UploadSettings:
    if args.transfers < 1:
        raise UsageError(f"--transfers {args.transfers}: must be at least 1")
    if args.overwrite and args.update:
        raise UsageError("--overwrite and --update: choose one", hint="--update redoes stale sets only")
    tmp = args.tmp_dir or default_tmp_dir()
    max_size = parse_size(args.max_size, option="--max-size")
    if max_size < min_part_size():
        raise InputError(
            f"--max-size {args.max_size}: {format_size(max_size)} is below 1 MiB, so nearly every file would "
            "get a TAR part of its own",
            hint="--max-size is the size of one part, e.g. 100G (the default 100GiB suits Dropbox)",
        )
    return UploadSettings(
        cs_root=args.cs_root,
        manifest=args.files_to_sync,
        remote=resolve_remote(args.remote),
        tmp_dir=tmp,
        config=load_config(args.config),
        types=tuple(args.types),
        overwrite=args.overwrite,
        update=args.update,
        checksum=not args.no_checksum,
        verify=args.verify,
        max_size=max_size,
        hard_limit=parse_size(args.hard_limit, option="--hard-limit"),
        transfers=args.transfers,
        dry_run=args.dry_run,
        shard=parse_shard(args.shard) if args.shard else None,
        faults=tuple(dict.fromkeys(args.inc_fault)),
        bwlimit=args.bwlimit,
        small_file=_small_file(),
    )


def _rate(n: int, seconds: float) -> str:
    return f"{format_size(n / seconds)}/s" if seconds > 0 else "-"


def print_plan(res: UploadResult, s: UploadSettings, out=None) -> None:
    out = out or sys.stdout
    plan = res.plan
    assert plan is not None
    print(f"plan (dry run, nothing written): {res.version} -> {redact(res.remote)}", file=out)
    print(f"  part cap {format_size(s.max_size)}, hard limit {format_size(s.hard_limit)}", file=out)
    by_name = {sp.name: sp for sp in plan.sets}
    for o in res.outcomes:
        sp = by_name[o.name]
        d = res.decisions[o.name]
        kind = "plain file" if sp.sample else ("part" if len(sp.parts) == 1 else "parts")
        head = f"  {o.name:<28} {d.action:<10} {len(sp.parts):>3} {kind:<10} {format_size(sp.size):>10}"
        print(head + (f"  {o.reason}" if o.reason else ""), file=out)
        if d.redo:
            for name in d.delete:
                print(f"      delete {name}" + (" (after the old sidecar)" if d.delete_sidecar else ""), file=out)
            for p in sp.parts:
                mark = "" if p.name in d.todo else "  (already uploaded and checked)"
                print(f"      {p.name:<36} {format_size(p.size):>10}  {len(p.members)} file{'s' if len(p.members) != 1 else ''}{mark}", file=out)
    for w in warning_lines(plan.warnings, s.max_size):
        print(f"  warning: {w}", file=out)
    todo = [o for o in res.outcomes if res.decisions[o.name].redo and o.status != SetStatus.REFUSED]
    n_parts = sum(len(res.decisions[o.name].todo) for o in todo)
    size = sum(p.size for o in todo for p in by_name[o.name].parts if p.name in res.decisions[o.name].todo)
    print(
        f"would upload {plural(len(todo), 'set')} ({plural(n_parts, 'part')}, {format_size(size)}); "
        f"skip {len(res.with_status(SetStatus.SKIPPED))} complete, {len(res.with_status(SetStatus.UNVERIFIED))} unverified "
        f"(made by the older scripts); {len(res.with_status(SetStatus.STALE))} stale; "
        f"{len(res.with_status(SetStatus.REFUSED))} refused",
        file=out,
    )
    print(f"local disk: journals and the log only, in {s.tmp_dir} (parts are streamed, never staged)", file=out)


def _checks_line(res: UploadResult, s: UploadSettings) -> str:
    c = res.checks
    if not c:
        return "  checks: nothing was uploaded"
    bits = []
    if c.get(CheckMode.HASH):
        bits.append(f"{c[CheckMode.HASH]} by the remote's own {res.hash_type} hash of the file it stored")
    if c.get(CheckMode.SIZES_ONLY):
        advice = "" if s.verify == VERIFY_DOWNLOAD else "; use --verify download to compare SHA-256"
        why = (f"the remote gave no {res.hash_type} for these files" if res.hash_type  # e.g. S3 multipart uploads
               else "the remote gives no hash cs-sync can compute")
        bits.append(f"{c[CheckMode.SIZES_ONLY]} with SIZES ONLY ({why}{advice})")
    if c.get(CheckMode.SIZE):
        bits.append(f"{c[CheckMode.SIZE]} by size only (--no_checksum)")
    if c.get(CheckMode.DOWNLOAD):
        bits.append(f"{c[CheckMode.DOWNLOAD]} read back and SHA-256 compared (--verify download)")
    return "  checks: " + "; ".join(bits)


def print_summary(res: UploadResult, s: UploadSettings, log_path: Path, out=None) -> None:
    out = out or sys.stdout
    n = {k.value: len(res.with_status(k)) for k in SetStatus}
    print(f"\nsummary for {res.version} -> {redact(res.remote)}", file=out)
    print(
        f"  sets: {n['uploaded']} uploaded, {n['skipped']} skipped (already complete), "
        f"{n['unverified']} unverified (made by the older scripts), {n['stale']} stale, "
        f"{n['failed'] + n['refused']} failed",
        file=out,
    )
    print(
        f"  parts: {res.parts_uploaded} uploaded and checked ({format_size(res.bytes_uploaded)}), "
        f"{res.parts_resent} sent again after a failed attempt, "
        f"{res.parts_on_remote} already uploaded by an interrupted run",
        file=out,
    )
    print(
        f"  wall {res.wall:.1f} s, throughput {_rate(res.bytes_streamed, res.wall)} "
        f"({format_size(res.bytes_streamed)} streamed from the sources; nothing staged on local disk)",
        file=out,
    )
    if res.remote_flags:
        print(f"  rclone settings added for this remote: {' '.join(res.remote_flags)}", file=out)
    print(_checks_line(res, s), file=out)
    if res.extras:
        print(f"  version root: {', '.join(sorted(res.extras))} uploaded", file=out)
    for e in res.extras_failed:
        print(f"  FAILED {e}", file=out)
    for o in res.with_status(SetStatus.UNVERIFIED):
        print(f"  unverified: {o.name} (made by the older scripts; no sidecar)", file=out)
    for o in res.with_status(SetStatus.STALE):
        print(f"  stale: {o.name}: {o.reason}", file=out)
    for o in res.failed:
        print(f"  FAILED {o.name}: {o.reason}", file=out)
    if res.incoming_removed:
        print(f"  removed {plural(res.incoming_removed, 'file')} ({format_size(res.incoming_removed_bytes)}) that "
              f"stopped runs left in {res.version}/_cs_sync/incoming (named in the log)", file=out)
    if res.incoming_left:
        print(f"  could not remove {plural(res.incoming_left, 'file')} that stopped runs left in "
              f"{res.version}/_cs_sync/incoming (see the log); a re-run tries again", file=out)
    if res.final_problems:
        print(f"  remote re-read: {len(res.final_problems)} of {plural(res.final_checked, 'set')} NOT complete", file=out)
    else:
        print(f"  remote re-read: every set that should be there is complete ({plural(res.final_checked, 'set')})",
              file=out)
    print(f"  log: {log_path}", file=out)


def run(args) -> int:
    s = settings_from_args(args)
    if s.dry_run:
        res = upload(s)
        buf = io.StringIO()
        print_plan(res, s, buf)
        sys.stdout.write(redact(buf.getvalue()))
        if res.with_status(SetStatus.REFUSED):
            raise PlanError("refused: " + "; ".join(o.reason for o in res.with_status(SetStatus.REFUSED)[:3]),
                            hint="lower --max-size or raise --hard-limit if the remote allows bigger files")
        return 0
    # the log is kept in memory until the engine has checked the inputs (manifest, plan, the
    # remote): a run stopped by bad input writes nothing in the tmp dir
    log = TeeLog(s.log_path, deferred=True)

    def ready() -> None:
        try:
            log.open()
        except OSError as exc:
            from cs_sync.core.errors import from_os_error

            raise from_os_error(exc, f"cannot use --tmp_dir {s.tmp_dir}") from None
        print(f"log: {s.log_path}  (follow it with: tail -f {s.log_path})", flush=True)

    print(f"{PROG}: {s.version} -> {redact(join(s.remote, s.version))}", flush=True)
    log(f"{PROG} {' '.join(sys.argv[1:])}")
    try:
        with make_progress(sys.stdout, interval=args.progress_interval, log=log) as progress:
            res = upload(s, progress, log, on_ready=ready)
        buf = io.StringIO()
        print_summary(res, s, s.log_path, buf)
        sys.stdout.write(redact(buf.getvalue()))  # reasons quote rclone, which may quote the remote
        for line in buf.getvalue().splitlines():
            if line.strip():
                log(line)
    finally:
        log.close()
    log.check()  # a log that lost lines (full disk) is not a clean run: exit 9
    problems = [o.name for o in res.failed] + [e.split(":", 1)[0] for e in res.extras_failed]
    stale = [o.name for o in res.with_status(SetStatus.STALE)]
    if problems:
        raise IncompleteError(
            f"{len(problems)} set(s) failed: {', '.join(problems[:5])}" + (" ..." if len(problems) > 5 else ""),
            hint=f"see {s.log_path}; fix the cause and re-run the same command",
        )
    if stale:
        raise IncompleteError(
            f"{len(stale)} set(s) are stale (sources changed since upload): {', '.join(stale[:5])}"
            + (" ..." if len(stale) > 5 else ""),
            hint="re-run with --update to re-upload them",
        )
    return 0


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    return main_wrapper(prog, run, build_parser(prog), argv)


def entry() -> None:
    sys.exit(main())
