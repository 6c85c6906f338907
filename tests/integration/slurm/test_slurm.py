"""Job scripts and the Slurm runner on a real single-node cluster (slurm/cluster.sh).

Skipped with the reason when no cluster is up; with CS_SYNC_REQUIRE_SLURM=1 (CI)
they fail instead.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cs_sync.slurm.client import Slurm
from cs_sync.slurm.render import (
    DownloadArrayJob,
    SbatchOptions,
    SummaryJob,
    UploadArrayJob,
    render_download_array,
    render_summary,
    render_upload_array,
)

from slurm_helpers import need_slurm

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[3]
WAIT = 180  # seconds: a generous bound for jobs that take a second or two; not a timing assertion


@pytest.fixture
def slurm() -> Slurm:
    return Slurm(env=need_slurm())


def fake_command(bin_dir: Path, name: str, body: str) -> None:
    """A stand-in for one cs-sync command: records its arguments, then runs ``body``.

    These tests are about the job scripts (arguments, shards, exit files, signals,
    dependencies); the real commands run under Slurm in the end-to-end tests.
    """
    bin_dir.mkdir(parents=True, exist_ok=True)
    p = bin_dir / name
    p.write_text("#!/bin/bash\n"
                 'printf "%s\\n" "$@" > "$RECORD_DIR/args_$SLURM_ARRAY_TASK_ID"\n' + body + "\n")
    p.chmod(p.stat().st_mode | stat.S_IEXEC)


def real_cs_sync(bin_dir: Path) -> None:
    """`cs-sync` in the fake bin folder is the real one (the summary's report)."""
    target = Path(sys.executable).parent / "cs-sync"
    (bin_dir / "cs-sync").symlink_to(target)


def test_rendered_array_runs_every_shard_and_summary_runs_after_it(tmp_path, slurm, monkeypatch):
    run_dir, bin_dir, rec = tmp_path / "run", tmp_path / "bin", tmp_path / "rec"
    rec.mkdir()
    (run_dir / "logs").mkdir(parents=True)
    monkeypatch.setenv("RECORD_DIR", str(rec))
    # shard 1 fails with exit 3; the others succeed
    fake_command(bin_dir, "cs-sync-download", '[ "$SLURM_ARRAY_TASK_ID" = 1 ] && exit 3; exit 0')
    real_cs_sync(bin_dir)
    job = DownloadArrayJob(version="v 1", tasks=3, run_dir=str(run_dir), bin_dir=str(bin_dir),
                           download_args=("--remote", "x: y", "-t", "BB"),
                           sbatch=SbatchOptions(time="00:05:00", mem="100M", cpus_per_task=1,
                                                output=str(run_dir / "logs" / "download_%A_%a.out")))
    array_script = run_dir / "download_array.sl"
    array_script.write_text(render_download_array(job))
    summary_script = run_dir / "summary.sl"
    summary_script.write_text(render_summary(SummaryJob(
        kind="download", version="v 1", tasks=3, run_dir=str(run_dir), bin_dir=str(bin_dir),
        sbatch=SbatchOptions(output=str(run_dir / "logs" / "summary_%j.out")))))

    array_id = slurm.submit(array_script)
    summary_id = slurm.submit(summary_script, dependency=f"afterany:{array_id}", export={"CS_ARRAY_JOB": array_id})
    states = slurm.wait([array_id, summary_id], timeout=WAIT)

    tasks = {t.array_task: t for t in states[array_id]}
    assert sorted(tasks) == [0, 1, 2]
    assert [tasks[i].exit_code for i in range(3)] == [0, 3, 0]
    for i in range(3):
        assert (rec / f"args_{i}").read_text().splitlines() == [
            "v 1", "--shard", f"{i}/3", "--remote", "x: y", "-t", "BB"]
        assert (run_dir / "tasks" / f"download_{i}.exit").read_text().strip() == ("3" if i == 1 else "0")
        assert (run_dir / "logs" / f"download_{array_id}_{i}.out").exists()
    # the summary job ran after the array (afterany: also after a failed task) and names shard 1
    (summary,) = states[summary_id]
    assert summary.state == "FAILED" and summary.exit_code == 7
    report = (run_dir / "report.txt").read_text()
    assert "cs-sync slurm download of v 1: 2 of 3 shard(s) finished cleanly" in report
    assert "shard 1/3: exit 3: failed [Slurm: FAILED]" in report  # Slurm's own view, from scontrol
    assert "shard 0/3: ok\n" in report
    assert "failed shard(s): 1;" in report
    assert "2 of 3 shard(s) finished cleanly" in (run_dir / "report.html").read_text()  # and as a page


def test_scancel_mid_task_is_recorded_as_interrupted(tmp_path, slurm, monkeypatch):
    run_dir, bin_dir, rec = tmp_path / "run", tmp_path / "bin", tmp_path / "rec"
    rec.mkdir()
    (run_dir / "logs").mkdir(parents=True)
    monkeypatch.setenv("RECORD_DIR", str(rec))
    # like cs-sync-upload: SIGTERM -> exit 130 (common.run maps it so)
    fake_command(bin_dir, "cs-sync-upload",
                 'trap "exit 130" TERM\ntouch "$RECORD_DIR/running_$SLURM_ARRAY_TASK_ID"\n'
                 '[ "$SLURM_ARRAY_TASK_ID" = 0 ] && exit 0\nsleep 600 & wait')
    job = UploadArrayJob(cs_root="/v", files_to_sync="/f.yaml", tasks=2, run_dir=str(run_dir), bin_dir=str(bin_dir),
                         sbatch=SbatchOptions(time="00:05:00", output=str(run_dir / "logs" / "upload_%A_%a.out")))
    script = run_dir / "upload_array.sl"
    script.write_text(render_upload_array(job))
    array_id = slurm.submit(script)
    import time

    deadline = time.monotonic() + WAIT
    while not (rec / "running_1").exists():
        assert time.monotonic() < deadline, "task 1 never started"
        time.sleep(0.2)
    slurm.cancel(f"{array_id}_1")
    states = slurm.wait([array_id], timeout=WAIT)
    tasks = {t.array_task: t for t in states[array_id]}
    assert tasks[0].state == "COMPLETED"
    assert tasks[1].state == "CANCELLED"
    assert (run_dir / "tasks" / "upload_0.exit").read_text().strip() == "0"
    assert (run_dir / "tasks" / "upload_1.exit").read_text().strip() == "130"
    assert "SIGTERM" in (run_dir / "logs" / f"upload_{array_id}_1.out").read_text()


def test_templates_submitted_by_hand_with_export(tmp_path, slurm, monkeypatch):
    """slurm/*.sl as users submit them: sbatch --export=ALL,... from the submit folder."""
    bin_dir, rec = tmp_path / "bin", tmp_path / "rec"
    rec.mkdir()
    monkeypatch.setenv("RECORD_DIR", str(rec))
    fake_command(bin_dir, "cs-sync-upload", "exit 0")
    fake_command(bin_dir, "cs-sync-download", '[ "$SLURM_ARRAY_TASK_ID" = 1 ] && exit 130; exit 0')
    real_cs_sync(bin_dir)
    env = {**os.environ, **need_slurm()}

    def sbatch(*args: str) -> str:
        out = subprocess.run(["sbatch", "--parsable", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip().split(";")[0]

    up_id = sbatch("--array=0-1", "--time=00:05:00",
                   f"--export=ALL,CS_ROOT=/data/v22p12,FILES_TO_SYNC=/data/f.yaml,CS_SHARDS=2,CS_SYNC_BIN={bin_dir},"
                   "CS_UPLOAD_OPTS=--remote dst: --transfers 2",
                   str(ROOT / "slurm" / "upload_array.sl"))
    states = slurm.wait([up_id], timeout=WAIT)
    assert [t.exit_code for t in states[up_id]] == [0, 0]
    for i in range(2):
        assert (rec / f"args_{i}").read_text().splitlines() == [
            "/data/v22p12", "/data/f.yaml", "--shard", f"{i}/2", "--remote", "dst:", "--transfers", "2"]
        # the template's own --output, relative to the submit folder, and the exit files there too
        assert (tmp_path / f"cs-sync-upload_{up_id}_{i}.out").exists()
        assert (tmp_path / "tasks" / f"upload_{i}.exit").read_text().strip() == "0"

    down_id = sbatch("--array=0-2", f"--export=ALL,CS_VER=v22p12,CS_SHARDS=3,CS_SYNC_BIN={bin_dir},"
                     "CS_DOWNLOAD_OPTS=--download_dir '/data/my v22p12'", str(ROOT / "slurm" / "download_array.sl"))
    summary_id = sbatch(f"--dependency=afterany:{down_id}",
                        f"--export=ALL,CS_KIND=download,CS_VER=v22p12,CS_SHARDS=3,CS_SYNC_BIN={bin_dir}",
                        str(ROOT / "slurm" / "summary.sl"))
    states = slurm.wait([down_id, summary_id], timeout=WAIT)
    assert sorted(t.exit_code for t in states[down_id]) == [0, 0, 130]
    assert (rec / "args_2").read_text().splitlines() == ["v22p12", "--shard", "2/3", "--download_dir", "/data/my v22p12"]
    assert states[summary_id][0].exit_code == 7
    assert (tmp_path / f"cs-sync-summary_{summary_id}.out").exists()
    report = (tmp_path / "report.txt").read_text()
    assert "shard 1/3: exit 130: interrupted (time limit or scancel)\n" in report  # no CS_ARRAY_JOB: no Slurm state
    assert "result: INCOMPLETE; failed shard(s): 1;" in report
