"""Walk the headers of a TAR part without reading its data: the index of an older archive.

Pure: the caller gives ``read(offset, length) -> bytes`` (fewer bytes only at the
end of the part), e.g. HTTP Range requests against a long-lived rclone. Python's
``tarfile`` does the header parsing (ustar, GNU long names and long links, pax
records, base-256 sizes, header checksums) over a file object that turns its
reads and seeks into ranged reads: a header is read, the member's data (rounded
up to 512) is skipped by seeking, the next header is read. ``tarfile`` is
lenient where an index must not be: it ends the walk quietly at a header that
does not parse. So the walk checks itself where it stopped: at the end-of-archive
blocks (zeros), else the part is truncated or damaged, and says which.

:func:`hash_part` walks the same way over the whole part streamed once (no local
copy), hashing every member and the part (``cs-sync index --hash-members``,
``cs-sync verify --read-data``).

Errors are :class:`TarIndexError` (a VerifyError, exit 8), naming the part and
what is wrong: not a TAR, truncated, a member running past the part's end, a
damaged header, a member name that would leave the target, a link or device.
"""

from __future__ import annotations

import hashlib
import tarfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field

from cs_sync.core.errors import VerifyError
from cs_sync.core.safe_names import safe_relpath

BLOCK = 512
# The first read of a header and the least any read asks for: the header plus what
# usually sits right after it when the member is small, and a GNU long name or a
# pax record (a few blocks) in one request.
READ_MIN = 4096
# Members no larger than this (with their header) make the reader look further ahead:
# many small members (IM CSVs, Source files) then cost one request per ~32 of them.
SMALL_SPAN = 32 * 1024
READ_AHEAD_MEMBERS = 32
READ_MAX = 1 << 20
# A part this small is read whole in one request: one round trip instead of at least
# two (header and end blocks), and at most 256 KiB on the wire (32 ms at 8 MB/s,
# less than one request to cloud storage costs; see benchmarks/legacy.py).
WHOLE_PART = 256 * 1024

# Guessed headers asked for at once (see _RangedFile); each guess is one READ_MIN read.
AHEAD = 8

ReadFn = Callable[[int, int], bytes]
Submit = Callable[..., Future]


class TarIndexError(VerifyError):
    """A part whose headers do not make a whole, safe TAR."""


@dataclass(frozen=True)
class TarMember:
    name: str  # clean relative path (as download would write it)
    offset: int  # byte offset of the data inside the part
    size: int
    mtime: float  # from the header (seconds since the epoch)
    sha256: str | None = None  # with hash_part only

    @property
    def header(self) -> int:
        """Offset of the member's own 512-byte header block (long names and pax records come before it)."""
        return self.offset - BLOCK


@dataclass
class PartWalk:
    members: list[TarMember] = field(default_factory=list)
    end: int = 0  # offset of the end-of-archive blocks
    reads: int = 0  # requests issued
    bytes_read: int = 0  # bytes those requests returned
    sha256: str | None = None  # of the whole part, with hash_part only
    dirs: int = 0  # folder entries (not recorded: download makes folders as members need them)


class _RangedFile:
    """A read-only file object over ``read(offset, length)``, with a read-ahead window.

    ``tarfile`` reads 512 bytes at a time and seeks over member data; each read
    that falls outside the last window fetches a new one starting there. With
    ``submit`` (run a call elsewhere, return a Future), once two members in a row
    took the same span, the next ``AHEAD`` headers are asked for at once where that
    span puts them (BB.bin files of one fault are usually all the same size): the
    walk then waits for one round trip per ``AHEAD`` members instead of one per
    member. A guess that misses costs one small read, never a wrong answer: a
    window is used only for the bytes it holds at the offset tarfile asks for.
    """

    def __init__(self, read: ReadFn, size: int, label: str, submit: Submit | None = None) -> None:
        self._read = read
        self._submit = submit
        self._ahead: dict[int, Future] = {}  # offset -> the guessed header window read there
        self._last_span = 0
        self.size = size
        self.label = label
        self.pos = 0
        self.buf = b""
        self.buf_at = 0
        self.window = size if size <= WHOLE_PART else READ_MIN
        self.reads = 0
        self.bytes_read = 0
        self.stop = 0

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self.pos
        elif whence == 2:
            offset += self.size
        self.pos = max(0, offset)
        return self.pos

    def first_block(self) -> bytes:
        self.seek(0)
        return self.read(BLOCK)

    def tail(self) -> bytes:
        """The two blocks where the walk stopped."""
        self.seek(self.stop)
        return self.read(2 * BLOCK)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        end = min(self.pos + n, self.size)
        if end <= self.pos:
            return b""
        if not (self.buf_at <= self.pos and end <= self.buf_at + len(self.buf)):
            want = min(max(end - self.pos, self.window), self.size - self.pos)
            guessed = self._ahead.pop(self.pos, None)
            if guessed is not None and end - self.pos <= READ_MIN:
                got = guessed.result()
                want = min(READ_MIN, self.size - self.pos)
            else:
                got = self._read(self.pos, want)
                self.reads += 1
            self.bytes_read += len(got)
            if len(got) < min(want, end - self.pos):  # the part is shorter than the listing says
                self.size = self.pos + len(got)
                end = min(end, self.size)
            self.buf, self.buf_at = got, self.pos
        out = self.buf[self.pos - self.buf_at:end - self.buf_at]
        self.pos += len(out)
        return out

    def member_span(self, span: int, next_header: int) -> None:
        """The last member took ``span`` bytes (header to ``next_header``): look ahead accordingly."""
        if self.window >= self.size:
            return
        self.window = min(READ_MAX, READ_AHEAD_MEMBERS * span) if span <= SMALL_SPAN else READ_MIN
        self.window = max(self.window, READ_MIN)
        same, self._last_span = span == self._last_span, span
        if self._submit is None or span <= SMALL_SPAN or not same:
            return
        for j in range(1, AHEAD + 1):  # tarfile reads a byte before each header, then the header
            at = next_header + j * span - 1
            if at + 1 + BLOCK > self.size:
                break
            if at not in self._ahead:
                self._ahead[at] = self._submit(self._guess, at)
                self.reads += 1
        for at in [a for a in self._ahead if a < self.pos - 1]:
            del self._ahead[at]  # passed: a guess that missed

    def _guess(self, at: int) -> bytes:
        return self._read(at, min(READ_MIN, self.size - at))


class _StreamFile:
    """A forward-only file object over chunks of the whole part, hashing every byte once."""

    def __init__(self, chunks: Iterable[bytes], label: str) -> None:
        self._it: Iterator[bytes] = iter(chunks)
        self.label = label
        self.pos = 0
        self.buf = memoryview(b"")
        self.part_hash = hashlib.sha256()
        self.member_hash: hashlib._Hash | None = None
        self.bytes_read = 0
        self.stop = 0
        self.first = b""  # the first block read (kept for the not-a-TAR message)
        self.last = b""  # what the last read() returned, and where
        self.last_at = 0

    def tell(self) -> int:
        return self.pos

    def _fill(self) -> bool:
        while not self.buf:
            chunk = next(self._it, None)
            if chunk is None:
                return False
            self.bytes_read += len(chunk)
            self.buf = memoryview(chunk)
        return True

    def _take(self, n: int) -> memoryview:
        if not self.buf and not self._fill():
            return memoryview(b"")
        view = self.buf[:n]
        self.buf = self.buf[len(view):]
        self.part_hash.update(view)
        if self.member_hash is not None:
            self.member_hash.update(view)
        self.pos += len(view)
        return view

    def read(self, n: int = -1) -> bytes:
        at = self.pos
        out = bytearray()
        while n < 0 or len(out) < n:
            view = self._take(1 << 20 if n < 0 else n - len(out))
            if not view:
                break
            out += view
        self.last, self.last_at = bytes(out), at
        if at == 0:
            self.first = self.last
        return self.last

    def first_block(self) -> bytes:
        return self.first[:BLOCK]

    def tail(self) -> bytes:
        """The two blocks where the walk stopped: the one tarfile read last, and the next."""
        head = self.last if self.last_at == self.stop else b""
        if not head and self.pos != self.stop:
            raise TarIndexError(f"{self.label}: internal: the walk stopped at {self.stop}, the stream is at {self.pos}")
        return head + self.read(2 * BLOCK - len(head))

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 1:
            offset += self.pos
        if whence == 2 or offset < self.pos:
            raise TarIndexError(f"{self.label}: internal: a stream cannot seek back")
        while self.pos < offset:
            if not self._take(offset - self.pos):
                break  # past the end: the next read says so
        return self.pos

    def drain(self) -> None:
        while self._take(1 << 20):
            pass


def walk_part(read: ReadFn, size: int, *, label: str, submit: Submit | None = None) -> PartWalk:
    """Index a part of ``size`` bytes by reading its headers only; see the module doc.

    ``submit`` (e.g. a thread pool's): lets the walk ask for guessed headers ahead,
    in parallel; see :class:`_RangedFile`.
    """
    f = _RangedFile(read, size, label, submit)
    walk = PartWalk()
    prev = 0
    for ti in _members(f, label):
        m = _member(ti, label, f.size)
        if m is None:
            walk.dirs += 1
        else:
            walk.members.append(m)
        nxt = ti.offset_data + _padded(ti.size)
        f.member_span(max(BLOCK, nxt - prev), nxt)
        prev = nxt
    walk.end = judge_end(f.tail(), f.stop, label)
    walk.reads, walk.bytes_read = f.reads, f.bytes_read
    return walk


def hash_part(chunks: Iterable[bytes], size: int, *, label: str) -> PartWalk:
    """Index a part streamed whole once, with each member's and the part's SHA-256."""
    f = _StreamFile(chunks, label)
    walk = PartWalk()
    for ti in _members(f, label):
        m = _member(ti, label, size)
        if m is None:
            walk.dirs += 1
            continue
        f.seek(ti.offset_data)
        f.member_hash = hashlib.sha256()
        got = f.seek(ti.offset_data + ti.size) - ti.offset_data
        digest, f.member_hash = f.member_hash.hexdigest(), None
        if got != ti.size:
            raise TarIndexError(f"{label}: member {m.name!r} runs past the end of the part (truncated)")
        walk.members.append(TarMember(m.name, m.offset, m.size, m.mtime, digest))
    walk.end = judge_end(f.tail(), f.stop, label)
    f.drain()
    if f.pos != size:
        raise TarIndexError(f"{label}: {f.pos} bytes read, the remote's listing says {size} (changed since listed?)")
    walk.sha256 = f.part_hash.hexdigest()
    walk.bytes_read = f.bytes_read
    return walk


def _members(f, label: str) -> Iterator[tarfile.TarInfo]:
    """tarfile's members of ``f``; its errors become one TarIndexError naming the part.

    When the members run out, ``f.stop`` is the offset of the block where tarfile
    stopped (the end-of-archive blocks of a whole TAR), for the end check.
    """
    try:
        tar = tarfile.open(fileobj=f, mode="r:", encoding="utf-8", errors="surrogateescape")
    except tarfile.ReadError as exc:
        raise _first_error(f, label, exc) from None
    while True:
        try:
            ti = tar.next()
        except tarfile.ReadError as exc:
            raise TarIndexError(f"{label}: TAR ends inside a member (truncated): {exc}") from None
        if ti is None:
            break
        yield ti
    f.stop = tar.offset


def _first_error(f, label: str, exc: Exception) -> TarIndexError:
    head = f.first_block()
    if not head:
        return TarIndexError(f"{label}: empty file, not a TAR")
    if len(head) < BLOCK:
        return TarIndexError(f"{label}: {len(head)} bytes, shorter than one TAR header (not a TAR, or truncated)")
    if not any(head):
        return TarIndexError(f"{label}: starts with an end-of-archive block (an empty TAR or not a TAR)")
    return TarIndexError(f"{label}: not a TAR (the first header does not parse: {exc})")


def _member(ti: tarfile.TarInfo, label: str, size: int) -> TarMember | None:
    """The member as the index records it; None for a folder. Refuses what download would refuse."""
    rel = safe_relpath(ti.name)
    if rel is None:
        raise TarIndexError(f"{label}: member {ti.name!r}: an absolute path or '..' would leave the target folder")
    if ti.isdir():
        return None
    if ti.issym() or ti.islnk():
        raise TarIndexError(f"{label}: member {ti.name!r} is a link (to {ti.linkname!r}); download refuses links")
    if ti.issparse():
        raise TarIndexError(f"{label}: member {ti.name!r} is a GNU sparse file: its bytes are not stored in one "
                            "range (not supported)")
    if not ti.isreg():
        raise TarIndexError(f"{label}: member {ti.name!r} is not a regular file (device, FIFO or other)")
    if ti.offset_data + ti.size > size:
        raise TarIndexError(f"{label}: member {rel!r} runs past the end of the part "
                            f"({ti.offset_data} + {ti.size} > {size} bytes; truncated)")
    return TarMember(rel, ti.offset_data, ti.size, float(ti.mtime))


def _padded(n: int) -> int:
    return -(-n // BLOCK) * BLOCK


def judge_end(tail: bytes, at: int, label: str) -> int:
    """Where the walk stopped must be the end-of-archive blocks; else say what the part is.

    tarfile stops without an error at a damaged header or at the end of the file, so
    whoever iterates a part's members (this walk, or extraction) asks this afterwards.
    """
    if not tail:
        raise TarIndexError(f"{label}: ends at byte {at} without the end-of-archive blocks (truncated)")
    if any(tail[:BLOCK]):
        if len(tail) < BLOCK:
            raise TarIndexError(f"{label}: ends inside a header at byte {at} (truncated)")
        raise TarIndexError(f"{label}: damaged TAR header at byte {at} (its checksum or fields do not parse)")
    if len(tail) < BLOCK:
        raise TarIndexError(f"{label}: ends inside the end-of-archive blocks at byte {at} (truncated)")
    return at


def check_member_header(block: bytes, *, name: str, size: int, label: str) -> None:
    """The 512-byte header in front of a member read by range: intact (checksum) and still
    saying this member's size and, when it fits the header, its name.

    All an index made without --hash-members lets a ranged read check besides the size.
    """
    try:
        ti = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError as exc:
        raise TarIndexError(f"{label}: the TAR header before member {name!r} is damaged ({exc}); "
                            "the part changed since it was indexed") from None
    fits = ti.size < 8 ** 11 - 1 or ti.size == size  # above 8 GiB a pax record holds the size
    if fits and ti.size != size:
        raise TarIndexError(f"{label}: the TAR header before member {name!r} says {ti.size} bytes, the index "
                            f"{size}; the part changed since it was indexed")
    if len(name.encode()) < 100 and safe_relpath(ti.name) not in (name, None) and "PaxHeader" not in ti.name:
        raise TarIndexError(f"{label}: the TAR header at member {name!r} names {ti.name!r}; "
                            "the part changed since it was indexed")
