"""A test hook, and nothing else: kill or pause this run at a named point.

``CS_SYNC_TEST_KILL_AFTER=<event>[:<n>]`` makes the n-th (default first) time the
engine reaches ``<event>`` send SIGKILL to the whole process group (rclone
children included), as a Slurm time limit or a closed ``screen`` would.

``CS_SYNC_TEST_PAUSE_AT=<event>[:<n>]`` with ``CS_SYNC_TEST_PAUSE_DIR=<dir>`` makes
the n-th time ``<event>`` is reached write ``<dir>/paused`` (holding the event's
detail, e.g. the file just uploaded) and wait until ``<dir>/resume`` exists, so a
test can change the world (a byte on the server) at that exact point; with
``CS_SYNC_TEST_PAUSE_MATCH=<text>`` only events whose detail holds that text count.

Unset (always, outside tests), :func:`reached` does nothing but read a variable.

Events: ``member_written`` (a TAR member streamed, its part's stream still open),
``packed`` (every byte of a part handed to rclone, its upload not yet finished),
``uploaded`` (a part's upload finished, not yet checked), ``checked`` (a part
checked, under its name and recorded), ``old_removed`` (with --overwrite: old
sidecar and parts deleted), ``set_done`` (sidecar written), ``sidecars_copied``
(a remote version's sidecars copied to local scratch, not yet read).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

from cs_sync.core.atomic import atomic_write_text

ENV = "CS_SYNC_TEST_KILL_AFTER"
PAUSE_ENV = "CS_SYNC_TEST_PAUSE_AT"
PAUSE_DIR_ENV = "CS_SYNC_TEST_PAUSE_DIR"
PAUSE_MATCH_ENV = "CS_SYNC_TEST_PAUSE_MATCH"
PAUSE_LIMIT = 120.0  # seconds a paused run waits for the test before going on
_lock = threading.Lock()
_counts: dict[tuple[str, str], int] = {}


def _due(var: str, event: str) -> bool:
    """Is this the n-th time ``event`` is reached, for the spec in ``var``?"""
    spec = os.environ.get(var)
    if not spec:
        return False
    name, _, nth = spec.partition(":")
    if name != event:
        return False
    with _lock:
        n = _counts[(var, event)] = _counts.get((var, event), 0) + 1
    return n == int(nth or 1)


def reached(event: str, detail: str = "") -> None:
    if _due(ENV, event):
        os.killpg(os.getpgrp(), signal.SIGKILL)
    if os.environ.get(PAUSE_ENV) and os.environ.get(PAUSE_MATCH_ENV, "") in detail and _due(PAUSE_ENV, event):
        folder = Path(os.environ[PAUSE_DIR_ENV])
        atomic_write_text(folder / "paused", detail)  # the test never reads it half-written
        deadline = time.monotonic() + PAUSE_LIMIT
        while not (folder / "resume").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
