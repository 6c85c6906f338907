"""``cs-sync verify``: is what sits on the remote still what its sidecars recorded?

Without ``--read-data`` nothing is downloaded: one listing with the hash the remote
gives (SHA-256 where it offers it, e.g. a local folder; else its own type, e.g.
Dropbox's), and every part's size and hash compared with what its sidecar recorded
at upload or index time. A part that can only be size-checked (the remote offers no
hash, or the sidecar recorded none of its types: sidecars written before per-part
hashes were recorded, on a remote without SHA-256) is counted and listed as such;
sets without any sidecar are listed as unindexed.

With ``--read-data`` a slice of the parts (a percentage, or slice K of N so that N
runs read everything once) is streamed through one long-lived rclone and checked:
the part's and every member's SHA-256 and place, never written to disk.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from cs_sync.archive.sidecar import MemberInfo, PartInfo
from cs_sync.archive.tar_index import TarIndexError, hash_part
from cs_sync.core.errors import CsSyncError, InputError
from cs_sync.core.hashes import sha256_of_chunks
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.index.engine import is_local
from cs_sync.index.plan import choose_sets
from cs_sync.index.walk import preferred_hash
from cs_sync.remote.rclone import RangeReader, Rclone, join
from cs_sync.remote.sets import RemoteFile, RemoteSet, SetState
from cs_sync.remote.state import read_version
from cs_sync.verify.compare import Check, DataSlice, choose_slice, compare_part, recorded_hashes
from cs_sync.verify.result import Finding, VerifyResult


@dataclass(frozen=True, kw_only=True)
class VerifySettings:
    version: str
    remote: str
    types: tuple[str, ...] = ()
    inc_faults: tuple[str, ...] = ()
    exc_faults: tuple[str, ...] = ()
    read_data: DataSlice | None = None
    transfers: int = 4  # parts streamed at once with --read-data


def verify_hash_types(rclone: Rclone, remote: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the types the listing asks for, every type the remote offers).

    Asked: SHA-256 when the remote offers it, and the remote's own preferred type. Parts
    whose sidecar recorded only another offered type get a second listing of just them.
    A local folder computes every hash by reading its files (the folder is the remote),
    so its first listing asks for none and only parts whose sidecar recorded a hash are
    hashed, in the second.
    """
    offered = tuple(rclone.hash_types(remote))
    if is_local(remote):
        return (), offered
    out = ["sha256"] if "sha256" in offered else []
    out += [t for t in preferred_hash(offered) if t not in out]
    return tuple(out), offered


@dataclass
class _ToRead:
    rs: RemoteSet
    part: PartInfo
    members: list[MemberInfo]
    plain: bool  # a sample: a plain file, not a TAR


def verify_version(settings: VerifySettings, rclone: Rclone, progress: Progress = NULL_PROGRESS) -> VerifyResult:
    t0 = time.monotonic()
    hash_types, offered = verify_hash_types(rclone, settings.remote)
    listing = read_version(rclone, settings.remote, settings.version, hash_types=hash_types)
    relisted = _relist_other_types(rclone, settings, listing, hash_types, offered)
    chosen = choose_sets(listing, types=settings.types, inc_faults=settings.inc_faults, exc_faults=settings.exc_faults)
    if chosen.unknown_types:  # as every command does: a wrong -t stops the run before it starts
        raise InputError(chosen.unknown_types[0], hint="'cs-sync status CS_VER' shows what the remote holds")
    if not chosen.sets and chosen.unmatched:
        raise InputError(f"nothing selected: {chosen.unmatched[0]}", hint="'cs-sync status CS_VER' shows what the remote holds")
    result = VerifyResult(version=settings.version, remote=settings.remote, hash_types=hash_types,
                          unmatched=list(chosen.unmatched), read_slice=settings.read_data,
                          relisted=relisted[0], relisted_types=relisted[1])
    readable: list[_ToRead] = []
    for rs in chosen.sets:
        readable += _check_set(rs, offered, result)
    if settings.read_data is not None:
        _read_data(settings, rclone, progress, result, readable)
    result.elapsed = time.monotonic() - t0
    return result


RELIST_BATCH = 500  # files per extra listing (each is one --include)


def _relist_other_types(rclone: Rclone, settings: VerifySettings, listing, asked: tuple[str, ...],
                        offered: tuple[str, ...]) -> tuple[int, tuple[str, ...]]:
    """Parts whose sidecar recorded only hash types the first listing did not ask for (but
    the remote offers): list just those files again with those types, in place.
    Returns (files listed again, the types asked for)."""
    extra: dict[str, set[str]] = {}
    for rs in listing.sets.values():
        if rs.sidecar is None:
            continue
        for p in _parts_of(rs):
            recorded = set(recorded_hashes(p))
            if recorded & set(asked) or p.name not in rs.files:
                continue
            more = recorded & set(offered)
            if more:
                extra[f"{rs.fault}/{p.name}"] = more
    if not extra:
        return 0, ()
    types = sorted(set().union(*extra.values()))
    vpath = join(settings.remote, settings.version)
    paths = sorted(extra)
    found = {}
    for i in range(0, len(paths), RELIST_BATCH):
        batch = paths[i:i + RELIST_BATCH]
        for f in rclone.lsjson(vpath, hash_types=types, includes=batch, what=f"listing {len(batch)} part(s) of {vpath} "
                               f"with {'/'.join(types)}"):
            found[f.path] = f
    for rs in listing.sets.values():
        for name in list(rs.files):
            again = found.get(f"{rs.fault}/{name}")
            if again is not None:
                old = rs.files[name]
                rs.files[name] = RemoteFile(old.path, old.size, {**old.hashes, **again.hashes})
    return len(paths), tuple(types)


def _parts_of(rs: RemoteSet) -> list[PartInfo]:
    """The files a sidecar vouches for: its parts (a sample's plain file among them), or, in
    a sample's sidecar written before samples listed their file as a part, its one member."""
    assert rs.sidecar is not None
    if rs.is_sample and not rs.sidecar.parts:
        return [PartInfo(m.part, m.size, m.sha256) for m in rs.sidecar.members]
    return list(rs.sidecar.parts)


def _check_set(rs: RemoteSet, offered: tuple[str, ...], result: VerifyResult) -> list[_ToRead]:
    """Compare one set's listing with its sidecar; the parts a --read-data slice may read."""
    if rs.damage is not None:
        result.damaged.append(Finding(rs.fault, rs.dtype, "", rs.damage.message))
        return []
    sc = rs.sidecar
    if sc is None:
        result.unindexed.append(Finding(rs.fault, rs.dtype, "", "made by the older scripts, no sidecar: cannot be "
                                        "checked" + (" (samples are plain files)" if rs.is_sample else
                                                     "; `cs-sync index` records one")))
        if rs.state != SetState.COMPLETE:
            result.missing.append(Finding(rs.fault, rs.dtype, "", f"{rs.state.value}: {'; '.join(rs.problems)}"))
        return []
    result.sets_checked += 1
    parts = _parts_of(rs)
    members_of: dict[str, list[MemberInfo]] = {}
    for m in sc.members:
        members_of.setdefault(m.part, []).append(m)
    out: list[_ToRead] = []
    for p in parts:
        chk = compare_part(p, rs.files.get(p.name), offered=offered)
        if chk.check == Check.HASH:
            result.parts_hash[chk.detail] = result.parts_hash.get(chk.detail, 0) + 1
        elif chk.check == Check.SIZE_ONLY:
            result.size_only.append(Finding(rs.fault, rs.dtype, p.name, chk.detail))
        elif chk.check == Check.MISSING:
            result.missing.append(Finding(rs.fault, rs.dtype, p.name, "listed in the sidecar, not on the remote"))
        else:
            origin = "indexing" if sc.is_index else "upload"
            result.mismatched.append(Finding(rs.fault, rs.dtype, p.name, f"{chk.detail} (recorded at {origin}"
                                             + (f", {sc.created})" if sc.created else ")")))
        if chk.check != Check.MISSING:
            out.append(_ToRead(rs, p, members_of.get(p.name, []), plain=rs.is_sample))
    extra = sorted(set(rs.files) - {p.name for p in parts})
    if extra:
        result.missing.append(Finding(rs.fault, rs.dtype, "", f"on the remote, not in the sidecar: {', '.join(extra)}"))
    return out


def _read_data(settings: VerifySettings, rclone: Rclone, progress: Progress, result: VerifyResult,
               readable: list[_ToRead]) -> None:
    assert settings.read_data is not None
    by_key = {f"{t.rs.fault}/{t.part.name}": t for t in readable}
    keys = choose_slice([(k, t.part.size) for k, t in by_key.items()], settings.read_data)
    if not keys:
        return
    vpath = join(settings.remote, settings.version)
    with rclone.range_reader(vpath, what=f"reading parts of {vpath}") as reader:
        with ThreadPoolExecutor(settings.transfers, thread_name_prefix="cs_sync_verify") as pool:
            findings = list(pool.map(lambda k: _read_one(reader, by_key[k], progress), keys))
        result.read_bytes = reader.bytes
    for key, (ok, unhashed, finding) in zip(keys, findings):
        result.read_parts += 1
        t = by_key[key]
        if finding is not None:
            (result.missing if ok is None else result.mismatched).append(
                Finding(t.rs.fault, t.rs.dtype, t.part.name, finding))
        elif unhashed:
            result.read_unhashed += 1
        else:
            result.read_ok += 1


def _read_one(reader: RangeReader, t: _ToRead, progress: Progress) -> tuple[bool | None, bool, str | None]:
    """Stream one part; (ok, no SHA-256 recorded, what differs). ok None: could not be read."""
    path = f"{t.rs.fault}/{t.part.name}"
    key = f"verify:{path}"
    progress.task_started(key, path, t.part.size, kind="verify")
    done = 0

    def chunks():
        nonlocal done
        for c in reader.stream(path):
            done += len(c)
            progress.task_advanced(key, done)
            yield c

    try:
        if t.plain:
            _, got = sha256_of_chunks(chunks())
            bad = done != t.part.size or (t.part.sha256 is not None and got != t.part.sha256)
            finding = ("read back: SHA-256 differs from the sidecar" if bad else None)
            progress.task_finished(key, ok=not bad)
            return (not bad, t.part.sha256 is None, finding)
        walk = hash_part(chunks(), t.part.size, label=path)
    except TarIndexError as exc:
        progress.task_finished(key, ok=False)
        return (False, False, f"read back: {exc.message}")
    except CsSyncError as exc:
        progress.task_finished(key, ok=False)
        return (None, False, f"could not be read: {exc.one_line()}")
    problems = []
    if t.part.sha256 and walk.sha256 != t.part.sha256:
        problems.append("SHA-256 of the part differs from the sidecar")
    found = {m.name: m for m in walk.members}
    for m in t.members:
        w = found.pop(m.name, None)
        if w is None:
            problems.append(f"member {m.name!r} is not in the TAR")
        elif (w.offset, w.size) != (m.offset, m.size):
            problems.append(f"member {m.name!r} is at {w.offset} ({w.size} bytes), the sidecar says {m.offset} "
                            f"({m.size} bytes)")
        elif m.sha256 and w.sha256 != m.sha256:
            problems.append(f"member {m.name!r}: SHA-256 differs from the sidecar")
    if found:
        problems.append(f"TAR holds {len(found)} member(s) not in the sidecar, e.g. {next(iter(found))!r}")
    progress.task_finished(key, ok=not problems)
    hashed = bool(t.part.sha256) or any(m.sha256 for m in t.members)
    return (not problems, not hashed, "read back: " + "; ".join(problems[:3]) if problems else None)
