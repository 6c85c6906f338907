"""What an index run did, as data: per-set outcomes, what was read, what the sidecars prove."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from cs_sync.core.errors import CsSyncError
from cs_sync.core.outcome import run_error, set_counts, sets_exit_code
from cs_sync.core.sizes import format_size


class SetStatus(str, Enum):
    INDEXED = "indexed"  # sidecar written this run
    UPGRADED = "upgraded"  # an index sidecar replaced by one with SHA-256s (--hash-members)
    REINDEXED = "reindexed"  # --reindex
    DONE = "done"  # had a sidecar already
    SAMPLE = "sample"  # plain files: nothing to index
    REFUSED = "refused"  # incomplete, ambiguous, damaged or changed since indexed: left alone
    FAILED = "failed"  # a part is not a whole, safe TAR (named), or reading it failed: no sidecar
    NOT_ATTEMPTED = "not attempted"  # the run was stopped first
    PLANNED = "planned"  # --dry-run: would be indexed


WRITTEN = (SetStatus.INDEXED, SetStatus.UPGRADED, SetStatus.REINDEXED)


@dataclass
class SetOutcome:
    fault: str
    dtype: str
    status: SetStatus
    reason: str = ""
    parts: int = 0
    members: int = 0
    size: int = 0  # bytes of the set's parts on the remote
    problems: list[str] = field(default_factory=list)
    codes: set[int] = field(default_factory=set)
    proves: str = ""


@dataclass
class IndexResult:
    version: str
    remote: str
    sets: list[SetOutcome] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    hash_types: tuple[str, ...] = ()  # the remote's own hash recorded per part
    no_hash_why: str = "the remote offers no hash to record"  # when hash_types is empty
    hash_members: bool = False
    dry_run: bool = False
    parts_walked: int = 0
    bytes_read: int = 0  # bytes the ranged reads (or streams) returned
    requests: int = 0
    size_walked: int = 0  # bytes of the parts walked
    elapsed: float = 0.0
    fatal: CsSyncError | None = None
    sidecars_written: list[str] = field(default_factory=list)

    def count(self, status: SetStatus) -> int:
        return sum(1 for s in self.sets if s.status == status)

    def exit_code(self) -> int:
        """0 when every selected set has a sidecar (or is a sample); 8 when the only failures
        are parts that are not whole TARs (corrupted data); the one failure code when every
        set failed the same way; else 7 (refused sets, names that matched nothing)."""
        if self.fatal is not None:
            return int(self.fatal.exit_code)
        bad = (SetStatus.FAILED, SetStatus.NOT_ATTEMPTED, SetStatus.REFUSED)
        return sets_exit_code([s.codes for s in self.sets if s.status in (SetStatus.FAILED, SetStatus.NOT_ATTEMPTED)],
                              refused=self.count(SetStatus.REFUSED),
                              good=sum(1 for s in self.sets if s.status not in bad), unmatched=len(self.unmatched))

    def error(self) -> CsSyncError | None:
        code = self.exit_code()
        if code == 0:
            return None
        if self.fatal is not None:
            return self.fatal
        bits = set_counts(((self.count(SetStatus.FAILED), "failed (no sidecar written)"),
                           (self.count(SetStatus.REFUSED), "refused"),
                           (self.count(SetStatus.NOT_ATTEMPTED), "not attempted")), len(self.sets))
        return run_error(code, bits, unmatched=len(self.unmatched), tail="; details above",
                         hint="fix or re-run; sets indexed already are skipped")


def summary_lines(r: IndexResult) -> list[str]:
    """The summary the CLI prints (tests read it)."""
    c = r.count
    if r.dry_run:
        lines = [f"dry run: {c(SetStatus.PLANNED)} set(s) would be indexed, {c(SetStatus.DONE)} have a sidecar, "
                 f"{c(SetStatus.SAMPLE)} sample(s), {c(SetStatus.REFUSED)} refused; nothing read or written"]
    else:
        lines = [f"sets: {c(SetStatus.INDEXED)} indexed, {c(SetStatus.UPGRADED)} upgraded, {c(SetStatus.REINDEXED)} "
                 f"reindexed, {c(SetStatus.DONE)} already had a sidecar, {c(SetStatus.SAMPLE)} sample(s) (plain files, "
                 f"nothing to index), {c(SetStatus.REFUSED)} refused, {c(SetStatus.FAILED)} failed"
                 + (f", {c(SetStatus.NOT_ATTEMPTED)} not attempted" if c(SetStatus.NOT_ATTEMPTED) else "")]
        share = f" ({100 * r.bytes_read / r.size_walked:.2f}% of them)" if r.size_walked else ""
        members = sum(s.members for s in r.sets if s.status in WRITTEN)
        lines.append(f"parts: {r.parts_walked} walked ({format_size(r.size_walked)}), {members} member(s) recorded; "
                     f"{format_size(r.bytes_read)} read{share} in {r.requests} request(s)")
        if any(s.status in WRITTEN for s in r.sets):
            how = ("SHA-256 of every part and member (streamed once)" if r.hash_members else
                   "member places and sizes from the TAR headers, part sizes"
                   + (f" and the remote's {'/'.join(r.hash_types)} hash per part" if r.hash_types else
                      f" ({r.no_hash_why})")
                   + "; not the content (--hash-members records SHA-256s)")
            lines.append(f"proves: {how}")
    for s in r.sets:
        if s.status in (SetStatus.FAILED, SetStatus.REFUSED, SetStatus.NOT_ATTEMPTED):
            lines.append(f"  {s.status.value}: {s.fault} {s.dtype}: {'; '.join(s.problems) or s.reason}")
        elif s.status == SetStatus.PLANNED:
            lines.append(f"  would index: {s.fault} {s.dtype}: {s.parts} part(s), {format_size(s.size)} ({s.reason})")
    for u in r.unmatched:
        lines.append(f"  matched nothing: {u}")
    lines.append(f"time: {r.elapsed:.1f} s")
    return lines
