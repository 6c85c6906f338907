"""What a verify run found, as data: per-part checks, sets it could not check, the exit code."""

from __future__ import annotations

from dataclasses import dataclass, field

from cs_sync.core.errors import CsSyncError, ExitCode
from cs_sync.core.outcome import run_error
from cs_sync.core.sizes import format_size
from cs_sync.verify.compare import DataSlice

LIST_AT_MOST = 20  # lines per kind of finding in the summary; the rest are counted


@dataclass
class Finding:
    fault: str
    dtype: str
    part: str  # '' for a finding about the whole set
    what: str

    def line(self) -> str:
        where = f"{self.fault}/{self.part}" if self.part else f"{self.fault} {self.dtype}"
        return f"{where}: {self.what}"


@dataclass
class VerifyResult:
    version: str
    remote: str
    hash_types: tuple[str, ...] = ()  # what the listing was asked for
    relisted: int = 0  # parts listed a second time, for a hash type their sidecar recorded
    relisted_types: tuple[str, ...] = ()
    sets_checked: int = 0
    parts_hash: dict[str, int] = field(default_factory=dict)  # hash type(s) -> parts that matched
    size_only: list[Finding] = field(default_factory=list)
    mismatched: list[Finding] = field(default_factory=list)  # size or hash differs, content differs: exit 8
    missing: list[Finding] = field(default_factory=list)  # incomplete sets, parts missing: exit 7
    damaged: list[Finding] = field(default_factory=list)  # sidecars that do not parse: exit 7
    unindexed: list[Finding] = field(default_factory=list)  # no sidecar at all: listed
    unmatched: list[str] = field(default_factory=list)
    read_slice: DataSlice | None = None
    read_parts: int = 0  # parts streamed by --read-data
    read_bytes: int = 0
    read_ok: int = 0  # of those, parts whose bytes match every recorded SHA-256 (and the index)
    read_unhashed: int = 0  # of those, parts whose sidecar recorded no SHA-256: TAR walked whole, sizes only
    elapsed: float = 0.0

    @property
    def parts_hashed(self) -> int:
        return sum(self.parts_hash.values())

    @property
    def parts_differing(self) -> int:
        """Parts that differ: one found by the listing and again by --read-data counts once."""
        return len({(f.fault, f.dtype, f.part) for f in self.mismatched})

    @property
    def sets_incomplete(self) -> int:
        """Sets with something missing: a set missing three parts counts once."""
        return len({(f.fault, f.dtype) for f in self.missing})

    def exit_code(self) -> int:
        """8 when anything differs (corrupted or replaced); else 7 when parts are missing,
        sidecars damaged or names matched nothing; else 0 (size-only parts and unindexed
        sets are listed, not failures)."""
        if self.mismatched:
            return int(ExitCode.VERIFY)
        if self.missing or self.damaged or self.unmatched:
            return int(ExitCode.INCOMPLETE)
        return int(ExitCode.OK)

    def error(self) -> CsSyncError | None:
        code = self.exit_code()
        if code == 0:
            return None
        bits = []
        if self.mismatched:
            bits.append(f"{self.parts_differing} part(s) differ from their sidecar (first: {self.mismatched[0].line()})")
        if self.missing:
            bits.append(f"{self.sets_incomplete} set(s) missing or incomplete")
        if self.damaged:
            bits.append(f"{len(self.damaged)} sidecar(s) damaged")
        return run_error(code, bits, unmatched=len(self.unmatched),
                         hint="see the list above; re-upload or fetch those sets again")


def _listed(label: str, items: list[Finding]) -> list[str]:
    lines = [f"  {label}: {f.line()}" for f in items[:LIST_AT_MOST]]
    if len(items) > LIST_AT_MOST:
        lines.append(f"  ... and {len(items) - LIST_AT_MOST} more {label}")
    return lines


def summary_lines(r: VerifyResult) -> list[str]:
    asked = f"with {'/'.join(r.hash_types)}" if r.hash_types else "without hashes"
    again = (f", {r.relisted} part(s) listed again with {'/'.join(r.relisted_types)}" if r.relisted else "")
    lines = [f"listing: one {asked}{again}; no part data read" + (" except --read-data below" if r.read_slice else "")]
    lines.append(f"sets: {r.sets_checked} checked, {len(r.unindexed)} unindexed (no sidecar: cs-sync index records "
                 f"one), {r.sets_incomplete} incomplete, {len(r.damaged)} with a damaged sidecar")
    by = ", ".join(f"{n} {t}" for t, n in sorted(r.parts_hash.items()))
    lines.append(f"parts: {r.parts_hashed} by hash" + (f" ({by})" if by else "")
                 + f", {len(r.size_only)} by SIZE ONLY, {r.parts_differing} DIFFER")
    if r.read_slice is not None:
        lines.append(f"read-data ({r.read_slice.describe()}): {r.read_parts} part(s) streamed ({format_size(r.read_bytes)}), "
                     f"{r.read_ok} match every recorded SHA-256"
                     + (f", {r.read_unhashed} whole TARs matching their index (no SHA-256 recorded)" if r.read_unhashed else ""))
    lines += _listed("DIFFERS", r.mismatched)
    lines += _listed("missing", r.missing)
    lines += _listed("damaged", r.damaged)
    lines += _listed("size only", r.size_only)
    lines += _listed("unindexed", r.unindexed)
    lines += [f"  matched nothing: {u}" for u in r.unmatched]
    lines.append(f"time: {r.elapsed:.1f} s")
    return lines
