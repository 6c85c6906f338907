"""Render the sbatch job scripts of ``slurm/`` from settings: pure text in, text out.

The templates (package data in ``cs_sync/slurm/templates/``, the same files as
``slurm/`` in the repository) are complete scripts users can read and submit by
hand with ``sbatch --export``. Rendering keeps their text and changes two things:

* the ``#SBATCH`` header: one line per option that was given (with the
  template's comment for it), none for options left to the cluster's defaults;
* the settings block: shell assignments of the script's variables, so the
  rendered script needs no ``--export``.

The body that does the work is the template's own, byte for byte, so a script
submitted by hand and one submitted by ``cs-sync slurm`` run the same commands.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from importlib import resources

from cs_sync.core.errors import UsageError
from cs_sync.remote.redact import has_credentials

TEMPLATES = ("preprocess.sl", "upload_array.sl", "download_array.sl", "index_array.sl", "summary.sl")
SETTINGS_BEGIN = "# ---- settings (cs-sync slurm writes values here) ----"
SETTINGS_END = "# ---- end of settings ----"

# "#SBATCH --opt=value   # comment"; "##SBATCH" marks a documented option left off
_DIRECTIVE_RE = re.compile(r"^(?P<hashes>##?)SBATCH\s+--(?P<opt>[a-z-]+)(?:=(?P<value>\S+))?\s*(?:#\s?(?P<comment>.*))?$")
# values sbatch reads as they are; anything else goes in double quotes, which sbatch
# strips (it does not understand shell single quotes, so shlex.quote is wrong here)
_PLAIN_VALUE_RE = re.compile(r"^[A-Za-z0-9_@%+=:,./-]+$")
_VAR_RE = re.compile(r"^[A-Z_][A-Z0-9_]*$")

# comments for options a template does not document
_DEFAULT_COMMENTS = {
    "array": "one task per shard: task i runs shard i",
    "dependency": "start after these jobs",
    "partition": "partition to run in",
}


@dataclass(frozen=True, kw_only=True)
class SbatchOptions:
    """sbatch options for one job script; None = leave it to the cluster's default."""

    job_name: str | None = None
    account: str | None = None
    partition: str | None = None
    time: str | None = None
    mem: str | None = None
    cpus_per_task: int | None = None
    output: str | None = None
    array: str | None = None

    def directives(self) -> list[tuple[str, str]]:
        """(option, value) pairs in a stable order, only for the options given."""
        out = []
        for name in ("job_name", "account", "partition", "time", "mem", "cpus_per_task", "output", "array"):
            value = getattr(self, name)
            if value is not None:
                out.append((name.replace("_", "-"), str(value)))
        return out


@dataclass(frozen=True, kw_only=True)
class UploadArrayJob:
    """Everything the upload array script needs: the manifest's version, N shards, options."""

    cs_root: str
    files_to_sync: str
    tasks: int
    run_dir: str
    upload_args: tuple[str, ...] = ()  # cs-sync-upload options passed through, e.g. ("--remote", "x:")
    bin_dir: str | None = None
    sbatch: SbatchOptions = field(default_factory=SbatchOptions)
    remote_file: str | None = None  # a 0600 file holding a remote with credentials (instead of --remote)


@dataclass(frozen=True, kw_only=True)
class DownloadArrayJob:
    version: str
    tasks: int
    run_dir: str
    download_args: tuple[str, ...] = ()
    bin_dir: str | None = None
    sbatch: SbatchOptions = field(default_factory=SbatchOptions)
    remote_file: str | None = None


@dataclass(frozen=True, kw_only=True)
class IndexArrayJob:
    version: str
    tasks: int
    run_dir: str
    index_args: tuple[str, ...] = ()  # cs-sync index options passed through
    bin_dir: str | None = None
    sbatch: SbatchOptions = field(default_factory=SbatchOptions)
    remote_file: str | None = None


@dataclass(frozen=True, kw_only=True)
class SummaryJob:
    kind: str  # "upload", "download" or "index"
    version: str
    tasks: int
    run_dir: str
    remote: str | None = None
    files_to_sync: str | None = None
    bin_dir: str | None = None
    sbatch: SbatchOptions = field(default_factory=SbatchOptions)
    remote_file: str | None = None


def load_template(name: str) -> str:
    """The shipped template text (package data, identical to ``slurm/NAME``)."""
    if name not in TEMPLATES:
        raise ValueError(f"unknown template {name!r}")
    return resources.files("cs_sync.slurm").joinpath("templates").joinpath(name).read_text()


def sbatch_value(option: str, value: str) -> str:
    """A value as sbatch reads it on a ``#SBATCH`` line; refuses what it cannot carry."""
    if _PLAIN_VALUE_RE.match(value):
        return value
    if any(c in value for c in '"\\\n\r') or not value.strip():
        raise UsageError(f"--{option} {value!r}: cannot be written on an #SBATCH line",
                         hint="use a value without quotes, backslashes or newlines")
    return f'"{value}"'


def log_path(folder: str, pattern: str) -> str:
    """``folder/pattern`` as an sbatch ``--output``/``--error`` value.

    sbatch reads that value as a filename pattern: ``%j``, ``%A``, ``%a``, ``%x``, ``%N``...
    (with an optional zero-pad width, e.g. ``%4j``) are replaced, and ``%%`` is one ``%``.
    The folder is a path the user chose and must be taken literally, so its every ``%`` is
    doubled; only ``pattern`` (e.g. ``upload_%A_%a.out``) is expanded. A backslash would turn
    all replacement off; :func:`sbatch_value` refuses it.
    """
    return f"{folder.rstrip('/').replace('%', '%%')}/{pattern}"


def render(template: str, sbatch: SbatchOptions, variables: dict[str, str | None]) -> str:
    """Template text -> job script: header from ``sbatch``, settings from ``variables``.

    Variables whose value is None are not written (the template's default applies).
    A value carrying credentials (an rclone connection string with a password or
    token) is refused: such a remote reaches the job through ``CS_REMOTE_FILE``.
    """
    lines = template.splitlines()
    try:
        begin = lines.index(SETTINGS_BEGIN)
        end = lines.index(SETTINGS_END, begin)
    except ValueError:
        raise ValueError("template has no settings block") from None
    given = dict(sbatch.directives())
    comments: dict[str, str] = {}
    first_directive = None
    head: list[str] = []
    for line in lines[:begin]:
        m = _DIRECTIVE_RE.match(line)
        if not m:
            head.append(line)
            continue
        if first_directive is None:
            first_directive = len(head)
        # a disabled "##SBATCH" line's comment explains how to enable it: not wanted here
        enabled = m.group("hashes") == "#"
        comments[m.group("opt")] = (m.group("comment") or "").strip() if enabled else ""
    if first_directive is None:
        raise ValueError("template has no #SBATCH lines")
    directives = []
    for opt, value in given.items():
        text = f"#SBATCH --{opt}={sbatch_value(opt, value)}"
        comment = comments.get(opt) or _DEFAULT_COMMENTS.get(opt, "")
        directives.append(f"{text:<40} # {comment}" if comment else text)
    head[first_directive:first_directive] = directives
    settings = []
    for name, var in variables.items():
        if not _VAR_RE.match(name):
            raise ValueError(f"bad variable name {name!r}")
        if var is not None:
            if has_credentials(str(var)):
                raise ValueError(f"{name}: credentials would be written into the job script (use CS_REMOTE_FILE)")
            settings.append(f"{name}={shlex.quote(str(var))}")
    out = head + lines[begin:begin + 1] + settings + lines[end:]
    return "\n".join(out) + "\n"


def _array(tasks: int) -> str:
    if tasks < 1:
        raise UsageError(f"--tasks {tasks}: need at least 1 task")
    return f"0-{tasks - 1}"


def _with(sbatch: SbatchOptions, **changes) -> SbatchOptions:
    from dataclasses import replace

    return replace(sbatch, **changes)


def render_upload_array(job: UploadArrayJob) -> str:
    """The upload array: ``--array=0-{N-1}``, task i runs ``cs-sync-upload ... --shard i/N``."""
    sb = _with(job.sbatch, array=_array(job.tasks))
    return render(load_template("upload_array.sl"), sb, {
        "CS_ROOT": job.cs_root,
        "FILES_TO_SYNC": job.files_to_sync,
        "CS_SHARDS": str(job.tasks),
        "CS_UPLOAD_OPTS": shlex.join(job.upload_args),
        "CS_RUN_DIR": job.run_dir,
        "CS_SYNC_BIN": job.bin_dir,
        "CS_REMOTE_FILE": job.remote_file,
    })


def _version_array(template: str, job: DownloadArrayJob | IndexArrayJob, opts: tuple[str, str]) -> str:
    """An array script of a command that reads one remote version; ``opts`` is (the template's
    variable, the options passed through to every task)."""
    sb = _with(job.sbatch, array=_array(job.tasks))
    return render(load_template(template), sb, {
        "CS_VER": job.version,
        "CS_SHARDS": str(job.tasks),
        opts[0]: opts[1],
        "CS_RUN_DIR": job.run_dir,
        "CS_SYNC_BIN": job.bin_dir,
        "CS_REMOTE_FILE": job.remote_file,
    })


def render_download_array(job: DownloadArrayJob) -> str:
    return _version_array("download_array.sl", job, ("CS_DOWNLOAD_OPTS", shlex.join(job.download_args)))


def render_index_array(job: IndexArrayJob) -> str:
    return _version_array("index_array.sl", job, ("CS_INDEX_OPTS", shlex.join(job.index_args)))


def render_summary(job: SummaryJob) -> str:
    if job.kind not in ("upload", "download", "index"):
        raise ValueError(f"summary kind {job.kind!r}")
    return render(load_template("summary.sl"), job.sbatch, {
        "CS_KIND": job.kind,
        "CS_VER": job.version,
        "CS_SHARDS": str(job.tasks),
        "CS_RUN_DIR": job.run_dir,
        "CS_REMOTE": job.remote,
        "FILES_TO_SYNC": job.files_to_sync,
        "CS_SYNC_BIN": job.bin_dir,
        "CS_REMOTE_FILE": job.remote_file,
    })

