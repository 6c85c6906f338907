"""The one check every name that comes from the remote passes before it becomes a local path.

Names in sidecars (members, parts), TAR member names and listing entries are
remote content: a forged or damaged sidecar must not make download write outside
its folder. Sets this tool wrote hold flat member names only, so for them any
separator is refused too; TARs made by the older scripts may hold relative paths,
which are accepted only when they stay inside the target.
"""

from __future__ import annotations

import os
from pathlib import Path

from cs_sync.core.errors import UnsafeNameError


def safe_relpath(name: str) -> str | None:
    """The name as a clean relative path, or None when it is unsafe.

    Unsafe: empty, absolute, NUL, a backslash-drive form, or any ``..`` component.
    ``./a//b`` -> ``a/b``.
    """
    if not isinstance(name, str) or not name or "\x00" in name or name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def is_flat_name(name: str) -> bool:
    """True for a plain file name: no separator, not '.', '..' or empty, no NUL."""
    return (isinstance(name, str) and name not in ("", ".", "..") and "/" not in name
            and "\\" not in name and "\x00" not in name)


def local_path(root: Path, name: str, *, flat: bool, what: str) -> Path:
    """``root/name`` after checking that it stays inside ``root``; raises UnsafeNameError.

    ``flat``: the name must be a plain file name (sets this tool wrote). Symlinks
    already under ``root`` are resolved, so a link planted there cannot lead out.
    """
    rel = name if flat and is_flat_name(name) else (None if flat else safe_relpath(name))
    if rel is None:
        kind = "not a plain file name" if flat else "an absolute path or '..' would leave the target folder"
        raise UnsafeNameError(f"{what}: refused name {name!r}: {kind}",
                              hint="the remote holds forged or damaged metadata; nothing was written for it")
    target = root / rel
    real_root = os.path.realpath(root)
    real_parent = os.path.realpath(target.parent)
    if real_parent != real_root and not real_parent.startswith(real_root + os.sep):
        raise UnsafeNameError(f"{what}: refused name {name!r}: lands outside the target folder")
    return target
