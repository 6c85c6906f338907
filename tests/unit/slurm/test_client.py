"""Parsing what the Slurm commands print (the commands themselves run in tests/integration)."""

import pytest

from cs_sync.core.errors import SlurmError
from cs_sync.slurm.client import Slurm, parse_parsable, parse_scontrol_jobs

SCONTROL = (
    "JobId=7 ArrayJobId=7 ArrayTaskId=2 JobName=up UserId=root(0) JobState=TIMEOUT Reason=TimeLimit "
    "ExitCode=0:15 RunTime=00:01:00 StdOut=/tmp/a b/x.out\n"
    "JobId=8 ArrayJobId=7 ArrayTaskId=0 JobName=up JobState=COMPLETED Reason=None ExitCode=0:0\n"
    "JobId=9 ArrayJobId=7 ArrayTaskId=1 JobName=up JobState=FAILED Reason=NonZeroExitCode ExitCode=7:0\n"
    "JobId=12 JobName=sum JobState=PENDING Reason=Dependency Dependency=afterany:7_*(unfulfilled) ExitCode=0:0\n"
    "JobId=13 ArrayJobId=13 ArrayTaskId=3-5 JobName=up JobState=PENDING Reason=None ExitCode=0:0\n"
)


def test_parse_parsable():
    assert parse_parsable("123\n") == "123"
    assert parse_parsable("123;cluster\n") == "123"
    with pytest.raises(SlurmError):
        parse_parsable("Submitted batch job 5\n")


def test_parse_scontrol_jobs():
    jobs = parse_scontrol_jobs(SCONTROL)
    by_id = {j.job_id: j for j in jobs}
    assert by_id["7_2"].state == "TIMEOUT" and by_id["7_2"].signal == 15 and by_id["7_2"].finished
    assert by_id["7_0"].exit_code == 0 and by_id["7_0"].array_task == 0
    assert by_id["7_1"].exit_code == 7
    assert by_id["12"].state == "PENDING" and by_id["12"].exit_code is None and not by_id["12"].finished
    assert by_id["12"].reason == "Dependency"
    assert by_id["13"].array_task is None and not by_id["13"].finished  # pending tasks 3-5 as one record


def test_missing_command_is_a_slurm_error(tmp_path):
    slurm = Slurm(env={"PATH": str(tmp_path)})
    with pytest.raises(SlurmError) as e:
        slurm.submit(tmp_path / "x.sl")
    assert e.value.exit_code == 10
    assert "sbatch not found on PATH" in e.value.message


def test_commas_cannot_go_through_export(tmp_path):
    with pytest.raises(SlurmError):
        Slurm(env={"PATH": str(tmp_path)}).submit(tmp_path / "x.sl", export={"A": "1,2"})
