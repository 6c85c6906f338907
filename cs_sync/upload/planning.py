"""Turn a manifest into upload sets and size-capped parts: data in, data out.

One set per fault and host data type (types packed into another, such as VM into
Source, join their host's TAR). Members are taken in sorted member-name order and
packed greedily: a new part starts when the next member would push the part past
the cap. Members are never split; a member too big for the cap gets a part of its
own (with a warning); a part above the hard limit is refused, naming the file.
Sample types (SAMPLE_BB) are plain files, one per fault, not TARs.

Part sizes are exact TAR sizes (headers and padding included), so the cap and
the hard limit apply to the files that land on the remote.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from cs_sync.archive.tar_write import MemberSource, member_span, tar_size, tar_size_from_body
from cs_sync.core.errors import PlanError
from cs_sync.core.naming import event_rel, find_event, member_name, part_name, sample_file_name, set_name
from cs_sync.core.sizes import format_size
from cs_sync.inputs.config import SyncConfig
from cs_sync.inputs.manifest import FileRecord, Manifest


@dataclass(frozen=True)
class PlannedMember:
    name: str  # flat name inside the TAR (a sample: its remote file name)
    source: str  # path relative to CS_ROOT
    size: int
    mtime_ns: int | None
    dtype: str  # the data type the file belongs to (VM inside a Source set)

    def as_source(self) -> MemberSource:
        return MemberSource(self.name, self.source, self.size, self.mtime_ns)


@dataclass(frozen=True)
class PartPlan:
    name: str  # file name on the remote, in the fault's folder
    index: int
    count: int
    members: tuple[PlannedMember, ...]
    size: int  # exact bytes of the part file

    @property
    def final(self) -> bool:
        return self.index == self.count - 1


@dataclass(frozen=True)
class SetPlan:
    fault: str
    dtype: str
    parts: tuple[PartPlan, ...]
    sample: bool = False  # plain files (SAMPLE_BB), not TARs

    @property
    def name(self) -> str:
        return set_name(self.fault, self.dtype)

    @property
    def size(self) -> int:
        return sum(p.size for p in self.parts)

    @property
    def members(self) -> list[PlannedMember]:
        return [m for p in self.parts for m in p.members]


OVERSIZE = "oversize"  # Note.kind: a file larger than the part cap, given a part of its own
MANY_OVERSIZE = 3  # more such files than this: one summary line instead of one per file


@dataclass(frozen=True)
class Note:
    """A warning or refusal about one set."""

    set_name: str
    message: str
    kind: str = ""

    def __str__(self) -> str:
        return f"{self.set_name}: {self.message}"


@dataclass
class Plan:
    sets: list[SetPlan] = field(default_factory=list)
    warnings: list[Note] = field(default_factory=list)
    refused: list[Note] = field(default_factory=list)  # parts above the hard limit, naming the file

    def only_faults(self, faults: list[str]) -> Plan:
        keep = set(faults)
        sets = [s for s in self.sets if s.fault in keep]
        names = {s.name for s in sets}
        return Plan(sets, [w for w in self.warnings if w.set_name in names],
                    [r for r in self.refused if r.set_name in names])

    @property
    def size(self) -> int:
        return sum(s.size for s in self.sets)


def selected_sets(config: SyncConfig, types: list[str] | None) -> list[str]:
    """Set types to upload for a ``-t`` selection (validated): hosts and sample types, config order.

    Selecting a packed type (VM) selects its host (Source), whose TAR holds it.
    """
    chosen = config.check_types(types)
    wanted: set[str] = set()
    for t in chosen:
        dt = config.types[t]
        wanted.add(t if dt.sample_of is not None else config.host_of(t))
    return [t for t in config.names() if t in wanted]


def relative_to_type(config: SyncConfig, fault: str, dtype: str, path: str) -> str:
    """A manifest path made relative to its type's ``where`` (what naming expects).

    Falls back to the part after the fault's folder (``Runs/F/F_REL01/...`` ->
    ``F_REL01/...``) for types the config does not know or paths outside ``where``.
    """
    dt = config.types.get(dtype)
    if dt is not None and dt.where is not None:
        where = dt.where_for(fault).strip("/") + "/"
        if path.startswith(where):
            return path[len(where):]
    comps = path.split("/")
    if fault in comps[:-1]:
        return "/".join(comps[comps.index(fault) + 1:])
    return path


def _members(config: SyncConfig, fault: str, types: list[str], manifest: Manifest) -> list[PlannedMember]:
    out: dict[str, PlannedMember] = {}
    for t in types:
        template = config.types[t].member if t in config.types else None
        for rec in manifest.files(fault, t):
            name = member_name(fault, relative_to_type(config, fault, t, rec.path), template)
            if name in out:
                raise PlanError(
                    f"{fault}: {rec.path} and {out[name].source} would both be {name!r} inside "
                    f"{set_name(fault, types[0])}.tar",
                    hint="give the type a 'member' template in sync_patterns.yaml that keeps names apart",
                )
            out[name] = PlannedMember(name, rec.path, rec.size, rec.mtime_ns, t)
    return [out[n] for n in sorted(out)]


def pack_parts(fault: str, dtype: str, members: list[PlannedMember], max_size: int) -> tuple[list[PartPlan], list[str]]:
    """Greedy packing in the given order; returns parts and warnings."""
    groups: list[list[PlannedMember]] = []
    warnings: list[str] = []
    current: list[PlannedMember] = []
    body = 0  # bytes of members in ``current`` (without the end blocks)
    for m in members:
        span = member_span(m.name, m.size)
        alone = tar_size([(m.name, m.size)])
        if alone > max_size:
            if current:
                groups.append(current)
            groups.append([m])
            current, body = [], 0
            warnings.append(
                f"{m.source} ({format_size(m.size)}) is larger than the part cap {format_size(max_size)}: "
                f"it gets a part of its own"
            )
            continue
        if current and tar_size_from_body(body + span) > max_size:
            groups.append(current)
            current, body = [], 0
        current.append(m)
        body += span
    if current:
        groups.append(current)
    count = len(groups)
    parts = [
        PartPlan(
            name=part_name(fault, dtype, i, count),
            index=i,
            count=count,
            members=tuple(g),
            size=tar_size((m.name, m.size) for m in g),
        )
        for i, g in enumerate(groups)
    ]
    return parts, warnings


def sample_members(config: SyncConfig, fault: str, sample_type: str, manifest: Manifest) -> list[PlannedMember]:
    """The file(s) of a sample type for a fault: the manifest's own section if it has one,
    else the source type's files of the median event, else of the lowest realisation."""
    src_type = config.types[sample_type].sample_of if sample_type in config.types else None
    records: list[FileRecord] = manifest.files(fault, sample_type)
    from_type = sample_type
    if not records and src_type:
        records, from_type = manifest.files(fault, src_type), src_type
    by_event: dict[str, list[FileRecord]] = {}
    for rec in records:
        ev = find_event(fault, relative_to_type(config, fault, from_type, rec.path))
        if ev is not None:
            by_event.setdefault(ev, []).append(rec)
    if not by_event:
        return []
    if fault in by_event:
        event = fault
    else:
        event = min(by_event, key=lambda e: (event_rel(fault, e) or 0, e))
    chosen = sorted(by_event[event], key=lambda r: r.path)
    return [
        PlannedMember(sample_file_name(fault, event, posixpath.basename(r.path)), r.path, r.size, r.mtime_ns, sample_type)
        for r in chosen
    ]


def plan_upload(
    manifest: Manifest,
    config: SyncConfig,
    *,
    types: list[str] | None = None,
    faults: list[str] | None = None,
    max_size: int,
    hard_limit: int,
) -> Plan:
    """Sets and parts for the selected faults (manifest order) and types (config order).

    Raises PlanError when two files would get the same member name; parts above
    ``hard_limit`` are listed in ``Plan.refused`` (the caller refuses the run).
    """
    plan = Plan()
    set_types = selected_sets(config, types)
    for fault in manifest.fault_names():
        if faults is not None and fault not in faults:
            continue
        present = manifest.faults.get(fault, {})
        for host in set_types:
            dt = config.types[host]
            if dt.sample_of is not None:
                members = sample_members(config, fault, host, manifest)
                if not members:
                    continue
                parts = [
                    PartPlan(name=m.name, index=i, count=len(members), members=(m,), size=m.size)
                    for i, m in enumerate(members)
                ]
                sp = SetPlan(fault, host, tuple(parts), sample=True)
            else:
                group = [t for t in config.packed_with(host) if t in present]
                if not group:
                    continue
                members = _members(config, fault, group, manifest)
                if not members:
                    continue
                parts, warnings = pack_parts(fault, host, members, max_size)
                plan.warnings.extend(Note(set_name(fault, host), w, OVERSIZE) for w in warnings)
                sp = SetPlan(fault, host, tuple(parts))
            for p in sp.parts:
                if p.size > hard_limit:
                    what = p.members[0].source if len(p.members) == 1 else f"{len(p.members)} files"
                    plan.refused.append(Note(sp.name, (
                        f"{fault}/{p.name} would be {format_size(p.size)} ({what}), above the hard limit "
                        f"{format_size(hard_limit)}"
                    )))
            plan.sets.append(sp)
        # types in the manifest that the config does not know: their own sets, as before
        for t in present:
            if t in config.types or (types and t not in types):
                continue
            members = _members(config, fault, [t], manifest)
            if not members:
                continue
            parts, warnings = pack_parts(fault, t, members, max_size)
            plan.warnings.extend(Note(set_name(fault, t), w, OVERSIZE) for w in warnings)
            plan.warnings.append(Note(set_name(fault, t), f"type {t!r} is not in {config.source}; uploaded as its own set"))
            plan.sets.append(SetPlan(fault, t, tuple(parts)))
    return plan


# -- what to do with each set, given what the remote holds ------------------------------

UPLOAD = "upload"  # not on the remote: upload it
RESUME = "resume"  # an interrupted run of ours: finish it
REPAIR = "repair"  # incomplete or not matching its sidecar: redo what is missing
REPLACE = "replace"  # --overwrite
UPDATE = "update"  # stale and --update/--overwrite: redo
SKIP = "skip"  # complete and verified
UNVERIFIED = "unverified"  # complete by its part names, made by the older scripts (no sidecar)
STALE = "stale"  # sources changed since upload; redone only with --update/--overwrite
REFUSE = "refuse"  # cannot be done safely without --overwrite
REDO_ACTIONS = (UPLOAD, RESUME, REPAIR, REPLACE, UPDATE)


@dataclass(frozen=True)
class Decision:
    action: str
    reason: str = ""
    delete_sidecar: bool = False
    delete: tuple[str, ...] = ()  # remote file names in the fault folder to delete before uploading
    todo: tuple[str, ...] = ()  # part names to upload, in order (the final part last)

    @property
    def redo(self) -> bool:
        return self.action in REDO_ACTIONS


def stale_reasons(sp: SetPlan, sidecar) -> list[str]:
    """How the planned members differ from what a sidecar recorded (empty: not stale)."""
    recorded = {m.source: m for m in sidecar.members}
    planned = {m.source: m for m in sp.members}
    out: list[str] = []
    for src in sorted(set(planned) - set(recorded)):
        out.append(f"{src} is new")
    for src in sorted(set(recorded) - set(planned)):
        out.append(f"{src} is gone")
    for src in sorted(set(planned) & set(recorded)):
        p, r = planned[src], recorded[src]
        if p.size != r.size:
            out.append(f"{src} is {p.size} bytes, uploaded {r.size}")
        elif p.mtime_ns is not None:
            r_ns = r.mtime_ns if r.mtime_ns is not None else round(r.mtime * 1e9)
            if abs(p.mtime_ns - r_ns) > (0 if r.mtime_ns is not None else 2000):
                out.append(f"{src} was modified after upload")
    return out


def decide_set(
    sp: SetPlan,
    remote,  # remote_sets.RemoteSet or None
    *,
    sidecar_present: bool = False,
    overwrite: bool = False,
    update: bool = False,
    checked: frozenset[str] = frozenset(),
    done_before: bool = False,
    started: bool = False,
    ours: frozenset[str] = frozenset(),
) -> Decision:
    """What to do with a planned set given the remote's (classified) copy of it.

    ``checked``: parts an earlier, interrupted run of ours uploaded and checked
    (per its journal) that are still on the remote with their size; ``done_before``:
    that run finished this set (so an interrupted --overwrite is not redone);
    ``started``: that run packed or began sending parts of this set, so parts it
    may have copied without checking are its own, not the older scripts'.
    ``ours``: names of this set's files that such a run sent or began to send, under this
    plan or an earlier one (another --max-size, sources preprocessed again): on the
    remote they are ours to remove, never parts of someone else's set to refuse.
    ``sidecar_present``: a sidecar file exists even if it could not be read.

    Order of removals keeps the remote honest: the sidecar goes first (the set
    stops looking verified), then parts the new plan does not make and any final
    part not known to be ours and checked (the set stops looking complete by its
    names), and the final part is uploaded last.
    """
    from cs_sync.remote.sets import SetState

    state = remote.state if remote is not None else SetState.ABSENT
    has_sidecar = sidecar_present or (remote is not None and remote.sidecar is not None)
    names = [p.name for p in sp.parts]
    on_remote = dict(remote.files) if remote is not None else {}
    sizes = {p.name: p.size for p in sp.parts}
    checked = frozenset(n for n in checked if n in on_remote and on_remote[n].size == sizes.get(n))

    def redo(action: str, reason: str, keep_checked: bool = True) -> Decision:
        keep = checked if keep_checked else frozenset()
        finals = {n for n in on_remote if _is_final(sp, remote, n)}
        delete = sorted(n for n in on_remote if n not in sizes or (n in finals and n not in keep))
        todo = tuple(n for n in names if n not in keep)
        return Decision(action, reason, delete_sidecar=has_sidecar, delete=tuple(delete), todo=todo)

    # an index sidecar (cs-sync index, of a set the older scripts made) records no sources
    indexed = remote is not None and remote.sidecar is not None and remote.sidecar.is_index
    if state == SetState.COMPLETE and remote is not None and remote.sidecar is not None and not indexed:
        reasons = stale_reasons(sp, remote.sidecar)
        if reasons:
            if overwrite or update:
                return redo(UPDATE, "sources changed since upload: " + "; ".join(reasons[:3]), keep_checked=False)
            return Decision(STALE, "sources changed since upload: " + "; ".join(reasons[:3]))
        if overwrite and not done_before:
            return redo(REPLACE, "--overwrite", keep_checked=False)
        return Decision(SKIP, "complete on the remote")
    if state == SetState.COMPLETE:
        if checked or done_before or started:
            return redo(RESUME, "finishing an interrupted upload")
        if overwrite:
            return redo(REPLACE, "--overwrite", keep_checked=False)
        if indexed:
            return Decision(UNVERIFIED, "made by the older scripts (indexed: no sources recorded, staleness unknown)")
        return Decision(UNVERIFIED, "complete by its part names, made by the older scripts (no sidecar)")
    if state == SetState.ABSENT:
        return redo(UPLOAD, "not on the remote")
    foreign = sorted(n for n in on_remote if n not in sizes and n not in ours)
    problems = "; ".join(remote.problems) if remote is not None else ""
    if started and not foreign and state in (SetState.AMBIGUOUS, SetState.DAMAGED):
        # every file there is of the plan or left by a run of ours (e.g. a sidecar cut by a kill
        # in the middle of its write): finish that run, the old sidecar first
        return redo(RESUME, f"finishing an interrupted upload (the remote set {_set_is(state)}: {problems})")
    if state in (SetState.AMBIGUOUS, SetState.DAMAGED) or foreign:
        if overwrite:
            return redo(REPLACE, f"--overwrite: replacing the {_set_is(state, noun=True)} ({problems})", keep_checked=bool(checked))
        what = f"parts this plan does not make: {', '.join(foreign)}" if foreign else problems
        return Decision(REFUSE, f"the remote set {_set_is(state)} ({what}); re-run with --overwrite to replace it")
    if checked:
        return redo(RESUME, "finishing an interrupted upload")
    return redo(REPAIR, f"the remote set is {state.value} ({problems})")


def _set_is(state, *, noun: bool = False) -> str:
    """'is ambiguous' / 'has a damaged sidecar'; with ``noun``: 'ambiguous set' / 'set with a damaged sidecar'."""
    if state.name == "DAMAGED":
        return "set with a damaged sidecar" if noun else "has a damaged sidecar"
    return f"{state.value} set" if noun else f"is {state.value}"


def _is_final(sp: SetPlan, remote, name: str) -> bool:
    """A remote file that, present, would let a reader take the set as complete."""
    if sp.sample:
        return True
    for pn in remote.parts:
        if pn.name == name:
            return pn.final
    return False


def warning_lines(notes: list[Note], max_size: int) -> list[str]:
    """The plan's warnings as lines to show: a few files above the part cap are named one
    by one; more become one line saying how many (a cap that small is likely a mistake)."""
    over = [n for n in notes if n.kind == OVERSIZE]
    if len(over) <= MANY_OVERSIZE:
        return [str(n) for n in notes]
    sets = list(dict.fromkeys(n.set_name for n in over))
    summary = (f"{len(over)} files are larger than the part cap {format_size(max_size)} and get a part of their own "
               f"(in {len(sets)} set{'s' if len(sets) != 1 else ''}: {', '.join(sets[:3])}{' ...' if len(sets) > 3 else ''}); "
               f"--max-size is the size of one TAR part, e.g. 100G")
    return [summary, *(str(n) for n in notes if n.kind != OVERSIZE)]
