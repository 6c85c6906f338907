"""Write local files so that a reader never sees half of one: temp name, fsync, rename.

Every file this tool writes and then renames (or links) into place is first written
under one kind of temporary name, made by :func:`create_temp_beside`:
``.{name}.{random}.cs_sync_tmp`` beside the file. Leftovers of a killed run are found
by that suffix (:func:`is_temp_name`), and by :func:`leftover_temps`, which also knows
the names older versions used.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cs_sync.core.errors import from_os_error

TMP_SUFFIX = ".cs_sync_tmp"
# atomic_open's temporary names before there was one scheme: .{name}.{random}.tmp (journals,
# sidecars, state files); download's members were .{name}.cs_sync_tmp, which TMP_SUFFIX matches
OLD_TMP_SUFFIX = ".tmp"


_serial = itertools.count()
_EXCL = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)


def create_temp_beside(target: Path, mode: int = 0o666) -> tuple[int, Path]:
    """A new, empty file to write ``target`` under, beside it: ``.{name}.{pid}_{n}.cs_sync_tmp``.

    Created exclusively (nothing planted at the name is written through, and two writers
    of one target never share a temporary file) with ``mode`` less the umask, as ``open``
    makes files. The name says which process wrote it; one left by a killed process of
    the same pid is stepped over. Returns the open descriptor and the name; OSError as
    the system raised it.
    """
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{os.getpid()}_{next(_serial)}{TMP_SUFFIX}")
        try:
            return os.open(tmp, _EXCL, mode), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target))


def is_temp_name(name: str) -> bool:
    """Is ``name`` a temporary name of this tool's (this version's or an older one's member names)?"""
    return name.endswith(TMP_SUFFIX)


def leftover_temps(target: Path) -> list[Path]:
    """The temporary files a killed run left while writing ``target``, in both schemes
    (:func:`create_temp_beside`'s, and ``.{name}.{random}.tmp`` of earlier versions)."""
    stem = glob.escape(f".{target.name}.")
    return [*target.parent.glob(f"{stem}*{TMP_SUFFIX}"), *target.parent.glob(f"{stem}*{OLD_TMP_SUFFIX}")]


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    The file gets the mode ``open`` would give it (0o666 less the umask).

    On any exception the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    try:
        if path.is_dir():  # checked first: else the whole file is written, then the rename fails
            raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = create_temp_beside(path)
    except OSError as exc:
        raise from_os_error(exc, f"cannot write {path}") from None
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        if exc.filename is None:  # a failed write names no file: name the one being written
            exc.filename = str(path)
        raise from_os_error(exc, f"cannot write {path}") from None
    except BaseException:
        remove_quietly(tmp)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def remove_quietly(path: Path | str) -> None:
    """Remove a file if it is there; a file that cannot be removed is left (best-effort tidying)."""
    with contextlib.suppress(OSError):
        os.unlink(path)


def missing_dirs(path: Path | str) -> list[Path]:
    """The folders that making ``path`` (with its parents) would create, deepest first: what a
    run that stops on bad input removes again (:func:`remove_empty_dirs`), leaving nothing."""
    out: list[Path] = []
    p = Path(os.path.abspath(path))
    while not p.exists() and p != p.parent:
        out.append(p)
        p = p.parent
    return out


def remove_empty_dirs(dirs: list[Path]) -> None:
    """Remove ``dirs`` (deepest first) while they are empty: undo what this run made."""
    for d in dirs:
        try:
            d.rmdir()
        except OSError:
            return
