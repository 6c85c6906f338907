"""Run the streamed upload: senders stream parts, then checks, moves and sidecars go in batches.

* ``transfers`` sender threads each take the largest part ready (any fault), prepare
  its set on the remote the first time (the decision's removals, old sidecar first),
  and stream it to ``{version}/_cs_sync/incoming/{path}`` (:mod:`sender`).
* One checker lists what arrived (one ``rclone lsjson`` per batch) and compares the
  remote's hashes with those computed while streaming (:mod:`checks`); a file whose
  check fails, or whose stream was cut, is sent again, at most ``STREAM_ATTEMPTS``
  times in all, then its set fails.
* One mover moves checked files to their names (one ``rclone move`` per batch);
  only then is the part recorded as checked in its set's journal, and the set's
  tracker (:mod:`tracker`) releases its final part or its sidecar.
* One sidecar writer writes the sidecars of finished sets, in batches.

Starting an rclone process costs about 0.1 s of CPU: checks, moves and sidecars go
in batches so that versions with many small sets do not spend their time on it; each
stream is one ``rclone rcat``.

An error that stops the whole run (no rclone, the local disk full, an unknown or
unreachable remote) kills every rclone this run started and lets nothing more be
moved into place or vouched for by a sidecar; it is raised to the caller.
"""

from __future__ import annotations

import heapq
import itertools
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from cs_sync.archive.sidecar import CHECK_CONTENT, CHECK_SIZE
from cs_sync.core import testhook
from cs_sync.core.errors import (
    CsSyncError,
    Interrupted,
    LocalIOError,
    ObjectNotFound,
    RcloneNotFound,
    RemoteFull,
    RemoteLoginFailed,
    RemoteNotFound,
    RemoteUnreachable,
    SourceChanged,
    is_fatal,
)
from cs_sync.core.naming import SIDECAR_DIR, sidecar_name
from cs_sync.core.progress import Progress
from cs_sync.remote.outage import OutageWatch
from cs_sync.remote.rclone import Rclone, join
from cs_sync.upload.batching import MAX_BATCH, Batcher
from cs_sync.upload.checks import CheckFailed, CheckPlan, check_batch
from cs_sync.upload.results import CheckMode, SetStatus, UploadResult
from cs_sync.upload.sender import RAM_BATCH, Sender, ram_folder
from cs_sync.upload.sidecars import write_sidecars
from cs_sync.upload.tracker import Job, SetTracker
from cs_sync.upload.tuning import RemoteTuning

LogSink = Callable[[str], None]
INCOMING = f"{SIDECAR_DIR}/incoming"  # files land here, hidden, until checked
STREAM_ATTEMPTS = 3  # streams of one file (a cut connection or a failed check sends it again)
# A file whose attempts all met an unreachable remote: if the remote does not answer either,
# it is asked again after each of the outage waits (s; CS_SYNC_OUTAGE_WAITS), so an outage of a few
# minutes costs a pause, not the run; if it comes back, the file gets new attempts (at most
# MAX_OUTAGES times). If it answers at once, the file's own connection keeps failing: its set fails.
MAX_OUTAGES = 5
SMALL_FILE = 8 << 20  # files up to this size also go through a lane of their own, in batches ...
SMALL_LANE = 2  # ... with this many workers beside the ``transfers`` big streams
CHECK_LINGER = 0.1  # after its first file, a check batch waits this long (s) for more to join it
SIDECAR_LINGER = 0.1


def _stream_fatal(exc: BaseException) -> bool:
    """A stream cut by the remote (its connection dropped, an outage) is sent again, a bounded
    number of times; only these stop the run at once (a full remote, a refused login: every stream would fail)."""
    return isinstance(exc, (RcloneNotFound, LocalIOError, RemoteNotFound, RemoteFull, RemoteLoginFailed, Interrupted))


def _named(exc: CsSyncError, relpath: str) -> CsSyncError:
    """``exc`` (as its type) with the file's name in front: rclone's per-file errors leave it out."""
    return type(exc)(f"{relpath}: {exc.message}", hint=exc.hint)


class _Skipped(CsSyncError):
    """Not done because the run is stopping."""


class ReadyQueue:
    """Jobs ready to stream, largest first (so the run does not end on one long part).

    Small files (up to ``small`` bytes) also have their own lane, smallest first: a file
    that small costs an rclone start-up more than link time, so a few workers take them
    beside the big streams instead of leaving them all for the end, when nothing else
    would use the link.
    """

    def __init__(self, small: int = 0) -> None:
        self.small = small
        self._big: list[tuple[int, int, Job]] = []
        self._little: list[tuple[int, int, Job]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, job: Job) -> bool:
        with self._cond:
            if self._closed:
                return False
            if job.size <= self.small:
                heapq.heappush(self._little, (job.size, next(self._seq), job))
            else:
                heapq.heappush(self._big, (-job.size, next(self._seq), job))
            self._cond.notify_all()
            return True

    def get(self, small_only: bool = False, batch: bool = False) -> list[Job] | None:
        """The largest ready job, or (``small_only``: only small ones) the smallest small one;
        with ``batch``, small jobs come several at once, up to ``RAM_BATCH`` bytes and
        ``MAX_BATCH`` files. None once closed."""
        with self._cond:
            while not self._closed and not self._little and (small_only or not self._big):
                self._cond.wait()
            if self._closed:
                return None
            if self._big and not small_only:
                return [heapq.heappop(self._big)[2]]
            jobs = [heapq.heappop(self._little)[2]]
            total = jobs[0].size
            while batch and self._little and len(jobs) < MAX_BATCH and total + self._little[0][0] <= RAM_BATCH:
                total += self._little[0][0]
                jobs.append(heapq.heappop(self._little)[2])
            return jobs

    def close(self) -> list[Job]:
        """Stop handing out jobs; returns those never handed out."""
        with self._cond:
            self._closed = True
            left = [j for _, _, j in self._big + self._little]
            self._big.clear()
            self._little.clear()
            self._cond.notify_all()
            return left


class UploadRun:
    def __init__(self, *, rclone: Rclone, vpath: str, cs_root: Path, work_dir: Path, version: str, max_size: int,
                 transfers: int, check: CheckPlan, tuning: RemoteTuning, buffer_size: int, progress: Progress,
                 log: LogSink, result: UploadResult, small_file: int = SMALL_FILE) -> None:
        self.rclone = rclone
        self.vpath = vpath
        self.incoming = join(vpath, INCOMING)
        self.work_dir = work_dir
        self.version = version
        self.max_size = max_size
        self.transfers = transfers
        self.check = check
        self.tuning = tuning
        self.progress = progress
        self.log = log
        self.result = result
        self.sender = Sender(rclone, self.incoming, cs_root, check, progress, upload_flags=tuning.rcat,
                             buffer_size=buffer_size, batch_flags=tuning.batch)
        # small files are batched through memory for one rclone each batch (none for a local folder:
        # it is written directly, no rclone starts per file)
        self.ram = ram_folder() if small_file > 0 and not self.sender.local else None
        self.small_file = small_file
        self.queue = ReadyQueue(small=small_file)
        self.lock = threading.Lock()
        self.abort: BaseException | None = None
        self.outage = OutageWatch(rclone, vpath, stopped=lambda: self.abort is not None, on_back=lambda: self.log(
            "the remote answers again: the files it did not take meanwhile are sent again"))
        self._pending = 0
        self._idle = threading.Condition(self.lock)
        self.checker: Batcher[Job] | None = None
        self.mover: Batcher[Job] | None = None
        self.sidecars: Batcher[SetTracker] | None = None

    # .. the run ............................................................................

    def run(self, trackers: list[SetTracker], root_jobs: list[Job]) -> None:
        """Do every tracker's parts and the root files; raise what stopped the run, if anything."""
        self.checker = Batcher("check", self._check_batch, self._guard(self._checked), linger=CHECK_LINGER)
        self.mover = Batcher("move", self._move_batch, self._guard(self._moved))
        self.sidecars = Batcher("sidecar", self._sidecar_batch, self._guard(self._sidecar_done), linger=SIDECAR_LINGER)
        for t in trackers:  # every ready job is queued before the first is taken: largest first from the start
            jobs = t.first_jobs()
            if not jobs and t.sidecar_due:  # every part checked by an interrupted run: the sidecar is missing
                self._add_pending(1)
                self.sidecars.put(t)
            for j in jobs:
                self._enqueue(j)
        for j in root_jobs:
            self._enqueue(j)
        workers = [threading.Thread(target=self._worker, name=f"send-{i}", daemon=True) for i in range(self.transfers)]
        workers += [threading.Thread(target=self._worker, args=(True,), name=f"send-small-{i}", daemon=True)
                    for i in range(SMALL_LANE if self.small_file > 0 else 0)]
        for w in workers:
            w.start()
        interrupted = False
        try:
            with self._idle:
                while self._pending:
                    self._idle.wait(0.5)
        except BaseException as exc:  # Ctrl-C / SIGTERM: stop every transfer now, do not wait
            interrupted = True
            self._stop(exc)
            raise
        finally:
            for _ in self.queue.close():
                pass
            self.close()
            if not interrupted:
                for w in workers:
                    w.join()
                for b in (self.checker, self.mover, self.sidecars):
                    b.close()
        if self.abort is not None:
            raise self.abort

    def _add_pending(self, n: int) -> None:
        with self._idle:
            self._pending += n
            if self._pending <= 0:
                self._idle.notify_all()

    def _settle(self, item: Job | SetTracker) -> None:
        """One job (or sidecar) reached its end, whichever it was (counted once)."""
        with self.lock:
            if item.settled:
                return
            item.settled = True
        self._add_pending(-1)

    def _enqueue(self, job: Job) -> None:
        self._add_pending(1)
        if not self.queue.put(job):
            self._settle(job)

    def _stop(self, exc: BaseException) -> None:
        """Stop the run: nothing more is streamed, moved or vouched for; rclone processes are killed."""
        with self.lock:
            first = self.abort is None
            if first:
                self.abort = exc
        if first:
            if isinstance(exc, CsSyncError):
                self.log(f"stopping the run: {exc.one_line()}")
            for job in self.queue.close():
                self._settle(job)
            self.rclone.kill_running()

    def _guard(self, fn: Callable) -> Callable:
        """A batch callback whose own failure (e.g. a journal that cannot be written) stops the run."""

        def guarded(item, err) -> None:
            try:
                fn(item, err)
            except BaseException as exc:
                self._stop(exc)
                self._settle(item)

        return guarded

    def _count_check(self, mode: CheckMode) -> None:
        with self.lock:
            self.result.checks[mode] = self.result.checks.get(mode, 0) + 1

    # .. failures ...........................................................................

    def _fail_set(self, t: SetTracker, message: str) -> None:
        if t.fail(message):
            t.outcome.status, t.outcome.reason = SetStatus.FAILED, message
            self.log(f"FAILED {t.name}: {message}")
            self.progress.note(f"FAILED {t.name}: {message}")

    def _fail_job(self, job: Job, exc: BaseException) -> None:
        msg = exc.one_line() if isinstance(exc, CsSyncError) else f"{type(exc).__name__}: {exc}"
        self.progress.task_finished(job.key, ok=False, note=msg)
        if job.tracker is None:
            with self.lock:
                self.result.extras_failed.append(f"{job.name}: {msg}")
            self.log(f"FAILED {job.name}: {msg}")
        else:
            self._fail_set(job.tracker, msg)
        if self.abort is None:
            self.sender.drop(job)
        self._settle(job)

    def _retry_or_fail(self, job: Job, exc: CsSyncError) -> None:
        """Send ``job`` again after a cut stream or a failed check, a bounded number of times."""
        if self.abort is not None:
            self._settle(job)
            return
        job.attempts += 1
        job.failed_at = time.monotonic()
        failed = job.tracker is not None and job.tracker.failed is not None
        if (job.attempts >= STREAM_ATTEMPTS and not failed and isinstance(exc, RemoteUnreachable)
                and job.outages < MAX_OUTAGES):
            back = self._outage_over(job)
            if back is None:  # the remote did not come back: the run stops (exit 6); this set did not fail
                self._settle(job)
                return
            if back:  # it was down and answers again: not this file's fault, it gets new attempts
                job.outages += 1
                job.attempts = 0
        if job.attempts < STREAM_ATTEMPTS and not failed:
            self.log(f"{job.relpath}: attempt {job.attempts or STREAM_ATTEMPTS}/{STREAM_ATTEMPTS} failed: "
                     f"{exc.one_line()}; sending it again")
            with self.lock:
                self.result.parts_resent += 1
            job.handed_on, job.streamed, job.checked_by = False, None, None
            if not self.queue.put(job):
                self._settle(job)
            return
        if failed:
            self._settle(job)
            return
        self._fail_job(job, CsSyncError(f"{exc.message} (after {job.attempts} attempts)", hint=exc.hint)
                       if not isinstance(exc, CheckFailed) else exc)

    def _outage_over(self, job: Job) -> bool | None:
        """``job``'s attempts all met an unreachable remote: was the remote down, and is it back?

        True: it was down (when the job last failed, or now) and answers again; False: it
        answers at once, so the job's own connection keeps failing; None: it stayed down
        through every outage wait (the run is stopped, exit 6), or the run is stopping.
        """
        if self.abort is not None:
            return None
        try:
            return self.outage.over(job.failed_at)
        except CsSyncError as exc:  # still down after every wait, a refused login, or the run stopping
            self._stop(exc)
            return None

    # .. sending ............................................................................

    def _worker(self, small_only: bool = False) -> None:
        while True:
            jobs = self.queue.get(small_only, batch=self.ram is not None)
            if jobs is None:
                return
            try:
                if len(jobs) == 1 and (jobs[0].size > self.small_file or self.ram is None):
                    self._send(jobs[0])
                else:
                    self._send_batch(jobs)
            except BaseException as exc:  # fatal: the journal could not be written, rclone vanished
                self._stop(exc)
                for job in jobs:  # those already handed on to the check settle there, once
                    if not job.handed_on:
                        self._settle(job)

    def _begin(self, job: Job) -> bool:
        """Get ``job`` ready to stream (its set prepared on the remote, the journal told);
        False when it is not to be sent (it was settled)."""
        t = job.tracker
        if self.abort is not None or (t is not None and t.failed is not None):
            self._settle(job)
            return False
        if t is not None:
            try:
                self._prepare(t)
            except CsSyncError as exc:
                if is_fatal(exc):
                    raise
                self._fail_job(job, exc)
                return False
            assert job.part is not None
            t.journal.record_sending(job.part.name)
        return True

    def _sent(self, job: Job, err: CsSyncError | None) -> None:
        """One stream ended (``err`` None: every byte is on the remote): on to the check, or not."""
        if err is None and self.check.read_back:
            try:
                self.sender.read_back(job)
            except CsSyncError as exc:
                err = exc
        if isinstance(err, SourceChanged):  # the set's sources changed: a new plan is needed, not a retry
            if job.tracker is not None:
                job.tracker.journal.forget()
            self._fail_job(job, err)
            return
        if err is not None:
            if _stream_fatal(err):
                raise err
            self._retry_or_fail(job, err)
            return
        assert job.streamed is not None
        with self.lock:
            self.result.parts_streamed += 1
            self.result.bytes_streamed += job.streamed.size
        testhook.reached("uploaded", job.relpath)
        assert self.checker is not None
        job.handed_on = True
        self.checker.put(job)

    def _send(self, job: Job) -> None:
        if not self._begin(job):
            return
        try:
            job.streamed = self.sender.send(job)
            err: CsSyncError | None = None
        except CsSyncError as exc:
            err = exc
        self._sent(job, err)

    def _send_batch(self, jobs: list[Job]) -> None:
        ready = [j for j in jobs if self._begin(j)]
        if not ready:
            return
        assert self.ram is not None
        for job, err in zip(ready, self.sender.send_batch(ready, self.ram)):
            self._sent(job, err)

    def close(self) -> None:
        """Remove the memory folder of small files."""
        if self.ram is not None:
            shutil.rmtree(self.ram, ignore_errors=True)

    def _prepare(self, t: SetTracker) -> None:
        """Remove what the set's decision says, the sidecar first; once per set."""
        with t.prepare_lock:
            if t.prepared:
                return
            d, fault = t.decision, t.plan.fault
            if d.delete_sidecar:
                self.log(f"{t.name}: deleting its old sidecar")
                self._delete(join(self.vpath, SIDECAR_DIR, sidecar_name(fault, t.plan.dtype)))
            for name in d.delete:
                self.log(f"{t.name}: deleting old {fault}/{name}")
                self._delete(join(self.vpath, fault, name))
            if d.delete_sidecar or d.delete:
                testhook.reached("old_removed")
            t.prepared = True

    def _delete(self, path: str) -> None:
        try:
            self.rclone.deletefile(path)
        except ObjectNotFound:  # already gone: what was wanted
            pass

    # .. checking and moving (batched) ..........................................................

    def _check_batch(self, jobs: list[Job]) -> list[BaseException | None]:
        if self.abort is not None:
            return [_Skipped("stopping")] * len(jobs)
        out: list[BaseException | None] = []
        for job, (mode, err) in zip(jobs, check_batch(self.rclone, self.incoming, jobs, self.check)):
            job.checked_by = mode
            out.append(err)
        return out

    def _checked(self, job: Job, err: BaseException | None) -> None:
        if self.abort is not None:
            self._settle(job)
        elif err is None:
            assert self.mover is not None
            self.mover.put(job)
        elif isinstance(err, RemoteUnreachable) and job.outages < MAX_OUTAGES:
            job.failed_at = time.monotonic()  # the file is there (or not): look again once the remote answers
            if self._outage_over(job) is None:
                self._settle(job)
                return
            job.outages += 1
            assert self.checker is not None
            self.checker.put(job)
        elif isinstance(err, CsSyncError) and not is_fatal(err):
            self._retry_or_fail(job, err)  # a failed check (or listing): stream it again
        else:
            self._stop(err)
            self._settle(job)

    def _move_batch(self, jobs: list[Job]) -> list[BaseException | None]:
        """Checked files go from their hidden names to their names: one ``rclone move``, which
        reports each file (one it did not move fails only itself)."""
        if self.abort is not None:
            return [_Skipped("stopping")] * len(jobs)
        failed = self.rclone.move_files(self.incoming, self.vpath, [j.relpath for j in jobs],
                                        what=f"moving {len(jobs)} checked file(s) into {self.vpath}")
        return [_named(failed[j.relpath], j.relpath) if j.relpath in failed else None for j in jobs]

    def _ended_badly(self, item: Job | SetTracker, err: BaseException | None,
                     fail: Callable[[BaseException], None]) -> bool:
        """The common start of a batch's outcome for ``item``: True when it is dealt with here
        (the run is stopping; or ``err``, which stops the run when fatal, else ``fail(err)``)."""
        if self.abort is not None:
            self._settle(item)
            return True
        if err is None:
            return False
        if is_fatal(err):
            self._stop(err)
            self._settle(item)
        else:
            fail(err)
        return True

    def _moved(self, job: Job, err: BaseException | None) -> None:
        if self._ended_badly(job, err, lambda e: self._fail_job(job, e)):
            return
        streamed = job.streamed
        assert streamed is not None and job.checked_by is not None
        how = job.checked_by.value + (f" {self.check.hash_type}" if job.checked_by == CheckMode.HASH else "")
        # by content when a hash of the bytes the remote holds was compared (its own, or ours of a read-back)
        check = CHECK_CONTENT if job.checked_by == CheckMode.HASH or self.check.read_back else CHECK_SIZE
        t = job.tracker
        if t is not None:
            assert job.part is not None
            try:
                t.journal.record_checked(streamed, check, how)  # kept for a re-run even if the set failed meanwhile
            except LocalIOError:
                if job.part.final:  # unrecorded, it must not make the set look complete: take it back
                    try:
                        self._delete(join(self.vpath, job.relpath))
                    except CsSyncError as exc:
                        self.log(f"could not take back {job.relpath}: {exc.one_line()}")
                raise
        self._count_check(job.checked_by)
        if self.check.read_back:
            self._count_check(CheckMode.DOWNLOAD)
        self.log(f"uploaded and checked {job.relpath} ({how})")
        self.progress.task_finished(job.key, ok=True)
        if t is None:
            with self.lock:
                self.result.extras.append(job.name)
            self._settle(job)
            return
        with self.lock:
            self.result.parts_uploaded += 1
            self.result.bytes_uploaded += streamed.size
        testhook.reached("checked", job.relpath)
        assert job.part is not None
        release, sidecar_due = t.checked(job.part.name)
        if release is not None:
            self._enqueue(release)
        if sidecar_due:
            self._add_pending(1)
            assert self.sidecars is not None
            self.sidecars.put(t)
        self._settle(job)

    # .. sidecars ...........................................................................

    def _sidecar_batch(self, batch: list[SetTracker]) -> list[BaseException | None]:
        if self.abort is not None:
            return [_Skipped("stopping")] * len(batch)
        local = self.work_dir / "sidecars"
        return write_sidecars(self.rclone, self.vpath, local, batch, self.version, self.max_size,
                              extra=self.tuning.batch)

    def _sidecar_done(self, t: SetTracker, err: BaseException | None) -> None:
        def fail(e: BaseException) -> None:
            self._fail_set(t, e.one_line() if isinstance(e, CsSyncError) else str(e))
            self._settle(t)

        if self._ended_badly(t, err, fail):
            return
        t.journal.record_done()
        t.outcome.status = SetStatus.UPLOADED
        self.log(f"set {t.name} complete: sidecar written")
        testhook.reached("set_done", t.name)
        self._settle(t)
