"""Watch folders from a thread: the peak bytes of the files under them, and every file name seen.

Tests and benchmarks use it for "at most one part on disk at a time" and "no TAR was
ever written": ``du``-like sampling every few milliseconds while the command runs, and
once more at the end.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path


class DiskWatch:
    def __init__(self, *dirs: Path, interval: float = 0.005) -> None:
        self.dirs = dirs
        self.interval = interval
        self.peak = 0  # the largest total seen, bytes
        self.seen: set[str] = set()  # names of every file seen
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def size(self) -> int:
        """Bytes of the files under the folders now (files vanishing meanwhile count 0)."""
        total = 0
        for d in self.dirs:
            for base, _dirs, files in os.walk(d):
                for f in files:
                    self.seen.add(f)
                    try:
                        total += os.lstat(os.path.join(base, f)).st_size
                    except OSError:
                        pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.size())
            time.sleep(self.interval)

    def __enter__(self) -> DiskWatch:
        self._t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self.size())
