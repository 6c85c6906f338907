"""A test hook, and nothing else: kill this run at a named point to test resuming.

``CS_SYNC_TEST_KILL_AFTER=<event>[:<n>]`` makes the n-th (default first) time the
engine reaches ``<event>`` send SIGKILL to the whole process group (rclone
children included), as a Slurm time limit or a closed ``screen`` would. Unset
(always, outside tests), :func:`reached` does nothing but read one variable.

Events: ``member_written`` (a TAR member written, part still a .tmp), ``packed``
(a part renamed into place), ``uploaded`` (a part copied, not yet checked),
``checked`` (a part checked and recorded), ``old_removed`` (with --overwrite:
old sidecar and parts deleted), ``set_done`` (sidecar written), ``sidecars_copied``
(a remote version's sidecars copied to local scratch, not yet read).
"""

from __future__ import annotations

import os
import signal
import threading

ENV = "CS_SYNC_TEST_KILL_AFTER"
_lock = threading.Lock()
_counts: dict[str, int] = {}


def reached(event: str) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != event:
        return
    with _lock:
        _counts[event] = _counts.get(event, 0) + 1
        if _counts[event] < int(nth or 1):
            return
    os.killpg(os.getpgrp(), signal.SIGKILL)
