"""Which sets of a remote version ``cs-sync index`` works on, and why: pure logic over a listing."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import Enum

from cs_sync.core.naming import match_types
from cs_sync.core.sharding import assign_shards
from cs_sync.remote.sets import RemoteSet, SetState, VersionListing, classify_parts


class Action(str, Enum):
    INDEX = "index"  # made by the older scripts, no sidecar: walk its parts' headers
    UPGRADE = "upgrade"  # indexed without SHA-256s, --hash-members asked: stream its parts
    REINDEX = "reindex"  # indexed before, --reindex asked (e.g. its parts changed since)
    DONE = "done"  # has a sidecar already (made at upload, or indexed as strongly as asked)
    SAMPLE = "sample"  # SAMPLE_BB: plain files, no TAR to index
    REFUSE = "refuse"  # incomplete, ambiguous, damaged sidecar, or changed since indexed: left alone

    @property
    def walks(self) -> bool:
        return self in (Action.INDEX, Action.UPGRADE, Action.REINDEX)


@dataclass
class SetTask:
    rs: RemoteSet
    action: Action
    reason: str

    @property
    def key(self) -> tuple[str, str]:
        return self.rs.fault, self.rs.dtype


@dataclass
class IndexPlan:
    tasks: list[SetTask] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)  # -t / --inc_fault / --exc_fault values matching nothing
    weights: dict[str, int] = field(default_factory=dict)  # fault -> bytes of its selected sets
    unknown_types: list[str] = field(default_factory=list)

    def of(self, action: Action) -> list[SetTask]:
        return [t for t in self.tasks if t.action == action]


def decide(rs: RemoteSet, *, hash_members: bool = False, reindex: bool = False) -> SetTask:
    """What index does with one set, and the reason shown to the user."""
    if rs.is_sample:
        return SetTask(rs, Action.SAMPLE, "plain files, not TARs: nothing to index")
    if rs.damage is not None:
        return SetTask(rs, Action.REFUSE, f"its sidecar is damaged ({rs.damage.message}); not indexed")
    sc = rs.sidecar
    if sc is not None and not sc.is_index:
        return SetTask(rs, Action.DONE, "made by cs-sync upload: its sidecar records every SHA-256")
    by_names, problems = classify_parts(rs.parts)
    if sc is None:
        if rs.state == SetState.COMPLETE:
            return SetTask(rs, Action.INDEX, "made by the older scripts (no sidecar)")
        return SetTask(rs, Action.REFUSE, f"{rs.state.value}: {'; '.join(rs.problems)}; not indexed")
    if rs.state != SetState.COMPLETE:
        if by_names == SetState.COMPLETE and reindex:
            return SetTask(rs, Action.REINDEX, f"--reindex: the parts changed since indexed ({'; '.join(rs.problems)})")
        if by_names == SetState.COMPLETE:
            return SetTask(rs, Action.REFUSE, f"the parts changed since they were indexed on {sc.created or '?'} "
                           f"({'; '.join(rs.problems)}): see cs-sync verify; --reindex indexes them again")
        return SetTask(rs, Action.REFUSE, f"{rs.state.value}: {'; '.join(rs.problems or problems)}; not indexed")
    if reindex:
        return SetTask(rs, Action.REINDEX, "--reindex")
    if hash_members and not sc.hashed:
        return SetTask(rs, Action.UPGRADE, "indexed without SHA-256s; --hash-members records them")
    return SetTask(rs, Action.DONE, "indexed earlier" + (" with SHA-256s" if sc.hashed else ""))


@dataclass
class Chosen:
    """The sets ``-t`` / ``--inc_fault`` / ``--exc_fault`` select, in fault and type order."""

    sets: list[RemoteSet] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    weights: dict[str, int] = field(default_factory=dict)  # fault -> bytes of its selected sets
    unknown_types: list[str] = field(default_factory=list)  # the -t values among them: the run stops on these


def choose_sets(listing: VersionListing, *, types: Iterable[str] = (), inc_faults: Iterable[str] = (),
                exc_faults: Iterable[str] = ()) -> Chosen:
    """Every set of the listing the options select (exclude wins); values that match nothing."""
    out = Chosen()
    faults = listing.faults()
    inc, exc = list(inc_faults), list(exc_faults)
    for opt, names in (("--inc_fault", inc), ("--exc_fault", exc)):
        out.unmatched += [f"{opt} {n}: no such fault in {listing.version}" for n in names if n not in faults]
    available = listing.types()
    chosen = available
    if types:
        chosen, bad = match_types(available, list(types))
        out.unknown_types = [f"-t {t!r} is not a data type of {listing.version} on the remote "
                             f"(there: {', '.join(available)})" for t in bad]
        out.unmatched += out.unknown_types
    for fault in faults:
        if (inc and fault not in inc) or fault in exc:
            continue
        for dtype in chosen:
            rs = listing.get(fault, dtype)
            if rs is None or (rs.state == SetState.ABSENT and not rs.files and rs.damage is None):
                continue
            out.weights[fault] = out.weights.get(fault, 0) + rs.size
            out.sets.append(rs)
    return out


def plan_index(listing: VersionListing, *, types: Iterable[str] = (), inc_faults: Iterable[str] = (),
               exc_faults: Iterable[str] = (), hash_members: bool = False, reindex: bool = False) -> IndexPlan:
    """Every selected set with what index does with it; names that match nothing reported.

    The weights (bytes per fault) do not depend on what is indexed already, so a
    re-submitted shard holds the same faults.
    """
    chosen = choose_sets(listing, types=types, inc_faults=inc_faults, exc_faults=exc_faults)
    return IndexPlan(tasks=[decide(rs, hash_members=hash_members, reindex=reindex) for rs in chosen.sets],
                     unmatched=chosen.unmatched, weights=chosen.weights, unknown_types=chosen.unknown_types)


def shard_plan(plan: IndexPlan, index: int, count: int) -> IndexPlan:
    """Only the faults of shard ``index`` of ``count``, balanced by the bytes of their selected sets."""
    mine = set(assign_shards(plan.weights, count)[index])
    return IndexPlan(tasks=[t for t in plan.tasks if t.rs.fault in mine], unmatched=list(plan.unmatched),
                     weights=dict(plan.weights), unknown_types=list(plan.unknown_types))
