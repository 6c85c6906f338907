"""The summary job's report: which shards failed, which sets are incomplete, one exit code.

Each array task of ``upload_array.sl`` / ``download_array.sl`` writes
``tasks/{kind}_{i}.started`` when it starts and ``tasks/{kind}_{i}.exit`` (its
command's exit code) when it ends. A task killed hard (SIGKILL after the time
limit's grace period, node failure) leaves only the first; a task that never ran
leaves neither. :func:`build_report` turns those facts, plus the exit code and
JSON of ``cs-sync status`` for an upload, into the report. Pure apart from
:func:`read_task_outcomes`, which only reads those small files.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cs_sync.core.errors import ExitCode
from cs_sync.core.naming import LIST_FILE, STOCKTAKE_FILE
from cs_sync.status import BAD_STATES

KINDS = ("upload", "download", "index")


@dataclass(frozen=True)
class TaskOutcome:
    index: int
    started: bool
    exit_code: int | None  # None: no exit file (killed hard, or never ran)
    slurm_state: str | None = None  # Slurm's word for how the task ended (TIMEOUT, CANCELLED, ...), if known

    @property
    def ok(self) -> bool:
        return self.exit_code == 0

    def describe(self) -> str:
        if self.exit_code == 0:
            text = "ok"
        elif self.exit_code is not None:
            what = {130: "interrupted (time limit or scancel)", 7: "some sets failed or are incomplete",
                    11: "another run held the lock"}.get(
                self.exit_code, "failed")
            text = f"exit {self.exit_code}: {what}"
        else:
            text = "killed before it could record an exit code" if self.started else "never started"
        if self.slurm_state and self.slurm_state != "COMPLETED":
            text += f" [Slurm: {self.slurm_state}]"
        return text


@dataclass(frozen=True)
class Report:
    kind: str
    version: str | None
    tasks: tuple[TaskOutcome, ...]
    status_exit: int | None
    incomplete_sets: tuple[str, ...]
    exit_code: int
    run_dir: str | None = None  # a run folder of `cs-sync slurm` (holds the rendered scripts)
    array_job: str | None = None  # the array's job ID, when known: names each task's log

    def log_of(self, index: int) -> str | None:
        """Where task ``index`` logged (the rendered script's --output), when that is known."""
        if not (self.run_dir and self.array_job):
            return None
        return f"{self.run_dir}/logs/{self.kind}_{self.array_job}_{index}.out"

    def rerun_lines(self) -> list[str]:
        """The exact commands that run only the failed shards again, then a new report."""
        if not self.run_dir or not self.failed_shards:
            return []
        shards = ",".join(str(i) for i in self.failed_shards)
        script = shlex.quote(f"{self.run_dir}/{self.kind}_array.sl")
        summary = shlex.quote(f"{self.run_dir}/summary.sl")
        return [f"re-run only the failed shard(s): sbatch --array={shards} {script}",
                f"  then a new report: sbatch --dependency=afterany:NEW_ARRAY_ID "
                f"--export=ALL,CS_ARRAY_JOB=NEW_ARRAY_ID {summary}"]

    @property
    def failed_shards(self) -> list[int]:
        return [t.index for t in self.tasks if not t.ok]

    def lines(self) -> list[str]:
        n = len(self.tasks)
        ok = n - len(self.failed_shards)
        head = f"cs-sync slurm {self.kind}" + (f" of {self.version}" if self.version else "")
        out = [f"{head}: {ok} of {n} shard(s) finished cleanly"]
        for t in self.tasks:
            log = self.log_of(t.index) if t.started and not t.ok else None  # no log from a task that never ran
            out.append(f"  shard {t.index}/{n}: {t.describe()}" + (f" (log: {log})" if log else ""))
        if self.kind == "upload":
            if self.status_exit is None:
                out.append("remote status: not checked")
            elif self.status_exit == 0:
                out.append("remote status: the version is complete on the remote")
            else:
                out.append(f"remote status: NOT complete (cs-sync status exited {self.status_exit})")
            if self.incomplete_sets:
                shown = list(self.incomplete_sets[:50])
                more = len(self.incomplete_sets) - len(shown)
                out.append(f"incomplete or missing sets ({len(self.incomplete_sets)}): " + ", ".join(shown)
                           + (f", ... and {more} more" if more else ""))
        out.extend(self.rerun_lines())
        if self.exit_code == 0:
            out.append("result: complete")
        else:
            shards = " ".join(str(i) for i in self.failed_shards)
            out.append("result: INCOMPLETE" + (f"; failed shard(s): {shards}" if shards else "")
                       + "; re-submit the same command to continue")
        return out


def read_task_outcomes(run_dir: Path | str, kind: str, n: int,
                       slurm_states: dict[int, str] | None = None) -> list[TaskOutcome]:
    """Read ``tasks/{kind}_{i}.started|.exit`` for i in 0..n-1 (plus Slurm's state of each task, if given)."""
    tasks = Path(run_dir) / "tasks"
    out = []
    for i in range(n):
        code: int | None = None
        try:
            code = int((tasks / f"{kind}_{i}.exit").read_text().strip())
        except (OSError, ValueError):
            code = None
        out.append(TaskOutcome(i, (tasks / f"{kind}_{i}.started").exists(), code, (slurm_states or {}).get(i)))
    return out


def incomplete_from_status(doc: Any) -> list[str]:
    """What ``cs-sync status VERSION --json`` says is not complete: sets (with what is
    wrong) and a missing list.txt / stocktake.csv."""
    if not isinstance(doc, dict):
        return []
    bad = {s.value for s in BAD_STATES}
    found = []
    for cell in doc.get("cells", []):
        if isinstance(cell, dict) and cell.get("state") in bad:
            why = "; ".join(cell.get("problems") or [])
            found.append(f"{cell.get('fault')}_{cell.get('type')} ({cell['state']}{': ' + why if why else ''})")
    if doc.get("has_list") is False:
        found.append(f"{LIST_FILE} (not on the remote)")
    if doc.get("has_stocktake") is False:
        found.append(f"{STOCKTAKE_FILE} (not on the remote)")
    return found


def build_report(kind: str, tasks: list[TaskOutcome], *, version: str | None = None,
                 status_exit: int | None = None, status_doc: Any = None,
                 run_dir: str | None = None, array_job: str | None = None) -> Report:
    """Exit 0 only when every shard exited 0 and, for an upload, status says complete.
    ``run_dir``: the run folder of `cs-sync slurm` (with ``{kind}_array.sl``), so the report
    says how to re-run only the failed shards; ``array_job`` names their logs."""
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r}")
    incomplete = incomplete_from_status(status_doc) if status_doc is not None else []
    complete = all(t.ok for t in tasks)
    if kind == "upload":
        complete = complete and status_exit == 0 and not incomplete
    code = ExitCode.OK if complete else ExitCode.INCOMPLETE
    return Report(kind, version, tuple(tasks), status_exit, tuple(incomplete), int(code), run_dir, array_job)


def load_status_json(path: Path | str) -> Any:
    """The status JSON, or None when it is missing or unreadable (status failed)."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
