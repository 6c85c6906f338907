"""Classify what a remote version folder holds: pure logic over one listing.

Input is a flat listing of ``{version}/`` (paths relative to it, sizes, hashes)
plus any sidecars already read; output says, per fault and data type, whether the
set is complete, incomplete (and what is missing), ambiguous, or does not match
its sidecar. Upload uses it to skip finished sets, download to refuse broken
ones, status to draw its table. Nothing here touches rclone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from cs_sync.archive.sidecar import SetSidecar
from cs_sync.core.errors import SidecarInvalid
from cs_sync.core.naming import (
    LIST_FILE,
    SIDECAR_DIR,
    STOCKTAKE_FILE,
    PartName,
    is_hidden,
    malformed_part_type,
    parse_part_name,
    parse_sample_name,
    sidecar_name,
)
from cs_sync.core.safe_names import is_flat_name

SAMPLE_TYPE = "SAMPLE_BB"


@dataclass(frozen=True)
class RemoteFile:
    path: str  # relative to the version folder, '/'-separated
    size: int
    hashes: dict[str, str] = field(default_factory=dict)


class SetState(str, Enum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    AMBIGUOUS = "ambiguous"
    MISMATCH = "mismatch"  # parts present but sizes/names differ from the sidecar
    DAMAGED = "damaged sidecar"  # a sidecar exists but does not parse or validate
    ABSENT = "absent"


@dataclass
class RemoteSet:
    fault: str
    dtype: str
    parts: list[PartName] = field(default_factory=list)
    files: dict[str, RemoteFile] = field(default_factory=dict)  # part name -> listing entry
    malformed: list[str] = field(default_factory=list)  # names that look like its parts but do not parse (in files)
    sidecar: SetSidecar | None = None
    damage: SidecarInvalid | None = None  # why the sidecar that exists was refused
    state: SetState = SetState.ABSENT
    problems: list[str] = field(default_factory=list)
    is_sample: bool = False

    @property
    def verified(self) -> bool:
        """True when a sidecar vouches for this set (made by this tool)."""
        return self.sidecar is not None

    @property
    def size(self) -> int:
        return sum(f.size for f in self.files.values())

    def ordered_part_names(self) -> list[str]:
        if self.sidecar is not None and self.state == SetState.COMPLETE:
            return [p.name for p in self.sidecar.parts]
        return [p.name for p in sorted(self.parts, key=lambda p: (p.index is None, p.index or 0))]


@dataclass
class VersionListing:
    version: str
    sets: dict[tuple[str, str], RemoteSet] = field(default_factory=dict)
    has_list: bool = False
    has_stocktake: bool = False
    sidecar_files: dict[str, RemoteFile] = field(default_factory=dict)  # '{fault}_{TYPE}.json' -> entry
    other_files: list[str] = field(default_factory=list)

    def faults(self) -> list[str]:
        return sorted({f for f, _ in self.sets})

    def types(self) -> list[str]:
        return sorted({t for _, t in self.sets})

    def get(self, fault: str, dtype: str) -> RemoteSet | None:
        return self.sets.get((fault, dtype))


def group_listing(version: str, files: list[RemoteFile]) -> VersionListing:
    """Group a recursive listing of a version folder into sets (not yet classified)."""
    out = VersionListing(version=version)
    for f in files:
        parts = f.path.split("/")
        if parts[0] == SIDECAR_DIR and len(parts) == 2 and parts[1].endswith(".json"):
            out.sidecar_files[parts[1]] = f  # read by the caller; each names its fault and type
            continue
        if any(is_hidden(p) for p in parts):
            continue
        if not all(is_flat_name(p) for p in parts):  # a hostile server's '..' never becomes a folder
            out.other_files.append(f.path)
            continue
        if len(parts) == 1:
            if parts[0] == LIST_FILE:
                out.has_list = True
            elif parts[0] == STOCKTAKE_FILE:
                out.has_stocktake = True
            else:
                out.other_files.append(f.path)
            continue
        if len(parts) != 2:
            out.other_files.append(f.path)
            continue
        fault, name = parts
        pn = parse_part_name(fault, name)
        if pn is not None:
            rs = out.sets.setdefault((fault, pn.dtype), RemoteSet(fault, pn.dtype))
            rs.parts.append(pn)
            rs.files[name] = f
            continue
        claimed = malformed_part_type(fault, name)
        if claimed is not None:  # F_BB_-1.tar: an unexpected file of set BB, never a type of its own
            rs = out.sets.setdefault((fault, claimed), RemoteSet(fault, claimed))
            rs.malformed.append(name)
            rs.files[name] = f
            continue
        event = parse_sample_name(fault, name)
        if event is not None:
            rs = out.sets.setdefault((fault, SAMPLE_TYPE), RemoteSet(fault, SAMPLE_TYPE, is_sample=True))
            rs.files[name] = f
            continue
        out.other_files.append(f.path)
    return out


def classify_parts(parts: list[PartName]) -> tuple[SetState, list[str]]:
    """State of a set from its part names alone (the only evidence for older archives)."""
    if not parts:
        return SetState.ABSENT, []
    singles = [p for p in parts if p.index is None]
    split = [p for p in parts if p.index is not None]
    if singles and split:
        return SetState.AMBIGUOUS, [
            f"both {singles[0].name} and split parts ({', '.join(sorted(p.name for p in split))})"
        ]
    if singles:
        return SetState.COMPLETE, []
    finals = [p for p in split if p.final]
    by_index: dict[int, list[PartName]] = {}
    for p in split:
        if p.index is not None:  # always (split holds only indexed parts): says so to the type checker
            by_index.setdefault(p.index, []).append(p)
    if len(finals) > 1:
        return SetState.AMBIGUOUS, [f"two final parts: {', '.join(sorted(p.name for p in finals))}"]
    dupes = [i for i, ps in by_index.items() if len(ps) > 1]
    if dupes:
        names = sorted(p.name for p in by_index[dupes[0]])
        return SetState.AMBIGUOUS, [f"part {dupes[0]} twice: {', '.join(names)}"]
    problems: list[str] = []
    if not finals:
        top = max(by_index)
        problems.append(f"no final part (highest is _{top}.tar; expected one ending in 'f')")
        expected = range(top + 1)
    else:
        last = finals[0].index
        assert last is not None
        beyond = sorted(i for i in by_index if i > last)
        if beyond:
            return SetState.AMBIGUOUS, [f"parts after the final _{last}f.tar: {', '.join(f'_{i}' for i in beyond)}"]
        expected = range(last + 1)
    missing = [i for i in expected if i not in by_index]
    if missing:
        problems.append("missing part" + ("s " if len(missing) > 1 else " ") + ", ".join(f"_{i}" for i in missing))
    return (SetState.INCOMPLETE, problems) if problems else (SetState.COMPLETE, [])


def classify_set(rs: RemoteSet) -> RemoteSet:
    """Fill in ``rs.state`` and ``rs.problems`` from its parts and (if any) sidecar."""
    if rs.damage is not None:
        rs.state, rs.problems = SetState.DAMAGED, [rs.damage.message]
        return rs
    if rs.is_sample:
        rs.state = SetState.COMPLETE if rs.files else SetState.ABSENT
        rs.problems = []
        if len(rs.files) > 1:
            rs.state = SetState.AMBIGUOUS
            rs.problems = [f"several sample files: {', '.join(sorted(rs.files))}"]
        elif rs.sidecar is not None:
            want = {m.part: m.size for m in rs.sidecar.members}
            rs.state, rs.problems = _against_sidecar(rs, want, "files") or (rs.state, rs.problems)
        return rs
    state, problems = classify_parts(rs.parts)
    if rs.sidecar is not None and state in (SetState.COMPLETE, SetState.INCOMPLETE, SetState.ABSENT):
        state, problems = _against_sidecar(rs, rs.sidecar.part_sizes(), "parts") or (state, problems)
    if rs.malformed:  # never taken as parts: reported, and never fetched or extracted
        if state != SetState.MISMATCH:
            state = SetState.AMBIGUOUS
        problems = [*problems, f"not valid part names (left alone): {', '.join(sorted(rs.malformed))}"]
    rs.state, rs.problems = state, problems
    return rs


def _against_sidecar(rs: RemoteSet, want: dict[str, int], what: str) -> tuple[SetState, list[str]] | None:
    """The state the sidecar's names and sizes give the set's files; None when they agree."""
    have = {name: f.size for name, f in rs.files.items()}
    missing = [n for n in want if n not in have]
    wrong = [f"{n} is {have[n]} bytes, sidecar says {want[n]}" for n in want if n in have and have[n] != want[n]]
    extra = [n for n in have if n not in want and n not in rs.malformed]  # those are reported on their own
    if missing:
        return SetState.INCOMPLETE, [f"missing {', '.join(missing)}"]
    if wrong:
        return SetState.MISMATCH, wrong
    if extra:
        return SetState.AMBIGUOUS, [f"{what} not in the sidecar: {', '.join(sorted(extra))}"]
    return None


def classify_listing(listing: VersionListing, sidecars: dict[tuple[str, str], SetSidecar],
                     damaged: dict[str, SidecarInvalid] | None = None) -> VersionListing:
    """Attach sidecars and classify every set; sidecars with no parts give INCOMPLETE sets.

    ``damaged``: sidecar file names that exist but were refused, with why; their
    sets become DAMAGED (never silently unverified).
    """
    for (fault, dtype), sc in sidecars.items():
        rs = listing.sets.setdefault((fault, dtype), RemoteSet(fault, dtype, is_sample=dtype == SAMPLE_TYPE))
        rs.sidecar = sc
    by_name = {sidecar_name(f, t): key for key, rs in listing.sets.items() for f, t in [key]}
    for name, err in (damaged or {}).items():
        key = by_name.get(name) or key_from_sidecar_name(name)
        rs = listing.sets.setdefault(key, RemoteSet(*key, is_sample=key[1] == SAMPLE_TYPE))
        rs.sidecar, rs.damage = None, err
    for rs in listing.sets.values():
        classify_set(rs)
    return listing


def key_from_sidecar_name(name: str) -> tuple[str, str]:
    """(fault, type) of a sidecar file whose set has no files listed: ``{fault}_{TYPE}.json``."""
    stem = name[: -len(".json")] if name.endswith(".json") else name
    if stem.endswith("_" + SAMPLE_TYPE):
        return stem[: -len(SAMPLE_TYPE) - 1], SAMPLE_TYPE
    fault, _, dtype = stem.rpartition("_")
    return (fault or stem), dtype
