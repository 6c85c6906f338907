"""Produce one part as a byte stream straight from the source files, hashing as it goes.

A part is never written to local disk: :func:`stream_part` reads each source file
once and hands the bytes (TAR headers, data, padding) to a sink, which upload
pipes into ``rclone rcat``. On the way it computes each member's SHA-256 and data
offset, the part's SHA-256 and any other hash the remote keeps (Dropbox's, MD5,
...), so the check after the upload reads nothing back.

The format is GNU tar (what ``tar cf`` writes): flat member names, a 512-byte
header per member (plus a long-name record for names of 100 bytes or more), data
padded to 512 bytes, two zero blocks and padding to a 10 KiB record. Because
the layout is fixed, :func:`tar_size` tells the planner a part's exact size
before it is produced, and each member's data offset is known as it is streamed.
A plain part (a sample, a root file) is one file's bytes as they are.

A source is checked before its bytes go: it must be a regular file (a FIFO would
block forever; it is refused without being opened for reading in blocking mode),
with the size and mtime preprocess recorded, unchanged while it is read. Any
difference raises SourceChanged naming the file; the caller then abandons the
stream, so no part with other bytes than planned is ever completed.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from cs_sync.core import testhook
from cs_sync.core.errors import SourceChanged
from cs_sync.core.hashes import new_hasher

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 20 blocks: tar pads the archive to a whole record
TAR_FORMAT: Final = tarfile.GNU_FORMAT
ENCODING = "utf-8"
DEFAULT_BUFFER = 2 << 20


def member_header(name: str, size: int, mtime: int = 0, mode: int = 0o644, uid: int = 0, gid: int = 0) -> bytes:
    """The header block(s) tar writes before a member's data."""
    ti = tarfile.TarInfo(name)
    ti.size = size
    ti.mtime = int(mtime)
    ti.mode = mode & 0o7777
    ti.uid, ti.gid = max(uid, 0), max(gid, 0)
    ti.type = tarfile.REGTYPE
    return ti.tobuf(TAR_FORMAT, ENCODING, "surrogateescape")


def _padded(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


def member_span(name: str, size: int) -> int:
    """Bytes a member takes in a part: header(s) plus data padded to a block."""
    return len(member_header(name, size)) + _padded(size)


def tar_size_from_body(body: int) -> int:
    """Size of a part whose members take ``body`` bytes: plus end blocks and record padding."""
    return -(-(body + 2 * BLOCK) // RECORD) * RECORD


def tar_size(members: Iterable[tuple[str, int]]) -> int:
    """Exact size of a part holding ``(name, size)`` members, end blocks and record padding included."""
    return tar_size_from_body(sum(member_span(n, s) for n, s in members))


@dataclass(frozen=True)
class MemberSource:
    """What the stream needs to know about one member (from the plan)."""

    name: str  # flat name inside the TAR
    source: str  # path relative to CS_ROOT (or absolute, for a root file found elsewhere)
    size: int  # size recorded by preprocess
    mtime_ns: int | None = None  # mtime recorded by preprocess (None: older manifest)


@dataclass(frozen=True)
class WrittenMember:
    name: str
    source: str
    offset: int  # byte offset of the member's data in the part
    size: int
    mtime_ns: int
    sha256: str


@dataclass(frozen=True)
class StreamedPart:
    """What one stream produced: its size and hashes, and where each member's bytes are."""

    name: str
    size: int
    sha256: str
    hashes: dict[str, str]  # hash type -> hex digest: "sha256" and any other type asked for
    members: tuple[WrittenMember, ...]


class Sink(Protocol):
    def write(self, data: memoryview | bytes, /) -> object: ...  # a file's write returns a count: ignored


def stream_part(
    name: str,
    members: Sequence[MemberSource],
    cs_root: Path,
    sink: Sink,
    *,
    plain: bool = False,
    hash_types: Iterable[str] = (),
    expected_size: int | None = None,
    buffer_size: int = DEFAULT_BUFFER,
    on_bytes: Callable[[int], None] | None = None,
) -> StreamedPart:
    """Stream part ``name`` into ``sink``: a TAR of ``members`` in that order, or, with
    ``plain``, the one member's bytes as they are.

    ``hash_types``: hashes to compute besides SHA-256 (rclone's names, e.g. "dropbox").
    ``on_bytes(n)`` is told the bytes handed to the sink so far. Raises SourceChanged
    when a source vanished, is not a regular file, cannot be read, or differs from
    what preprocess recorded; whatever the sink raises (the remote went away) passes
    through. Either way the caller must abandon what the sink received.
    """
    if plain and len(members) != 1:
        raise ValueError(f"{name}: a plain part has exactly one member, not {len(members)}")
    s = _Stream(sink, [t for t in dict.fromkeys(hash_types) if t != "sha256"], buffer_size, on_bytes, plain=plain)
    written: list[WrittenMember] = []
    for m in members:
        written.append(s.member(m, cs_root, header=not plain))
        testhook.reached("member_written", m.source)
    if not plain:
        end = 2 * BLOCK
        end += -(s.pos + end) % RECORD
        s.out(bytes(end))
    if expected_size is not None and s.pos != expected_size:
        raise AssertionError(f"{name}: streamed {s.pos} bytes, planned {expected_size}")
    # a plain part is its member: one hash of its bytes serves both
    part_sha = written[0].sha256 if s.part_hash is None else s.part_hash.hexdigest()
    hashes = {"sha256": part_sha, **{t: h.hexdigest() for t, h in s.extra.items()}}
    return StreamedPart(name=name, size=s.pos, sha256=part_sha, hashes=hashes, members=tuple(written))


class _Stream:
    """The running state of one part's stream: position, hashes, one reusable buffer."""

    def __init__(self, sink: Sink, extra: list[str], buffer_size: int, on_bytes, *, plain: bool) -> None:
        self.sink = sink
        self.pos = 0
        self.part_hash = None if plain else hashlib.sha256()
        self.extra = {t: new_hasher(t) for t in extra}
        self.buf = bytearray(buffer_size)
        self.view = memoryview(self.buf)
        self.on_bytes = on_bytes

    def out(self, data: memoryview | bytes, member_hash=None) -> None:
        """Hand ``data`` to the sink and to every hash of the part (and the member's)."""
        self.sink.write(data)
        if self.part_hash is not None:
            self.part_hash.update(data)
        for h in self.extra.values():
            h.update(data)
        if member_hash is not None:
            member_hash.update(data)
        self.pos += len(data)
        if self.on_bytes is not None:
            self.on_bytes(self.pos)

    def member(self, m: MemberSource, cs_root: Path, *, header: bool) -> WrittenMember:
        fd, st = open_regular(m, cs_root)
        with os.fdopen(fd, "rb", buffering=0) as src:
            _check_unchanged(m, st)
            if header:
                self.out(member_header(m.name, m.size, int(st.st_mtime), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid))
            offset = self.pos
            mhash = hashlib.sha256()
            try:
                os.posix_fadvise(src.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            except (AttributeError, OSError):
                pass
            left = m.size
            while left > 0:
                try:
                    n = src.readinto(self.view[: min(left, len(self.buf))])
                except OSError as exc:
                    raise SourceChanged(f"{m.source}: read failed: {exc.strerror or exc}") from None
                if not n:
                    raise SourceChanged(f"{m.source}: shrank while being streamed (preprocess recorded {m.size} bytes)",
                                        hint="re-run cs-sync-preprocess")
                self.out(self.view[:n], mhash)
                left -= n
            if src.read(1):
                raise SourceChanged(f"{m.source}: grew while being streamed (preprocess recorded {m.size} bytes)",
                                    hint="re-run cs-sync-preprocess")
            st2 = os.fstat(src.fileno())
            if st2.st_mtime_ns != st.st_mtime_ns or st2.st_size != st.st_size:
                raise SourceChanged(f"{m.source}: modified while being streamed", hint="re-run cs-sync-preprocess")
        if header:
            pad = -m.size % BLOCK
            if pad:
                self.out(bytes(pad))
        return WrittenMember(m.name, m.source, offset, m.size, st.st_mtime_ns, mhash.hexdigest())


def open_regular(m: MemberSource, cs_root: Path) -> tuple[int, os.stat_result]:
    """Open a source for reading without ever blocking; refuse anything but a regular file.

    The path is checked before it is opened (a FIFO would block ``open`` until a
    writer appears) and again on the open descriptor (it may have been swapped in
    between); ``O_NONBLOCK`` makes even that open return at once.
    """
    path = cs_root / m.source
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise SourceChanged(_not_regular(m, st), hint="re-run cs-sync-preprocess, which lists regular files only")
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise SourceChanged(f"{m.source}: vanished since preprocess", hint="re-run cs-sync-preprocess") from None
    except OSError as exc:
        raise SourceChanged(f"{m.source}: cannot read: {exc.strerror or exc}") from None
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        os.close(fd)
        raise SourceChanged(_not_regular(m, st), hint="re-run cs-sync-preprocess, which lists regular files only")
    return fd, st


def _not_regular(m: MemberSource, st: os.stat_result) -> str:
    kind = ("a FIFO" if stat.S_ISFIFO(st.st_mode) else "a folder" if stat.S_ISDIR(st.st_mode)
            else "a socket" if stat.S_ISSOCK(st.st_mode) else "a device" if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
            else "not a regular file")
    return f"{m.source}: not a regular file ({kind})" if kind != "not a regular file" else f"{m.source}: not a regular file"


def _check_unchanged(m: MemberSource, st: os.stat_result) -> None:
    if st.st_size != m.size:
        raise SourceChanged(
            f"{m.source}: is {st.st_size} bytes, preprocess recorded {m.size}: it changed since preprocess",
            hint="re-run cs-sync-preprocess",
        )
    if m.mtime_ns is not None and st.st_mtime_ns != m.mtime_ns:
        raise SourceChanged(f"{m.source}: modified since preprocess (mtime differs)", hint="re-run cs-sync-preprocess")
