"""The upload engine: plan, compare with the remote, stream, check, record.

One call, :func:`upload`, takes an :class:`UploadSettings` and returns an
:class:`~cs_sync.upload.results.UploadResult`; it never prints (progress and notes
go through the Progress protocol, details to the ``log`` sink) and never exits.

How a run goes:

1. Read the manifest, plan sets and parts (``planning``); refuse parts above the
   hard limit before touching anything.
2. Read the remote version once (one listing plus the sidecars): this is also the
   up-front check that the remote exists and answers. Ask rclone which hashes the
   remote keeps: the check after each upload compares the strongest one we can
   compute (``checks``).
3. Decide per set: skip (complete), stale, unverified (older scripts), refuse,
   or (re)do it, using the set's journal from an interrupted run.
4. Stream the parts to do (``run``): each one straight from the sources into
   ``rclone rcat``, largest first, ``transfers`` at once, from any faults; checked by
   the remote's own hash, moved into place, recorded; a set's final part after its
   others, its sidecar after all. Nothing but journals and the log touches local disk.
5. Read the remote again and confirm every set that should be there is complete.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from cs_sync.archive.tar_write import DEFAULT_BUFFER, MemberSource
from cs_sync.core.atomic import leftover_temps, missing_dirs, remove_empty_dirs
from cs_sync.core.errors import (
    CsSyncError,
    InputError,
    LocalIOError,
    ManifestError,
    ObjectNotFound,
    PlanError,
    UsageError,
    from_os_error,
)
from cs_sync.core.lock import upload_lock
from cs_sync.core.naming import DEFAULT_REMOTE, LIST_FILE, REMOTE_ENV, STOCKTAKE_FILE, sidecar_name  # noqa: F401
from cs_sync.core.progress import NULL_PROGRESS, Progress, declare_total
from cs_sync.core.scratch import prepare_tmp_dir
from cs_sync.core.sharding import assign_shards
from cs_sync.core.sizes import format_size
from cs_sync.inputs.config import SyncConfig, load_config
from cs_sync.inputs.manifest import Manifest, read_manifest
from cs_sync.remote.rclone import Rclone, join, remote_name
from cs_sync.remote.sets import RemoteFile, RemoteSet, SetState, VersionListing, classify_set, group_listing
from cs_sync.remote.state import read_version
from cs_sync.upload.checks import choose_check
from cs_sync.upload.journal import Journal
from cs_sync.upload.planning import (
    REFUSE,
    SKIP,
    STALE,
    UNVERIFIED,
    Plan,
    SetPlan,
    decide_set,
    plan_upload,
    warning_lines,
)
from cs_sync.upload.results import SetOutcome, SetStatus, UploadResult
from cs_sync.upload.run import INCOMING, SMALL_FILE, SMALL_LANE, UploadRun
from cs_sync.upload.tracker import Job, SetTracker
from cs_sync.upload.tuning import RemoteTuning, tuning_for

DEFAULT_MAX_SIZE = 100 * 1024**3  # 100 GiB, as the older scripts
DEFAULT_HARD_LIMIT = 350 * 1000**3  # Dropbox's per-file upload limit
# Parts streamed at once. One Dropbox upload stream gets roughly 10-20 MB/s; 8 of them fill
# a link of 80-160 MB/s, and largest-first ordering keeps several busy until the end.
DEFAULT_TRANSFERS = 8
# Memory per transfer without remote-specific settings: our 2 MiB read buffer and the pipe,
# and rclone's own memory (measured: 14.6 MiB private per rclone rcat to WebDAV, rclone
# v1.75.2; its ~50 MB of program text is shared by every rclone running, counted once).
BASE_MEMORY_PER_TRANSFER = 24 << 20
VERIFY_CHECK = "check"
VERIFY_DOWNLOAD = "download"

LogSink = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class UploadSettings:
    """Everything one upload run needs; built by the CLI, or by tests directly."""

    cs_root: Path  # the version folder; its name is the version on the remote
    manifest: Path  # files_to_sync.yaml written by preprocess
    remote: str = DEFAULT_REMOTE  # remote root; the version goes in {remote}/{version}
    tmp_dir: Path  # journals and the log (parts are never written locally)
    config: SyncConfig | None = None  # None: the sync_patterns.yaml shipped with the package
    types: tuple[str, ...] = ()  # -t selection; empty: every type
    overwrite: bool = False  # replace sets already on the remote
    update: bool = False  # redo stale sets (sources changed since upload)
    checksum: bool = True  # False (--no_checksum): check sizes only
    verify: str = VERIFY_CHECK  # or VERIFY_DOWNLOAD: stream each part back and compare SHA-256
    max_size: int = DEFAULT_MAX_SIZE
    hard_limit: int = DEFAULT_HARD_LIMIT
    transfers: int = DEFAULT_TRANSFERS
    dry_run: bool = False
    shard: tuple[int, int] | None = None  # (i, N): only shard i of N (by bytes per fault)
    faults: tuple[str, ...] = ()  # --inc_fault: only these faults of the manifest; empty: all
    buffer_size: int = DEFAULT_BUFFER
    small_file: int = SMALL_FILE  # files up to this size go in batches through memory; 0: each by its own rcat
    bwlimit: float | None = None  # bytes/s for the whole run (shared among its rclone processes)

    @property
    def version(self) -> str:
        return Path(self.cs_root).resolve().name

    @property
    def work_dir(self) -> Path:
        return Path(self.tmp_dir) / self.version

    @property
    def shard_label(self) -> str:
        return f".shard{self.shard[0]}of{self.shard[1]}" if self.shard else ""

    @property
    def log_path(self) -> Path:
        return self.work_dir / f"upload{self.shard_label}.log"


def memory_per_transfer(tuning: RemoteTuning) -> int:
    return BASE_MEMORY_PER_TRANSFER + tuning.memory_per_transfer


# -- helpers ------------------------------------------------------------------------


def _shard_faults(plan: Plan, shard: tuple[int, int] | None) -> list[str] | None:
    if shard is None:
        return None
    weights: dict[str, int] = {}
    for sp in plan.sets:
        weights[sp.fault] = weights.get(sp.fault, 0) + sp.size
    return assign_shards(weights, shard[1])[shard[0]]


def _chosen_faults(manifest: Manifest, settings: UploadSettings) -> list[str]:
    """--inc_fault: every name must be a fault of the manifest (a typo must not upload nothing quietly)."""
    unknown = [f for f in settings.faults if f not in manifest.faults]
    if unknown:
        raise UsageError(f"--inc_fault {unknown[0]!r} is not a fault of {settings.manifest}",
                         hint="give a fault name as listed in list.txt")
    return list(settings.faults)


def _check_root(cs_root: Path) -> None:
    """CS_ROOT must be a folder: else every set would fail, each with its files "vanished"."""
    if not Path(cs_root).is_dir():
        what = "is not a folder" if Path(cs_root).exists() else "does not exist"
        raise InputError(f"CS_ROOT {cs_root} {what}",
                         hint="give the version folder preprocess scanned, e.g. .../Cybershake/v22p12")


def _check_version(manifest: Manifest, settings: UploadSettings) -> None:
    if manifest.version and manifest.version != settings.version:
        raise ManifestError(
            f"{settings.manifest}: manifest is for version {manifest.version!r}, but CS_ROOT is "
            f"{settings.version!r} ({settings.cs_root})",
            hint="give the files_to_sync.yaml that preprocess wrote for this CS_ROOT",
        )
    root = Path(settings.cs_root).resolve()
    if manifest.cs_root and not _same_folder(manifest.cs_root, root):
        # same folder name, another tree: every set would look modified; say what it is
        raise ManifestError(
            f"{settings.manifest} was made for {manifest.cs_root}, not {root}",
            hint="run cs-sync-preprocess on this CS_ROOT, or give the CS_ROOT that manifest was made for",
        )


def _same_folder(a: str | Path, b: str | Path) -> bool:
    if Path(a).resolve() == Path(b).resolve():
        return True
    try:
        return Path(a).samefile(b)  # the same folder reached by another path (bind mount)
    except OSError:
        return False


class GuardedLog:
    """The log sink, such that a log that cannot be written (disk full) stops the run once,
    with one line naming the file, instead of raising in whichever thread logged."""

    def __init__(self, sink: LogSink, where: Path) -> None:
        self.sink = sink
        self.where = where
        self.error: CsSyncError | None = None
        self.on_error: Callable[[CsSyncError], None] = lambda exc: None
        self._lock = threading.Lock()

    def __call__(self, line: str) -> None:
        if self.error is not None:
            return
        try:
            self.sink(line)
            err = getattr(self.sink, "error", None)  # a TeeLog keeps its failure instead of raising it
        except (OSError, LocalIOError) as exc:
            err = exc if isinstance(exc, LocalIOError) else from_os_error(exc, f"writing {self.where}")
        if not isinstance(err, CsSyncError):
            return
        with self._lock:
            first = self.error is None
            self.error = self.error or err
        if first:
            self.on_error(err)


def _clean_leftovers(settings: UploadSettings, plan: Plan) -> None:
    """Remove what a killed run left in the tmp dir: half-written journals and sidecars, and
    the local parts an older version of this tool kept there. Only this run's sets: concurrent
    shards share the tmp dir."""
    work = settings.work_dir
    for sp in plan.sets:
        for p in leftover_temps(work / "journal" / f"{sp.name}.json"):
            p.unlink()  # a journal being rewritten when a run was killed
        for p in (work / "sidecars").glob(f"*{sidecar_name(sp.fault, sp.dtype)}*"):
            p.unlink()
    for fault in {sp.fault for sp in plan.sets}:
        fdir = work / "parts" / fault
        for p in fdir.iterdir() if fdir.is_dir() else []:
            p.unlink()


def find_root_file(name: str, manifest: Manifest, settings: UploadSettings) -> tuple[Path | None, bool]:
    """Local path of list.txt / stocktake.csv, and whether the manifest lists it."""
    listed = False
    candidates: list[Path] = []
    if name in manifest.extra_paths:
        listed = True
        candidates.append(Path(manifest.extra_paths[name]))
    for key in manifest.extra:
        if os.path.basename(key) == name:
            listed = True
            p = Path(key)
            candidates += [p] if p.is_absolute() else [Path(settings.cs_root) / p, Path(settings.manifest).parent / p]
    candidates += [Path(settings.cs_root) / name, Path(settings.manifest).parent / name]
    for c in candidates:
        if c.is_file():
            return c, listed
    return None, listed


def _root_jobs(manifest: Manifest, settings: UploadSettings, result: UploadResult, progress: Progress) -> list[Job]:
    """list.txt and stocktake.csv, streamed as plain files from where they are."""
    jobs = []
    for name in (LIST_FILE, STOCKTAKE_FILE):
        path, listed = find_root_file(name, manifest, settings)
        if path is None:
            if listed:
                result.extras_failed.append(f"{name}: listed in {settings.manifest} but not found")
            else:
                progress.note(f"{name}: not found beside CS_ROOT or the manifest; not uploaded")
            continue
        st = path.stat()
        src = MemberSource(name, str(path.resolve()), st.st_size, st.st_mtime_ns)
        jobs.append(Job(relpath=name, size=st.st_size, members=(src,), plain=True))
    return jobs


def _tuning(rclone: Rclone, remote: str, rtype: str | None, log: LogSink) -> RemoteTuning:
    """Settings rclone documents for this kind of remote (Dropbox), unless the user set them."""
    name = remote_name(remote)
    if name is None or rtype != "dropbox":
        return RemoteTuning()
    keys = rclone.config_keys(name) if not name.startswith(":") else set()
    tuning = tuning_for(rtype, name, keys, os.environ)
    for line in tuning.added:
        log(f"Dropbox remote: adding {line}")
    return tuning


def confirm_set(o: SetOutcome, sp: SetPlan, before: RemoteSet | None, after: VersionListing) -> str:
    """Why set ``o`` is not complete on the remote after the run ("" when it is). Pure.

    An uploaded set must have the plan's parts with their sizes and its sidecar; a skipped
    one the parts its sidecar (read at the start) lists, and the sidecar; a set made by the
    older scripts must still be complete by its part names.
    """
    rs = after.get(o.fault, o.dtype)
    if rs is None:
        return f"{o.name}: absent on the remote after upload"
    classify_set(rs)  # by its names only: the sidecar is not read again
    if rs.state != SetState.COMPLETE:
        return f"{o.name}: {rs.state.value} on the remote after upload" + (f" ({'; '.join(rs.problems)})"
                                                                          if rs.problems else "")
    if o.status == SetStatus.UNVERIFIED:
        return ""
    if sidecar_name(o.fault, o.dtype) not in after.sidecar_files:
        return f"{o.name}: its sidecar is missing on the remote after upload"
    if o.status == SetStatus.UPLOADED or before is None or before.sidecar is None:
        want = {p.name: p.size for p in sp.parts}
    elif sp.sample:
        want = {m.part: m.size for m in before.sidecar.members}
    else:
        want = before.sidecar.part_sizes()
    have = {name: f.size for name, f in rs.files.items()}
    wrong = [f"{n} is {'missing' if n not in have else f'{have[n]} bytes, not {size}'}"
             for n, size in want.items() if have.get(n) != size]
    extra = sorted(set(have) - set(want))
    if wrong or extra:
        return f"{o.name}: not as uploaded on the remote after upload ({'; '.join(wrong + [f'{n} not in the set' for n in extra])})"
    return ""


_STATUS_OF = {SKIP: SetStatus.SKIPPED, UNVERIFIED: SetStatus.UNVERIFIED, STALE: SetStatus.STALE,
              REFUSE: SetStatus.REFUSED}


def upload(settings: UploadSettings, progress: Progress = NULL_PROGRESS, log: LogSink | None = None,
           rclone: Rclone | None = None, *, on_ready: Callable[[], None] | None = None) -> UploadResult:
    """Upload the version at ``settings.cs_root``; see the module docstring for how.

    A real run (not ``dry_run``) first checks the tmp dir is this user's and takes the
    lock of this version and tmp dir (shard): a second run raises LockHeld (exit 11).
    Once the inputs are checked (manifest and plan; the remote is one rclone knows)
    ``on_ready()`` is called, once (the CLI opens its log then); a run stopped before that
    (bad input, an unknown remote) removes the folders it made, so it leaves nothing in the
    tmp dir.
    """
    if settings.dry_run:
        return _upload(settings, progress, log, rclone, lambda: None)
    made = missing_dirs(settings.work_dir)
    ready = False
    once = threading.Lock()

    def inputs_checked() -> None:
        nonlocal ready
        with once:
            if ready:
                return
            if on_ready is not None:
                on_ready()
            ready = True

    try:
        prepare_tmp_dir(settings.tmp_dir)
        with upload_lock(settings.work_dir, settings.version, settings.tmp_dir, settings.shard):
            return _upload(settings, progress, log, rclone, inputs_checked)
    except BaseException:
        if not ready:
            remove_empty_dirs(made)  # (after the lock file is gone)
        raise


def _upload(settings: UploadSettings, progress: Progress, log: LogSink | None, rclone: Rclone | None,
            inputs_checked: Callable[[], None]) -> UploadResult:
    t0 = time.monotonic()
    guarded = GuardedLog(log or (lambda line: None), settings.log_path)
    log = guarded
    _check_root(settings.cs_root)
    manifest = read_manifest(settings.manifest, settings.cs_root)
    _check_version(manifest, settings)
    config = settings.config or load_config()
    types = list(settings.types) or None
    plan = plan_upload(manifest, config, types=types, max_size=settings.max_size, hard_limit=settings.hard_limit)
    faults = _shard_faults(plan, settings.shard)
    if faults is not None:
        plan = plan.only_faults(faults)
    if settings.faults:
        plan = plan.only_faults(_chosen_faults(manifest, settings))
    if plan.refused and not settings.dry_run:
        raise PlanError(
            "refused before uploading anything: " + "; ".join(r.message for r in plan.refused[:3])
            + (f" (and {len(plan.refused) - 3} more)" if len(plan.refused) > 3 else ""),
            hint="lower --max-size or raise --hard-limit if the remote allows bigger files",
        )
    rclone = rclone or Rclone(log=log)
    if settings.bwlimit:  # the big streams in flight, plus the lane of small files
        rclone.limit_total_rate(settings.bwlimit, settings.transfers + SMALL_LANE)
    vpath = join(settings.remote, settings.version)
    result = UploadResult(version=settings.version, remote=vpath, dry_run=settings.dry_run, plan=plan)
    for w in warning_lines(plan.warnings, settings.max_size):
        log(f"warning: {w}")
        progress.note(f"warning: {w}")

    # the version folder first (a first upload then lists an empty folder, with no "directory not
    # found" retries in the log), then one listing of it; either is the check that the remote
    # answers. The hash types and the remote's kind are asked meanwhile: rclone start-ups overlap.
    def list_version() -> VersionListing:
        if not settings.dry_run:  # (tried again while the remote is unreachable: a blip at the start)
            rclone.run(["mkdir", vpath], what=f"creating {vpath}", retry=True)
        return read_version(rclone, settings.remote, settings.version, missing_ok=True)

    def remote_known() -> RemoteTuning:
        rtype = rclone.remote_type(settings.remote)
        if rtype is not None:  # (an unknown remote name is bad input: the listing fails, nothing is written)
            inputs_checked()  # the log opens now: what waiting for an unreachable remote takes is in it
        return _tuning(rclone, settings.remote, rtype, log)

    with ThreadPoolExecutor(3) as pool:
        listed = pool.submit(list_version)
        offered = pool.submit(rclone.hash_types, vpath)
        tuned = pool.submit(remote_known) if not settings.dry_run else None
        listing: VersionListing = listed.result()
        check = choose_check(offered.result(), checksum=settings.checksum,
                             read_back=settings.verify == VERIFY_DOWNLOAD)
        tuning = tuned.result() if tuned is not None else RemoteTuning()
    result.hash_type = check.hash_type

    trackers: list[SetTracker] = []
    journals: list[Journal] = []
    journal_dir = settings.work_dir / "journal"
    for sp in plan.sets:
        rs = listing.get(sp.fault, sp.dtype)
        journal = Journal.load(journal_dir / f"{sp.name}.json", sp)
        journals.append(journal)
        decision = decide_set(
            sp,
            rs,
            sidecar_present=sidecar_name(sp.fault, sp.dtype) in listing.sidecar_files,
            overwrite=settings.overwrite,
            update=settings.update,
            checked=journal.checked(),
            done_before=journal.done,
            started=journal.exists,
            ours=journal.ours(),
        )
        result.decisions[sp.name] = decision
        status = SetStatus.PLANNED if settings.dry_run and decision.redo else _STATUS_OF.get(decision.action,
                                                                                            SetStatus.PENDING)
        outcome = SetOutcome(sp.fault, sp.dtype, decision.action, status, sp.size, len(sp.parts), reason=decision.reason)
        result.outcomes.append(outcome)
        refusals = [r.message for r in plan.refused if r.set_name == sp.name]
        if refusals:
            outcome.status, outcome.reason = SetStatus.REFUSED, "; ".join(refusals)
            continue
        if decision.redo:
            trackers.append(SetTracker(sp, decision, journal, outcome))
        log(f"{sp.name}: {decision.action}" + (f" ({decision.reason})" if decision.reason else ""))
    root_files = settings.shard is None or settings.shard[0] == 0
    plan_of = {sp.name: sp for sp in plan.sets}
    for t in trackers:
        todo = set(t.decision.todo)
        result.parts_on_remote += len(t.plan.parts) - len(todo)
        result.parts_to_send += len(todo)
        result.bytes_to_send += sum(p.size for p in t.plan.parts if p.name in todo)
    if settings.dry_run:
        result.wall = time.monotonic() - t0
        return result

    inputs_checked()  # (a no-op: called when the remote was known) the first local write of this run follows
    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(settings, plan)
    except OSError as exc:
        raise from_os_error(exc, f"cannot use --tmp_dir {settings.tmp_dir}") from None
    result.remote_flags = [*tuning.rcat, *tuning.batch]
    log(f"checks: {check.describe()}" + ("; each file is also read back (--verify download)" if check.read_back else ""))
    log(f"streaming {settings.transfers} part(s) at once; memory about "
        f"{format_size(memory_per_transfer(tuning))} per transfer")
    roots = _root_jobs(manifest, settings, result, progress) if root_files else []
    result.parts_to_send += len(roots)
    result.bytes_to_send += sum(j.size for j in roots)
    declare_total(progress, "upload", result.bytes_to_send, result.parts_to_send)
    if result.parts_on_remote:
        # parts as the summary counts them: the version root's list.txt and stocktake.csv are not parts
        line = (f"resuming: {result.parts_on_remote} part(s) already checked, {result.parts_to_send - len(roots)} "
                f"to go ({format_size(result.bytes_to_send)})")
        log(line)
        progress.note(line)

    run = UploadRun(rclone=rclone, vpath=vpath, cs_root=Path(settings.cs_root), work_dir=settings.work_dir,
                    version=settings.version, max_size=settings.max_size, transfers=settings.transfers, check=check,
                    tuning=tuning, buffer_size=settings.buffer_size, progress=progress, log=log, result=result,
                    small_file=settings.small_file)
    guarded.on_error = run._stop
    if guarded.error is not None:
        raise guarded.error
    run.run(trackers, roots)
    if guarded.error is not None:
        raise guarded.error

    def tidy_incoming() -> None:
        owned = {(sp.fault, sp.dtype) for sp in plan.sets}
        clear_incoming(rclone, join(vpath, INCOMING), owned, root_files=root_files, result=result, log=log)
        if settings.shard is not None:  # concurrent shards may be using its folders
            return
        try:
            rclone.rmdirs(join(vpath, INCOMING))  # empty once every file was moved into place
        except CsSyncError as exc:
            log(f"could not remove empty folders under {INCOMING}: {exc}")

    # one more listing: every set that should be there is complete, with the names and sizes it
    # should have and its sidecar (which this run wrote, or the first listing read). It does not
    # enter the incoming folder, which is tidied meanwhile: what stopped runs left there for this
    # run's sets is removed, and a lone run removes its empty folders (folders vanishing under a
    # recursive listing would fail it). The two overlap: the end of a run waits for one rclone less.
    with ThreadPoolExecutor(1) as pool:
        tidied = pool.submit(tidy_incoming)
        after = group_listing(settings.version, rclone.lsjson(vpath, recursive=True, skip_dirs=[INCOMING],
                                                              what=f"re-reading {vpath}"))
        tidied.result()
    for o in result.outcomes:
        if o.status not in (SetStatus.UPLOADED, SetStatus.SKIPPED, SetStatus.UNVERIFIED):
            continue
        result.final_checked += 1
        problem = confirm_set(o, plan_of[o.name], listing.get(o.fault, o.dtype), after)
        if problem:
            result.final_problems.append(problem)
            o.status, o.reason = SetStatus.FAILED, problem
    for journal in journals:
        if journal.done:
            journal.remove()  # the run reached its end: an interrupted --overwrite is over
    _tidy(settings.work_dir, {sp.fault for sp in plan.sets}, shared=settings.shard is not None)
    result.wall = time.monotonic() - t0
    return result


def incoming_leftovers(files: list[RemoteFile], owned: set[tuple[str, str]], *, root_files: bool) -> list[str]:
    """The files of a listing of ``{version}/_cs_sync/incoming`` that a run owning the sets
    ``owned`` ((fault, type) pairs) may remove at its end: those named as parts of its sets
    (and list.txt and stocktake.csv when it uploads them). Pure.

    Files land there while they stream and leave when checked and moved; a re-run streams
    every part not recorded as checked again (no journal ever counts on a copy there), so at
    the end of a run, with all of its streams settled, what is left for its sets is a stopped
    run's: a kill, a part of an older plan (another --max-size). Nothing else is taken: other
    sets may belong to a concurrent shard (shards of one split own disjoint faults), and a name
    this tool does not make is not its to remove.
    """
    grouped = group_listing("incoming", files)
    out = [f"{fault}/{name}" for (fault, dtype), rs in grouped.sets.items() if (fault, dtype) in owned
           for name in rs.files if name not in rs.malformed]  # (F_BB_01.tar: not a name this tool makes)
    if root_files:
        out += [f.path for f in files if f.path in (LIST_FILE, STOCKTAKE_FILE)]
    return sorted(out)


def clear_incoming(rclone: Rclone, incoming: str, owned: set[tuple[str, str]], *, root_files: bool,
                   result: UploadResult, log: LogSink) -> None:
    """Remove what stopped runs left in ``incoming`` for this run's sets: one listing and one
    batched ``rclone delete`` with the names as ``--files-from-raw``, rooted in ``incoming``
    (so nothing outside it can be touched). Tidying only: a failure is logged, never fatal."""
    try:
        files = rclone.lsjson(incoming, recursive=True, what=f"listing {incoming}")
    except ObjectNotFound:
        return  # no incoming folder: nothing was left
    except CsSyncError as exc:
        log(f"could not list {INCOMING} to remove what stopped runs left there: {exc.one_line()}")
        return
    size = {f.path: f.size for f in files}
    stale = incoming_leftovers(files, owned, root_files=root_files)
    if not stale:
        return
    try:
        deleted, failed = rclone.delete_files(incoming, stale, what=f"removing {len(stale)} file(s) left in {incoming}")
    except CsSyncError as exc:
        log(f"could not remove the {len(stale)} file(s) stopped runs left in {INCOMING}: {exc.one_line()}")
        result.incoming_left += len(stale)
        return
    for name in sorted(deleted):
        log(f"removed {INCOMING}/{name} ({format_size(max(0, size[name]))}), left by a stopped run")
    for name, err in sorted(failed.items()):
        log(f"could not remove {INCOMING}/{name}: {err.one_line()}")
    result.incoming_removed += len(deleted)
    result.incoming_removed_bytes += sum(max(0, size[n]) for n in deleted)
    result.incoming_left += len(failed)


def _tidy(work: Path, faults: set[str], *, shared: bool) -> None:
    """Remove empty folders this run left in the tmp dir. With ``shared`` (concurrent shards use
    the same tmp dir), only this run's own fault folders: the others may be in use."""
    dirs = [work / "parts" / f for f in sorted(faults)]
    if not shared:
        dirs += [work / sub for sub in ("parts", "sidecars", "journal")]
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            pass


__all__ = ["DEFAULT_REMOTE", "REMOTE_ENV", "SetOutcome", "SetStatus", "UploadResult", "UploadSettings", "upload"]
