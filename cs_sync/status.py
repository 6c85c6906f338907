"""What the remote holds: the versions under a root, or one version's faults x data types.

Each cell of a version's table says complete (parts, size), incomplete (what is
missing), ambiguous, mismatch (part sizes differ from the sidecar) or absent; with
a manifest (``files_to_sync.yaml``) also stale (sources changed since they were
uploaded) or not yet uploaded; a fault the version's own ``list.txt`` names with
nothing on the remote is not uploaded too. Data in, data out: the CLI draws it
(ui/status_table.py). Reading the remote costs one recursive listing, one copy of
the sidecars and one read of ``list.txt``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import Enum
from pathlib import Path

from cs_sync.core.errors import ExitCode, ObjectNotFound, RemoteError
from cs_sync.core.naming import LIST_FILE, STOCKTAKE_FILE, is_hidden
from cs_sync.inputs.config import SyncConfig, load_config
from cs_sync.inputs.faultlist import parse_fault_list
from cs_sync.inputs.manifest import FileRecord, Manifest, read_manifest
from cs_sync.inputs.stocktake_csv import parse_stocktake_csv
from cs_sync.remote.rclone import Rclone, join
from cs_sync.remote.redact import redact
from cs_sync.remote.sets import (
    SAMPLE_TYPE,
    RemoteFile,
    RemoteSet,
    SetState,
    VersionListing,
    classify_listing,
    group_listing,
    key_from_sidecar_name,
)
from cs_sync.remote.state import read_version

MTIME_TOLERANCE = 1e-3  # seconds: sidecars without mtime_ns keep a float


class CellState(str, Enum):
    COMPLETE = "complete"
    INCOMPLETE = "incomplete"
    AMBIGUOUS = "ambiguous"
    MISMATCH = "mismatch"
    DAMAGED = "damaged sidecar"  # a sidecar exists but does not parse or validate
    ABSENT = "absent"
    STALE = "stale"  # complete on the remote, but the sources changed since (needs --manifest)
    NOT_UPLOADED = "not uploaded"  # in the manifest, not on the remote (needs --manifest)


BAD_STATES = {CellState.INCOMPLETE, CellState.AMBIGUOUS, CellState.MISMATCH, CellState.DAMAGED, CellState.STALE, CellState.NOT_UPLOADED}

# What vouches for a set on the remote (Cell.check): its sidecar says the upload compared a
# hash of the bytes the remote holds (content) or sizes only (size), or does not say how
# (unrecorded: sidecars written before this was recorded); or the older scripts made it and
# `cs-sync index` recorded its members' places (INDEXED; with --hash-members also SHA-256s:
# INDEXED_HASHED), or there is no sidecar at all (NO_SIDECAR: complete by its part names only).
CHECK_CONTENT = "content"
CHECK_SIZE = "size"
CHECK_UNRECORDED = "unrecorded"
INDEXED = "indexed"
INDEXED_HASHED = "indexed with SHA-256"
NO_SIDECAR = "no sidecar"
CHECKS = (CHECK_CONTENT, CHECK_SIZE, CHECK_UNRECORDED, INDEXED_HASHED, INDEXED, NO_SIDECAR)


@dataclass
class Cell:
    state: CellState
    parts: int = 0
    size: int = 0
    problems: list[str] = field(default_factory=list)
    verified: bool = False  # a sidecar vouches for it (made by this tool)
    check: str | None = None  # one of CHECKS for a set on the remote; None when nothing is there
    uploaded: str | None = None  # when its sidecar was written (ISO 8601, UTC), if it has one


@dataclass
class VersionStatus:
    version: str
    root: str
    faults: list[str]
    types: list[str]
    cells: dict[tuple[str, str], Cell]
    has_list: bool = False
    has_stocktake: bool = False
    other_files: list[str] = field(default_factory=list)
    manifest: str | None = None
    cs_root: str | None = None  # the manifest's CS_ROOT (what upload needs), when a manifest was given
    stocktake: dict | None = None  # the stocktake per fault and pattern (inputs/stocktake_csv.py)
    list_faults: int | None = None  # how many faults the remote's list.txt names (None: not read)
    list_missing: list[str] = field(default_factory=list)  # faults list.txt names with nothing on the remote
    unlisted: list[str] = field(default_factory=list)  # faults on the remote that list.txt does not name
    list_error: str | None = None  # why the remote's list.txt could not be read, if so

    def cell(self, fault: str, dtype: str) -> Cell:
        return self.cells.get((fault, dtype), Cell(CellState.ABSENT))

    def totals(self) -> dict:
        """Counts per state, and the bytes and parts on the remote."""
        by_state: dict[str, int] = {s.value: 0 for s in CellState if s != CellState.ABSENT}
        size = parts = 0
        for c in self.cells.values():
            if c.state != CellState.ABSENT:
                by_state[c.state.value] += 1
            size += c.size
            parts += c.parts
        type_size = {t: sum(self.cell(f, t).size for f in self.faults) for t in self.types}
        checks = {k: 0 for k in CHECKS}
        for c in self.cells.values():
            if c.check is not None:
                checks[c.check] += 1
        times = sorted(c.uploaded for c in self.cells.values() if c.uploaded)
        return {"sets": by_state, "bytes": size, "parts": parts, "bytes_by_type": type_size, "faults": len(self.faults),
                "checks": checks, "uploaded": {"oldest": times[0] if times else None,
                                               "newest": times[-1] if times else None}}

    def exit_code(self) -> int:
        """7 when any set is incomplete, ambiguous, mismatched, stale or not uploaded; else 0."""
        bad = any(c.state in BAD_STATES for c in self.cells.values())
        return int(ExitCode.INCOMPLETE) if bad else int(ExitCode.OK)

    def to_dict(self) -> dict:
        return {
            "version": self.version,
            "root": self.root,
            "manifest": self.manifest,
            "cs_root": self.cs_root,
            "has_list": self.has_list,
            "has_stocktake": self.has_stocktake,
            "list_faults": self.list_faults,
            "list_missing": self.list_missing,
            "unlisted": self.unlisted,
            "list_error": self.list_error,
            "faults": self.faults,
            "types": self.types,
            "cells": [
                {"fault": f, "type": t, **{k: (v.value if isinstance(v, Enum) else v) for k, v in asdict(c).items()}}
                for (f, t), c in sorted(self.cells.items())
            ],
            "other_files": self.other_files,
            "stocktake": self.stocktake,
            "totals": self.totals(),
            "exit_code": self.exit_code(),
        }


@dataclass
class VersionSummary:
    name: str
    faults: int
    sets: int
    size: int
    problem_sets: int  # incomplete or ambiguous by their part names (sidecars not read)


def _type_order(types: set[str], config: SyncConfig) -> list[str]:
    known = [t for t in config.names() if t in types]
    return known + sorted(types - set(known))


def set_check(rs: RemoteSet) -> str | None:
    """What vouches for a set (one of CHECKS), or None when nothing of it is on the remote or its
    sidecar is damaged (the tool's own set, not an older script's: its state says why)."""
    if not rs.files or rs.damage is not None:
        return None
    if rs.sidecar is None:
        return NO_SIDECAR
    if rs.sidecar.is_index:
        return INDEXED_HASHED if rs.sidecar.hashed else INDEXED
    return rs.sidecar.check if rs.sidecar.check in (CHECK_CONTENT, CHECK_SIZE) else CHECK_UNRECORDED


def cells_from_listing(listing: VersionListing) -> dict[tuple[str, str], Cell]:
    out: dict[tuple[str, str], Cell] = {}
    for key, rs in listing.sets.items():
        out[key] = Cell(CellState(rs.state.value), parts=len(rs.files), size=rs.size, problems=list(rs.problems),
                        verified=rs.sidecar is not None, check=set_check(rs),
                        uploaded=(rs.sidecar.created or None) if rs.sidecar is not None else None)
    return out


def status_from_listing(listing: VersionListing, root: str, config: SyncConfig | None = None) -> VersionStatus:
    config = config or load_config()
    cells = cells_from_listing(listing)
    return VersionStatus(
        version=listing.version,
        root=root,
        faults=listing.faults(),
        types=_type_order({t for _, t in cells}, config),
        cells=cells,
        has_list=listing.has_list,
        has_stocktake=listing.has_stocktake,
        other_files=list(listing.other_files),
    )


def _mtime_differs(rec: FileRecord, mtime: float, mtime_ns: int | None) -> bool:
    if rec.mtime_ns is None:
        return False  # the manifest has no mtime: only sizes can be compared
    if mtime_ns is not None:
        return rec.mtime_ns != mtime_ns
    return abs(rec.mtime_ns / 1e9 - mtime) > MTIME_TOLERANCE


def compare_manifest(status: VersionStatus, listing: VersionListing, manifest: Manifest,
                     config: SyncConfig | None = None) -> VersionStatus:
    """Mark sets whose sources changed since upload (stale) and sets not uploaded yet.

    Files of a type packed into another (VM into Source) count for the host's set.
    Staleness needs a sidecar (it records each member's source, size and mtime);
    for older archives it is noted as unknown.
    """
    config = config or load_config()
    wanted: dict[tuple[str, str], dict[str, FileRecord]] = {}
    for fault, types in manifest.faults.items():
        for dtype, recs in types.items():
            host = config.host_of(dtype) if dtype in config.types else dtype
            wanted.setdefault((fault, host), {}).update(recs)
            for st in config.sample_types():
                if st.sample_of == dtype and recs:
                    wanted.setdefault((fault, st.name), {})
    for key, recs in wanted.items():
        fault, dtype = key
        rs = listing.get(fault, dtype)
        cell = status.cells.get(key)
        if rs is None or cell is None or cell.state == CellState.ABSENT:
            n = len(recs)
            what = f"{n} file(s) in the manifest" if n else "a sample of the manifest's files"
            status.cells[key] = Cell(CellState.NOT_UPLOADED, problems=[f"{what}, nothing on the remote"])
            continue
        if cell.state != CellState.COMPLETE:
            continue
        if rs.sidecar is None or rs.sidecar.is_index:
            what = "indexed older archive: no sources recorded" if rs.sidecar else "no sidecar (older archive)"
            cell.problems.append(f"{what}: cannot tell whether the sources changed")
            continue
        by_source = {m.source: m for m in rs.sidecar.members}
        changed: list[str] = []
        if dtype == SAMPLE_TYPE or (config.types.get(dtype) and config.types[dtype].sample_of):
            all_recs = {r.path: r for types in manifest.faults.get(fault, {}).values() for r in types.values()}
            for m in rs.sidecar.members:
                r = all_recs.get(m.source)
                if r is not None and (r.size != m.size or _mtime_differs(r, m.mtime, m.mtime_ns)):
                    changed.append(f"{m.source} changed since upload")
        else:
            for path, r in recs.items():
                sm = by_source.get(path)
                if sm is None:
                    changed.append(f"{path} is new (not in the uploaded set)")
                elif sm.size != r.size:
                    changed.append(f"{path} is {r.size} bytes, uploaded {sm.size}")
                elif _mtime_differs(r, sm.mtime, sm.mtime_ns):
                    changed.append(f"{path} modified since upload")
            for src in by_source:
                if src not in recs:
                    changed.append(f"{src} no longer in the manifest")
        if changed:
            cell.state = CellState.STALE
            more = f" (+{len(changed) - 3} more)" if len(changed) > 3 else ""
            cell.problems = changed[:3]
            if more:
                cell.problems.append(more.strip())
    status.faults = sorted(set(status.faults) | {f for f, _ in status.cells})
    status.types = _type_order({t for _, t in status.cells}, config)
    return status


LISTED_NOT_UPLOADED = f"in {LIST_FILE}, nothing on the remote"


def compare_fault_list(status: VersionStatus, listed: list[str], config: SyncConfig | None = None) -> VersionStatus:
    """A fault the version's list.txt names with no set on the remote is not uploaded (in every
    type of the table, or every set type when the table has none), so a version missing whole
    faults never reads complete; faults on the remote that list.txt does not name are noted."""
    config = config or load_config()
    present = {f for (f, _), c in status.cells.items() if c.state != CellState.NOT_UPLOADED}
    types = status.types or _type_order(set(config.set_types()), config)
    for fault in listed:
        if not any(f == fault for f, _ in status.cells):  # with --manifest its cells say more
            for t in types:
                status.cells[(fault, t)] = Cell(CellState.NOT_UPLOADED, problems=[LISTED_NOT_UPLOADED])
    names = set(listed)
    status.list_faults = len(names)
    status.list_missing = [f for f in listed if f not in present]
    status.unlisted = sorted(f for f in present if f not in names)
    status.faults = sorted(set(status.faults) | {f for f, _ in status.cells})
    status.types = _type_order({t for _, t in status.cells}, config)
    return status


def _remote_fault_list(rclone: Rclone, root: str, version: str) -> list[str]:
    """The fault names of the version's own list.txt; CsSyncError when it cannot be read or parsed."""
    path = join(root, version, LIST_FILE)
    data, _ = rclone.read_range(path, b"".join, what=f"reading {path}")
    return [e.name for e in parse_fault_list(data.decode("utf-8", errors="replace"), redact(path))]


REMOTE_STOCKTAKE = "remote"  # stocktake= this: the version's own stocktake.csv on the remote


def version_status(rclone: Rclone, root: str, version: str, manifest_path: Path | str | None = None,
                   stocktake: Path | str | None = None) -> VersionStatus:
    """One version's table; RemoteError (exit 6) when the version or the remote is not there.

    ``stocktake``: a local stocktake.csv to add per fault and pattern, or REMOTE_STOCKTAKE for
    the version's own (one more rclone call; a remote one that cannot be read is noted in
    ``stocktake["error"]``, a local one raises InputError).
    """
    listing = read_version(rclone, root, version)
    config = load_config()
    status = status_from_listing(listing, root, config)
    if stocktake == REMOTE_STOCKTAKE:
        status.stocktake = _remote_stocktake(rclone, root, version, listing, config)
    elif stocktake is not None:
        status.stocktake = read_stocktake(Path(stocktake), config)
    if manifest_path is not None:
        manifest = read_manifest(manifest_path)
        if manifest.version and manifest.version != version:
            from cs_sync.core.errors import ManifestError

            raise ManifestError(f"{manifest_path} is for version {manifest.version!r}, not {version!r}",
                                hint="give the manifest of this version")
        status.manifest = str(manifest_path)
        status.cs_root = manifest.cs_root
        compare_manifest(status, listing, manifest, config)
    if listing.has_list:
        from cs_sync.core.errors import CsSyncError

        try:
            listed = _remote_fault_list(rclone, root, version)
        except CsSyncError as exc:  # a status still shows what is there; the JSON and table say why
            status.list_error = redact(exc.one_line())
        else:
            compare_fault_list(status, listed, config)
    return status


def read_stocktake(path: Path, config: SyncConfig) -> dict:
    """A local stocktake.csv as data; InputError (exit 3) when missing or malformed."""
    from cs_sync.core.errors import InputError

    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputError(f"{path}: stocktake not found", hint="give the stocktake.csv cs-sync-preprocess wrote") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read stocktake: {exc}") from None
    return parse_stocktake_csv(text, config, str(path))


def _remote_stocktake(rclone: Rclone, root: str, version: str, listing: VersionListing,
                      config: SyncConfig) -> dict | None:
    from cs_sync.core.errors import CsSyncError

    if not listing.has_stocktake:
        return None
    path = join(root, version, STOCKTAKE_FILE)
    shown = redact(path)  # the page and the JSON name it: never a remote's credentials
    try:
        data, _ = rclone.read_range(path, b"".join, what=f"reading {path}")
        return parse_stocktake_csv(data.decode("utf-8", errors="replace"), config, shown)
    except CsSyncError as exc:
        return {"source": shown, "error": redact(exc.one_line())}


def summarize_versions(files: list[RemoteFile]) -> list[VersionSummary]:
    """Per version folder: faults, sets, bytes, sets with problems (pure; from one listing).

    Sidecars are not read; a set of which only the sidecar is left (its parts deleted) is a
    problem all the same: the listing shows the sidecar file."""
    per: dict[str, list[RemoteFile]] = {}
    for f in files:
        head, sep, rest = f.path.partition("/")
        if not sep or is_hidden(head):
            continue
        per.setdefault(head, []).append(RemoteFile(rest, f.size, f.hashes))
    out = []
    for name in sorted(per):
        grouped = group_listing(name, per[name])
        orphans = {key_from_sidecar_name(n) for n in grouped.sidecar_files} - set(grouped.sets)
        listing = classify_listing(grouped, {})
        bad = sum(1 for rs in listing.sets.values() if rs.state not in (SetState.COMPLETE,)) + len(orphans)
        out.append(VersionSummary(name=name, faults=len(set(listing.faults()) | {f for f, _ in orphans}),
                                  sets=len(listing.sets) + len(orphans),
                                  size=sum(rs.size for rs in listing.sets.values()), problem_sets=bad))
    return out


def list_versions(rclone: Rclone, root: str) -> list[VersionSummary]:
    """Every version under ``root`` in one recursive listing."""
    try:
        files = rclone.lsjson(root, recursive=True, what=f"listing {root}")
    except ObjectNotFound:
        raise RemoteError(f"remote root {root} not found", hint="check --remote or $CS_SYNC_REMOTE") from None
    return summarize_versions(files)


__all__ = ["CHECKS", "Cell", "CellState", "REMOTE_STOCKTAKE", "VersionStatus", "VersionSummary", "compare_fault_list",
           "compare_manifest", "list_versions",
           "status_from_listing", "summarize_versions", "version_status"]
