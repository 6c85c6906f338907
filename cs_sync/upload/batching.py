"""Batches for the upload: one rclone process for many files.

:class:`Batcher` runs one call for everything queued since its last call. The calls
it runs (one rclone per batch for checks, moves and sidecars) report each file on
its own, so one bad file fails only itself and no batch is retried item by item.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")
MAX_BATCH = 64  # items per call (each is one rclone --include argument)


class Batcher(Generic[T]):
    """Runs ``fn(items)`` on everything queued since its last call, in its own thread(s).

    ``fn`` returns one error-or-None per item; ``done(item, error)`` then runs for
    each item in the batcher's thread.
    """

    _STOP = object()

    def __init__(self, name: str, fn: Callable[[list[T]], list[BaseException | None]],
                 done: Callable[[T, BaseException | None], None], workers: int = 1, linger: float = 0.0) -> None:
        self._q: queue.Queue = queue.Queue()
        self._fn, self._done = fn, done
        self._linger = linger  # after the first item, wait this long for more to join the batch
        self._threads = [threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True) for i in range(workers)]
        for t in self._threads:
            t.start()

    def put(self, item: T) -> None:
        self._q.put(item)

    def close(self) -> None:
        for _ in self._threads:
            self._q.put(self._STOP)
        for t in self._threads:
            t.join()

    def _loop(self) -> None:
        while True:
            first = self._q.get()
            if first is self._STOP:
                return
            batch = [first]
            stop = False
            deadline = time.monotonic() + self._linger
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._q.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if nxt is self._STOP:
                    stop = True
                    break
                batch.append(nxt)
            try:
                errors = self._fn(batch)
            except BaseException as exc:  # the one call failed: every item fails with it
                errors = [exc] * len(batch)
            for item, err in zip(batch, errors):
                self._done(item, err)
            if stop:
                return

