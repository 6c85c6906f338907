"""``cs-sync index``: write index sidecars for the sets the older scripts made.

1. One listing of the version (with the remote's own hash, e.g. Dropbox's, where it
   stores one) and its sidecars decide, per set: index it, leave it (it has a
   sidecar), or refuse it (incomplete, ambiguous, damaged, changed since indexed).
2. One long-lived rclone (:class:`~cs_sync.remote.rclone.RangeReader`) serves every
   ranged read; ``--transfers`` parts are walked at once, each reading only its
   headers (or, with ``--hash-members``, streaming the part once without a local copy).
3. A set whose every part walked cleanly gets its sidecar; one that does not parse
   gets none and is reported with the part named. Sidecars are written in batches
   (one rclone copy for many) as sets finish, so a killed run keeps what it finished
   and the same command continues. Data files are never touched.

The engine never prints and never exits: the result is data (:class:`IndexResult`).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from cs_sync.archive.sidecar import SetSidecar
from cs_sync.core.errors import CsSyncError, InputError, VerifyError
from cs_sync.core.naming import SIDECAR_DIR, sidecar_name
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.index.plan import Action, IndexPlan, SetTask, plan_index, shard_plan
from cs_sync.index.result import IndexResult, SetOutcome, SetStatus
from cs_sync.index.walk import PartResult, preferred_hash, set_sidecar, walk_remote_part
from cs_sync.remote.rclone import RangeReader, Rclone, join
from cs_sync.remote.state import read_version

# sidecars are written when this many are waiting, or when the oldest waited this long
BATCH_SETS = 32
BATCH_SECONDS = 20.0


@dataclass(frozen=True, kw_only=True)
class IndexSettings:
    version: str
    remote: str
    types: tuple[str, ...] = ()
    inc_faults: tuple[str, ...] = ()
    exc_faults: tuple[str, ...] = ()
    hash_members: bool = False  # stream every part once: SHA-256 of every member and part
    reindex: bool = False  # index again sets indexed before (never sets made at upload)
    shard: tuple[int, int] | None = None
    dry_run: bool = False
    transfers: int = 8  # parts walked (or streamed) at once: a walk waits on round trips, not bandwidth


def is_local(remote: str) -> bool:
    head, sep, _ = remote.partition(":")
    import os

    return os.path.isabs(remote) or remote.startswith(".") or not sep or "/" in head


def index_hash_types(rclone: Rclone, remote: str) -> tuple[str, ...]:
    """The remote's own hash to record per part: one it stores (Dropbox: ``dropbox``).

    None on a local folder, which computes hashes by reading every byte (use
    --hash-members there); on SFTP the server computes it (reading the part there).
    """
    if is_local(remote):
        return ()
    return preferred_hash(rclone.hash_types(remote))


def index_version(settings: IndexSettings, rclone: Rclone, progress: Progress = NULL_PROGRESS) -> IndexResult:
    t0 = time.monotonic()
    if settings.transfers < 1:
        raise InputError(f"--transfers {settings.transfers}: must be at least 1")
    hash_types = index_hash_types(rclone, settings.remote)
    vpath = join(settings.remote, settings.version)
    # the reader starts (and opens the remote) while the version is listed
    early = None if settings.dry_run else ThreadPoolExecutor(1).submit(_start_reader, rclone, vpath,
                                                                       not settings.hash_members)
    try:
        listing = read_version(rclone, settings.remote, settings.version, hash_types=hash_types)
        return _index(settings, rclone, progress, listing, hash_types, early, t0)
    finally:
        if early is not None:
            early.add_done_callback(_close_reader)



def _close_reader(started: Future[RangeReader]) -> None:
    """The early reader is closed once started, whatever the run did (it failed: nothing to close)."""
    if started.exception() is None:
        started.result().close()


def _start_reader(rclone: Rclone, vpath: str, small_reads: bool) -> RangeReader:
    reader = rclone.range_reader(vpath, what=f"indexing {vpath}", small_reads=small_reads)
    reader.warm_up()
    return reader


def _index(settings: IndexSettings, rclone: Rclone, progress: Progress, listing, hash_types: tuple[str, ...],
           early: Future | None, t0: float) -> IndexResult:
    plan = plan_index(listing, types=settings.types, inc_faults=settings.inc_faults, exc_faults=settings.exc_faults,
                      hash_members=settings.hash_members, reindex=settings.reindex)
    if plan.unknown_types:  # as every command does: a wrong -t stops the run before it starts
        raise InputError(plan.unknown_types[0], hint="'cs-sync status CS_VER' shows what the remote holds")
    if not plan.tasks and plan.unmatched and settings.shard is None:
        raise InputError(f"nothing selected: {plan.unmatched[0]}", hint="'cs-sync status CS_VER' shows what the remote holds")
    if settings.shard is not None:
        plan = shard_plan(plan, *settings.shard)
    result = IndexResult(version=settings.version, remote=settings.remote, unmatched=list(plan.unmatched),
                         hash_types=hash_types, hash_members=settings.hash_members, dry_run=settings.dry_run)
    if is_local(settings.remote):
        result.no_hash_why = "no hash recorded: a local folder computes one by reading every byte"
    for line in plan.unmatched:
        progress.note(f"warning: {line}")
    try:
        _Run(settings, rclone, progress, result, plan, early).run()
    finally:
        result.elapsed = time.monotonic() - t0
    return result


_DONE_STATUS = {Action.INDEX: SetStatus.INDEXED, Action.UPGRADE: SetStatus.UPGRADED, Action.REINDEX: SetStatus.REINDEXED}


class _Run:
    def __init__(self, settings: IndexSettings, rclone: Rclone, progress: Progress, result: IndexResult,
                 plan: IndexPlan, early: Future | None) -> None:
        self.early = early
        self.s = settings
        self.rclone = rclone
        self.progress = progress
        self.result = result
        self.plan = plan
        self.vpath = join(settings.remote, settings.version)
        self.lock = threading.Lock()
        self.pending: list[tuple[SetTask, SetOutcome, SetSidecar]] = []
        self.pending_since: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        walking: list[tuple[SetTask, SetOutcome]] = []
        for task in self.plan.tasks:
            rs = task.rs
            out = SetOutcome(rs.fault, rs.dtype, SetStatus.DONE, reason=task.reason, parts=len(rs.files), size=rs.size)
            self.result.sets.append(out)
            if task.action == Action.SAMPLE:
                out.status = SetStatus.SAMPLE
            elif task.action == Action.REFUSE:
                out.status = SetStatus.REFUSED
                out.problems.append(task.reason)
                self.progress.note(f"refused {rs.fault} {rs.dtype}: {task.reason}")
            elif task.action.walks:
                if self.s.dry_run:
                    out.status = SetStatus.PLANNED
                else:
                    out.status = SetStatus.NOT_ATTEMPTED
                    walking.append((task, out))
        if not walking:
            return
        assert self.early is not None
        with tempfile.TemporaryDirectory(prefix="cs_sync_index_") as tmp, self.early.result() as reader:
            try:
                self._walk_all(reader, walking, Path(tmp))
            except BaseException:  # Ctrl-C, SIGTERM: keep what is finished, then stop
                self.stop.set()
                self.rclone.kill_running()
                raise
            finally:
                self._flush(Path(tmp), force=True)
                self.result.requests, self.result.bytes_read = reader.requests, reader.bytes

    def _walk_all(self, reader: RangeReader, walking: list[tuple[SetTask, SetOutcome]], tmp: Path) -> None:
        pool = ThreadPoolExecutor(self.s.transfers, thread_name_prefix="cs_sync_index")
        futures: dict[Future, tuple[SetTask, SetOutcome, str]] = {}
        left: dict[tuple[str, str], int] = {}
        got: dict[tuple[str, str], list[PartResult]] = {}
        errors: dict[tuple[str, str], list[CsSyncError]] = {}
        # the largest parts first, so the last to finish is not the longest
        jobs = sorted(((t, o, n) for t, o in walking for n in t.rs.ordered_part_names()),
                      key=lambda j: -j[0].rs.files[j[2]].size)
        for task, out, name in jobs:
            left[task.key] = left.get(task.key, 0) + 1
            futures[pool.submit(self._walk_one, reader, task, name)] = (task, out, name)
        try:
            todo = set(futures)
            while todo:
                done, todo = wait(todo, timeout=1.0, return_when=FIRST_COMPLETED)
                for fut in done:
                    task, out, name = futures[fut]
                    try:
                        got.setdefault(task.key, []).append(fut.result())
                    except CsSyncError as exc:
                        errors.setdefault(task.key, []).append(exc)
                    left[task.key] -= 1
                    if left[task.key] == 0:
                        self._set_done(task, out, got.get(task.key, []), errors.get(task.key, []))
                self._flush(tmp)
        finally:
            pool.shutdown(wait=False, cancel_futures=True)

    def _walk_one(self, reader: RangeReader, task: SetTask, name: str) -> PartResult:
        if self.stop.is_set():
            raise CsSyncError("stopped")
        fault = task.rs.fault
        size = task.rs.files[name].size
        key = f"index:{fault}/{name}"
        hashing = self.s.hash_members
        self.progress.task_started(key, f"{fault}/{name}", size if hashing else None, kind="index")
        try:
            res = walk_remote_part(reader, fault, name, size, hash_members=hashing,
                                   on_bytes=(lambda n: self.progress.task_advanced(key, n)) if hashing else None)
        except CsSyncError:
            self.progress.task_finished(key, ok=False)  # the set's failure line says why
            raise
        finally:
            with self.lock:
                self.result.parts_walked += 1
                self.result.size_walked += size
        self.progress.task_finished(key, ok=True, note=f"{len(res.walk.members)} member(s)")
        return res

    def _set_done(self, task: SetTask, out: SetOutcome, results: list[PartResult], errors: list[CsSyncError]) -> None:
        rs = task.rs
        if not errors:
            try:
                sc = set_sidecar(rs, self.s.version, results, self.result.hash_types)
            except VerifyError as exc:
                errors = [exc]
        if errors:
            out.status = SetStatus.FAILED
            for err in errors:
                out.problems.append(err.one_line())
                out.codes.add(int(err.exit_code))
            self.progress.note(f"FAILED {rs.fault} {rs.dtype}: {'; '.join(out.problems)} (no sidecar written)")
            return
        out.members = len(sc.members)
        out.proves = sc.proves
        with self.lock:
            self.pending.append((task, out, sc))
            if self.pending_since is None:
                self.pending_since = time.monotonic()

    def _flush(self, tmp: Path, force: bool = False) -> None:
        """Write the waiting sidecars in one rclone copy (per kind: new ones never replace a file)."""
        with self.lock:
            due = self.pending and (force or len(self.pending) >= BATCH_SETS
                                    or time.monotonic() - (self.pending_since or 0) >= BATCH_SECONDS)
            if not due:
                return
            batch, self.pending, self.pending_since = self.pending, [], None
        for replace in (False, True):
            group = [b for b in batch if (b[0].action != Action.INDEX) == replace]
            if group:
                self._write(tmp, group, replace)

    def _write(self, tmp: Path, group: list[tuple[SetTask, SetOutcome, SetSidecar]], replace: bool) -> None:
        folder = tmp / ("replace" if replace else "new")
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        names = []
        for _task, _out, sc in group:
            name = sidecar_name(sc.fault, sc.dtype)
            (folder / name).write_text(sc.to_json())
            names.append(name)
        # a sidecar that appeared meanwhile (an upload finished) is never replaced by an index
        extra = [] if replace else ["--ignore-existing"]
        try:
            self.rclone.copy(str(folder), join(self.vpath, SIDECAR_DIR), what=f"writing {len(names)} index sidecar(s)",
                             extra=extra, includes=names, retry=True)
        except CsSyncError as exc:
            for _task, out, _sc in group:
                out.status = SetStatus.FAILED
                out.problems.append(f"writing its sidecar: {exc.one_line()}")
                out.codes.add(int(exc.exit_code))
            self.progress.note(f"FAILED writing {len(names)} sidecar(s): {exc.one_line()}")
            return
        for task, out, _sc in group:
            out.status = _DONE_STATUS[task.action]
        self.result.sidecars_written += names
        self.progress.note(f"wrote {len(names)} index sidecar(s) to {join(self.vpath, SIDECAR_DIR)}")
