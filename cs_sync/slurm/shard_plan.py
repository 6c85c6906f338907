"""Report how a version splits into shards, so a Slurm time limit can be sized.

Pure: weights (bytes per fault) in, a :class:`ShardPlan` out. The shards are
those of :func:`cs_sync.core.sharding.assign_shards`, i.e. exactly the ones each
``--shard i/N`` task will handle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from cs_sync.core.errors import UsageError
from cs_sync.core.sharding import assign_shards
from cs_sync.core.sizes import format_size, parse_size
from cs_sync.core.text import plural

_TIME_RE = re.compile(r"^(?:(?P<days>\d+)-)?(?P<rest>\d+(?::\d+){0,2})$")


def parse_slurm_time(text: str) -> int:
    """Seconds in a Slurm ``--time``: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``."""
    m = _TIME_RE.match(text.strip())
    if not m:
        raise UsageError(f"--time {text!r} is not a Slurm time", hint="e.g. 90, 02:00:00 or 1-12:00:00")
    nums = [int(x) for x in m.group("rest").split(":")]
    if m.group("days") is not None:
        days = int(m.group("days"))
        h, mi, s = (nums + [0, 0])[:3]
        return ((days * 24 + h) * 60 + mi) * 60 + s
    if len(nums) == 1:
        return nums[0] * 60
    if len(nums) == 2:
        return nums[0] * 60 + nums[1]
    return (nums[0] * 60 + nums[1]) * 60 + nums[2]


def parse_rate(text: str) -> float:
    """Bytes per second from ``50M`` (= 50 MiB/s), ``8M/s``, ``100MB``."""
    t = text.strip()
    if t.lower().endswith("/s"):
        t = t[:-2]
    return float(parse_size(t, option="--rate"))


def format_duration(seconds: float) -> str:
    s = int(round(seconds))
    d, s = divmod(s, 86400)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{d}-{h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


@dataclass(frozen=True)
class Shard:
    index: int
    keys: tuple[str, ...]  # faults in this shard
    bytes: int
    seconds: float | None  # estimated transfer time at the given rate


@dataclass(frozen=True)
class ShardPlan:
    shards: tuple[Shard, ...]
    total_bytes: int
    rate: float | None
    time_limit: int | None
    warnings: tuple[str, ...]

    def lines(self) -> list[str]:
        """The report printed before submitting (and by --dry-run)."""
        n = len(self.shards)
        out = [f"{n} shard(s), {format_size(self.total_bytes)} in all"
               + (f", estimated at {format_size(self.rate)}/s per task" if self.rate else "")]
        for s in self.shards:
            est = f"  ~{format_duration(s.seconds)}" if s.seconds is not None else ""
            names = ", ".join(s.keys[:4]) + (f", ... ({len(s.keys)} faults)" if len(s.keys) > 4 else "")
            out.append(f"  shard {s.index}/{n}: {format_size(s.bytes):>10}{est}  {names or '(empty)'}")
        out.extend(f"warning: {w}" for w in self.warnings)
        return out


def plan_shards(weights: Mapping[str, int], n: int, *, rate: float | None = None,
                time_limit: int | None = None) -> ShardPlan:
    """Shards of ``weights`` (bytes per fault) for ``n`` tasks, with times at ``rate`` bytes/s."""
    if n < 1:
        raise UsageError(f"--tasks {n}: need at least 1 task")
    groups = assign_shards(weights, n)
    shards = tuple(
        Shard(i, tuple(g), sum(weights[k] for k in g), (sum(weights[k] for k in g) / rate) if rate else None)
        for i, g in enumerate(groups)
    )
    warnings = []
    empty = [s.index for s in shards if not s.keys]
    if empty:
        warnings.append(f"{len(empty)} of {n} shard(s) get no fault ({plural(len(weights), 'fault')} for {n} tasks): "
                        f"use --tasks {max(1, len(weights))} or fewer")
    total = sum(weights.values())
    if rate and time_limit is not None and shards:
        slow = max(shards, key=lambda s: s.bytes)
        assert slow.seconds is not None
        if slow.seconds > time_limit:
            warnings.append(
                f"the largest shard ({slow.index}: {format_size(slow.bytes)}) needs ~{format_duration(slow.seconds)} "
                f"at {format_size(rate)}/s, more than --time {format_duration(time_limit)}: raise --time or --tasks "
                "(a task stopped by its time limit is continued by re-submitting the same command)")
    return ShardPlan(shards, total, rate, time_limit, tuple(warnings))
