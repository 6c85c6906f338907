"""Split work into N shards balanced by bytes, the same way every time.

Used by ``--shard i/N`` of upload and download and by ``cs-sync slurm``: a
re-submission of the same command gives the same shards, and each set belongs to
exactly one shard, so concurrent jobs never write the same file.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Hashable, Mapping
from typing import TypeVar

from cs_sync.core.errors import UsageError

K = TypeVar("K", bound=Hashable)

_SHARD_RE = re.compile(r"^(\d+)/(\d+)$")


def parse_shard(text: str) -> tuple[int, int]:
    """``'2/4'`` -> (2, 4); shards are numbered 0..N-1. Raises UsageError naming the value."""
    m = _SHARD_RE.match(text.strip())
    if not m:
        raise UsageError(f"--shard {text!r} is not of the form i/N", hint="e.g. --shard 0/4 for the first of four")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {text!r}: i must be in 0..N-1 and N >= 1")
    return i, n


def assign_shards(weights: Mapping[K, int], n: int) -> list[list[K]]:
    """Greedy longest-first packing of keys into ``n`` shards by weight.

    Deterministic: keys are sorted by (-weight, str(key)) and ties between shards go
    to the lowest index, so the same input always gives the same shards.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    shards: list[list[K]] = [[] for _ in range(n)]
    heap = [(0, i) for i in range(n)]
    for key in sorted(weights, key=lambda k: (-weights[k], str(k))):
        load, i = heapq.heappop(heap)
        shards[i].append(key)
        heapq.heappush(heap, (load + max(0, weights[key]), i))
    return shards

