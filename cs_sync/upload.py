"""The upload engine: plan, compare with the remote, pack, upload, check, record.

One call, :func:`upload`, takes an :class:`UploadSettings` and returns an
:class:`UploadResult`; it never prints (progress and notes go through the
Progress protocol, details to the ``log`` sink) and never exits.

How a run goes:

1. Read the manifest, plan sets and parts (``planning``); refuse parts above the
   hard limit before touching anything.
2. Read the remote version once (one listing plus the sidecars): this is also the
   up-front check that the remote exists and answers.
3. Decide per set: skip (complete), stale, unverified (older scripts), refuse,
   or (re)do it, using the set's journal from an interrupted run.
4. One thread packs parts straight from the sources into the tmp dir while up to
   ``transfers`` parts, from any faults, are copied and checked by rclone. Packing
   waits while ``transfers + 1`` parts are on local disk. A split set's final part
   goes up only after its other parts are checked; the sidecar only after all.
5. Read the remote again and confirm every set that should be there is complete.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import __version__, testhook
from .config import SyncConfig, load_config
from .errors import (
    CsSyncError,
    LocalIOError,
    ManifestError,
    PlanError,
    RcloneNotFound,
    RemoteError,
    SourceChanged,
    VerifyError,
    from_os_error,
)
from .journal import Journal
from .manifest import Manifest, read_manifest
from .naming import LIST_FILE, SIDECAR_DIR, STOCKTAKE_FILE, sidecar_name
from .planning import (
    REDO_ACTIONS,
    REFUSE,
    SKIP,
    STALE,
    UNVERIFIED,
    Decision,
    PartPlan,
    Plan,
    SetPlan,
    decide_set,
    plan_upload,
)
from .progress import NULL_PROGRESS, Progress
from .rclone import Rclone, join
from .remote_sets import SetState, VersionListing
from .remote_state import read_version
from .sharding import assign_shards
from .sidecar import MemberInfo, PartInfo, SetSidecar
from .sizes import format_size
from .tar_write import DEFAULT_BUFFER, MemberSource, PartWriter, WrittenMember, WrittenPart, hash_file, hash_source

DEFAULT_REMOTE = "dropbox:/QuakeCoRE/Public/Cybershake"
REMOTE_ENV = "CS_SYNC_REMOTE"
DEFAULT_MAX_SIZE = 100 * 1024**3  # 100 GiB, as the older scripts
DEFAULT_HARD_LIMIT = 350 * 1000**3  # Dropbox's per-file upload limit
VERIFY_CHECK = "check"
VERIFY_DOWNLOAD = "download"

LogSink = Callable[[str], None]


@dataclass(frozen=True, kw_only=True)
class UploadSettings:
    """Everything one upload run needs; built by the CLI, or by tests directly."""

    cs_root: Path  # the version folder; its name is the version on the remote
    manifest: Path  # files_to_sync.yaml written by preprocess
    remote: str = DEFAULT_REMOTE  # remote root; the version goes in {remote}/{version}
    tmp_dir: Path  # scratch for parts, journals and the log
    config: SyncConfig | None = None  # None: the sync_patterns.yaml shipped with the package
    types: tuple[str, ...] = ()  # -t selection; empty: every type
    overwrite: bool = False  # replace sets already on the remote
    update: bool = False  # redo stale sets (sources changed since upload)
    checksum: bool = True  # False (--no_checksum): check sizes only
    verify: str = VERIFY_CHECK  # or VERIFY_DOWNLOAD: stream each part back and compare SHA-256
    max_size: int = DEFAULT_MAX_SIZE
    hard_limit: int = DEFAULT_HARD_LIMIT
    transfers: int = 4
    dry_run: bool = False
    shard: tuple[int, int] | None = None  # (i, N): only shard i of N (by bytes per fault)
    buffer_size: int = DEFAULT_BUFFER

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


@dataclass
class SetOutcome:
    fault: str
    dtype: str
    action: str  # planning.UPLOAD / SKIP / STALE / ...
    status: str  # uploaded, skipped, unverified, stale, failed, refused, planned
    size: int = 0
    parts: int = 0
    parts_uploaded: int = 0
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.fault}_{self.dtype}"


@dataclass
class UploadResult:
    version: str
    remote: str  # {remote}/{version}
    dry_run: bool = False
    outcomes: list[SetOutcome] = field(default_factory=list)
    plan: Plan | None = None
    decisions: dict[str, Decision] = field(default_factory=dict)
    extras: list[str] = field(default_factory=list)  # root files uploaded (list.txt, stocktake.csv)
    extras_failed: list[str] = field(default_factory=list)
    bytes_packed: int = 0
    bytes_uploaded: int = 0
    parts_packed: int = 0
    parts_reused: int = 0  # local parts from an interrupted run, re-hashed and reused
    parts_uploaded: int = 0
    parts_on_remote: int = 0  # uploaded and checked by an interrupted run: not redone
    peak_scratch: int = 0
    scratch_bound: int = 0
    wall: float = 0.0
    checks: dict[str, int] = field(default_factory=dict)  # sha256 / hash / size / download -> parts
    final_problems: list[str] = field(default_factory=list)
    final_checked: int = 0

    def with_status(self, status: str) -> list[SetOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[SetOutcome]:
        return self.with_status("failed") + self.with_status("refused")

    @property
    def hashes_compared(self) -> bool | None:
        """True when every check compared hashes; False if some compared sizes only."""
        if not self.checks:
            return None
        return not (self.checks.get("size", 0) or self.checks.get("sizes-only", 0))

    @property
    def ok(self) -> bool:
        return not (self.failed or self.with_status("stale") or self.extras_failed or self.final_problems)


# -- helpers ------------------------------------------------------------------------


def _fatal(exc: BaseException) -> bool:
    """Errors that stop the whole run rather than one set."""
    if isinstance(exc, (RcloneNotFound, LocalIOError)):
        return True
    if isinstance(exc, RemoteError):
        msg = exc.message
        return "unreachable" in msg or "unknown rclone remote" in msg
    return False


def _shard_faults(plan: Plan, shard: tuple[int, int] | None) -> list[str] | None:
    if shard is None:
        return None
    weights: dict[str, int] = {}
    for sp in plan.sets:
        weights[sp.fault] = weights.get(sp.fault, 0) + sp.size
    return assign_shards(weights, shard[1])[shard[0]]


def _check_version(manifest: Manifest, settings: UploadSettings) -> None:
    if manifest.version and manifest.version != settings.version:
        raise ManifestError(
            f"{settings.manifest}: manifest is for version {manifest.version!r}, but CS_ROOT is "
            f"{settings.version!r} ({settings.cs_root})",
            hint="give the files_to_sync.yaml that preprocess wrote for this CS_ROOT",
        )


def _find_extra(name: str, manifest: Manifest, settings: UploadSettings) -> tuple[Path | None, bool]:
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


# -- the run ------------------------------------------------------------------------


@dataclass
class _SetRun:
    plan: SetPlan
    decision: Decision
    journal: Journal
    outcome: SetOutcome
    remaining: set[str] = field(default_factory=set)  # parts not yet checked
    deferred: tuple[PartPlan, WrittenPart] | None = None  # final part waiting for the others
    failed: str | None = None
    sample_members: dict[str, WrittenMember] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Run:
    def __init__(self, settings: UploadSettings, progress: Progress, log: LogSink, rclone: Rclone) -> None:
        self.s = settings
        self.progress = progress
        self.log = log
        self.rclone = rclone
        self.vpath = join(settings.remote, settings.version)
        self.work = settings.work_dir
        self.parts_dir = self.work / "parts"
        self.result = UploadResult(version=settings.version, remote=self.vpath, dry_run=settings.dry_run)
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(settings.transfers + 1)
        self.scratch = 0
        self.abort: BaseException | None = None
        self.remote_sha256 = False
        self.futures: list[Future] = []
        self.pool: ThreadPoolExecutor | None = None

    # .. bookkeeping .................................................................

    def _scratch(self, delta: int) -> None:
        with self.lock:
            self.scratch += delta
            self.result.peak_scratch = max(self.result.peak_scratch, self.scratch)

    def _count(self, attr: str, n: int = 1) -> None:
        with self.lock:
            setattr(self.result, attr, getattr(self.result, attr) + n)

    def _check_mode(self, mode: str) -> None:
        with self.lock:
            self.result.checks[mode] = self.result.checks.get(mode, 0) + 1

    def _fail(self, sr: _SetRun, exc: BaseException | str) -> None:
        msg = exc.one_line() if isinstance(exc, CsSyncError) else str(exc)
        with sr.lock:
            if sr.failed:
                return
            sr.failed = msg
            deferred, sr.deferred = sr.deferred, None
        sr.outcome.status = "failed"
        sr.outcome.reason = msg
        self.log(f"FAILED {sr.plan.name}: {msg}")
        self.progress.note(f"FAILED {sr.plan.name}: {msg}")
        if deferred is not None:
            self._drop_local(deferred[1].path, deferred[0].size)
            self.slots.release()
        if isinstance(exc, BaseException) and _fatal(exc):
            with self.lock:
                if self.abort is None:
                    self.abort = exc

    def _drop_local(self, path: Path, size: int) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.log(f"cannot remove {path}: {exc}")
        self._scratch(-size)

    # .. remote verification ...........................................................

    def verify(self, fault: str, name: str, size: int, sha256: str, local_dir: Path, *, follow_links: bool = False) -> None:
        """Check one uploaded file; raise VerifyError when the remote copy is not ours."""
        remote_dir = join(self.vpath, fault)
        remote_path = join(remote_dir, name)
        if not self.s.checksum:
            st = self.rclone.stat(remote_path)
            if st is None or st.size != size:
                got = "missing" if st is None else f"{st.size} bytes"
                raise VerifyError(f"{fault}/{name}: remote copy is {got}, expected {size} bytes")
            self._check_mode("size")
        elif self.remote_sha256:
            sums = self.work / "sums" / fault
            sums.mkdir(parents=True, exist_ok=True)
            sumfile = sums / (name + ".sha256")
            sumfile.write_text(f"{sha256}  {name}\n")
            try:
                res = self.rclone.check(str(sumfile), remote_dir, files=[name], checkfile="sha256",
                                        what=f"checking {fault}/{name}")
            finally:
                sumfile.unlink(missing_ok=True)
            if not res.ok:
                raise VerifyError(f"{fault}/{name}: rclone check: the remote copy's SHA-256 differs from the packed part")
            self._check_mode("sha256")
        else:
            res = self.rclone.check(str(local_dir), remote_dir, files=[name], what=f"checking {fault}/{name}",
                                    extra=["--copy-links"] if follow_links else [])
            if not res.ok:
                raise VerifyError(f"{fault}/{name}: rclone check: the remote copy differs ({res.output.strip()})")
            self._check_mode("hash" if res.hash_compared else "sizes-only")
        if self.s.verify == VERIFY_DOWNLOAD:
            h = hashlib.sha256()
            n = 0
            with self.rclone.cat(remote_path, what=f"reading back {fault}/{name}") as stream:
                for chunk in stream.iter_chunks(self.s.buffer_size):
                    h.update(chunk)
                    n += len(chunk)
            if n != size or h.hexdigest() != sha256:
                raise VerifyError(f"{fault}/{name}: read back {n} bytes with another SHA-256 than the packed part")
            self._check_mode("download")

    # .. per set ..........................................................................

    def prepare(self, sr: _SetRun) -> None:
        """Remove what the decision says, sidecar first."""
        d = sr.decision
        fault = sr.plan.fault
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
        except RemoteError as exc:
            if "not found" not in exc.message:
                raise

    def pack(self, writer: PartWriter, sr: _SetRun, part: PartPlan) -> WrittenPart:
        """Pack ``part`` or reuse a local copy left by an interrupted run (after re-hashing it)."""
        fault_dir = self.parts_dir / sr.plan.fault
        local = fault_dir / part.name
        rec = sr.journal.part(part.name)
        if rec and local.is_file() and local.stat().st_size == rec["size"]:
            key = f"pack:{sr.plan.fault}/{part.name}"
            self.progress.task_started(key, f"{sr.plan.fault}/{part.name} (re-checking local copy)", part.size, "pack")
            size, digest = hash_file(local, buffer_size=self.s.buffer_size,
                                     on_bytes=lambda n: self.progress.task_advanced(key, n))
            self.progress.task_finished(key, ok=True)
            if size == rec["size"] == part.size and digest == rec["sha256"]:
                self.log(f"{part.name}: reusing the local copy from an interrupted run (SHA-256 matches)")
                self._count("parts_reused")
                written = sr.journal.written(part.name, local)
                assert written is not None
                return written
            self.log(f"{part.name}: local copy from an interrupted run does not match its journal; repacking")
        if local.exists():
            local.unlink()
        try:
            free = shutil.disk_usage(fault_dir if fault_dir.exists() else self.work).free
        except OSError as exc:
            raise from_os_error(exc, f"cannot use {self.work}") from None
        if free < part.size:
            raise LocalIOError(
                f"not enough space in {self.s.tmp_dir}: {part.name} needs {format_size(part.size)}, "
                f"{format_size(free)} free",
                hint="free space, use another --tmp_dir, or lower --transfers / --max-size",
            )
        written = writer.write(
            part.name,
            [m.as_source() for m in part.members],
            Path(self.s.cs_root),
            fault_dir,
            expected_size=part.size,
            progress=self.progress,
            key=f"pack:{sr.plan.fault}/{part.name}",
        )
        sr.journal.record_packed(written)
        self._count("parts_packed")
        self._count("bytes_packed", written.size)
        self.log(f"packed {sr.plan.fault}/{part.name}: {written.size} bytes, sha256 {written.sha256}")
        return written

    def dispatch(self, sr: _SetRun, part: PartPlan, written: WrittenPart) -> None:
        """Queue a packed part for upload; a split set's final part waits for the others."""
        with sr.lock:
            if sr.failed:
                failed = True
            else:
                failed = False
                others = sr.remaining - {part.name}
                if part.final and part.count > 1 and others:
                    sr.deferred = (part, written)
                    return
        if failed:
            self._drop_local(written.path, part.size)
            self.slots.release()
            return
        self._submit(self.upload_part, sr, part, written)

    def _submit(self, fn, *args) -> None:
        assert self.pool is not None
        self.futures.append(self.pool.submit(self._guard, fn, *args))

    def _guard(self, fn, sr: _SetRun, *args) -> None:
        try:
            fn(sr, *args)
        except CsSyncError as exc:
            self._fail(sr, exc)
        except OSError as exc:
            self._fail(sr, from_os_error(exc, f"{sr.plan.name}: local file"))
        except Exception as exc:  # a bug: fail the set, say so, keep the others going
            self._fail(sr, f"internal error: {type(exc).__name__}: {exc}")

    def upload_part(self, sr: _SetRun, part: PartPlan, written: WrittenPart) -> None:
        fault = sr.plan.fault
        key = f"upload:{fault}/{part.name}"
        released = False
        try:
            if sr.failed:
                return
            self.progress.task_started(key, f"{fault}/{part.name}", written.size, "upload")
            try:
                self.rclone.copyto(str(written.path), join(self.vpath, fault, part.name), progress=self.progress,
                                   key=key, what=f"uploading {fault}/{part.name}")
                testhook.reached("uploaded")
                self.verify(fault, part.name, written.size, written.sha256, written.path.parent)
            except BaseException as exc:
                self.progress.task_finished(key, ok=False, note=str(exc))
                raise
            sr.journal.record_checked(part.name)
            self.progress.task_finished(key, ok=True)
            self._count("parts_uploaded")
            self._count("bytes_uploaded", written.size)
            self.log(f"uploaded and checked {fault}/{part.name}")
            testhook.reached("checked")
            self._drop_local(written.path, part.size)
            self.slots.release()
            released = True
            self.part_done(sr, part.name)
        finally:
            if not released:
                self._drop_local(written.path, part.size)
                self.slots.release()

    def upload_sample(self, sr: _SetRun, part: PartPlan) -> None:
        """A sample (SAMPLE_BB) goes up as a plain file straight from its source."""
        fault = sr.plan.fault
        [m] = part.members
        src = Path(self.s.cs_root) / m.source
        mtime_ns, digest = hash_source(m.as_source(), Path(self.s.cs_root), buffer_size=self.s.buffer_size)
        wm = WrittenMember(part.name, m.source, 0, m.size, mtime_ns, digest)
        # recorded before sending: a copy that lands but is not checked is then known to be ours
        sr.journal.record_packed(WrittenPart(name=part.name, path=src, size=m.size, sha256=digest, members=(wm,)))
        key = f"upload:{fault}/{part.name}"
        self.progress.task_started(key, f"{fault}/{part.name}", m.size, "upload")
        try:
            self.rclone.copyto(str(src), join(self.vpath, fault, part.name), progress=self.progress, key=key,
                               what=f"uploading {fault}/{part.name}")
            st = os.stat(src)
            if st.st_mtime_ns != mtime_ns or st.st_size != m.size:
                raise SourceChanged(f"{m.source}: modified while being uploaded", hint="re-run cs-sync-preprocess")
            link_dir = self.work / "samples" / fault
            link_dir.mkdir(parents=True, exist_ok=True)
            link = link_dir / part.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(src.resolve())
            try:
                self.verify(fault, part.name, m.size, digest, link_dir, follow_links=True)
            finally:
                link.unlink(missing_ok=True)
        except BaseException as exc:
            self.progress.task_finished(key, ok=False, note=str(exc))
            raise
        self.progress.task_finished(key, ok=True)
        sr.sample_members[part.name] = wm
        sr.journal.record_checked(part.name)
        self._count("parts_uploaded")
        self._count("bytes_uploaded", m.size)
        self.log(f"uploaded and checked {fault}/{part.name}")
        testhook.reached("checked")
        self.part_done(sr, part.name)

    def part_done(self, sr: _SetRun, name: str) -> None:
        with sr.lock:
            sr.remaining.discard(name)
            release = None
            if sr.deferred is not None and sr.remaining == {sr.deferred[0].name}:
                release, sr.deferred = sr.deferred, None
            finished = not sr.remaining and not sr.failed
        if release is not None:
            self._submit(self.upload_part, sr, *release)
        if finished:
            self.finish_set(sr)

    def finish_set(self, sr: _SetRun) -> None:
        """Every part is up and checked: write the sidecar, then the set counts as uploaded."""
        sp = sr.plan
        parts: list[PartInfo] = []
        members: list[MemberInfo] = []
        if sp.sample:
            for p in sp.parts:
                wm = sr.sample_members.get(p.name)
                if wm is None:  # checked by an interrupted run: its record is in the journal
                    rec = sr.journal.part(p.name)
                    assert rec is not None, p.name
                    wm = WrittenMember(**rec["members"][0])
                members.append(_member_info(wm, p.name))
        else:
            for p in sp.parts:
                rec = sr.journal.part(p.name)
                assert rec is not None and rec["state"] == "checked", p.name
                parts.append(PartInfo(p.name, rec["size"], rec["sha256"]))
                members += [_member_info(WrittenMember(**m), p.name) for m in rec["members"]]
        sidecar = SetSidecar(
            fault=sp.fault,
            dtype=sp.dtype,
            version=self.s.version,
            parts=parts,
            members=members,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            tool=f"cs_sync {__version__}",
            max_size=self.s.max_size,
        )
        local = self.work / "sidecars" / sidecar_name(sp.fault, sp.dtype)
        local.parent.mkdir(parents=True, exist_ok=True)
        text = sidecar.to_json()
        local.write_text(text)
        dst = join(self.vpath, SIDECAR_DIR, local.name)
        try:
            self.rclone.copyto(str(local), dst, what=f"writing the sidecar of {sp.name}")
            st = self.rclone.stat(dst)
            if st is None or st.size != len(text.encode()):
                raise VerifyError(f"{sp.name}: sidecar on the remote is not the one written")
        finally:
            local.unlink(missing_ok=True)
        sr.journal.record_done()
        sr.outcome.status = "uploaded"
        self.log(f"set {sp.name} complete: sidecar written")
        testhook.reached("set_done")

    # .. root files ......................................................................

    def upload_extras(self, manifest: Manifest) -> None:
        stage = self.work / "root"
        for name in (LIST_FILE, STOCKTAKE_FILE):
            path, listed = _find_extra(name, manifest, self.s)
            if path is None:
                if listed:
                    self.result.extras_failed.append(f"{name}: listed in {self.s.manifest} but not found")
                else:
                    self.progress.note(f"{name}: not found beside CS_ROOT or the manifest; not uploaded")
                continue
            try:
                stage.mkdir(parents=True, exist_ok=True)
                staged = stage / name
                shutil.copyfile(path, staged)
                size, digest = hash_file(staged)
                self.rclone.copyto(str(staged), join(self.vpath, name), what=f"uploading {name}")
                self.verify("", name, size, digest, stage)
                staged.unlink()
                self.result.extras.append(name)
            except OSError as exc:
                raise from_os_error(exc, f"cannot stage {name}") from None
            except CsSyncError as exc:
                if _fatal(exc):
                    raise
                self.result.extras_failed.append(f"{name}: {exc.one_line()}")


def _member_info(wm: WrittenMember, part: str) -> MemberInfo:
    return MemberInfo(
        name=wm.name,
        part=part,
        offset=wm.offset,
        size=wm.size,
        mtime=wm.mtime_ns / 1e9,
        sha256=wm.sha256,
        source=wm.source,
        mtime_ns=wm.mtime_ns,
    )


_STATUS_OF = {SKIP: "skipped", UNVERIFIED: "unverified", STALE: "stale", REFUSE: "refused"}


def upload(settings: UploadSettings, progress: Progress = NULL_PROGRESS, log: LogSink | None = None,
           rclone: Rclone | None = None) -> UploadResult:
    """Upload the version at ``settings.cs_root``; see the module docstring for how."""
    t0 = time.monotonic()
    log = log or (lambda line: None)
    manifest = read_manifest(settings.manifest, settings.cs_root)
    _check_version(manifest, settings)
    config = settings.config or load_config()
    types = list(settings.types) or None
    plan = plan_upload(manifest, config, types=types, max_size=settings.max_size, hard_limit=settings.hard_limit)
    faults = _shard_faults(plan, settings.shard)
    if faults is not None:
        plan = plan.only_faults(faults)
    if plan.refused and not settings.dry_run:
        raise PlanError(
            "refused before uploading anything: " + "; ".join(r.message for r in plan.refused[:3])
            + (f" (and {len(plan.refused) - 3} more)" if len(plan.refused) > 3 else ""),
            hint="lower --max-size or raise --hard-limit if the remote allows bigger files",
        )
    rclone = rclone or Rclone(log=log)
    run = _Run(settings, progress, log, rclone)
    run.result.plan = plan
    for w in plan.warnings:
        log(f"warning: {w}")
        progress.note(f"warning: {w}")

    # one listing of the remote version (also the up-front check that the remote answers)
    listing: VersionListing = read_version(rclone, settings.remote, settings.version, missing_ok=True)
    run.remote_sha256 = "sha256" in rclone.hash_types(run.vpath)

    runs: list[_SetRun] = []
    journal_dir = settings.work_dir / "journal"
    for sp in plan.sets:
        rs = listing.get(sp.fault, sp.dtype)
        journal = Journal.load(journal_dir / f"{sp.name}.json", sp)
        decision = decide_set(
            sp,
            rs,
            sidecar_present=sidecar_name(sp.fault, sp.dtype) in listing.sidecar_files,
            overwrite=settings.overwrite,
            update=settings.update,
            checked=journal.checked(),
            done_before=journal.done,
            started=journal.exists,
        )
        run.result.decisions[sp.name] = decision
        status = "planned" if settings.dry_run and decision.redo else _STATUS_OF.get(decision.action, "pending")
        outcome = SetOutcome(sp.fault, sp.dtype, decision.action, status, sp.size, len(sp.parts),
                             reason=decision.reason)
        run.result.outcomes.append(outcome)
        refusals = [r.message for r in plan.refused if r.set_name == sp.name]
        if refusals:
            outcome.status, outcome.reason = "refused", "; ".join(refusals)
            continue
        if decision.redo:
            runs.append(_SetRun(sp, decision, journal, outcome, remaining=set(decision.todo)))
        log(f"{sp.name}: {decision.action}" + (f" ({decision.reason})" if decision.reason else ""))
    run.result.scratch_bound = (settings.transfers + 1) * plan.largest_part
    if settings.dry_run:
        run.result.wall = time.monotonic() - t0
        return run.result

    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        # only this run's faults and sets: concurrent shards share the tmp dir
        wanted = {(sr.plan.fault, name) for sr in runs for name in sr.decision.todo}
        for fault in {sp.fault for sp in plan.sets}:
            fdir = run.parts_dir / fault
            for p in fdir.iterdir() if fdir.is_dir() else []:
                # a .tmp was being written when a run was killed: never trusted; a .tar no set
                # needs any more was checked just before a kill, or belongs to another plan
                if p.name.endswith(".tmp") or (fault, p.name) not in wanted:
                    p.unlink()
        for sp in plan.sets:
            for p in journal_dir.glob(f".{sp.name}.json.*.tmp"):
                p.unlink()  # a journal being rewritten when a run was killed
    except OSError as exc:
        raise from_os_error(exc, f"cannot use --tmp_dir {settings.tmp_dir}") from None
    rclone.mkdir(run.vpath)

    if settings.shard is None or settings.shard[0] == 0:
        run.upload_extras(manifest)
    _pipeline(run, runs)

    # one more traversal: every set that should be there is complete
    after = read_version(rclone, settings.remote, settings.version, missing_ok=True)
    for o in run.result.outcomes:
        if o.status not in ("uploaded", "skipped", "unverified"):
            continue
        rs = after.get(o.fault, o.dtype)
        run.result.final_checked += 1
        if rs is None or rs.state != SetState.COMPLETE:
            problem = f"{o.name}: {rs.state.value if rs else 'absent'} on the remote after upload"
            if rs and rs.problems:
                problem += f" ({'; '.join(rs.problems)})"
            run.result.final_problems.append(problem)
            o.status, o.reason = "failed", problem
        elif o.status in ("uploaded", "skipped") and rs.sidecar is None:
            problem = f"{o.name}: its sidecar is missing on the remote after upload"
            run.result.final_problems.append(problem)
            o.status, o.reason = "failed", problem
    for sr in runs:
        if sr.journal.done:
            sr.journal.remove()  # the run reached its end: an interrupted --overwrite is over
    _tidy(settings.work_dir)
    run.result.wall = time.monotonic() - t0
    return run.result


def _pipeline(run: _Run, runs: list[_SetRun]) -> None:
    """Pack in this thread, upload and check in a pool; see the module docstring."""
    s = run.s
    run.pool = ThreadPoolExecutor(max(1, s.transfers), thread_name_prefix="upload")
    try:
        with PartWriter(s.buffer_size) as writer:
            for sr in runs:
                if run.abort is not None:
                    break
                try:
                    run.prepare(sr)
                except CsSyncError as exc:
                    run._fail(sr, exc)
                    continue
                todo = [p for p in sr.plan.parts if p.name in sr.remaining]
                run._count("parts_on_remote", len(sr.plan.parts) - len(todo))
                if not todo:
                    run._submit(_finish_only, sr, run)  # every part checked by an interrupted run
                    continue
                if sr.plan.sample:
                    for part in todo:
                        run._submit(run.upload_sample, sr, part)
                    continue
                for part in todo:
                    if sr.failed or run.abort is not None:
                        break
                    while not run.slots.acquire(timeout=0.2):
                        if run.abort is not None:
                            break
                    if run.abort is not None:
                        break
                    run._scratch(part.size)
                    try:
                        written = run.pack(writer, sr, part)
                    except BaseException as exc:
                        run._scratch(-part.size)
                        run.slots.release()
                        if isinstance(exc, SourceChanged):
                            sr.journal.forget()
                            run._fail(sr, exc)
                            break
                        if isinstance(exc, CsSyncError) and not _fatal(exc):
                            run._fail(sr, exc)
                            break
                        raise
                    testhook.reached("packed")
                    run.dispatch(sr, part, written)
        _wait(run)
    except BaseException as exc:
        with run.lock:
            if run.abort is None:
                run.abort = exc
        run.pool.shutdown(wait=False, cancel_futures=True)
        if isinstance(exc, KeyboardInterrupt):
            run.rclone.kill_running()
        else:
            _wait(run)
        raise
    finally:
        run.pool.shutdown(wait=True)
    if run.abort is not None:
        raise run.abort


def _wait(run: _Run) -> None:
    """Wait for every queued upload, including final parts released while waiting."""
    i = 0
    while True:
        with run.lock:
            if i >= len(run.futures):
                return
            fut = run.futures[i]
        try:
            fut.result()
        except BaseException:
            pass
        i += 1


def _finish_only(sr: _SetRun, run: _Run) -> None:
    run.finish_set(sr)


def _tidy(work: Path) -> None:
    """Remove empty folders left in the tmp dir."""
    for sub in ("parts", "sums", "samples", "sidecars", "root", "journal"):
        base = work / sub
        if not base.exists():
            continue
        for d in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
            try:
                d.rmdir()
            except OSError:
                pass
        try:
            base.rmdir()
        except OSError:
            pass
