"""How whole parts are fetched: pure decisions, no I/O.

Starting an rclone costs a fixed time (process start, remote login, first byte);
moving bytes costs ``size / speed`` per stream. On a fast remote (a local disk, a
LAN) the fixed cost dominates, so every part goes through ONE ``rclone copy``.
On a slow remote (cloud storage, where one connection is limited), a part is
split into byte ranges fetched by several streams at once, each range large
enough that the extra start costs little next to moving it.

The run starts as if the remote were fast (one copy of everything); if that copy
is still running after its first stats report, rclone's per-file speed and the
time it took to start say whether splitting pays; :func:`plan_fetch` turns that
measurement into a plan.
"""

from __future__ import annotations

from dataclasses import dataclass

MiB = 1 << 20
MIN_RANGE = 8 * MiB  # smallest range worth its own stream
MAX_RANGE = 4096 * MiB  # largest range: a retry never repeats more than this
START_COST_FACTOR = 10  # a range should take >= 10x what starting a stream costs (an upper bound: see part_fetch)


@dataclass(frozen=True)
class ProbeResult:
    """What reading PROBE_BYTES took: ``seconds`` in all, ``transfer_seconds`` moving bytes."""

    nbytes: int
    seconds: float
    transfer_seconds: float

    @classmethod
    def from_rate(cls, speed: float, start_cost: float) -> ProbeResult:
        """From a stream's measured ``speed`` (bytes/s) and ``start_cost`` (s), e.g. rclone's own stats."""
        return cls(int(speed), 1.0 + start_cost, 1.0)

    @property
    def speed(self) -> float:
        """Bytes per second of one stream once it runs."""
        return self.nbytes / max(self.transfer_seconds, 1e-6)

    @property
    def start_cost(self) -> float:
        """Seconds to start one stream before the first byte moves."""
        return max(self.seconds - self.transfer_seconds, 0.0)


@dataclass(frozen=True)
class FetchPlan:
    """``ranged`` False: one ``rclone copy`` for all parts. True: byte ranges of ``range_size``."""

    ranged: bool
    range_size: int
    reason: str


def splittable(size: int) -> bool:
    """A part big enough to be fetched as two ranges or more (smaller ones always go in one copy)."""
    return size >= 2 * MIN_RANGE


def plan_fetch(sizes: list[int], probe: ProbeResult | None) -> FetchPlan:
    """Choose between one batch copy and ranged streams from the probe's measurement."""
    if probe is None or not sizes:
        return FetchPlan(False, 0, "one rclone copy (the remote was not measured)")
    wanted = probe.speed * probe.start_cost * START_COST_FACTOR
    range_size = int(min(max(wanted, MIN_RANGE), MAX_RANGE))
    speed = f"{probe.speed / MiB:.1f} MiB/s per stream, {probe.start_cost:.2f} s to start one"
    if max(sizes) <= range_size:
        return FetchPlan(False, range_size, f"{speed}: fast enough for one rclone copy")
    return FetchPlan(True, range_size, f"{speed}: parts split into {range_size // MiB} MiB ranges")


def split_ranges(size: int, range_size: int, start: int = 0) -> list[tuple[int, int]]:
    """``(offset, count)`` ranges covering ``[start, size)``, as even as possible, none above ``range_size``."""
    left = size - start
    if left <= 0:
        return []
    n = max(1, -(-left // max(range_size, 1)))
    base, extra = divmod(left, n)
    out = []
    off = start
    for i in range(n):
        cnt = base + (1 if i < extra else 0)
        out.append((off, cnt))
        off += cnt
    return out
