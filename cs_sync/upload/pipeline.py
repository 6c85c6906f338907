"""The upload pipeline: pack, copy, check, record, with bounded scratch space.

* One packing thread (the caller's) writes parts straight from the sources. It
  waits while ``transfers + 1`` parts are on local disk, so scratch never exceeds
  (transfers + 1) x the largest part.
* A pool of ``transfers`` threads each runs one ``rclone copyto`` at a time, for
  parts of any fault.
* Checks are batched: whatever was copied since the last check goes through one
  ``rclone check`` (every file named, every file's outcome read back), and what
  passed is moved into place by one ``rclone move`` while the next check runs.
  Starting an rclone process costs about 0.1 s of CPU, more than copying and
  hashing a small part; one call per batch instead of one per file keeps that
  cost from dominating versions with many small sets.
* Sidecars are batched the same way, and a set's sidecar is written only after
  every part of that set is checked. A split set's final part is copied only
  after its other parts are checked.

Every file is copied under a hidden name, ``{version}/_cs_sync/incoming/{path}``,
checked there, and only then moved (server-side, one call per batch) to its
name: a transfer cut short never leaves a truncated or unchecked file under a
part's name, on any remote (WebDAV, for one, writes in place).

The local folder ``{tmp}/{version}/parts/`` mirrors the remote version folder
(``{fault}/{part}``, samples as symlinks to their sources, the root files), so one
check compares many files at once.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from cs_sync import __version__
from cs_sync.archive.sidecar import CHECK_CONTENT, CHECK_SIZE, MemberInfo, PartInfo, SetSidecar
from cs_sync.archive.tar_write import PartWriter, WrittenMember, WrittenPart, hash_file, hash_source
from cs_sync.core import testhook
from cs_sync.core.errors import CsSyncError, LocalIOError, ObjectNotFound, SourceChanged, VerifyError, from_os_error, is_fatal
from cs_sync.core.naming import LIST_FILE, SIDECAR_DIR, STOCKTAKE_FILE, sidecar_name
from cs_sync.core.progress import Progress
from cs_sync.core.sizes import format_size
from cs_sync.inputs.manifest import Manifest
from cs_sync.remote.rclone import Rclone, join
from cs_sync.upload.batching import Batcher, Budget
from cs_sync.upload.journal import CHECKED, Journal
from cs_sync.upload.planning import Decision, PartPlan, SetPlan

LogSink = Callable[[str], None]
# After its first item, a batch waits this long (seconds) for more to join it: fewer rclone
# processes against a little latency (a check's wait holds its files' budget).
CHECK_LINGER = 0.2
SIDECAR_LINGER = 0.5
SMALL_LINGER = 0.5
SMALL_FILE = 32 << 20  # files below this travel together: one rclone copy for a batch
FILES_IN_FLIGHT = 4  # x (transfers + 1): files copied or being copied, not yet checked
INCOMING = f"{SIDECAR_DIR}/incoming"  # files land here, hidden, until checked


@dataclass
class SetRun:
    """One set being (re)done: its plan, the decision about it, its journal and outcome."""

    plan: SetPlan
    decision: Decision
    journal: Journal
    outcome: object  # upload.SetOutcome (status/reason are set here)
    remaining: set[str] = field(default_factory=set)  # parts not yet checked
    deferred: tuple[PartPlan, WrittenPart] | None = None  # final part waiting for the others
    failed: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


@dataclass
class Sent:
    """A file on its way: copied to ``{version}/{relpath}``, then checked.

    ``local`` is its path in the mirror (a packed part, a symlink to a sample's
    source, a staged root file). ``on_done`` runs once, with the error that stopped
    it or None once the check passed; ``after_copy`` may raise to fail it.
    """

    relpath: str
    local: Path
    size: int
    sha256: str
    on_done: Callable[[BaseException | None], None]
    after_copy: Callable[[], None] | None = None


def set_check(part_records: list[dict]) -> str:
    """How a set's parts were checked, as the sidecar records it: size when any part was
    checked by size only, content when every part was checked by content, else ""
    (some part was checked by a run that did not record how)."""
    checks = [r.get("check", "") for r in part_records]
    if CHECK_SIZE in checks:
        return CHECK_SIZE
    if checks and all(c == CHECK_CONTENT for c in checks):
        return CHECK_CONTENT
    return ""


class Pipeline:
    def __init__(self, settings, progress: Progress, log: LogSink, rclone: Rclone, result, *,
                 remote_sha256: bool, largest_part: int) -> None:
        self.s = settings
        self.progress = progress
        self.log = log
        self.rclone = rclone
        self.result = result
        self.vpath = join(settings.remote, settings.version)
        self.incoming = join(self.vpath, INCOMING)
        self.work = settings.work_dir
        self.mirror = self.work / "parts"  # mirrors {remote}/{version}
        self.remote_sha256 = remote_sha256
        self.lock = threading.Lock()
        self._part_checks: dict[str, str] = {}  # relpath -> CHECK_CONTENT / CHECK_SIZE, until journalled
        # scratch: (transfers + 1) x the largest part, as bytes, so many small parts can be in
        # flight beside the big ones; files in flight (copied, not yet checked) are capped too
        self.budget = Budget(FILES_IN_FLIGHT * (settings.transfers + 1), (settings.transfers + 1) * largest_part)
        self.scratch = 0
        self.abort: BaseException | None = None
        self._pending = 0
        self._idle = threading.Condition(self.lock)
        self._batch_no = itertools.count()
        # rclone's own post-copy checksum re-reads both copies; the check that follows each
        # copy compares the SHA-256 taken while packing (or a hash the remote keeps) instead
        self.copy_flags = ["--ignore-checksum"] if settings.checksum else []
        self.pool: ThreadPoolExecutor | None = None
        self.small: Batcher[Sent] | None = None
        self.checker: Batcher[Sent] | None = None
        self.mover: Batcher[Sent] | None = None
        self.sidecars: Batcher[SetRun] | None = None

    # .. bookkeeping ...................................................................

    def _add_pending(self, n: int) -> None:
        with self._idle:
            self._pending += n
            if self._pending == 0:
                self._idle.notify_all()

    def _scratch(self, delta: int) -> None:
        with self.lock:
            self.scratch += delta
            self.result.peak_scratch = max(self.result.peak_scratch, self.scratch)

    def _count(self, attr: str, n: int = 1) -> None:
        with self.lock:
            setattr(self.result, attr, getattr(self.result, attr) + n)

    def _check_mode(self, mode: str, n: int = 1) -> None:
        with self.lock:
            self.result.checks[mode] = self.result.checks.get(mode, 0) + n

    def _part_checked(self, relpath: str, mode: str) -> None:
        """Remember how one file's remote copy was checked, for its set's sidecar."""
        kind = CHECK_SIZE if mode in ("size", "sizes-only") else CHECK_CONTENT
        with self.lock:
            if self._part_checks.get(relpath) != CHECK_CONTENT:  # a read-back beats a size check
                self._part_checks[relpath] = kind

    def _check_of(self, relpath: str) -> str:
        with self.lock:
            return self._part_checks.pop(relpath, "")

    def fail(self, sr: SetRun, exc: BaseException | str) -> None:
        msg = exc.one_line() if isinstance(exc, CsSyncError) else str(exc)
        with sr.lock:
            if sr.failed:
                return
            sr.failed = msg
            deferred, sr.deferred = sr.deferred, None
        sr.outcome.status, sr.outcome.reason = "failed", msg
        self.log(f"FAILED {sr.plan.name}: {msg}")
        self.progress.note(f"FAILED {sr.plan.name}: {msg}")
        if deferred is not None:
            self._drop_local(deferred[1].path, deferred[0].size)
            self.budget.release(deferred[0].size)
        if isinstance(exc, BaseException) and is_fatal(exc):
            with self.lock:
                self.abort = self.abort or exc

    def _drop_local(self, path: Path, size: int) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.log(f"cannot remove {path}: {exc}")
        self._scratch(-size)

    # .. the run ........................................................................

    def run(self, sets: list[SetRun], manifest: Manifest | None) -> None:
        """Do ``sets`` (and the root files when ``manifest`` is given); raise fatal errors."""
        self.pool = ThreadPoolExecutor(self.s.transfers, thread_name_prefix="copy")
        self.small = Batcher("copy-small", self._copy_batch, self._copied, linger=SMALL_LINGER)
        self.checker = Batcher("check", self._check_batch, self._checked, linger=CHECK_LINGER)
        self.mover = Batcher("move", self._move_batch, self._finish)
        self.sidecars = Batcher("sidecar", self._sidecar_batch, self._sidecar_done, linger=SIDECAR_LINGER)
        interrupted = False
        try:
            if manifest is not None:
                for name in (LIST_FILE, STOCKTAKE_FILE):
                    self.upload_root_file(name, manifest)
            with PartWriter(self.s.buffer_size) as writer:
                for sr in sets:
                    if self.abort is not None:
                        break
                    self._start_set(writer, sr)
            self._wait_idle()
        except BaseException as exc:
            interrupted = isinstance(exc, KeyboardInterrupt)
            with self.lock:
                self.abort = self.abort or exc
            if interrupted:
                self.rclone.kill_running()
            else:
                self._wait_idle()
            raise
        finally:
            self.pool.shutdown(wait=not interrupted, cancel_futures=interrupted)
            if not interrupted:
                for b in (self.small, self.checker, self.mover, self.sidecars):
                    b.close()
        if self.abort is not None:
            raise self.abort

    def _wait_idle(self) -> None:
        with self._idle:
            while self._pending:
                self._idle.wait()

    def _start_set(self, writer: PartWriter, sr: SetRun) -> None:
        try:
            self.prepare(sr)
        except CsSyncError as exc:
            self.fail(sr, exc)
            return
        todo = [p for p in sr.plan.parts if p.name in sr.remaining]
        self._count("parts_on_remote", len(sr.plan.parts) - len(todo))
        if not todo:  # every part was checked by an interrupted run: only the sidecar is missing
            self._add_pending(1)
            self.sidecars.put(sr)
            return
        for part in todo:
            if sr.failed or self.abort is not None:
                return
            # each file holds budget from packing (or a sample's hashing) to its check: scratch
            # stays under (transfers + 1) x the largest part, files in flight under a fixed count
            while not self.budget.acquire(0 if sr.plan.sample else part.size, timeout=0.2):
                if self.abort is not None:
                    return
            if sr.plan.sample:
                try:
                    self.upload_sample(sr, part)
                except CsSyncError as exc:
                    self.fail(sr, exc)
                    return
                continue
            self._scratch(part.size)
            try:
                written = self.pack(writer, sr, part)
            except BaseException as exc:
                self._scratch(-part.size)
                self.budget.release(part.size)
                if isinstance(exc, SourceChanged):
                    sr.journal.forget()
                if isinstance(exc, CsSyncError) and not is_fatal(exc):
                    self.fail(sr, exc)
                    return
                raise
            testhook.reached("packed")
            self.dispatch(sr, part, written)

    def prepare(self, sr: SetRun) -> None:
        """Remove what the decision says, the sidecar first."""
        d, fault = sr.decision, sr.plan.fault
        if d.delete_sidecar:
            self.log(f"{sr.plan.name}: deleting its old sidecar")
            self._delete(join(self.vpath, SIDECAR_DIR, sidecar_name(fault, sr.plan.dtype)))
        for name in d.delete:
            self.log(f"{sr.plan.name}: deleting old {fault}/{name}")
            self._delete(join(self.vpath, fault, name))
        if d.delete_sidecar or d.delete:
            testhook.reached("old_removed")

    def _delete(self, path: str) -> None:
        try:
            self.rclone.deletefile(path)
        except ObjectNotFound:
            pass

    # .. packing ........................................................................

    def pack(self, writer: PartWriter, sr: SetRun, part: PartPlan) -> WrittenPart:
        """Pack ``part``, or reuse a local copy an interrupted run left, after re-hashing it."""
        fault_dir = self.mirror / sr.plan.fault
        local = fault_dir / part.name
        key = f"pack:{sr.plan.fault}/{part.name}"
        rec = sr.journal.part(part.name)
        if rec and local.is_file() and local.stat().st_size == rec["size"] == part.size:
            self.progress.task_started(key, f"{sr.plan.fault}/{part.name} (re-checking local copy)", part.size, "pack")
            size, digest = hash_file(local, buffer_size=self.s.buffer_size,
                                     on_bytes=lambda n: self.progress.task_advanced(key, n))
            self.progress.task_finished(key, ok=True)
            if size == rec["size"] and digest == rec["sha256"]:
                self.log(f"{part.name}: reusing the local copy from an interrupted run (SHA-256 matches)")
                self._count("parts_reused")
                written = sr.journal.written(part.name, local)
                assert written is not None
                return written
            self.log(f"{part.name}: local copy from an interrupted run does not match its journal; repacking")
        if local.exists():
            local.unlink()
        try:
            fault_dir.mkdir(parents=True, exist_ok=True)
            free = shutil.disk_usage(fault_dir).free
        except OSError as exc:
            raise from_os_error(exc, f"cannot use {fault_dir}") from None
        if free < part.size:
            raise LocalIOError(
                f"not enough space in {self.s.tmp_dir}: {part.name} needs {format_size(part.size)}, "
                f"{format_size(free)} free",
                hint="free space, use another --tmp_dir, or lower --transfers / --max-size",
            )
        written = writer.write(part.name, [m.as_source() for m in part.members], Path(self.s.cs_root), fault_dir,
                               expected_size=part.size, progress=self.progress, key=key)
        sr.journal.record_packed(written)
        self._count("parts_packed")
        self._count("bytes_packed", written.size)
        self.log(f"packed {sr.plan.fault}/{part.name}: {written.size} bytes, sha256 {written.sha256}")
        return written

    def dispatch(self, sr: SetRun, part: PartPlan, written: WrittenPart) -> None:
        """Queue a packed part for copying; a split set's final part waits for the others."""
        with sr.lock:
            failed = sr.failed is not None
            if not failed and part.final and part.count > 1 and sr.remaining - {part.name}:
                sr.deferred = (part, written)
                return
        if failed:
            self._drop_local(written.path, part.size)
            self.budget.release(part.size)
            return
        self.upload_part(sr, part, written)

    # .. sending: copy, then check ...........................................................

    def send(self, item: Sent) -> None:
        """Copy ``item`` (big files one rclone process each, in the pool; small ones batched),
        then queue its check. ``item.on_done`` runs exactly once."""
        self._add_pending(1)  # until on_done has run
        if item.size < SMALL_FILE:
            assert self.small is not None
            self.small.put(item)
        else:
            assert self.pool is not None
            self.pool.submit(self._copy_one, item)

    def _copy_one(self, item: Sent) -> None:
        key = f"upload:{item.relpath}"
        self.progress.task_started(key, item.relpath, item.size, "upload")
        try:
            self.rclone.copyto(str(item.local), join(self.incoming, item.relpath), progress=self.progress, key=key,
                               what=f"uploading {item.relpath}", extra=self.copy_flags)
            self._after_copy(item)
        except BaseException as exc:
            self.progress.task_finished(key, ok=False, note=str(exc))
            self._finish(item, exc)
            return
        self.progress.task_finished(key, ok=True)
        self._copied(item, None)

    def _copy_batch(self, batch: list[Sent]) -> list[BaseException | None]:
        """Small files: one ``rclone copy`` from the mirror for the whole batch."""
        key = f"upload:batch-{next(self._batch_no)}"
        total = sum(b.size for b in batch)
        self.progress.task_started(key, f"{len(batch)} small file(s)", total, "upload")
        try:
            self.rclone.copy(str(self.mirror), self.incoming, progress=self.progress, key=key,
                             what=f"uploading {len(batch)} small file(s)",
                             extra=[*self.copy_flags, "--copy-links", "--transfers", str(self.s.transfers)],
                             includes=[b.relpath for b in batch])
            errors: list[BaseException | None] = [None] * len(batch)
        except CsSyncError as exc:
            if is_fatal(exc) or len(batch) == 1:
                raise
            errors = []  # find which ones failed
            for b in batch:
                try:
                    self.rclone.copyto(str(b.local), join(self.incoming, b.relpath), what=f"uploading {b.relpath}",
                                       extra=self.copy_flags)
                    errors.append(None)
                except CsSyncError as e:
                    errors.append(e)
        self.progress.task_finished(key, ok=not any(errors))
        out: list[BaseException | None] = []
        for b, err in zip(batch, errors):
            if err is None:
                try:
                    self._after_copy(b)
                except BaseException as exc:
                    err = exc
            out.append(err)
        return out

    def _after_copy(self, item: Sent) -> None:
        testhook.reached("uploaded")
        if self.s.verify == "download":
            self.read_back(item.relpath, item.size, item.sha256)
        if item.after_copy is not None:
            item.after_copy()

    def _copied(self, item: Sent, err: BaseException | None) -> None:
        if err is not None:
            self._finish(item, err)
            return
        assert self.checker is not None
        self.checker.put(item)

    def _finish(self, item: Sent, err: BaseException | None) -> None:
        try:
            item.on_done(err)
        except BaseException as exc:  # e.g. the journal could not be written
            self.log(f"error after {item.relpath}: {exc}")
            if isinstance(exc, CsSyncError) and is_fatal(exc):
                with self.lock:
                    self.abort = self.abort or exc
        finally:
            self._add_pending(-1)

    def read_back(self, relpath: str, size: int, sha256: str) -> None:
        """--verify download: stream the remote copy back and compare its SHA-256."""
        def digest(chunks) -> tuple[int, str]:
            h = hashlib.sha256()
            n = 0
            for chunk in chunks:
                h.update(chunk)
                n += len(chunk)
            return n, h.hexdigest()

        (n, got), _ = self.rclone.read_range(join(self.incoming, relpath), digest, what=f"reading back {relpath}")
        if n != size or got != sha256:
            raise VerifyError(f"{relpath}: read back {n} bytes with another SHA-256 than the one sent")
        self._check_mode("download")
        self._part_checked(relpath, "download")

    def upload_part(self, sr: SetRun, part: PartPlan, written: WrittenPart) -> None:
        relpath = f"{sr.plan.fault}/{part.name}"

        def done(err: BaseException | None) -> None:
            self._drop_local(written.path, part.size)  # deleted only now: after its check
            self.budget.release(part.size)
            if err is not None:
                self.fail(sr, err)
                return
            # kept for a re-run even if the set failed meanwhile
            sr.journal.record_checked(part.name, self._check_of(relpath))
            self._count("parts_uploaded")
            self._count("bytes_uploaded", written.size)
            self.log(f"uploaded and checked {relpath}")
            testhook.reached("checked")
            self.part_done(sr, part.name)

        self.send(Sent(relpath, written.path, written.size, written.sha256, done))

    def upload_sample(self, sr: SetRun, part: PartPlan) -> None:
        """A sample (SAMPLE_BB) goes up as a plain file straight from its source (read once here
        for its SHA-256); the mirror holds a symlink to it, so batched copies and checks cover it."""
        fault = sr.plan.fault
        [m] = part.members
        src = Path(self.s.cs_root) / m.source
        link = self.mirror / fault / part.name
        try:
            mtime_ns, digest = hash_source(m.as_source(), Path(self.s.cs_root), buffer_size=self.s.buffer_size)
            wm = WrittenMember(part.name, m.source, 0, m.size, mtime_ns, digest)
            # recorded before sending: a copy that lands but is not checked is then known to be ours
            sr.journal.record_packed(WrittenPart(name=part.name, path=src, size=m.size, sha256=digest, members=(wm,)))
            link.parent.mkdir(parents=True, exist_ok=True)
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(src.resolve())
        except BaseException as exc:
            link.unlink(missing_ok=True)
            self.budget.release(0)
            if isinstance(exc, OSError):
                raise from_os_error(exc, f"cannot write {link}") from None
            raise

        def unchanged() -> None:
            st = os.stat(src)
            if st.st_mtime_ns != mtime_ns or st.st_size != m.size:
                raise SourceChanged(f"{m.source}: modified while being uploaded", hint="re-run cs-sync-preprocess")

        def done(err: BaseException | None) -> None:
            link.unlink(missing_ok=True)
            self.budget.release(0)
            if err is not None:
                self.fail(sr, err)
                return
            sr.journal.record_checked(part.name, self._check_of(f"{fault}/{part.name}"))
            self._count("parts_uploaded")
            self._count("bytes_uploaded", m.size)
            self.log(f"uploaded and checked {fault}/{part.name}")
            testhook.reached("checked")
            self.part_done(sr, part.name)

        self.send(Sent(f"{fault}/{part.name}", link, m.size, digest, done, after_copy=unchanged))

    def upload_root_file(self, name: str, manifest: Manifest) -> None:
        """list.txt / stocktake.csv: staged in the mirror (they are small), copied, checked."""
        path, listed = find_root_file(name, manifest, self.s)
        if path is None:
            if listed:
                self.result.extras_failed.append(f"{name}: listed in {self.s.manifest} but not found")
            else:
                self.progress.note(f"{name}: not found beside CS_ROOT or the manifest; not uploaded")
            return
        staged = self.mirror / name
        try:
            self.mirror.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, staged)
            size, digest = hash_file(staged)
        except OSError as exc:
            raise from_os_error(exc, f"cannot stage {name}") from None

        def done(err: BaseException | None) -> None:
            staged.unlink(missing_ok=True)
            if err is None:
                self.result.extras.append(name)
                return
            self.result.extras_failed.append(f"{name}: {err.one_line() if isinstance(err, CsSyncError) else err}")
            if is_fatal(err):
                with self.lock:
                    self.abort = self.abort or err

        self.send(Sent(name, staged, size, digest, done))

    # .. checking (batched) ...................................................................

    def _checked(self, item: Sent, err: BaseException | None) -> None:
        """A passed check sends the file on to be moved into place; a failed one ends it."""
        if err is not None:
            self._finish(item, err)
            return
        assert self.mover is not None
        self.mover.put(item)

    def _move_batch(self, batch: list[Sent]) -> list[BaseException | None]:
        """Checked files go from their hidden names to their names: one ``rclone move``."""
        try:
            self.rclone.move(self.incoming, self.vpath, files=[b.relpath for b in batch],
                             what=f"moving {len(batch)} checked file(s) into {self.vpath}")
            return [None] * len(batch)
        except CsSyncError as exc:
            if is_fatal(exc) or len(batch) == 1:
                raise
        errors: list[BaseException | None] = []  # find which ones failed
        for b in batch:
            try:
                self.rclone.moveto(join(self.incoming, b.relpath), join(self.vpath, b.relpath))
                errors.append(None)
            except CsSyncError as e:
                errors.append(e)
        return errors

    def _check_batch(self, batch: list[Sent]) -> list[BaseException | None]:
        """One rclone call checks the batch where it landed; one outcome per file."""
        names = [b.relpath for b in batch]
        what = f"checking {len(names)} file(s) on {self.vpath}"
        if not self.s.checksum:
            listed = {f.path: f.size for f in self.rclone.lsjson(self.incoming, recursive=True, what=what,
                                                                 includes=names)}
            out: list[BaseException | None] = []
            for b in batch:
                got = listed.get(b.relpath)
                out.append(None if got == b.size else VerifyError(
                    f"{b.relpath}: remote copy is {'missing' if got is None else f'{got} bytes'}, expected {b.size}"))
            self._check_mode("size", sum(e is None for e in out))
            for b, e in zip(batch, out):
                if e is None:
                    self._part_checked(b.relpath, "size")
            return out
        if self.remote_sha256:
            sums = self.work / "sums"
            sums.mkdir(parents=True, exist_ok=True)
            sumfile = sums / f"batch{self.s.shard_label}-{next(self._batch_no)}.sha256"
            sumfile.write_text("".join(f"{b.sha256}  {b.relpath}\n" for b in batch))
            try:
                res = self.rclone.check(str(sumfile), self.incoming, files=names, checkfile="sha256", what=what)
            finally:
                sumfile.unlink(missing_ok=True)
            mode = "sha256"
        else:
            res = self.rclone.check(str(self.mirror), self.incoming, files=names, what=what, extra=["--copy-links"])
            mode = "hash" if res.hash_compared else "sizes-only"
        matched = set(res.matched)
        out = []
        for b in batch:
            if b.relpath in matched:
                out.append(None)
            elif b.relpath in res.differ:
                out.append(VerifyError(f"{b.relpath}: rclone check: the remote copy differs from what was sent"))
            elif b.relpath in res.missing:
                out.append(VerifyError(f"{b.relpath}: rclone check: not found on the remote after copying"))
            else:
                out.append(VerifyError(f"{b.relpath}: rclone check did not report on it"))
        self._check_mode(mode, sum(e is None for e in out))
        for b, e in zip(batch, out):
            if e is None:
                self._part_checked(b.relpath, mode)
        return out

    # .. sets and their sidecars ...............................................................

    def part_done(self, sr: SetRun, name: str) -> None:
        with sr.lock:
            sr.remaining.discard(name)
            release = None
            if sr.deferred is not None and sr.remaining == {sr.deferred[0].name}:
                release, sr.deferred = sr.deferred, None
            finished = not sr.remaining and not sr.failed
        if release is not None:
            self.upload_part(sr, *release)
        if finished:
            assert self.sidecars is not None
            self._add_pending(1)
            self.sidecars.put(sr)

    def sidecar_for(self, sr: SetRun) -> SetSidecar:
        sp = sr.plan
        parts: list[PartInfo] = []
        members: list[MemberInfo] = []
        for p in sp.parts:
            rec = sr.journal.part(p.name)
            assert rec is not None and rec["state"] == CHECKED, p.name
            if not sp.sample:
                parts.append(PartInfo(p.name, rec["size"], rec["sha256"]))
            members += [member_info(WrittenMember(**m), p.name) for m in rec["members"]]
        return SetSidecar(
            fault=sp.fault, dtype=sp.dtype, version=self.s.version, parts=parts, members=members,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"), tool=f"cs_sync {__version__}",
            max_size=self.s.max_size, check=set_check([sr.journal.part(p.name) or {} for p in sp.parts]),
        )

    def _sidecar_batch(self, batch: list[SetRun]) -> list[BaseException | None]:
        """Write the sidecars of sets whose every part is checked: one rclone copy for the batch."""
        local_dir = self.work / "sidecars"
        local_dir.mkdir(parents=True, exist_ok=True)
        names = []
        for sr in batch:
            name = sidecar_name(sr.plan.fault, sr.plan.dtype)
            (local_dir / name).write_text(self.sidecar_for(sr).to_json())
            names.append(name)
        dst = join(self.vpath, SIDECAR_DIR)
        try:
            # rclone compares size and hash after each copy (its own check, kept on for sidecars)
            self.rclone.copy(str(local_dir), dst, what=f"writing {len(names)} sidecar(s)", includes=names)
            return [None] * len(batch)
        except CsSyncError as exc:
            if is_fatal(exc) or len(batch) == 1:
                raise
            out: list[BaseException | None] = []  # find which ones failed
            for n in names:
                try:
                    self.rclone.copyto(str(local_dir / n), join(dst, n), what=f"writing sidecar {n}")
                    out.append(None)
                except CsSyncError as e:
                    out.append(e)
            return out
        finally:
            for n in names:
                (local_dir / n).unlink(missing_ok=True)

    def _sidecar_done(self, sr: SetRun, err: BaseException | None) -> None:
        try:
            if err is not None:
                self.fail(sr, err)
                return
            sr.journal.record_done()
            sr.outcome.status = "uploaded"
            self.log(f"set {sr.plan.name} complete: sidecar written")
            testhook.reached("set_done")
        finally:
            self._add_pending(-1)


def member_info(wm: WrittenMember, part: str) -> MemberInfo:
    return MemberInfo(name=wm.name, part=part, offset=wm.offset, size=wm.size, mtime=wm.mtime_ns / 1e9,
                      sha256=wm.sha256, source=wm.source, mtime_ns=wm.mtime_ns)


def find_root_file(name: str, manifest: Manifest, settings) -> tuple[Path | None, bool]:
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
