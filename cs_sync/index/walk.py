"""One part's index from the remote, and a set's index sidecar from its parts' walks.

Shared by ``cs-sync index`` (which writes the sidecar) and by download, which walks
the parts of an unindexed set on the fly when only some members are wanted.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from cs_sync import __version__
from cs_sync.archive.sidecar import ORIGIN_INDEX, MemberInfo, PartInfo, SetSidecar
from cs_sync.archive.tar_index import PartWalk, TarIndexError, hash_part, walk_part
from cs_sync.core.errors import VerifyError
from cs_sync.remote.rclone import RangeReader
from cs_sync.remote.sets import RemoteSet

# the one hash a listing is asked for: the first of these the remote offers
PREFERRED_HASHES = ("sha256", "dropbox", "sha1", "md5")


def preferred_hash(offered: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The remote's own hash worth recording: sha256, else Dropbox's, else SHA-1, MD5, else any."""
    for h in PREFERRED_HASHES:
        if h in offered:
            return (h,)
    return (offered[0],) if offered else ()


@dataclass(frozen=True)
class PartResult:
    name: str
    walk: PartWalk
    seconds: float


def walk_remote_part(reader: RangeReader, fault: str, name: str, size: int, *, hash_members: bool = False,
                     on_bytes=None) -> PartResult:
    """Index ``{fault}/{name}`` (``size`` bytes per the listing) through ``reader`` (rooted at the version).

    Without ``hash_members`` only headers are read; with it the part is streamed once.
    Raises TarIndexError naming the part when it is not a whole, safe TAR, or when the
    server reports another size than the listing (changed since it was listed).
    """
    path = f"{fault}/{name}"
    t0 = time.monotonic()
    if hash_members:
        def chunks():
            done = 0
            for chunk in reader.stream(path):
                done += len(chunk)
                if on_bytes is not None:
                    on_bytes(done)
                yield chunk

        walk = hash_part(chunks(), size, label=path)
    else:
        walk = walk_part(lambda offset, length: reader.read(path, offset, length), size, label=path,
                         submit=reader.submit)
    served = reader.sizes.get(path)
    if served is not None and served != size:
        raise TarIndexError(f"{path}: the remote now says {served} bytes, its listing said {size} "
                            "(changed while being indexed); run again")
    return PartResult(name, walk, time.monotonic() - t0)


def proves_text(hashed: bool, hash_types: tuple[str, ...]) -> str:
    """What an index sidecar can vouch for, in words (stored in the sidecar, shown by index)."""
    if hashed:
        return ("every part's and member's SHA-256, taken from the whole part at indexing time (as strong as a "
                "sidecar written at upload), and every member's place and size inside its part")
    remote = f", and its {'/'.join(hash_types)} hash as the remote reported it," if hash_types else ""
    return ("every member's place and size inside its part (from the TAR headers) and each part's size"
            f"{remote} at indexing time; not the members' content: a changed byte inside a member is not seen "
            "(cs-sync index --hash-members records SHA-256s)")


def set_sidecar(rs: RemoteSet, version: str, results: list[PartResult], hash_types: tuple[str, ...]) -> SetSidecar:
    """The index sidecar of ``rs`` from the walks of all its parts (in part order).

    Raises VerifyError when one member name appears twice in the set (download could
    not tell which is meant).
    """
    by_name = {r.name: r for r in results}
    parts: list[PartInfo] = []
    members: list[MemberInfo] = []
    where: dict[str, str] = {}
    for name in rs.ordered_part_names():
        r = by_name[name]
        rf = rs.files[name]
        hashes = {t: rf.hashes[t] for t in hash_types if rf.hashes.get(t)}
        parts.append(PartInfo(name, rf.size, r.walk.sha256, hashes))
        for m in r.walk.members:
            if m.name in where:
                raise VerifyError(f"{rs.fault} {rs.dtype}: member {m.name!r} is in both {where[m.name]} and {name}; "
                                  "not indexed (download could not tell which is meant)")
            where[m.name] = name
            members.append(MemberInfo(name=m.name, part=name, offset=m.offset, size=m.size, mtime=m.mtime,
                                      sha256=m.sha256, source=""))
    hashed = bool(parts) and all(p.sha256 for p in parts) and all(m.sha256 for m in members)
    return SetSidecar(
        fault=rs.fault, dtype=rs.dtype, version=version, parts=parts, members=members,
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), tool=f"cs-sync {__version__} index",
        origin=ORIGIN_INDEX, proves=proves_text(hashed, tuple(t for t in hash_types if any(p.hashes.get(t) for p in parts))),
    )
