"""The one module that runs Slurm commands (sbatch, squeue, scontrol, sacct, scancel).

Argument lists only, never a shell. A missing command or a non-zero exit becomes
:class:`SlurmError` (exit code 10) with one line naming the command and Slurm's
own message. Everything else in cs_sync talks to Slurm through :class:`Slurm`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cs_sync.core.errors import SlurmError, UnknownJob

# states after which a job (or array task) will not run again
FINAL_STATES = frozenset({
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL",
    "OUT_OF_MEMORY", "PREEMPTED", "TIMEOUT",
})


@dataclass(frozen=True)
class JobState:
    """One job or array task as ``scontrol show job`` reports it."""

    job_id: str  # "123" or "123_4" for task 4 of array 123
    state: str  # COMPLETED, RUNNING, PENDING, TIMEOUT, CANCELLED, FAILED, ...
    exit_code: int | None  # the batch script's exit code; None while it runs
    signal: int | None  # the signal that ended it, if any
    array_task: int | None = None
    reason: str = ""

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES


def parse_parsable(stdout: str) -> str:
    """``sbatch --parsable`` prints ``jobid`` or ``jobid;cluster``."""
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = text.split(";", 1)[0].strip()
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed {stdout.strip()!r}, not a job ID")
    return job_id


def parse_scontrol_jobs(text: str) -> list[JobState]:
    """Parse ``scontrol show job -o`` output (one ``Key=Value ...`` line per job/task)."""
    jobs = []
    for line in text.splitlines():
        fields: dict[str, str] = {}
        for token in line.split():
            if "=" in token:
                k, v = token.split("=", 1)
                fields.setdefault(k, v)
        if "JobId" not in fields:
            continue
        task = fields.get("ArrayTaskId")
        array_id = fields.get("ArrayJobId")
        single_task = task is not None and task.isdigit()
        task_no = int(task) if task is not None and single_task else None
        job_id = f"{array_id}_{task}" if array_id and single_task else fields["JobId"]
        state = fields.get("JobState", "UNKNOWN")
        code, sig = None, None
        if state in FINAL_STATES and ":" in fields.get("ExitCode", ""):
            c, s = fields["ExitCode"].split(":", 1)
            code, sig = int(c), int(s)
        jobs.append(JobState(job_id=job_id, state=state, exit_code=code, signal=sig or None,
                             array_task=task_no, reason=fields.get("Reason", "")))
    return jobs


class Slurm:
    """Runs the Slurm client commands; ``env`` adds variables (e.g. SLURM_CONF) to ours.

    The environment is read at each call: jobs inherit it (sbatch --export=ALL).
    """

    def __init__(self, env: Mapping[str, str] | None = None, timeout: float = 120.0) -> None:
        self.extra_env = dict(env or {})
        self.timeout = timeout

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, **self.extra_env}

    def _run(self, cmd: str, args: Sequence[str], *, what: str) -> str:
        env = self.env
        exe = shutil.which(cmd, path=env.get("PATH"))
        if exe is None:
            raise SlurmError(f"{cmd} not found on PATH while {what}",
                             hint="run this on a Slurm login node (or `module add slurm`)")
        try:
            proc = subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            raise SlurmError(f"{cmd} did not answer within {self.timeout:.0f}s while {what}",
                             hint="is slurmctld up? try `squeue` by hand") from None
        except OSError as exc:
            raise SlurmError(f"cannot run {exe}: {exc}") from None
        if proc.returncode != 0:
            lines = [ln for ln in (proc.stderr or proc.stdout).strip().splitlines() if ln.strip()]
            detail = lines[-1] if lines else f"exit code {proc.returncode}"
            kind = UnknownJob if "Invalid job id" in detail else SlurmError  # read once, here, where stderr is
            raise kind(f"{cmd} failed while {what}: {detail}")
        return proc.stdout

    # --- submitting -------------------------------------------------------------------
    def submit(self, script: Path | str, *, dependency: str | None = None, export: Mapping[str, str] | None = None,
               extra: Sequence[str] = ()) -> str:
        """``sbatch --parsable [--dependency=...] [--export=ALL,K=V] [extra] script`` -> job ID.

        ``export`` values must not contain commas (sbatch splits on them).
        """
        args = ["--parsable"]
        if dependency:
            args.append(f"--dependency={dependency}")
        if export:
            for k, v in export.items():
                if "," in v:
                    raise SlurmError(f"cannot pass {k}={v!r} with sbatch --export: it contains a comma")
            args.append("--export=" + ",".join(["ALL", *(f"{k}={v}" for k, v in export.items())]))
        args.extend(extra)
        args.append(str(script))
        return parse_parsable(self._run("sbatch", args, what=f"submitting {script}"))

    # --- watching ---------------------------------------------------------------------
    def jobs(self, job_id: str) -> list[JobState]:
        """Every task of ``job_id`` as the controller knows it (finished jobs stay for MinJobAge)."""
        try:
            out = self._run("scontrol", ["show", "job", "-o", str(job_id)], what=f"reading job {job_id}")
        except UnknownJob:
            return []
        return parse_scontrol_jobs(out)

    def queue(self, user: str | None = None) -> list[str]:
        """Job IDs pending or running (``squeue -h -o %i``)."""
        args = ["-h", "-o", "%i"]
        if user:
            args += ["-u", user]
        return [ln.strip() for ln in self._run("squeue", args, what="listing the queue").splitlines() if ln.strip()]

    def wait(self, job_ids: Sequence[str], *, timeout: float, poll: float = 0.5) -> dict[str, list[JobState]]:
        """Poll until every task of every job is finished; SlurmError when ``timeout`` passes."""
        deadline = time.monotonic() + timeout
        while True:
            states = {j: self.jobs(j) for j in job_ids}
            if all(tasks and all(t.finished for t in tasks) for tasks in states.values()):
                return states
            if time.monotonic() > deadline:
                summary = "; ".join(f"{t.job_id} {t.state}" for tasks in states.values() for t in tasks)
                raise SlurmError(f"jobs {', '.join(job_ids)} not finished after {timeout:.0f}s: {summary}")
            time.sleep(poll)

    def completed(self, job_id: str) -> str:
        """``sacct -c`` (the job completion file of clusters without slurmdbd) for ``job_id``."""
        return self._run("sacct", ["-c", "-j", str(job_id), "-P", "-n", "-o", "jobid,state,exitcode"],
                         what=f"reading completion records of {job_id}")

    def cancel(self, job_id: str, *, signal: str | None = None) -> None:
        args = [f"--signal={signal}"] if signal else []
        self._run("scancel", [*args, str(job_id)], what=f"cancelling {job_id}")
