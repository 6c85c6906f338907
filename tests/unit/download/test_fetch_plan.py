"""Choosing between one rclone copy and byte ranges: pure decisions from a measured probe."""

import pytest

from cs_sync.download.fetch_plan import (
    MAX_RANGE,
    MIN_RANGE,
    START_COST_FACTOR,
    MiB,
    ProbeResult,
    plan_fetch,
    split_ranges,
    splittable,
)


def _probe(speed: float, start: float) -> ProbeResult:
    """What reading 4 MiB at ``speed`` bytes/s after ``start`` seconds of start-up would measure."""
    nbytes = 4 << 20
    transfer = nbytes / speed
    return ProbeResult(nbytes, start + transfer, transfer)


def _assert_covers(ranges, size, range_size, start=0):
    assert ranges, "no ranges for a non-empty span"
    assert ranges[0][0] == start
    for (off, cnt), (nxt, _) in zip(ranges, ranges[1:]):
        assert off + cnt == nxt, f"gap or overlap after ({off}, {cnt})"
    assert ranges[-1][0] + ranges[-1][1] == size
    assert sum(c for _, c in ranges) == size - start
    counts = [c for _, c in ranges]
    assert all(0 < c <= max(range_size, 1) for c in counts), counts
    assert max(counts) - min(counts) <= 1, f"uneven ranges {counts}"
    # as few ranges as the cap allows
    assert len(ranges) == -(-(size - start) // max(range_size, 1))


# -- split_ranges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size,range_size,start",
    [
        (100, 10, 0),  # exact multiple
        (101, 10, 0),  # one byte over: 11 ranges, not 10 + a 1-byte tail
        (99, 10, 0),
        (1, 1, 0),
        (7, 1, 0),  # one byte each
        (1000, 333, 0),
        (1000, 333, 17),  # resuming from an offset
        (64 * MiB + 5, 8 * MiB, 0),
        (3 * MAX_RANGE + 1, MAX_RANGE, 0),  # large sizes: no float rounding
        (10**12 + 7, 9 * MiB, 12345),
    ],
)
def test_split_ranges_covers_span_exactly_evenly_and_within_cap(size, range_size, start):
    _assert_covers(split_ranges(size, range_size, start), size, range_size, start)


def test_split_ranges_spreads_the_remainder_instead_of_a_small_tail():
    assert split_ranges(101, 10) == [(0, 10), (10, 10), (20, 9), (29, 9), (38, 9), (47, 9), (56, 9), (65, 9),
                                     (74, 9), (83, 9), (92, 9)]
    assert split_ranges(25 * MiB, 10 * MiB) == [(0, 8738134), (8738134, 8738133), (17476267, 8738133)]


@pytest.mark.parametrize("size,start", [(0, 0), (10, 10), (10, 11), (0, 5)])
def test_split_ranges_empty_span_gives_no_ranges(size, start):
    assert split_ranges(size, 4, start) == []


def test_split_ranges_range_bigger_than_the_span_is_one_range():
    assert split_ranges(5, 1000) == [(0, 5)]
    assert split_ranges(5, 1000, start=2) == [(2, 3)]
    assert split_ranges(8 * MiB, 8 * MiB) == [(0, 8 * MiB)]


def test_split_ranges_zero_range_size_does_not_divide_by_zero():
    _assert_covers(split_ranges(3, 0), 3, 1)


# -- splittable --------------------------------------------------------------------------


def test_splittable_threshold_is_two_minimal_ranges():
    assert not splittable(0)
    assert not splittable(2 * MIN_RANGE - 1)
    assert splittable(2 * MIN_RANGE)
    assert splittable(MAX_RANGE * 3)


# -- ProbeResult -------------------------------------------------------------------------


def test_probe_result_speed_and_start_cost():
    p = ProbeResult(4 * MiB, 0.55, 0.5)
    assert p.speed == pytest.approx(8 * MiB)
    assert p.start_cost == pytest.approx(0.05)
    assert ProbeResult(4 * MiB, 0.4, 0.5).start_cost == 0.0  # never negative
    assert ProbeResult(4 * MiB, 0.0, 0.0).speed > 0  # no division by zero


# -- plan_fetch --------------------------------------------------------------------------


def test_no_probe_or_no_parts_means_one_copy():
    plan = plan_fetch([20 * MiB, 40 * MiB], None)
    assert not plan.ranged and "not measured" in plan.reason
    assert not plan_fetch([], _probe(8 * MiB, 0.05)).ranged


def test_fast_remote_is_one_copy():
    plan = plan_fetch([20_000_000, 20_000_000, 5_000], _probe(1e9, 0.05))
    assert not plan.ranged
    assert plan.range_size >= 20_000_000
    assert "fast enough" in plan.reason


def test_slow_remote_is_ranged_with_at_least_min_range():
    plan = plan_fetch([20_000_000, 3_000_000], _probe(8 * MiB, 0.05))
    assert plan.ranged
    assert plan.range_size >= MIN_RANGE
    assert plan.range_size < 20_000_000  # otherwise nothing would be split
    assert f"split into {plan.range_size // MiB} MiB ranges" in plan.reason
    assert "8.0 MiB/s per stream" in plan.reason and "0.05 s to start one" in plan.reason


def test_range_size_follows_speed_times_start_cost():
    speed, start = 10 * MiB, 0.4  # wanted: 10 MiB/s * 0.4 s * 10 = 40 MiB
    plan = plan_fetch([1000 * MiB], _probe(speed, start))
    assert plan.ranged
    assert plan.range_size == pytest.approx(speed * start * START_COST_FACTOR, rel=1e-6)


def test_range_size_is_clamped_at_both_ends():
    # almost no start cost: the wanted range would be tiny
    assert plan_fetch([100 * MiB], _probe(8 * MiB, 0.0)).range_size == MIN_RANGE
    # very slow to start on a fast link: capped so a retry repeats at most MAX_RANGE
    huge = plan_fetch([20 * MAX_RANGE], _probe(500 * MiB, 5.0))
    assert huge.range_size == MAX_RANGE and huge.ranged


def test_parts_no_bigger_than_one_range_are_one_copy_even_when_slow():
    probe = _probe(8 * MiB, 0.05)
    rs = plan_fetch([100 * MiB], probe).range_size
    assert not plan_fetch([rs], probe).ranged
    assert plan_fetch([rs + 1], probe).ranged


def test_from_rate_keeps_speed_and_start_cost():
    p = ProbeResult.from_rate(8 * MiB, 0.25)
    assert p.speed == pytest.approx(8 * MiB, rel=1e-6)
    assert p.start_cost == pytest.approx(0.25)
