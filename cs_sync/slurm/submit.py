"""``cs-sync slurm upload|download|index``: plan the shards, render the job scripts into a run
folder, submit the array and the summary job that waits for it.

The engine of the ``slurm`` subcommand: it takes one settings object, never sees
argparse, never prints; the CLI prints :class:`SubmitResult`. Slurm itself is
reached only through :class:`cs_sync.slurm.client.Slurm`.

Run folder layout (one per submission)::

    RUN_DIR/plan.txt                      the shard report (bytes and time per shard)
    RUN_DIR/upload_array.sl, summary.sl   the rendered scripts, as submitted
    RUN_DIR/run.json                      settings, shards and job IDs (credentials redacted)
    RUN_DIR/remote                        mode 0600: a remote whose connection string carries
                                          credentials, read by the jobs (never in a script)
    RUN_DIR/logs/upload_%A_%a.out         one log per task; summary_%j.out
    RUN_DIR/tasks/upload_{i}.started|.exit   written by each task
    RUN_DIR/status.json, status.txt, report.txt   written by the summary job
"""

from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from cs_sync.core.atomic import atomic_write_text
from cs_sync.core.errors import InputError, SlurmError, from_os_error
from cs_sync.download.engine import DownloadSettings
from cs_sync.download.selection import MemberFilter, select
from cs_sync.index.engine import IndexSettings
from cs_sync.index.plan import plan_index
from cs_sync.inputs.config import load_config
from cs_sync.inputs.manifest import Manifest, read_manifest
from cs_sync.remote.rclone import Rclone
from cs_sync.remote.redact import has_credentials, redact
from cs_sync.remote.sets import VersionListing
from cs_sync.remote.state import read_version
from cs_sync.slurm.client import Slurm
from cs_sync.slurm.render import (
    DownloadArrayJob,
    IndexArrayJob,
    SbatchOptions,
    SummaryJob,
    UploadArrayJob,
    log_path,
    render_download_array,
    render_index_array,
    render_summary,
    render_upload_array,
)
from cs_sync.slurm.shard_plan import ShardPlan, plan_shards
from cs_sync.upload.engine import UploadSettings
from cs_sync.upload.planning import plan_upload


@dataclass(frozen=True, kw_only=True)
class RunSettings:
    """What both ``slurm upload`` and ``slurm download`` take."""

    tasks: int
    sbatch: SbatchOptions = field(default_factory=SbatchOptions)  # account, partition, time, mem, cpus
    rate: float | None = None  # bytes/s per task, for the time estimate only
    time_limit: int | None = None  # seconds of --time, for the warning
    run_dir: Path | None = None  # default: ./cs_sync_runs/{version}_{kind}_{timestamp}
    dry_run: bool = False  # render and report, submit nothing
    bin_dir: str | None = None  # where the cs-sync commands are, for the jobs
    passthrough: tuple[str, ...] = ()  # options handed unchanged to cs-sync-upload / -download


@dataclass(frozen=True, kw_only=True)
class UploadRun(RunSettings):
    upload: UploadSettings  # what every task's cs-sync-upload does, built by its own parser


@dataclass(frozen=True, kw_only=True)
class DownloadRun(RunSettings):
    download: DownloadSettings  # what every task's cs-sync-download does, built by its own parser


@dataclass(frozen=True, kw_only=True)
class IndexRun(RunSettings):
    index: IndexSettings  # what every task's cs-sync index does, built by its own parser


@dataclass
class SubmitResult:
    kind: str
    version: str
    remote: str
    run_dir: Path
    plan: ShardPlan
    array_script: Path
    summary_script: Path
    array_job: str | None = None  # None with --dry-run
    summary_job: str | None = None

    def watch_lines(self) -> list[str]:
        logs = self.run_dir / "logs"
        return [
            "watch the jobs:   squeue -u $USER",
            f"follow the logs:  tail -f {shlex.quote(str(logs))}/{self.kind}_*.out",
            f"the report:       {shlex.quote(str(self.run_dir / 'report.txt'))} (written by the summary job when the array ends)",
        ]


# --- shard weights: bytes per fault, exactly the numbers the --shard tasks balance -----

def upload_weights(manifest: Manifest, upload: UploadSettings) -> dict[str, int]:
    """Bytes per fault of the planned sets, as ``cs-sync-upload --shard`` computes them."""
    plan = plan_upload(manifest, upload.config or load_config(), types=list(upload.types) or None,
                       max_size=upload.max_size, hard_limit=upload.hard_limit)
    weights: dict[str, int] = {}
    for sp in plan.sets:
        weights[sp.fault] = weights.get(sp.fault, 0) + sp.size
    return weights


def download_weights(listing: VersionListing, download: DownloadSettings) -> dict[str, int]:
    """Bytes to fetch per fault of the selection, as ``cs-sync-download --shard`` computes them
    (faults whose sets are refused weigh nothing but still belong to a shard)."""
    sel = select(listing, types=download.types, inc_faults=download.inc_faults, exc_faults=download.exc_faults,
                 member_filter=MemberFilter.from_options(download.rels, download.members),
                 allow_incomplete=download.allow_incomplete)
    weights = dict(sel.weights)
    for rs in sel.refused + sel.nothing_wanted:
        weights.setdefault(rs.fault, 0)
    return weights


def index_weights(listing: VersionListing, index: IndexSettings) -> dict[str, int]:
    """Bytes per fault of the selected sets, as ``cs-sync index --shard`` computes them
    (they do not depend on what is indexed already, so re-submissions keep the shards)."""
    plan = plan_index(listing, types=index.types, inc_faults=index.inc_faults, exc_faults=index.exc_faults)
    if plan.unknown_types:
        raise InputError(plan.unknown_types[0], hint="'cs-sync status CS_VER' shows what the remote holds")
    return plan.weights


# --- the run folder -------------------------------------------------------------------

def default_run_dir(version: str, kind: str, now: float | None = None) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return Path("cs_sync_runs") / f"{version}_{kind}_{stamp}"


def _make_run_dir(path: Path, *, fresh: bool = False) -> Path:
    """Create the run folder. ``fresh`` (the default name, which has a one-second stamp): a
    folder that exists already belongs to another submission of the same second, so take
    ``NAME-2``, ``NAME-3``, ... (created exclusively: two submissions never share one).
    A given folder is refused when it holds an earlier submission (task files, or a
    ``run.json`` naming a submitted array): its tasks would write the same exit files."""
    path = path.resolve()
    try:
        if fresh:
            path.parent.mkdir(parents=True, exist_ok=True)
            base, n = path, 1
            while True:
                try:
                    path.mkdir()
                    break
                except FileExistsError:
                    n += 1
                    path = base.with_name(f"{base.name}-{n}")
        for sub in ("logs", "tasks"):
            (path / sub).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise from_os_error(exc, f"creating run folder {path}") from None
    if any((path / "tasks").iterdir()):
        raise InputError(f"run folder {path} already holds task files of an earlier submission",
                         hint="give a new --run-dir (or leave it out for a fresh one)")
    earlier = _submitted_array(path / "run.json")
    if earlier:
        raise InputError(f"run folder {path} belongs to array job {earlier}, submitted already",
                         hint="give a new --run-dir (or leave it out for a fresh one)")
    return path


def _submitted_array(run_json: Path) -> str | None:
    """The array job ID a run folder's run.json records (None: none, dry run or sbatch refused)."""
    try:
        doc = json.loads(run_json.read_text())
    except (OSError, ValueError):
        return None
    job = doc.get("array_job") if isinstance(doc, dict) else None
    return str(job) if job else None


def _write(path: Path, text: str, mode: int | None = None) -> None:
    try:
        atomic_write_text(path, text)
        if mode is not None:
            path.chmod(mode)
    except OSError as exc:
        raise from_os_error(exc, f"writing {path}") from None


def _summary_sbatch(sb: SbatchOptions, run_dir: Path) -> SbatchOptions:
    """The summary job: same account and partition, its own short defaults."""
    return SbatchOptions(job_name="cs-sync-summary", account=sb.account, partition=sb.partition,
                         output=log_path(str(run_dir / "logs"), "summary_%j.out"))


REMOTE_FILE = "remote"


def _jobs_remote(remote: str, passthrough: tuple[str, ...], run_dir: Path) -> tuple[tuple[str, ...], str | None]:
    """How the jobs get the remote: as ``--remote`` in their options, or, when its connection
    string carries credentials, from a 0600 file in the run folder (exported as
    ``$CS_SYNC_REMOTE`` by the script), so no script, log or ``run.json`` holds them.
    Returns the options for the jobs and that file (None when not needed)."""
    if not has_credentials(remote) and not any(has_credentials(a) for a in passthrough):
        return passthrough, None
    path = run_dir / REMOTE_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # also when the file was there with a wider mode
            os.write(fd, remote.encode())
        finally:
            os.close(fd)
    except OSError as exc:
        raise from_os_error(exc, f"writing {path}") from None
    return _without_remote(passthrough), str(path)


def _without_remote(args: tuple[str, ...]) -> tuple[str, ...]:
    out: list[str] = []
    skip = False
    for a in args:
        if skip:
            skip = False
        elif a == "--remote":
            skip = True
        elif not a.startswith("--remote="):
            out.append(a)
    return tuple(out)


def _record(run_dir: Path, result: SubmitResult, settings: RunSettings, weights: Mapping[str, int],
            passthrough: tuple[str, ...], remote_file: str | None) -> None:
    doc = {
        "kind": result.kind,
        "version": result.version,
        "tasks": settings.tasks,
        "array_job": result.array_job,
        "summary_job": result.summary_job,
        "passthrough": [redact(a) for a in passthrough],
        "remote": redact(result.remote),
        "remote_file": remote_file,
        "sbatch": asdict(settings.sbatch),
        "shards": [{"index": s.index, "bytes": s.bytes, "faults": list(s.keys)} for s in result.plan.shards],
        "weights": dict(weights),
        "submitted": None if settings.dry_run else time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    _write(run_dir / "run.json", json.dumps(doc, indent=1, sort_keys=True) + "\n")


def _submit(slurm: Slurm, result: SubmitResult) -> None:
    result.array_job = slurm.submit(result.array_script)
    try:
        result.summary_job = slurm.submit(result.summary_script, dependency=f"afterany:{result.array_job}",
                                          export={"CS_ARRAY_JOB": result.array_job})
    except SlurmError as exc:
        raise SlurmError(
            f"array job {result.array_job} was submitted, but the summary job was not: {exc.message}",
            hint=f"submit it by hand: sbatch --dependency=afterany:{result.array_job} "
                 f"--export=ALL,CS_ARRAY_JOB={result.array_job} {shlex.quote(str(result.summary_script))}",
        ) from None


def prepare_upload(settings: UploadRun, slurm: Slurm | None) -> SubmitResult:
    """Plan, render and (unless dry-run) submit an upload array plus its summary job."""
    up = settings.upload
    cs_root = Path(up.cs_root).resolve()
    manifest = read_manifest(up.manifest, cs_root)
    weights = upload_weights(manifest, up)
    if not weights:
        raise InputError(f"{up.manifest}: no sets to upload" + (f" for -t {' '.join(up.types)}" if up.types else ""))
    files_to_sync = str(Path(up.manifest).resolve())

    def array(run_dir: str, passthrough: tuple[str, ...], sbatch: SbatchOptions, remote_file: str | None) -> str:
        return render_upload_array(UploadArrayJob(
            cs_root=str(cs_root), files_to_sync=files_to_sync, tasks=settings.tasks, run_dir=run_dir,
            upload_args=passthrough, bin_dir=settings.bin_dir, sbatch=sbatch, remote_file=remote_file))

    return _prepare("upload", cs_root.name, up.remote, settings, weights, array, slurm, files_to_sync=files_to_sync)


def prepare_download(settings: DownloadRun, rclone: Rclone, slurm: Slurm | None) -> SubmitResult:
    """List the version once, plan, render and (unless dry-run) submit a download array plus summary."""
    down = settings.download
    weights = download_weights(read_version(rclone, down.remote, down.version), down)
    if not any(weights.values()):
        raise InputError(f"version {down.version}: nothing to fetch for this selection",
                         hint=f"check -t / --inc_fault / --rel against `cs-sync status {down.version}`")

    def array(run_dir: str, passthrough: tuple[str, ...], sbatch: SbatchOptions, remote_file: str | None) -> str:
        return render_download_array(DownloadArrayJob(
            version=down.version, tasks=settings.tasks, run_dir=run_dir, download_args=passthrough,
            bin_dir=settings.bin_dir, sbatch=sbatch, remote_file=remote_file))

    return _prepare("download", down.version, down.remote, settings, weights, array, slurm)


def prepare_index(settings: IndexRun, rclone: Rclone, slurm: Slurm | None) -> SubmitResult:
    """List the version once, plan, render and (unless dry-run) submit an index array plus summary."""
    idx = settings.index
    weights = index_weights(read_version(rclone, idx.remote, idx.version), idx)
    if not weights:
        raise InputError(f"version {idx.version}: no set matches this selection",
                         hint=f"check -t / --inc_fault against `cs-sync status {idx.version}`")

    def array(run_dir: str, passthrough: tuple[str, ...], sbatch: SbatchOptions, remote_file: str | None) -> str:
        return render_index_array(IndexArrayJob(
            version=idx.version, tasks=settings.tasks, run_dir=run_dir, index_args=passthrough,
            bin_dir=settings.bin_dir, sbatch=sbatch, remote_file=remote_file))

    return _prepare("index", idx.version, idx.remote, settings, weights, array, slurm)


ArrayScript = Callable[[str, tuple[str, ...], SbatchOptions, str | None], str]  # (run_dir, options, sbatch, remote_file)


def _prepare(kind: str, version: str, remote: str, settings: RunSettings, weights: Mapping[str, int],
             array_script: ArrayScript, slurm: Slurm | None, *, files_to_sync: str | None = None) -> SubmitResult:
    """What every kind does once its weights are known: the shards, the run folder, how the jobs
    get the remote, the array script (``array_script(run_dir, options, sbatch, remote_file)``)
    and the summary script; then :func:`_finish`."""
    plan = plan_shards(weights, settings.tasks, rate=settings.rate, time_limit=settings.time_limit)
    run_dir = (_make_run_dir(settings.run_dir) if settings.run_dir
               else _make_run_dir(default_run_dir(version, kind), fresh=True))
    passthrough, remote_file = _jobs_remote(remote, tuple(settings.passthrough), run_dir)
    sbatch = replace(settings.sbatch, job_name=settings.sbatch.job_name or f"cs-sync-{kind}-{version}",
                     output=log_path(str(run_dir / "logs"), f"{kind}_%A_%a.out"))
    array = array_script(str(run_dir), passthrough, sbatch, remote_file)
    summary = render_summary(SummaryJob(
        kind=kind, version=version, tasks=settings.tasks, run_dir=str(run_dir),
        remote=None if remote_file else remote, files_to_sync=files_to_sync, bin_dir=settings.bin_dir,
        sbatch=_summary_sbatch(settings.sbatch, run_dir), remote_file=remote_file,
    ))
    return _finish(kind, version, remote, run_dir, plan, array, summary, settings, weights, slurm,
                   passthrough, remote_file)


def _finish(kind: str, version: str, remote: str, run_dir: Path, plan: ShardPlan, array: str, summary: str,
            settings: RunSettings, weights: Mapping[str, int], slurm: Slurm | None,
            passthrough: tuple[str, ...], remote_file: str | None) -> SubmitResult:
    array_path = run_dir / f"{kind}_array.sl"
    summary_path = run_dir / "summary.sl"
    _write(array_path, array, 0o755)
    _write(summary_path, summary, 0o755)
    _write(run_dir / "plan.txt", "\n".join(plan.lines()) + "\n")
    result = SubmitResult(kind, version, remote, run_dir, plan, array_path, summary_path)
    # before submitting: a failed sbatch still leaves the plan
    _record(run_dir, result, settings, weights, passthrough, remote_file)
    if not settings.dry_run:
        if slurm is None:
            raise SlurmError("no Slurm client given")
        try:
            _submit(slurm, result)
        finally:
            _record(run_dir, result, settings, weights, passthrough, remote_file)
    return result
