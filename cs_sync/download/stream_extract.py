"""Extract a TAR part as it arrives (``rclone cat`` on a pipe), with no copy of the part on disk.

For ``--cleanup`` downloads of sets with a sidecar: the part's bytes are read once,
in order, from rclone's output; every byte goes through the part's SHA-256, and each
member is written under a temporary name in the set's staging folder as it passes.
Only when the whole part has arrived and its SHA-256 equals the sidecar's are the
members renamed to their names; a part that fails (a different hash, a truncated
stream, a member the sidecar does not list, an unsafe name) leaves none of its members
behind. The same refusals as :func:`cs_sync.archive.tar_read.extract_part` apply: no
absolute paths, no ``..``, no links or devices, nothing outside the staging folder.

Peak local disk is the extracted data itself: no part file is ever written.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Protocol, cast

from cs_sync.archive.sidecar import MemberInfo
from cs_sync.archive.tar_read import (
    ArchiveError,
    ExtractReport,
    PartHashMismatch,
    UnsafeMemberError,
    write_verified,
)
from cs_sync.core.atomic import remove_quietly
from cs_sync.core.safe_names import local_path, safe_relpath

CHUNK = 1 << 20


class Readable(Protocol):
    """What a stream of a TAR must offer: reads, front to back."""

    def read(self, n: int = -1, /) -> bytes: ...


class HashingReader:
    """A read-only file object over ``raw`` that feeds every byte it returns to ``hash``, in order."""

    def __init__(self, raw: Readable, hash_, on_bytes: Callable[[int], None] | None = None) -> None:
        self.raw = raw
        self.hash = hash_
        self.pos = 0
        self.on_bytes = on_bytes

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n) if n is not None and n >= 0 else self.raw.read()
        if data:
            self.hash.update(data)
            self.pos += len(data)
            if self.on_bytes is not None:
                self.on_bytes(self.pos)
        return data

    def drain(self) -> None:
        """Read (and hash) whatever is left: the end blocks and record padding."""
        while self.read(CHUNK):
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def extract_stream(raw: Readable, dest: Path, *, label: str, expected: list[MemberInfo], part_sha256: str,
                   size: int, wanted: Callable[[str], bool] | None = None,
                   on_bytes: Callable[[int], None] | None = None) -> ExtractReport:
    """Extract the TAR arriving on ``raw`` into ``dest``; see the module doc.

    ``expected``: the sidecar's members of this part (each checked for size and
    offset; one missing from or extra to the part is an error). ``wanted`` filters
    which members are written (all are hashed). Raises PartHashMismatch, ArchiveError
    or UnsafeMemberError naming ``label``; LocalIOError when the disk fails.
    """
    exp = {m.name: m for m in expected}
    report = ExtractReport()
    seen: set[str] = set()
    umask = _umask()
    dest.mkdir(parents=True, exist_ok=True)
    reader = HashingReader(raw, hashlib.sha256(), on_bytes)
    pending: list[tuple[Path, Path]] = []  # (temporary name, name) until the part's hash passed
    try:
        try:
            # stream mode ("r|") only ever reads its file object; typeshed asks every mode's
            # file object for seek/tell/write too, hence the cast. bufsize: tarfile reads a stream in
            # 10 KiB records by default; 1 MiB reads cost far fewer Python calls and hash updates
            with tarfile.open(fileobj=cast(IO[bytes], reader), mode="r|", bufsize=CHUNK) as tar:
                for ti in tar:
                    _member(tar, ti, dest, report, seen, exp, wanted, label, umask, pending)
        except tarfile.ReadError as exc:
            if reader.pos < size:
                raise ArchiveError(f"{label}: TAR ends early after {reader.pos} of {size} bytes (truncated)") from None
            raise ArchiveError(f"{label}: not a readable TAR: {exc}") from None
        except EOFError:
            raise ArchiveError(f"{label}: TAR ends early after {reader.pos} of {size} bytes (truncated)") from None
        reader.drain()
        if reader.pos != size:
            raise ArchiveError(f"{label}: {reader.pos} bytes arrived, the sidecar says {size}")
        if reader.hash.hexdigest() != part_sha256:
            raise PartHashMismatch(f"{label}: SHA-256 differs from the sidecar (corrupted on the remote or in transit)",
                                   hint="none of its members was kept; re-run to fetch it again")
        if wanted is None:
            missing = sorted(set(exp) - seen)
            if missing:
                raise ArchiveError(f"{label}: sidecar lists {len(missing)} member(s) not in the TAR, e.g. {missing[0]!r}")
        for tmp, target in pending:
            os.replace(tmp, target)
        pending = []
    finally:
        for tmp, _target in pending:
            remove_quietly(tmp)  # the part failed: none of its members stays
    return report


def _member(tar: tarfile.TarFile, ti: tarfile.TarInfo, dest: Path, report: ExtractReport, seen: set[str],
            exp: dict[str, MemberInfo], wanted, label: str, umask: int, pending: list[tuple[Path, Path]]) -> None:
    rel = safe_relpath(ti.name)
    if rel is None:
        raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: absolute path or '..' would leave the target folder")
    if ti.issym() or ti.islnk():
        raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: a link (to {ti.linkname!r})")
    if not ti.isreg():
        raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: not a regular file (folder, device, FIFO or other)")
    info = exp.get(rel)
    if info is None:
        raise ArchiveError(f"{label}: member {rel!r} is not in the sidecar")
    if info.size != ti.size:
        raise ArchiveError(f"{label}: member {rel!r} is {ti.size} bytes, sidecar says {info.size}")
    if info.offset != ti.offset_data:
        raise ArchiveError(f"{label}: member {rel!r} is at byte {ti.offset_data}, sidecar says {info.offset}")
    seen.add(rel)
    fh = tar.extractfile(ti)
    assert fh is not None
    if wanted is not None and not wanted(rel):
        while fh.read(CHUNK):  # read past it: its bytes still go through the part's hash
            pass
        report.skipped += 1
        return
    target = local_path(dest, rel, flat=True, what=f"{label}: member")
    # the part's SHA-256 covers this member (at the sidecar's offset, from the same bytes)
    write_verified(iter(lambda: fh.read(CHUNK), b""), target, size=ti.size, sha256=None,
                   what=f"{label}: member {rel!r}",
                   mtime=info.mtime_ns / 1e9 if info.mtime_ns else info.mtime,
                   mode=(ti.mode & 0o777 & ~umask) | 0o600, pending=pending)
    report.bytes += ti.size
    report.members.append(rel)
