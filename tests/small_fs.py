"""A real full disk for tests: a small tmpfs mounted on a test folder.

Mounting needs root; without it the test is skipped with the reason, and with
``CS_SYNC_REQUIRE_TMPFS=1`` (set by .ci/run) it fails instead, so CI never passes
by skipping the disk-full tests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRE_ENV = "CS_SYNC_REQUIRE_TMPFS"


@contextlib.contextmanager
def small_fs(path: Path, size: int, inodes: int | None = None) -> Iterator[Path]:
    """``path`` as a fresh tmpfs of ``size`` bytes (and at most ``inodes`` files and
    folders: the next one fails with ENOSPC) for the duration of the block."""
    path.mkdir(parents=True, exist_ok=True)
    why = None
    if os.geteuid() != 0:
        why = "mounting a small tmpfs needs root"
    elif shutil.which("mount") is None:
        why = "no mount command"
    else:
        opts = f"size={size}" + (f",nr_inodes={inodes}" if inodes else "")
        res = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(path)],
                             capture_output=True, text=True)
        if res.returncode != 0:
            why = f"mount -t tmpfs failed: {res.stderr.strip()}"
    if why is not None:
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"disk-full test required ({REQUIRE_ENV}=1) but {why}")
        pytest.skip(why)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=True)


def fill(fs: Path, leave: int, name: str = "filler") -> Path:
    """Write a file on ``fs`` so that only about ``leave`` bytes stay free."""
    st = os.statvfs(fs)
    free = st.f_bavail * st.f_frsize
    p = fs / name
    with open(p, "wb") as fh:
        fh.write(b"\0" * max(0, free - leave))
    return p
