import pytest

from cs_sync.core.errors import UsageError
from cs_sync.core.sharding import assign_shards
from cs_sync.slurm.shard_plan import format_duration, parse_rate, parse_slurm_time, plan_shards


@pytest.mark.parametrize("text,seconds", [
    ("90", 5400), ("10:30", 630), ("02:00:00", 7200), ("1-00", 86400), ("1-02:30", 95400), ("2-00:00:01", 172801),
])
def test_parse_slurm_time(text, seconds):
    assert parse_slurm_time(text) == seconds


@pytest.mark.parametrize("bad", ["", "abc", "1:2:3:4", "-5", "1-"])
def test_parse_slurm_time_bad(bad):
    with pytest.raises(UsageError):
        parse_slurm_time(bad)


def test_parse_rate_and_duration():
    assert parse_rate("8M") == 8 * 1024**2
    assert parse_rate("8M/s") == 8 * 1024**2
    assert parse_rate("100MB") == 100e6
    assert format_duration(3661) == "01:01:01"
    assert format_duration(90061) == "1-01:01:01"


def test_plan_matches_assign_shards_and_reports_bytes():
    weights = {"A": 500, "B": 300, "C": 300, "D": 100, "E": 50}
    plan = plan_shards(weights, 2)
    assert [list(s.keys) for s in plan.shards] == assign_shards(weights, 2)
    assert [s.bytes for s in plan.shards] == [sum(weights[k] for k in s.keys) for s in plan.shards]
    assert sum(s.bytes for s in plan.shards) == plan.total_bytes == 1250
    assert plan.warnings == ()
    lines = plan.lines()
    assert lines[0].startswith("2 shard(s)")
    assert any(ln.startswith("  shard 0/2:") for ln in lines)


def test_time_estimate_and_warning_when_slowest_shard_does_not_fit():
    weights = {"A": 4 * 1024**3, "B": 1024**3, "C": 1024**3}
    rate = parse_rate("1M")
    fits = plan_shards(weights, 2, rate=rate, time_limit=2 * 3600)
    assert fits.shards[0].seconds == pytest.approx(4096)
    assert fits.warnings == ()
    tight = plan_shards(weights, 2, rate=rate, time_limit=3600)
    assert len(tight.warnings) == 1 and "largest shard (0" in tight.warnings[0] and "--time 01:00:00" in tight.warnings[0]
    assert any("~01:08:16" in ln for ln in tight.lines())


def test_more_tasks_than_faults_warns():
    plan = plan_shards({"A": 1, "B": 2}, 4)
    assert sum(1 for s in plan.shards if not s.keys) == 2
    assert "2 of 4 shard(s) get no fault" in plan.warnings[0]


def test_tasks_must_be_positive():
    with pytest.raises(UsageError):
        plan_shards({"A": 1}, 0)
