"""One watch over the remote while it is down, shared by every transfer of a run.

Transfers that met the remote unreachable after all their attempts ask the same
question: was the remote down, and is it back? One thread asks it (the others wait
on the lock, then see when it came back), so an outage costs one series of looks,
not one per transfer; a transfer that failed before the remote last came back is
told so at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from cs_sync.core.errors import Interrupted, RemoteUnreachable
from cs_sync.remote.rclone import DEFAULT_OUTAGE_WAITS, OUTAGE_WAITS_ENV, Rclone, waits_from_env


class OutageWatch:
    """``over(failed_at)`` for the transfers of one run against ``path``; the waits come from
    CS_SYNC_OUTAGE_WAITS (about seven minutes by default)."""

    def __init__(self, rclone: Rclone, path: str, *, stopped: Callable[[], bool],
                 on_down: Callable[[RemoteUnreachable, tuple[float, ...]], None] | None = None,
                 on_back: Callable[[], None] | None = None) -> None:
        self.rclone = rclone
        self.path = path
        self.waits = waits_from_env(OUTAGE_WAITS_ENV, DEFAULT_OUTAGE_WAITS)
        self._stopped = stopped
        self._on_down = on_down
        self._on_back = on_back
        self._lock = threading.Lock()
        self._back_at = -1.0  # time.monotonic() when the remote last answered again after an outage

    def over(self, failed_at: float) -> bool:
        """A transfer met the remote unreachable at ``failed_at`` (time.monotonic()).

        True: the remote was down (since ``failed_at``, or now) and answers again; False:
        it answers at once, so only that transfer's connection failed. Raises what ended
        the watch for the run to stop: Interrupted when the run is stopping,
        RemoteUnreachable when it stayed down through every wait, a refused login at once.
        """
        with self._lock:
            if failed_at <= self._back_at:
                return True
            if self._stopped():
                raise Interrupted("the run is stopping")
            if not self.rclone.await_answer(self.path, self.waits, on_down=self._down):
                return False  # it answered at the first asking: up all along
            self._back_at = time.monotonic()
            if self._on_back is not None:
                self._on_back()
            return True

    def _down(self, exc: RemoteUnreachable) -> None:
        if self._on_down is not None:
            self._on_down(exc, self.waits)
