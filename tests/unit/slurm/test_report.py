import pytest

from cs_sync.core.errors import ExitCode
from cs_sync.slurm.report import TaskOutcome, build_report, incomplete_from_status, read_task_outcomes


def write_tasks(run_dir, kind, started, exits):
    t = run_dir / "tasks"
    t.mkdir(parents=True)
    for i in started:
        (t / f"{kind}_{i}.started").write_text("2024-01-01T00:00:00Z\n")
    for i, code in exits.items():
        (t / f"{kind}_{i}.exit").write_text(f"{code}\n")


def test_read_task_outcomes_distinguishes_ok_failed_killed_never_ran(tmp_path):
    write_tasks(tmp_path, "upload", started=[0, 1, 2], exits={0: 0, 1: 130})
    got = read_task_outcomes(tmp_path, "upload", 4)
    assert got == [TaskOutcome(0, True, 0), TaskOutcome(1, True, 130), TaskOutcome(2, True, None),
                   TaskOutcome(3, False, None)]
    assert [t.describe() for t in got] == [
        "ok", "exit 130: interrupted (time limit or scancel)",
        "killed before it could record an exit code", "never started"]


def test_upload_complete_only_when_all_shards_ok_and_status_complete():
    ok = [TaskOutcome(i, True, 0) for i in range(3)]
    rep = build_report("upload", ok, version="v1", status_exit=0, status_doc={"sets": []})
    assert rep.exit_code == 0 and rep.failed_shards == []
    assert rep.lines()[0] == "cs-sync slurm upload of v1: 3 of 3 shard(s) finished cleanly"
    assert rep.lines()[-1] == "result: complete"
    # every shard fine but the remote says incomplete: not complete
    rep = build_report("upload", ok, status_exit=7)
    assert rep.exit_code == ExitCode.INCOMPLETE
    assert "NOT complete" in "\n".join(rep.lines())
    # status never ran: not complete either
    assert build_report("upload", ok, status_exit=None).exit_code == ExitCode.INCOMPLETE


def test_failed_shards_are_named():
    tasks = [TaskOutcome(0, True, 0), TaskOutcome(1, True, 130), TaskOutcome(2, False, None)]
    rep = build_report("download", tasks)
    assert rep.exit_code == ExitCode.INCOMPLETE
    assert rep.failed_shards == [1, 2]
    assert rep.lines()[-1] == "result: INCOMPLETE; failed shard(s): 1 2; re-submit the same command to continue"
    assert build_report("download", [TaskOutcome(0, True, 0)]).exit_code == 0


def test_incomplete_sets_from_status_json():
    doc = {"version": "v1", "has_list": True, "has_stocktake": False, "cells": [
        {"fault": "A", "type": "BB", "state": "complete", "problems": []},
        {"fault": "A", "type": "IM", "state": "incomplete", "problems": ["missing part _1"]},
        {"fault": "B", "type": "IM", "state": "absent", "problems": []},  # B has no IM: fine
        {"fault": "B", "type": "Source", "state": "not uploaded", "problems": []}]}
    assert incomplete_from_status(doc) == [
        "A_IM (incomplete: missing part _1)", "B_Source (not uploaded)", "stocktake.csv (not on the remote)"]
    rep = build_report("upload", [TaskOutcome(0, True, 0)], status_exit=0, status_doc=doc)
    assert rep.exit_code == ExitCode.INCOMPLETE
    assert ("incomplete or missing sets (3): A_IM (incomplete: missing part _1), B_Source (not uploaded), "
            "stocktake.csv (not on the remote)") in rep.lines()
    assert incomplete_from_status(None) == [] and incomplete_from_status([1]) == []


def test_bad_kind():
    with pytest.raises(ValueError):
        build_report("sideways", [])


def test_slurm_state_is_added_when_known(tmp_path):
    write_tasks(tmp_path, "upload", started=[0, 1], exits={0: 0})
    got = read_task_outcomes(tmp_path, "upload", 2, {0: "COMPLETED", 1: "TIMEOUT"})
    assert [t.describe() for t in got] == ["ok", "killed before it could record an exit code [Slurm: TIMEOUT]"]


def test_a_task_refused_by_the_lock_says_so():
    from cs_sync.slurm.report import TaskOutcome

    assert TaskOutcome(2, True, 11, None).describe() == "exit 11: another run held the lock"


def test_failed_shards_name_their_logs_and_the_command_that_reruns_only_them():
    """A report read days later must say how to redo only what failed: the rendered array
    script with --array=those shards (quoted: run folders may have spaces), then a summary."""
    import shlex

    tasks = [TaskOutcome(0, True, 0), TaskOutcome(1, True, 7, "FAILED"), TaskOutcome(2, True, 130, "TIMEOUT")]
    rep = build_report("download", tasks, version="v1", run_dir="/scratch/my runs/r1", array_job="754")
    lines = rep.lines()
    assert lines[2] == ("  shard 1/3: exit 7: some sets failed or are incomplete [Slurm: FAILED] "
                        "(log: /scratch/my runs/r1/logs/download_754_1.out)")
    assert lines[1] == "  shard 0/3: ok"  # no log named for a shard that is fine
    pending = build_report("download", [TaskOutcome(0, False, None)], run_dir="/r", array_job="9").lines()
    assert pending[1] == "  shard 0/1: never started"  # nor for one that never ran: it has none
    rerun = next(ln for ln in lines if ln.startswith("re-run only the failed shard(s): "))
    assert shlex.split(rerun.split(": ", 1)[1]) == ["sbatch", "--array=1,2", "/scratch/my runs/r1/download_array.sl"]
    summary = next(ln for ln in lines if ln.startswith("  then a new report: "))
    assert shlex.split(summary.split(": ", 1)[1]) == [
        "sbatch", "--dependency=afterany:NEW_ARRAY_ID", "--export=ALL,CS_ARRAY_JOB=NEW_ARRAY_ID",
        "/scratch/my runs/r1/summary.sl"]
    assert lines[-1].startswith("result: INCOMPLETE; failed shard(s): 1 2")
    # outside a run folder of `cs-sync slurm` (templates submitted by hand) there is no script to name
    assert not any(ln.startswith("re-run only") for ln in build_report("download", tasks).lines())
    # and nothing to re-run when every shard is fine
    ok = build_report("download", [TaskOutcome(0, True, 0)], run_dir="/r", array_job="1")
    assert not any(ln.startswith("re-run only") or "(log:" in ln for ln in ok.lines())
