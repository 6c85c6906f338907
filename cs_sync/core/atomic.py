"""Write local files so that a reader never sees half of one: temp name, fsync, rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from cs_sync.core.errors import from_os_error


@contextlib.contextmanager
def atomic_open(path: Path | str, mode: str = "w", **kwargs) -> Iterator[IO]:
    """Open a temp file beside ``path``; on success fsync and rename it over ``path``.

    On any exception the temp file is removed and ``path`` is left as it was.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise from_os_error(exc, f"cannot write {path}") from None
    try:
        with os.fdopen(fd, mode, **kwargs) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # as open() would make it (mkstemp makes 0600)
        os.replace(tmp, path)
    except OSError as exc:
        remove_quietly(tmp)
        if exc.filename is None:  # a failed write names no file: name the one being written
            exc.filename = str(path)
        raise from_os_error(exc, f"cannot write {path}") from None
    except BaseException:
        remove_quietly(tmp)
        raise


def current_umask() -> int:
    """The process umask, read without changing it where Linux allows (no window in
    which another thread's new file gets the wrong mode)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path | str, text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def remove_quietly(path: Path | str) -> None:
    """Remove a file if it is there; a file that cannot be removed is left (best-effort tidying)."""
    with contextlib.suppress(OSError):
        os.unlink(path)
