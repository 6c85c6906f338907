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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .errors import VerifyError, from_os_error
from .progress import NULL_PROGRESS, Progress
from .sidecar import MemberInfo

CHUNK = 1 << 20
TMP_SUFFIX = ".cs_sync_tmp"


class UnsafeMemberError(VerifyError):
    """A TAR member that would escape the target folder or is not a plain file."""


class ArchiveError(VerifyError):
    """A part that is not a readable TAR, or whose members differ from the sidecar."""


@dataclass
class ExtractReport:
    members: list[str] = field(default_factory=list)  # names written
    skipped: int = 0  # members left out by the filter
    bytes: int = 0  # member bytes written


def safe_relpath(name: str) -> str | None:
    """The member name as a clean relative path, or None when it is unsafe.

    Unsafe: empty, absolute, NUL, or any ``..`` component. ``./a//b`` -> ``a/b``.
    """
    if not name or "\x00" in name or name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def _inside(root: Path, rel: str) -> Path:
    """``root/rel`` after checking that its parent, resolved, is still under ``root``."""
    target = root / rel
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(target.parent)
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        raise ValueError(rel)
    return target


def file_sha256(path: Path | str, progress: Progress = NULL_PROGRESS, key: str | None = None) -> str:
    """SHA-256 of a local file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    done = 0
    with open(path, "rb") as fh:
        while True:
            chunk = fh.read(CHUNK)
            if not chunk:
                break
            h.update(chunk)
            done += len(chunk)
            if key:
                progress.task_advanced(key, done)
    return h.hexdigest()


def write_verified(
    chunks: Iterable[bytes],
    target: Path,
    *,
    size: int,
    sha256: str | None,
    what: str,
    mtime: float | None = None,
    mode: int | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> int:
    """Write ``chunks`` to ``target`` via a temporary name, checking size and SHA-256 on the way.

    ``target`` appears only when every check passed. Raises ArchiveError naming
    ``what``; OSError becomes LocalIOError (no space, permission denied).
    """
    tmp = target.with_name(f".{target.name}{TMP_SUFFIX}")
    h = hashlib.sha256() if sha256 else None
    n = 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
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
        if mode is not None:
            os.chmod(tmp, mode)
        if mtime is not None:
            os.utime(tmp, (mtime, mtime))
        os.replace(tmp, target)
    except OSError as exc:
        _unlink(tmp)
        raise from_os_error(exc, f"writing {target}") from None
    except BaseException:
        _unlink(tmp)
        raise
    return n


def _unlink(p: Path) -> None:
    try:
        os.unlink(p)
    except OSError:
        pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def extract_part(
    part: Path,
    dest: Path,
    *,
    label: str,
    wanted: Callable[[str], bool] | None = None,
    expected: list[MemberInfo] | None = None,
    progress: Progress = NULL_PROGRESS,
    key: str | None = None,
) -> ExtractReport:
    """Extract the TAR ``part`` into ``dest`` (a staging folder), refusing unsafe members.

    ``wanted`` filters members by name (selective retrieval without a sidecar).
    ``expected`` (the sidecar's members of this part) makes every member's size and
    SHA-256 checked, and any member missing from or extra to the part an error.
    """
    report = ExtractReport()
    exp = {m.name: m for m in expected} if expected is not None else None
    seen: set[str] = set()
    umask = _umask()
    dest.mkdir(parents=True, exist_ok=True)
    try:
        fh = open(part, "rb")
    except OSError as exc:
        raise from_os_error(exc, f"reading {part}") from None
    try:
        with fh, tarfile.open(fileobj=fh, mode="r:") as tar:
            for ti in tar:
                rel = safe_relpath(ti.name)
                if rel is None:
                    raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: absolute path or '..' would leave the target folder")
                if ti.isdir():
                    try:
                        _inside(dest, rel + "/x")
                        (dest / rel).mkdir(parents=True, exist_ok=True)
                    except ValueError:
                        raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: lands outside the target folder") from None
                    except OSError as exc:
                        raise from_os_error(exc, f"creating {dest / rel}") from None
                    continue
                if ti.issym() or ti.islnk():
                    raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: a link (to {ti.linkname!r})")
                if not ti.isreg():
                    raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: not a regular file (device, FIFO or other)")
                if wanted is not None and not wanted(rel):
                    report.skipped += 1
                    continue
                try:
                    target = _inside(dest, rel)
                except ValueError:
                    raise UnsafeMemberError(f"{label}: refused member {ti.name!r}: lands outside the target folder") from None
                info = exp.get(rel) if exp is not None else None
                if exp is not None:
                    if info is None:
                        raise ArchiveError(f"{label}: member {rel!r} is not in the sidecar")
                    if info.size != ti.size:
                        raise ArchiveError(f"{label}: member {rel!r} is {ti.size} bytes, sidecar says {info.size}")
                src = tar.extractfile(ti)
                assert src is not None
                base = report.bytes
                mtime = ti.mtime if info is None else (info.mtime_ns / 1e9 if info.mtime_ns else info.mtime)
                write_verified(
                    iter(lambda: src.read(CHUNK), b""),
                    target,
                    size=ti.size,
                    sha256=info.sha256 if info is not None else None,
                    what=f"{label}: member {rel!r}",
                    mtime=mtime,
                    mode=(ti.mode & 0o777 & ~umask) | 0o600,
                    on_bytes=(lambda n: progress.task_advanced(key, base + n)) if key else None,
                )
                report.bytes += ti.size
                report.members.append(rel)
                seen.add(rel)
    except tarfile.TarError as exc:
        raise ArchiveError(f"{label}: not a readable TAR: {exc}") from None
    except EOFError:
        raise ArchiveError(f"{label}: TAR ends early (truncated)") from None
    if exp is not None and wanted is None:
        missing = sorted(set(exp) - seen)
        if missing:
            raise ArchiveError(f"{label}: sidecar lists {len(missing)} member(s) not in the TAR, e.g. {missing[0]!r}")
    return report


def link_or_copy(src: Path, target: Path, *, size: int, sha256: str | None, what: str) -> None:
    """Put the verified plain file ``src`` (a sample) at ``target``: a hard link when the
    filesystem allows it (no extra space), else a checked copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _unlink(target)
    try:
        os.link(src, target)
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES):
            raise from_os_error(exc, f"linking {target}") from None
    with open(src, "rb") as fh:
        write_verified(iter(lambda: fh.read(CHUNK), b""), target, size=size, sha256=sha256, what=what,
                       mtime=os.stat(src).st_mtime)


def move_into_place(staging: Path, final: Path) -> None:
    """Move a finished set from its staging folder to ``final``.

    One rename when ``final`` does not exist yet; otherwise file by file (replacing
    files of the same name), then the staging folder is removed. Safe to repeat
    after an interruption: whatever is still in staging is moved next time.
    """
    try:
        for dirpath, _dirs, files in os.walk(staging):
            for f in files:
                if f.endswith(TMP_SUFFIX):  # left by a run killed while writing
                    os.unlink(Path(dirpath) / f)
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            os.rename(staging, final)
            return
        for dirpath, _dirs, files in os.walk(staging):
            sub = Path(dirpath).relative_to(staging)
            for f in files:
                (final / sub).mkdir(parents=True, exist_ok=True)
                os.replace(Path(dirpath) / f, final / sub / f)
        shutil.rmtree(staging)
    except OSError as exc:
        raise from_os_error(exc, f"moving {staging} to {final}") from None
