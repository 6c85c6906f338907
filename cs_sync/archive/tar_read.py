"""Read TAR parts back safely, checking every member as it is written.

A member with an absolute path, a ``..`` component, a link, a device or anything
else that is not a plain file or folder is refused with an error naming the part
and the member; nothing is ever written outside the target folder. Each member's
size (and, when the sidecar records it, SHA-256) is checked while its bytes are
written. The caller extracts a set into a private staging folder and moves it into
place only when every part passed, so a failure never leaves a set that looks done.
"""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from cs_sync.archive.sidecar import MemberInfo
from cs_sync.archive.tar_index import BLOCK, TarIndexError, judge_end
from cs_sync.core.atomic import create_temp_beside, is_temp_name, remove_quietly
from cs_sync.core.errors import CsSyncError, ExitCode, UnsafeNameError, VerifyError, from_os_error
from cs_sync.core.hashes import file_sha256
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.core.safe_names import local_path, safe_relpath

CHUNK = 1 << 20


UnsafeMemberError = UnsafeNameError  # a TAR member that would escape the target or is not a plain file


class ArchiveError(VerifyError):
    """A part that is not a readable TAR, or whose members differ from the sidecar."""


class PartHashMismatch(ArchiveError):
    """The part's bytes do not hash to the sidecar's SHA-256."""


class DestinationBlocked(CsSyncError):
    """Something already in the set's final folder stands where one of its files or folders
    goes (a folder where a file goes, or a file where a folder goes). That set's problem,
    not the disk's: the run goes on with the others."""

    exit_code = ExitCode.LOCAL_IO


@dataclass
class ExtractReport:
    members: list[str] = field(default_factory=list)  # names written
    skipped: int = 0  # members left out by the filter
    bytes: int = 0  # member bytes written


def write_verified(
    chunks: Iterable[bytes | memoryview],
    target: Path,
    *,
    size: int,
    sha256: str | None,
    what: str,
    mtime: float | None = None,
    mode: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
    pending: list[tuple[Path, Path]] | None = None,
) -> int:
    """Write ``chunks`` to ``target`` via a temporary name, checking size and SHA-256 on the way.

    ``target`` appears only when every check passed. With ``pending``, the file is
    left under its temporary name and ``(tmp, target)`` appended, for the caller to
    rename once a check that covers it (the part's SHA-256) has passed. Raises
    ArchiveError naming ``what``; OSError becomes LocalIOError (no space, permission denied).
    """
    h = hashlib.sha256() if sha256 else None
    n = 0
    tmp: Path | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_temp_beside(target, 0o644)
        if mode is not None:
            os.fchmod(fd, mode)  # exactly this (the umask is in it already)
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                n += len(chunk)
                if n > size:
                    raise ArchiveError(f"{what}: more than the {size} bytes expected")
                if h is not None:
                    h.update(chunk)
                fh.write(chunk)
                if on_bytes:
                    on_bytes(n)
        if n != size:
            raise ArchiveError(f"{what}: {n} bytes, expected {size} (truncated)")
        if h is not None and h.hexdigest() != sha256:
            raise ArchiveError(f"{what}: SHA-256 differs from the sidecar (corrupted data)")
        if mtime is not None:
            try:
                os.utime(tmp, (mtime, mtime))
            except (ValueError, OverflowError):  # NaN or beyond time_t: a forged or damaged header
                raise ArchiveError(f"{what}: modification time {mtime!r} is not a time a file can have") from None
        if pending is not None:
            pending.append((tmp, target))
        else:
            os.replace(tmp, target)
    except OSError as exc:
        if tmp is not None:
            remove_quietly(tmp)
        raise from_os_error(exc, f"writing {target}") from None
    except BaseException:
        if tmp is not None:
            remove_quietly(tmp)
        raise
    return n


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _sha256_or_none(path: Path) -> str | None:
    try:
        return file_sha256(path)
    except OSError:
        return None


def extract_part(
    part: Path,
    dest: Path,
    *,
    label: str,
    wanted: Callable[[str], bool] | None = None,
    expected: list[MemberInfo] | None = None,
    part_sha256: str | None = None,
    part_verified: bool = False,
    progress: Progress = NULL_PROGRESS,
    key: str | None = None,
) -> ExtractReport:
    """Extract the TAR ``part`` into ``dest`` (a staging folder) in one pass, refusing unsafe members.

    ``wanted`` filters members by name (selective retrieval without a sidecar).
    ``expected`` (the sidecar's members of this part) makes every member's size,
    offset and content checked, and any member missing from or extra to the part an
    error. ``part_sha256`` is checked over the whole file in the same read pass
    (PartHashMismatch when it differs); ``part_verified`` says the caller checked it
    already. Each data byte is hashed once: a member found at the offset the
    sidecar recorded is covered by the part's SHA-256 (the sidecar's member and part
    hashes were taken from the same bytes); any other member with a recorded
    SHA-256 is hashed on its own as it is written.
    """
    report = ExtractReport()
    exp = {m.name: m for m in expected} if expected is not None else None
    seen: set[str] = set()
    umask = _umask()
    part_hash = hashlib.sha256() if part_sha256 else None
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise from_os_error(exc, f"creating {dest}") from None
    try:
        headers = open(part, "rb")  # tarfile walks the headers on this handle ...
        data = open(part, "rb", buffering=0)  # ... while the bytes are read in order on this one
    except OSError as exc:
        raise from_os_error(exc, f"reading {part}") from None
    reader = _RegionReader(data, part_hash)
    # with the part's hash still to check, members keep their temporary names until it passed
    pending: list[tuple[Path, Path]] | None = [] if part_hash is not None else None
    try:
        _extract_members(dest, headers, reader, report, seen, label=label, wanted=wanted, exp=exp,
                         part_checked=part_verified or part_hash is not None, umask=umask, progress=progress, key=key,
                         pending=pending)
        if part_hash is not None:
            reader.skip_to(None)  # the rest of the file: trailer blocks and padding
            if part_hash.hexdigest() != part_sha256:
                raise PartHashMismatch(f"{label}: SHA-256 differs from the sidecar (corrupted on the remote or in transit)",
                                       hint="the bad copy was removed; re-run to fetch it again")
        for tmp, target in pending or ():
            try:
                os.replace(tmp, target)
            except OSError as exc:
                raise from_os_error(exc, f"writing {target}") from None
        pending = None
    except (ArchiveError, UnsafeMemberError, tarfile.TarError, EOFError) as exc:
        if part_sha256 and not isinstance(exc, PartHashMismatch) and _sha256_or_none(part) != part_sha256:
            # a damaged header stops the reading early: say what is wrong, the copy
            raise PartHashMismatch(f"{label}: SHA-256 differs from the sidecar (corrupted on the remote or in transit)",
                                   hint="the bad copy was removed; re-run to fetch it again") from None
        if isinstance(exc, tarfile.TarError):
            raise ArchiveError(f"{label}: not a readable TAR: {exc}") from None
        if isinstance(exc, EOFError):
            raise ArchiveError(f"{label}: TAR ends early (truncated)") from None
        raise
    except OSError as exc:
        raise from_os_error(exc, f"reading {part}") from None
    finally:
        headers.close()
        data.close()
        if pending:  # not renamed: the part failed
            for tmp, _target in pending:
                remove_quietly(tmp)
    if exp is not None and wanted is None:
        missing = sorted(set(exp) - seen)
        if missing:
            raise ArchiveError(f"{label}: sidecar lists {len(missing)} member(s) not in the TAR, e.g. {missing[0]!r}")
    return report


def _extract_members(dest: Path, headers, reader: _RegionReader, report: ExtractReport,
                     seen: set[str], *, label: str, wanted, exp, part_checked: bool, umask: int,
                     progress: Progress, key: str | None, pending: list[tuple[Path, Path]] | None) -> None:
    """The member loop of :func:`extract_part`: headers from ``headers``, bytes via ``reader``."""
    part_size = os.fstat(headers.fileno()).st_size
    with tarfile.open(fileobj=headers, mode="r:") as tar:
        for ti in tar:
            rel = safe_relpath(ti.name)
            if rel is None:
                raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: absolute path or '..' would leave the target folder")
            if ti.isdir():
                local_path(dest, rel + "/x", flat=False, what=f"{label}: member")
                try:
                    (dest / rel).mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise from_os_error(exc, f"creating {dest / rel}") from None
                continue
            if ti.issym() or ti.islnk():
                raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: a link (to {ti.linkname!r})")
            if not ti.isreg():
                raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: not a regular file (device, FIFO or other)")
            if ti.issparse():  # its header size is not its bytes in the archive; this tool never writes one
                raise ArchiveError(f"{label}: member {ti.name!r} is a GNU sparse file, which is not supported")
            if ti.offset_data + ti.size > part_size:  # a lying header: never skipped past as if the TAR ended there
                raise ArchiveError(f"{label}: member {ti.name!r} declares {ti.size} bytes, past the end of the part "
                                   f"({part_size} bytes): truncated or forged")
            if wanted is not None and not wanted(rel):
                report.skipped += 1
                continue
            target = local_path(dest, rel, flat=False, what=f"{label}: member")
            info = exp.get(rel) if exp is not None else None
            if exp is not None:
                if info is None:
                    raise ArchiveError(f"{label}: member {rel!r} is not in the sidecar")
                if info.size != ti.size:
                    raise ArchiveError(f"{label}: member {rel!r} is {ti.size} bytes, sidecar says {info.size}")
            covered = part_checked and info is not None and info.offset == ti.offset_data
            base = report.bytes
            mtime = ti.mtime if info is None else (info.mtime_ns / 1e9 if info.mtime_ns else info.mtime)
            reader.skip_to(ti.offset_data)
            write_verified(
                reader.chunks(ti.size),
                target,
                size=ti.size,
                sha256=info.sha256 if info is not None and not covered else None,
                what=f"{label}: member {rel!r}",
                mtime=mtime,
                mode=(ti.mode & 0o777 & ~umask) | 0o600,
                on_bytes=_advancer(progress, key, base) if key else None,
                pending=pending,
            )
            report.bytes += ti.size
            report.members.append(rel)
            seen.add(rel)
        # tarfile ends its iteration quietly at a damaged header or at the end of the file;
        # a part cut between two members would pass for a whole, shorter one
        stop = tar.offset
    headers.seek(stop)
    try:
        judge_end(headers.read(2 * BLOCK), stop, label)
    except TarIndexError as exc:
        raise ArchiveError(exc.message, hint="the TAR is damaged (on the remote, or the copy here); "
                                             "none of its set was put in place") from None



def _advancer(progress: Progress, key: str, base: int) -> Callable[[int], None]:
    """Progress of one member: ``n`` of its bytes written, ``base`` of the part's before it."""
    return lambda n: progress.task_advanced(key, base + n)


class _RegionReader:
    """Reads a file front to back in 1 MiB chunks through one reusable buffer.

    Every byte read goes into ``hash`` (the part's SHA-256) when there is one;
    regions nobody needs are skipped by seeking when there is not.
    """

    def __init__(self, fh, hash_) -> None:
        self.fh = fh
        self.hash = hash_
        self.pos = 0
        self.buf = memoryview(bytearray(CHUNK))

    def _read(self, n: int) -> memoryview:
        got = self.fh.readinto(self.buf[:n])
        if not got:
            raise EOFError
        view = self.buf[:got]
        if self.hash is not None:
            self.hash.update(view)
        self.pos += got
        return view

    def skip_to(self, offset: int | None) -> None:
        """Move to ``offset`` (None: the end of the file), hashing what lies between."""
        if self.hash is None:
            if offset is not None:
                self.fh.seek(offset)
                self.pos = offset
            return
        if offset is None:
            while True:
                got = self.fh.readinto(self.buf)
                if not got:
                    return
                self.hash.update(self.buf[:got])
                self.pos += got
        while self.pos < offset:
            self._read(min(CHUNK, offset - self.pos))

    def chunks(self, size: int) -> Iterator[memoryview]:
        left = size
        while left > 0:
            view = self._read(min(CHUNK, left))
            left -= len(view)
            yield view


def link_or_copy(src: Path, target: Path, *, size: int, sha256: str | None, what: str) -> None:
    """Put the verified plain file ``src`` (a sample) at ``target``: a hard link when the
    filesystem allows it (no extra space), else a checked copy."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_quietly(target)
        try:
            os.link(src, target)
            return
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
                raise
        with open(src, "rb") as fh:
            write_verified(iter(lambda: fh.read(CHUNK), b""), target, size=size, sha256=sha256, what=what,
                           mtime=os.stat(src).st_mtime)
    except OSError as exc:
        raise from_os_error(exc, f"putting {src} at {target}") from None


def move_into_place(staging: Path, final: Path) -> None:
    """Move a finished set from its staging folder to ``final``.

    One rename when ``final`` does not exist yet; otherwise file by file (replacing
    files of the same name), then the staging folder is removed. Safe to repeat
    after an interruption: whatever is still in staging is moved next time.
    """
    try:
        for dirpath, _dirs, files in os.walk(staging):
            for f in files:
                if is_temp_name(f):  # left by a run killed while writing
                    os.unlink(Path(dirpath) / f)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, final)
            return
        _check_room(staging, final)  # before anything moves: never half a set over the old one
        for dirpath, _dirs, files in os.walk(staging):
            sub = Path(dirpath).relative_to(staging)
            for f in files:
                (final / sub).mkdir(parents=True, exist_ok=True)
                os.replace(Path(dirpath) / f, final / sub / f)
        shutil.rmtree(staging)
    except OSError as exc:
        raise from_os_error(exc, f"moving {staging} to {final}") from None


def _check_room(staging: Path, final: Path) -> None:
    """Refuse (DestinationBlocked, naming the path) when ``final`` holds a folder where a file
    of ``staging`` goes, or a file where one of its folders goes. A file, or a link, of the
    same name is replaced, as ``tar -x`` does."""
    hint = "move it out of the way and re-run the same command; what was fetched is kept"
    if not final.is_dir():
        raise DestinationBlocked(f"{final} is a file, where the set's folder goes", hint=hint)
    for dirpath, dirs, files in os.walk(staging):
        sub = final / Path(dirpath).relative_to(staging)
        for d in dirs:
            if (sub / d).exists() and not (sub / d).is_dir():
                raise DestinationBlocked(f"{sub / d} is a file, where a folder of the set goes", hint=hint)
        for f in files:
            if (sub / f).is_dir() and not (sub / f).is_symlink():
                raise DestinationBlocked(f"{sub / f} is a folder, where a file of the set goes", hint=hint)
