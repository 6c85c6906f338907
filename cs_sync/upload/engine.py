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
4. Pack, copy, check and record the sets to (re)do (``upload_pipeline``): parts
   are packed straight from the sources while up to ``transfers`` parts, from any
   faults, are copied; scratch stays under (transfers + 1) x the largest part.
5. Read the remote again and confirm every set that should be there is complete.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cs_sync.archive.tar_write import DEFAULT_BUFFER
from cs_sync.core.errors import CsSyncError, ManifestError, PlanError, UsageError, from_os_error
from cs_sync.core.lock import upload_lock
from cs_sync.core.naming import DEFAULT_REMOTE, REMOTE_ENV, sidecar_name  # noqa: F401  (re-exported for the CLI)
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.core.scratch import prepare_tmp_dir
from cs_sync.core.sharding import assign_shards
from cs_sync.inputs.config import SyncConfig, load_config
from cs_sync.inputs.manifest import Manifest, read_manifest
from cs_sync.remote.rclone import Rclone, join
from cs_sync.remote.sets import SetState, VersionListing
from cs_sync.remote.state import read_version
from cs_sync.upload.journal import Journal
from cs_sync.upload.pipeline import INCOMING, Pipeline, SetRun
from cs_sync.upload.planning import (
    REFUSE,
    SKIP,
    STALE,
    UNVERIFIED,
    Decision,
    Plan,
    decide_set,
    plan_upload,
    warning_lines,
)

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
    faults: tuple[str, ...] = ()  # --inc_fault: only these faults of the manifest; empty: all
    buffer_size: int = DEFAULT_BUFFER
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


def _clean_leftovers(settings: UploadSettings, plan: Plan, runs: list[SetRun]) -> None:
    """Remove what a killed run left in the tmp dir that this run must not trust or keep.

    Only this run's faults and sets: concurrent shards share the tmp dir.
    """
    mirror = settings.work_dir / "parts"
    wanted = {(sr.plan.fault, name) for sr in runs for name in sr.decision.todo}
    for fault in {sp.fault for sp in plan.sets}:
        fdir = mirror / fault
        for p in fdir.iterdir() if fdir.is_dir() else []:
            # a .tmp was being written when a run was killed: never trusted; a part no set needs
            # was checked just before a kill, or belongs to another plan
            if p.name.endswith(".tmp") or (fault, p.name) not in wanted or p.is_symlink():
                p.unlink()
    for sp in plan.sets:
        for p in (settings.work_dir / "journal").glob(f".{sp.name}.json.*.tmp"):
            p.unlink()  # a journal being rewritten when a run was killed


_STATUS_OF = {SKIP: "skipped", UNVERIFIED: "unverified", STALE: "stale", REFUSE: "refused"}


def upload(settings: UploadSettings, progress: Progress = NULL_PROGRESS, log: LogSink | None = None,
           rclone: Rclone | None = None) -> UploadResult:
    """Upload the version at ``settings.cs_root``; see the module docstring for how.

    A real run (not ``dry_run``) first checks the tmp dir is this user's and takes the
    lock of this version and tmp dir (shard): a second run raises LockHeld (exit 11).
    """
    if settings.dry_run:
        return _upload(settings, progress, log, rclone)
    prepare_tmp_dir(settings.tmp_dir)
    with upload_lock(settings.work_dir, settings.version, settings.tmp_dir, settings.shard):
        return _upload(settings, progress, log, rclone)


def _upload(settings: UploadSettings, progress: Progress, log: LogSink | None, rclone: Rclone | None) -> UploadResult:
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
    if settings.faults:
        plan = plan.only_faults(_chosen_faults(manifest, settings))
    if plan.refused and not settings.dry_run:
        raise PlanError(
            "refused before uploading anything: " + "; ".join(r.message for r in plan.refused[:3])
            + (f" (and {len(plan.refused) - 3} more)" if len(plan.refused) > 3 else ""),
            hint="lower --max-size or raise --hard-limit if the remote allows bigger files",
        )
    rclone = rclone or Rclone(log=log)
    if settings.bwlimit:  # copies in flight, plus the batch of small files
        rclone.limit_total_rate(settings.bwlimit, settings.transfers + 1)
    vpath = join(settings.remote, settings.version)
    result = UploadResult(version=settings.version, remote=vpath, dry_run=settings.dry_run, plan=plan)
    for w in warning_lines(plan.warnings, settings.max_size):
        log(f"warning: {w}")
        progress.note(f"warning: {w}")

    # one listing of the remote version (also the up-front check that the remote answers)
    listing: VersionListing = read_version(rclone, settings.remote, settings.version, missing_ok=True)
    remote_sha256 = "sha256" in rclone.hash_types(vpath)

    runs: list[SetRun] = []
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
        )
        result.decisions[sp.name] = decision
        status = "planned" if settings.dry_run and decision.redo else _STATUS_OF.get(decision.action, "pending")
        outcome = SetOutcome(sp.fault, sp.dtype, decision.action, status, sp.size, len(sp.parts),
                             reason=decision.reason)
        result.outcomes.append(outcome)
        refusals = [r.message for r in plan.refused if r.set_name == sp.name]
        if refusals:
            outcome.status, outcome.reason = "refused", "; ".join(refusals)
            continue
        if decision.redo:
            runs.append(SetRun(sp, decision, journal, outcome, remaining=set(decision.todo)))
        log(f"{sp.name}: {decision.action}" + (f" ({decision.reason})" if decision.reason else ""))
    result.scratch_bound = (settings.transfers + 1) * plan.largest_part
    if settings.dry_run:
        result.wall = time.monotonic() - t0
        return result

    try:
        settings.work_dir.mkdir(parents=True, exist_ok=True)
        _clean_leftovers(settings, plan, runs)
    except OSError as exc:
        raise from_os_error(exc, f"cannot use --tmp_dir {settings.tmp_dir}") from None
    rclone.mkdir(vpath)
    root_files = settings.shard is None or settings.shard[0] == 0
    Pipeline(settings, progress, log, rclone, result, remote_sha256=remote_sha256,
             largest_part=plan.largest_part).run(
        runs, manifest if root_files else None)

    if settings.shard is None:  # concurrent shards may be using it: only a lone run tidies it
        try:
            rclone.rmdirs(join(vpath, INCOMING))  # empty once every file was moved into place
        except CsSyncError as exc:
            log(f"could not remove empty folders under {INCOMING}: {exc}")

    # one more traversal: every set that should be there is complete
    after = read_version(rclone, settings.remote, settings.version, missing_ok=True)
    for o in result.outcomes:
        if o.status not in ("uploaded", "skipped", "unverified"):
            continue
        rs = after.get(o.fault, o.dtype)
        result.final_checked += 1
        if rs is None or rs.state != SetState.COMPLETE:
            problem = f"{o.name}: {rs.state.value if rs else 'absent'} on the remote after upload"
            if rs and rs.problems:
                problem += f" ({'; '.join(rs.problems)})"
            result.final_problems.append(problem)
            o.status, o.reason = "failed", problem
        elif o.status in ("uploaded", "skipped") and rs.sidecar is None:
            problem = f"{o.name}: its sidecar is missing on the remote after upload"
            result.final_problems.append(problem)
            o.status, o.reason = "failed", problem
    for journal in journals:
        if journal.done:
            journal.remove()  # the run reached its end: an interrupted --overwrite is over
    _tidy(settings.work_dir, {sp.fault for sp in plan.sets}, shared=settings.shard is not None)
    result.wall = time.monotonic() - t0
    return result


def _tidy(work: Path, faults: set[str], *, shared: bool) -> None:
    """Remove empty folders this run left in the tmp dir. With ``shared`` (concurrent shards use
    the same tmp dir), only this run's own fault folders: the others may be in use."""
    dirs = [work / "parts" / f for f in sorted(faults)]
    if not shared:
        dirs += [work / sub for sub in ("parts", "sums", "sidecars", "journal")]
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            pass
