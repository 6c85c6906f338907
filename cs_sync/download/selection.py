"""What a download wants from a remote version: pure logic over a classified listing.

Given the options ``-t``, ``--inc_fault``, ``--exc_fault`` (wins over include),
``--rel`` and ``--member``, decide which sets come down, which parts of each are
fetched whole, and which members are fetched alone by byte range (when a sidecar
records their offsets). Sets that are incomplete, ambiguous or do not match their
sidecar are refused unless asked otherwise. Every name the user gave that matches
nothing on the remote is reported. Nothing here touches rclone or the disk.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from cs_sync.archive.sidecar import MemberInfo
from cs_sync.core.errors import InputError, SidecarUnsafe
from cs_sync.core.naming import MEDIAN, find_event, is_event_of, match_types
from cs_sync.core.sharding import assign_shards
from cs_sync.remote.sets import RemoteSet, SetState, VersionListing

_REL_RE = re.compile(r"^(?:(?P<fault>.+)_)?(?:REL)?(?P<num>\d+)$", re.IGNORECASE)


@dataclass(frozen=True)
class RelSpec:
    """One ``--rel`` value: a realisation number (any fault or one fault) or the median event."""

    text: str  # as the user wrote it, for reports
    rel: int | None  # None: the median event
    fault: str | None = None  # set for fully qualified names such as AlpineK2T_REL07

    def matches(self, fault: str, event: str | None) -> bool:
        if event is None or (self.fault is not None and self.fault != fault):
            return False
        if self.rel is None:
            return event == fault
        return event == f"{fault}_REL{self.rel:02d}" or (
            is_event_of(fault, event) and event != fault and int(event[len(fault) + 4:]) == self.rel
        )


def parse_rel(text: str) -> RelSpec:
    """``median``, ``7``, ``07``, ``REL07`` or ``AlpineK2T_REL07``; raises InputError otherwise."""
    t = text.strip()
    if t.lower() == MEDIAN:
        return RelSpec(text=text, rel=None)
    m = _REL_RE.match(t)
    if not m or (m.group("fault") and not re.search(r"_REL\d+$", t, re.IGNORECASE)):
        raise InputError(
            f"--rel {text!r} is not a realisation", hint="use e.g. 7, REL07, AlpineK2T_REL07 or median"
        )
    return RelSpec(text=text, rel=int(m.group("num")), fault=m.group("fault"))


def member_event(fault: str, name: str) -> str | None:
    """The event a TAR member (or sample file) belongs to, from its name alone.

    Members are named ``{event}_{basename}`` unless the basename already names the
    event (naming.member_name); older archives may keep folders
    (``F_REL01/BB/Acc/BB.bin``), often from the version's root
    (``Runs/F/F_REL01/BB/Acc/BB.bin``, ``Data/VMs/F/vm_params.yaml``): there the first
    folder named after the fault is the fault's folder, not its median event, unless
    the path starts with it and goes on into folders (``F/BB/Acc/BB.bin``, staged from
    ``Runs/F``). ``F_BB.bin`` is the median event's BB.bin.
    """
    parts = name.split("/")
    if fault in parts[:-1]:
        i = parts.index(fault)
        rest = parts[i + 1:]
        event = find_event(fault, "/".join(rest))
        if event is not None:
            return event
        return fault if i == 0 and len(rest) > 1 else None
    event = find_event(fault, name)
    if event is not None:
        return event
    base = posixpath.basename(name)
    if base.startswith(fault + "_") and not re.match(r"REL\d", base[len(fault) + 1:]):
        return fault
    return None


@dataclass(frozen=True)
class MemberFilter:
    """``--rel`` and ``--member``: within a kind any value may match; both kinds must match
    when both are given (``--rel 7 --member '*.csv'`` is REL07's CSV files)."""

    rels: tuple[RelSpec, ...] = ()
    globs: tuple[str, ...] = ()

    @classmethod
    def from_options(cls, rels: Iterable[str] = (), globs: Iterable[str] = ()) -> MemberFilter:
        return cls(rels=tuple(parse_rel(r) for r in rels), globs=tuple(globs))

    @property
    def active(self) -> bool:
        return bool(self.rels or self.globs)

    def signature(self) -> str:
        """``*`` when everything is wanted; else a canonical text (kept in the state log so a
        part extracted under one filter is not taken as extracted under another)."""
        if not self.active:
            return "*"
        rels = ",".join(sorted(r.text for r in self.rels))
        globs = ",".join(sorted(self.globs))
        return f"rel={rels};member={globs}"

    def hits(self, fault: str, name: str) -> set[str]:
        """The option values (``--rel X`` / ``--member G``) that select ``name``; used to
        report values that matched nothing."""
        out: set[str] = set()
        if self.rels:
            event = member_event(fault, name)
            out |= {f"--rel {r.text}" for r in self.rels if r.matches(fault, event)}
        base = posixpath.basename(name)
        out |= {f"--member {g}" for g in self.globs if fnmatch.fnmatchcase(name, g) or fnmatch.fnmatchcase(base, g)}
        return out

    def wants(self, fault: str, name: str) -> bool:
        if not self.active:
            return True
        hits = self.hits(fault, name)
        rel_ok = not self.rels or any(h.startswith("--rel ") for h in hits)
        glob_ok = not self.globs or any(h.startswith("--member ") for h in hits)
        return rel_ok and glob_ok

    def option_values(self) -> list[str]:
        return [f"--rel {r.text}" for r in self.rels] + [f"--member {g}" for g in self.globs]


@dataclass
class PartPlan:
    """One part (a TAR, or a sample's plain file) of a set, and how to get what is wanted of it."""

    name: str  # file name in the fault's folder on the remote
    size: int
    sha256: str | None  # from the sidecar; None for older archives
    plain: bool = False  # a plain file (SAMPLE_BB), not a TAR
    whole: bool = True  # fetch the whole file
    members: list[MemberInfo] = field(default_factory=list)  # sidecar members in this part (all of them)
    ranged: list[MemberInfo] = field(default_factory=list)  # fetched alone by byte range instead

    @property
    def fetch_size(self) -> int:
        return self.size if self.whole else sum(m.size for m in self.ranged)


@dataclass
class SetPlan:
    rs: RemoteSet
    parts: list[PartPlan]
    verified: bool  # a sidecar vouches for the parts (SHA-256); else rclone check
    forced: bool = False  # not complete, fetched anyway (--allow-incomplete)

    @property
    def fault(self) -> str:
        return self.rs.fault

    @property
    def dtype(self) -> str:
        return self.rs.dtype

    @property
    def full_size(self) -> int:
        return self.rs.size

    @property
    def fetch_size(self) -> int:
        return sum(p.fetch_size for p in self.parts)


@dataclass
class Selection:
    sets: list[SetPlan] = field(default_factory=list)
    refused: list[RemoteSet] = field(default_factory=list)  # incomplete / ambiguous / mismatch
    unmatched: list[str] = field(default_factory=list)  # option values that matched nothing
    unknown_types: list[str] = field(default_factory=list)  # the -t values among them (the run stops on these)
    nothing_wanted: list[RemoteSet] = field(default_factory=list)  # no member passes --rel/--member
    filter_hits: set[str] = field(default_factory=set)  # --rel/--member values matched so far
    filter_unknown: bool = False  # some selected sets have no sidecar: matches known only after extraction
    weights: dict[str, int] = field(default_factory=dict)  # fault -> bytes of its sets passing -t/--inc/--exc

    @property
    def fetch_size(self) -> int:
        return sum(s.fetch_size for s in self.sets)

    @property
    def full_size(self) -> int:
        return sum(s.full_size for s in self.sets)


def select(
    listing: VersionListing,
    *,
    types: Iterable[str] = (),
    inc_faults: Iterable[str] = (),
    exc_faults: Iterable[str] = (),
    member_filter: MemberFilter = MemberFilter(),
    allow_incomplete: bool = False,
) -> Selection:
    """Choose sets, parts and members; report refused sets and values that match nothing."""
    out = Selection()
    faults = listing.faults()
    inc, exc = list(inc_faults), list(exc_faults)
    for opt, names in (("--inc_fault", inc), ("--exc_fault", exc)):
        for n in names:
            if n not in faults:
                out.unmatched.append(f"{opt} {n}: no such fault in {listing.version}")
    types = list(types)
    available = listing.types()
    if types:
        chosen, bad = match_types(available, types)
        out.unknown_types = [f"-t {t!r} is not a data type of {listing.version} on the remote "
                             f"(there: {', '.join(available)})" for t in bad]
        out.unmatched += out.unknown_types
    else:
        chosen = available
    keep_faults = [f for f in faults if (not inc or f in inc) and f not in exc]
    for fault in keep_faults:
        for dtype in chosen:
            rs = listing.get(fault, dtype)
            if rs is None or rs.state == SetState.ABSENT and not rs.files:
                continue
            out.weights[fault] = out.weights.get(fault, 0) + rs.size
            forced = rs.state != SetState.COMPLETE
            if forced and (not allow_incomplete or isinstance(rs.damage, SidecarUnsafe)):
                out.refused.append(rs)
                continue
            plan = _plan_set(rs, member_filter, forced, out)
            if forced and plan is not None and not plan.parts:  # nothing valid to fetch (only odd names)
                out.refused.append(rs)
            elif plan is None:
                out.nothing_wanted.append(rs)
            else:
                out.sets.append(plan)
    if member_filter.active and not out.filter_unknown and not out.refused:  # refused sets may hold them
        out.unmatched += unmatched_filter_values(member_filter, out.filter_hits)
    return out


def unmatched_filter_values(member_filter: MemberFilter, hits: set[str]) -> list[str]:
    return [f"{v}: matches no member of the selected sets" for v in member_filter.option_values() if v not in hits]


def _plan_set(rs: RemoteSet, flt: MemberFilter, forced: bool, out: Selection) -> SetPlan | None:
    """Parts (and ranged members) to fetch for one set; None when the filter leaves nothing."""
    sc = rs.sidecar if not forced else None
    if rs.is_sample:
        parts = []
        by_part = {m.part: m for m in sc.members} if sc else {}
        for name in sorted(rs.files):
            if flt.active:
                hits = flt.hits(rs.fault, name)
                out.filter_hits |= hits
                if not flt.wants(rs.fault, name):
                    continue
            m = by_part.get(name)
            parts.append(PartPlan(name=name, size=rs.files[name].size, sha256=m.sha256 if m else None, plain=True,
                                  members=[m] if m else []))
        return SetPlan(rs, parts, verified=sc is not None, forced=forced) if parts else None
    if sc is None:
        if flt.active:
            out.filter_unknown = True
        parts = [PartPlan(name=n, size=rs.files[n].size, sha256=None) for n in rs.ordered_part_names() if n in rs.files]
        return SetPlan(rs, parts, verified=False, forced=forced)
    members_of: dict[str, list[MemberInfo]] = {}
    for m in sc.members:
        members_of.setdefault(m.part, []).append(m)
    parts = []
    for p in sc.parts:
        mine = members_of.get(p.name, [])
        plan = PartPlan(name=p.name, size=p.size, sha256=p.sha256, members=mine)
        if flt.active:
            wanted = []
            for m in mine:
                out.filter_hits |= flt.hits(rs.fault, m.name)
                if flt.wants(rs.fault, m.name):
                    wanted.append(m)
            if not wanted:
                continue
            if len(wanted) < len(mine):
                plan.whole = False
                plan.ranged = wanted
        parts.append(plan)
    return SetPlan(rs, parts, verified=True) if parts else None


def shard_selection(selection: Selection, index: int, count: int) -> Selection:
    """Keep only the faults of shard ``index`` of ``count``.

    The faults are balanced by the remote size of their sets that pass ``-t``,
    ``--inc_fault`` and ``--exc_fault`` (``--rel``/``--member`` do not move a fault
    to another shard), the same weights ``cs-sync slurm download`` plans with, so
    its plan and the tasks agree. Refused sets are kept only for this shard's
    faults, so each problem is reported once.
    """
    mine = set(assign_shards(selection.weights, count)[index])
    return Selection(
        sets=[s for s in selection.sets if s.fault in mine],
        refused=[r for r in selection.refused if r.fault in mine],
        unmatched=list(selection.unmatched),
        nothing_wanted=[r for r in selection.nothing_wanted if r.fault in mine],
        filter_hits=set(selection.filter_hits),
        filter_unknown=selection.filter_unknown,
        weights=dict(selection.weights),
    )
