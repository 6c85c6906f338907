"""Two small concurrency helpers for the upload pipeline.

:class:`Batcher` runs one call for everything queued since its last call (one
rclone process for many files). :class:`Budget` bounds what is in flight, by a
count of files and a number of bytes on local disk.
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


class Budget:
    """What may be in flight (packed or read, not yet checked): a number of files and a
    number of bytes on local disk. Acquiring waits until both fit; a file bigger than
    the whole byte budget goes when nothing else holds bytes."""

    def __init__(self, max_files: int, max_bytes: int) -> None:
        self.max_files, self.max_bytes = max_files, max_bytes
        self.files = self.bytes = 0
        self._cond = threading.Condition()

    def acquire(self, nbytes: int, timeout: float) -> bool:
        with self._cond:
            ok = self._cond.wait_for(
                lambda: self.files < self.max_files and (self.bytes + nbytes <= self.max_bytes or self.bytes == 0),
                timeout,
            )
            if ok:
                self.files += 1
                self.bytes += nbytes
            return ok

    def release(self, nbytes: int) -> None:
        with self._cond:
            self.files -= 1
            self.bytes -= nbytes
            self._cond.notify_all()
