"""Write one TAR part straight from the source files, hashing as it goes.

A part is written to ``<name>.tmp`` beside its final path and renamed only when
complete, so a part file with its final name is always whole (a run killed while
packing leaves only a ``.tmp``, which the next run discards). Each source file is
read once: the same buffer is written to the part and fed to two SHA-256 objects
(the member's and the part's), each in its own helper thread, because hashlib
releases the GIL on large buffers and the two hashes then run beside the I/O.

The format is GNU tar (what ``tar cf`` writes): flat member names, a 512-byte
header per member (plus a long-name record for names of 100 bytes or more), data
padded to 512 bytes, two zero blocks and padding to a 10 KiB record. Because
the layout is fixed, :func:`tar_size` tells the planner a part's exact size
before it is written, and each member's data offset is known as it is written.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from cs_sync.core import testhook
from cs_sync.core.errors import SourceChanged, from_os_error
from cs_sync.core.progress import NULL_PROGRESS, Progress

BLOCK = tarfile.BLOCKSIZE  # 512
RECORD = tarfile.RECORDSIZE  # 20 blocks: tar pads the archive to a whole record
TAR_FORMAT = tarfile.GNU_FORMAT
ENCODING = "utf-8"
DEFAULT_BUFFER = 2 << 20
_RING = 6  # buffers in flight between the reader and the hashing threads


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
    """What the writer needs to know about one member (from the plan)."""

    name: str  # flat name inside the TAR
    source: str  # path relative to CS_ROOT
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
class WrittenPart:
    name: str
    path: Path
    size: int
    sha256: str
    members: tuple[WrittenMember, ...]


class _Hashing:
    """Two single-thread executors: one hashes the part, one the current member.

    Each executor keeps submission order, so the hashes see the bytes in order.
    """

    def __init__(self) -> None:
        self.part_pool = ThreadPoolExecutor(1, thread_name_prefix="sha-part")
        self.member_pool = ThreadPoolExecutor(1, thread_name_prefix="sha-member")

    def close(self) -> None:
        self.part_pool.shutdown(wait=True)
        self.member_pool.shutdown(wait=True)


class PartWriter:
    """Writes parts one after another, reusing its buffers and hashing threads."""

    def __init__(self, buffer_size: int = DEFAULT_BUFFER) -> None:
        self.buffer_size = buffer_size
        self._bufs = [bytearray(buffer_size) for _ in range(_RING)]
        self._views = [memoryview(b) for b in self._bufs]
        self._busy: list[list[Future]] = [[] for _ in range(_RING)]
        self._hashing = _Hashing()

    def close(self) -> None:
        self._hashing.close()

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def write(
        self,
        name: str,
        members: Sequence[MemberSource],
        cs_root: Path,
        dest_dir: Path,
        *,
        expected_size: int | None = None,
        progress: Progress = NULL_PROGRESS,
        key: str | None = None,
    ) -> WrittenPart:
        """Write part ``name`` into ``dest_dir`` from ``members`` (in that order).

        Raises SourceChanged when a source vanished, cannot be read, or differs from
        what preprocess recorded (size, mtime); LocalIOError when the part cannot be
        written. Either way no file with the final name is left behind.
        """
        key = key or f"pack:{name}"
        dest = dest_dir / name
        tmp = dest_dir / (name + ".tmp")
        total = expected_size if expected_size is not None else tar_size((m.name, m.size) for m in members)
        progress.task_started(key, name, total, kind="pack")
        try:
            dest_dir.mkdir(parents=True, exist_ok=True)
            out = open(tmp, "wb")
        except OSError as exc:
            progress.task_finished(key, ok=False, note=str(exc))
            raise from_os_error(exc, f"cannot write {tmp}") from None
        part_hash = hashlib.sha256()
        pending: list[tuple[WrittenMember, Future]] = []
        pos = 0
        ok = False
        try:
            for m in members:
                rec, digest_future, pos = self._write_member(m, cs_root, out, tmp, part_hash, pos, progress, key)
                pending.append((rec, digest_future))
                testhook.reached("member_written")
            end = 2 * BLOCK
            end += -(pos + end) % RECORD
            self._out(out, tmp, bytes(end), part_hash)
            pos += end
            self._drain()
            digest = self._hashing.part_pool.submit(part_hash.hexdigest).result()
            written = tuple(replace(rec, sha256=f.result()) for rec, f in pending)
            try:
                out.close()
            except OSError as exc:
                raise from_os_error(exc, f"cannot write {tmp}") from None
            if expected_size is not None and pos != expected_size:
                raise AssertionError(f"{name}: wrote {pos} bytes, planned {expected_size}")
            try:
                os.replace(tmp, dest)
            except OSError as exc:
                raise from_os_error(exc, f"cannot rename {tmp}") from None
            ok = True
        finally:
            if not ok:
                self._drain()
                if not out.closed:
                    try:
                        out.close()
                    except OSError:
                        pass
                try:
                    os.unlink(tmp)
                except OSError:
                    pass
                progress.task_finished(key, ok=False, note="not written")
        progress.task_finished(key, ok=True)
        return WrittenPart(name=name, path=dest, size=pos, sha256=digest, members=written)

    # -- internals ------------------------------------------------------------------

    def _drain(self) -> None:
        for i, futs in enumerate(self._busy):
            for f in futs:
                f.result()
            self._busy[i] = []

    def _out(self, out, tmp: Path, data: bytes | memoryview, part_hash) -> None:
        try:
            out.write(data)
        except OSError as exc:
            raise from_os_error(exc, f"cannot write {tmp}") from None
        self._hashing.part_pool.submit(part_hash.update, bytes(data) if isinstance(data, memoryview) else data)

    def _write_member(self, m: MemberSource, cs_root: Path, out, tmp: Path, part_hash, pos: int,
                      progress: Progress, key: str) -> tuple[WrittenMember, Future, int]:
        path = cs_root / m.source
        try:
            src = open_source(path)
        except FileNotFoundError:
            raise SourceChanged(f"{m.source}: vanished since preprocess", hint="re-run cs-sync-preprocess") from None
        except NotRegularFile as exc:
            raise SourceChanged(f"{m.source}: not a regular file ({exc}); it is not packed",
                                hint="replace it with the file, or re-run cs-sync-preprocess") from None
        except OSError as exc:
            raise SourceChanged(f"{m.source}: cannot read: {exc.strerror or exc}") from None
        with src:
            st = os.fstat(src.fileno())
            _check_unchanged(m, st)
            header = member_header(m.name, m.size, int(st.st_mtime), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            self._out(out, tmp, header, part_hash)
            pos += len(header)
            offset = pos
            mhash = hashlib.sha256()
            left = m.size
            i = 0
            try:
                os.posix_fadvise(src.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            except (AttributeError, OSError):
                pass
            while left > 0:
                slot = i % _RING
                for f in self._busy[slot]:
                    f.result()  # the hashing threads are done with this buffer
                view = self._views[slot]
                try:
                    n = src.readinto(view[: min(left, self.buffer_size)])
                except OSError as exc:
                    raise SourceChanged(f"{m.source}: read failed: {exc.strerror or exc}") from None
                if not n:
                    raise SourceChanged(f"{m.source}: shrank while being packed (preprocess recorded {m.size} bytes)",
                                        hint="re-run cs-sync-preprocess")
                chunk = view[:n]
                try:
                    out.write(chunk)
                except OSError as exc:
                    raise from_os_error(exc, f"cannot write {tmp}") from None
                self._busy[slot] = [
                    self._hashing.part_pool.submit(part_hash.update, chunk),
                    self._hashing.member_pool.submit(mhash.update, chunk),
                ]
                left -= n
                pos += n
                i += 1
                progress.task_advanced(key, pos)
            if src.read(1):
                raise SourceChanged(f"{m.source}: grew while being packed (preprocess recorded {m.size} bytes)",
                                    hint="re-run cs-sync-preprocess")
            st2 = os.fstat(src.fileno())
            if st2.st_mtime_ns != st.st_mtime_ns or st2.st_size != st.st_size:
                raise SourceChanged(f"{m.source}: modified while being packed", hint="re-run cs-sync-preprocess")
        pad = -m.size % BLOCK
        if pad:
            self._out(out, tmp, bytes(pad), part_hash)
            pos += pad
        digest = self._hashing.member_pool.submit(mhash.hexdigest)
        return WrittenMember(m.name, m.source, offset, m.size, st.st_mtime_ns, ""), digest, pos


def _check_unchanged(m: MemberSource, st: os.stat_result) -> None:
    if st.st_size != m.size:
        raise SourceChanged(
            f"{m.source}: is {st.st_size} bytes, preprocess recorded {m.size}: it changed since preprocess",
            hint="re-run cs-sync-preprocess",
        )
    if m.mtime_ns is not None and st.st_mtime_ns != m.mtime_ns:
        raise SourceChanged(f"{m.source}: modified since preprocess (mtime differs)", hint="re-run cs-sync-preprocess")


class NotRegularFile(OSError):
    """A source path that is a FIFO, socket or device: reading it could block forever."""


def open_source(path: Path):
    """Open a source for reading without ever blocking on open (a FIFO opened plainly waits
    for a writer): O_NONBLOCK, then refuse anything but a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode) else "a device or other"
            raise NotRegularFile(kind)
        return os.fdopen(fd, "rb", buffering=0)
    except BaseException:
        os.close(fd)
        raise


def hash_file(path: Path, *, buffer_size: int = DEFAULT_BUFFER, on_bytes: Callable[[int], None] | None = None) -> tuple[int, str]:
    """(size, SHA-256) of a local file, read once in large buffers."""
    h = hashlib.sha256()
    buf = bytearray(buffer_size)
    view = memoryview(buf)
    n_total = 0
    with open_source(path) as fh:
        while True:
            n = fh.readinto(buf)
            if not n:
                break
            h.update(view[:n])
            n_total += n
            if on_bytes:
                on_bytes(n_total)
    return n_total, h.hexdigest()


def hash_source(m: MemberSource, cs_root: Path, *, buffer_size: int = DEFAULT_BUFFER) -> tuple[int, str]:
    """(mtime_ns, SHA-256) of a source sent as a plain file, checked against the manifest."""
    path = cs_root / m.source
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise SourceChanged(f"{m.source}: vanished since preprocess", hint="re-run cs-sync-preprocess") from None
    except OSError as exc:
        raise SourceChanged(f"{m.source}: cannot read: {exc.strerror or exc}") from None
    _check_unchanged(m, st)
    try:
        size, digest = hash_file(path, buffer_size=buffer_size)
    except OSError as exc:
        raise SourceChanged(f"{m.source}: read failed: {exc.strerror or exc}") from None
    st2 = os.stat(path)
    if size != m.size or st2.st_mtime_ns != st.st_mtime_ns:
        raise SourceChanged(f"{m.source}: modified while being read", hint="re-run cs-sync-preprocess")
    return st.st_mtime_ns, digest
