"""Pure comparisons: a part's hashes in a listing against its sidecar, and which parts a
``--read-data`` slice reads."""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from enum import Enum

from cs_sync.archive.sidecar import PartInfo
from cs_sync.core.errors import UsageError
from cs_sync.remote.sets import RemoteFile


class Check(str, Enum):
    HASH = "hash"  # a hash the remote gave now equals the one recorded
    SIZE_ONLY = "size only"  # sizes agree; no hash type in common (said why)
    MISMATCH = "mismatch"  # size or a hash differs: corrupted or replaced on the remote
    MISSING = "missing"  # the sidecar lists it, the remote does not hold it


@dataclass(frozen=True)
class PartCheck:
    part: str
    check: Check
    detail: str = ""  # the hash type compared, why only the size, or what differs


def recorded_hashes(part: PartInfo) -> dict[str, str]:
    """Every hash a sidecar recorded for a part: its SHA-256 and the remote's own types."""
    out = {k: v.lower() for k, v in part.hashes.items()}
    if part.sha256:
        out["sha256"] = part.sha256
    return out


def compare_part(part: PartInfo, remote: RemoteFile | None, *, offered: tuple[str, ...]) -> PartCheck:
    """``remote`` (one listing entry, with the hashes asked for) against what ``part`` recorded.

    Every hash type both sides have is compared; one that differs is a mismatch.
    ``offered``: the hash types the listing was asked for (to say why only the size
    could be compared).
    """
    if remote is None:
        return PartCheck(part.name, Check.MISSING, "not on the remote")
    if remote.size != part.size:
        return PartCheck(part.name, Check.MISMATCH, f"{remote.size} bytes, the sidecar says {part.size}")
    have = {k.lower(): v.lower() for k, v in remote.hashes.items() if v}
    want = recorded_hashes(part)
    common = [t for t in want if t in have]
    for t in common:
        if have[t] != want[t]:
            return PartCheck(part.name, Check.MISMATCH, f"its {t} hash differs from the sidecar's")
    if common:
        return PartCheck(part.name, Check.HASH, "/".join(common))
    blank = [t for t in want if t in offered and t not in have]
    if not offered:
        why = "the remote offers no hash"
    elif blank:  # e.g. S3 keeps no MD5 of a multipart upload: the type is offered, this file has none
        why = f"the remote gave no {'/'.join(blank)} for this file (the sidecar recorded it)"
    elif want:
        why = f"the remote offers {'/'.join(offered)}, the sidecar recorded {'/'.join(sorted(want))}"
    else:
        why = "the sidecar recorded no hash"
    return PartCheck(part.name, Check.SIZE_ONLY, why)


_SLICE_RE = re.compile(r"^(\d+)/(\d+)$")
_PCT_RE = re.compile(r"^(\d+(?:\.\d+)?)%?$")


@dataclass(frozen=True)
class DataSlice:
    """``--read-data``: slice K of N (1-based; N runs cover every part once), or a percentage."""

    k: int | None = None
    n: int | None = None
    percent: float | None = None

    def describe(self) -> str:
        return f"slice {self.k}/{self.n}" if self.k is not None else f"{self.percent:g}% chosen at random"


def parse_slice(text: str) -> DataSlice:
    t = text.strip()
    m = _SLICE_RE.match(t)
    if m:
        k, n = int(m.group(1)), int(m.group(2))
        if n < 1 or not 1 <= k <= n:
            raise UsageError(f"--read-data {text!r}: K/N needs 1 <= K <= N", hint="e.g. --read-data 1/10 ... 10/10")
        return DataSlice(k=k, n=n)
    m = _PCT_RE.match(t)
    if m and 0 < float(m.group(1)) <= 100:
        return DataSlice(percent=float(m.group(1)))
    raise UsageError(f"--read-data {text!r} is neither a percentage nor K/N", hint="e.g. --read-data 5% or 3/10")


def bucket(key: str, n: int) -> int:
    """Which of ``n`` slices ``key`` belongs to (0-based): fixed by its name alone, so every
    run with the same N agrees, whatever else the remote holds."""
    return int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % n


def choose_slice(parts: list[tuple[str, int]], spec: DataSlice, rng: random.Random | None = None) -> list[str]:
    """Keys of ``parts`` ((key, bytes) pairs) the slice reads.

    K/N: the parts whose name falls in slice K. A percentage: parts drawn at random
    until at least that share of the bytes is chosen (at least one part).
    """
    if spec.k is not None:
        assert spec.n is not None
        return [key for key, _ in parts if bucket(key, spec.n) == spec.k - 1]
    assert spec.percent is not None
    if not parts:
        return []
    order = list(parts)
    (rng or random.Random()).shuffle(order)
    total = sum(size for _, size in parts)
    want = total * spec.percent / 100
    out: list[str] = []
    got = 0
    for key, size in order:
        if out and got >= want:
            break
        out.append(key)
        got += size
    return out
