"""Fetch whole parts into the download folder: ONE ``rclone copy --files-from-raw`` for them all.

No process per part; each part is handed on the moment rclone reports it copied,
so the caller can extract one part while others are still coming. Parts above
:data:`MULTI_THREAD_CUTOFF` come down as several ranged streams by rclone's own
multi-thread copy (``--multi-thread-streams``), which matters where one
connection is slower than the link (Dropbox gives a stream 10-20 MB/s). That
replaced our own ``rclone cat --offset --count`` ranges written with pwrite:
through a modelled link (40 MB/s total, 8 MB/s per connection) rclone's way was
0.90-0.93x the time on WebDAV, used half the CPU and sent no wasted bytes
(benchmarks/fetch_paths.py; docs/benchmarks.md). Retries are rclone's own
(``--retries``, ``--low-level-retries``). This module decides nothing about verification.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cs_sync.core.atomic import remove_quietly
from cs_sync.core.errors import CsSyncError
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.remote.rclone import Rclone, WarmCopy

MULTI_THREAD_CUTOFF = "16Mi"  # rclone's default is 256Mi: parts of 16-256 MiB gain from streams too
MULTI_THREAD_CHUNK = "16Mi"
# set by the user (environment) wins over ours: rclone reads RCLONE_<FLAG> for every flag
_MT_ENV = ("RCLONE_MULTI_THREAD_STREAMS", "RCLONE_MULTI_THREAD_CUTOFF", "RCLONE_MULTI_THREAD_CHUNK_SIZE")


@dataclass(eq=False)
class FetchItem:
    """One part to bring down."""

    relpath: str  # FAULT/PART, relative to the version folder
    local: Path  # where the finished part goes
    size: int
    label: str  # for messages
    key: str  # progress key
    rclone_checks: bool  # no sidecar SHA-256: let rclone compare hashes on the way
    done_bytes: int = 0
    handed: bool = False  # given to exactly one of on_done / on_failed / on_stopped
    lock: threading.Lock = field(default_factory=threading.Lock)


Done = Callable[[FetchItem, str], None]  # (item, how: "batch")
Failed = Callable[[FetchItem, CsSyncError], None]


class PartFetcher:
    """Fetches a list of parts with one rclone copy per check mode; see the module doc."""

    def __init__(self, rclone: Rclone, version_path: str, *, transfers: int, streams: int, stop: threading.Event,
                 on_done: Done, on_failed: Failed, on_stopped: Callable[[FetchItem], None],
                 progress: Progress = NULL_PROGRESS, warm: WarmCopy | None = None) -> None:
        self.rclone = rclone
        self.warm = warm  # from start_batch: the first batch copy's rclone, already started
        self.vpath = version_path
        self.transfers = transfers
        self.streams = streams
        self.stop = stop
        self.on_done = on_done
        self.on_failed = on_failed
        self.on_stopped = on_stopped
        self.progress = progress

    @staticmethod
    def start_batch(rclone: Rclone, version_path: str, local_root: Path, transfers: int, streams: int) -> WarmCopy:
        """Start the rclone of the first batch copy now (parts with a sidecar SHA-256), so its
        start-up overlaps the listing; it copies nothing before it is given the list."""
        return rclone.start_copy_files(version_path, str(local_root), batch_flags(transfers, streams, checks=False))

    @property
    def how(self) -> str:
        """How whole parts were fetched, for the summary."""
        mt = f"parts over {MULTI_THREAD_CUTOFF}B in {self.streams} streams each" if self.streams > 1 else "one stream per part"
        return f"one rclone copy, {self.transfers} parts at once, {mt}"

    def run(self, items: list[FetchItem]) -> None:
        """Fetch ``items``; returns when each was handed to on_done, on_failed or on_stopped."""
        if not items:
            return
        items = sorted(items, key=lambda i: -i.size)  # largest first: the tail is small parts
        try:
            for checks in (False, True):
                group = [i for i in items if i.rclone_checks == checks]
                if group and not self.stop.is_set():
                    for item, why in self._copy(group, checks):
                        self._hand(item, why.about(f"fetching {item.label}"))
        finally:
            for item in items:  # anything not handed on yet: the run was stopped
                self._hand(item, None)

    def _hand(self, item: FetchItem, result: str | CsSyncError | None) -> None:
        """Give ``item`` to on_done (how), on_failed (error) or on_stopped (None), once."""
        with item.lock:
            if item.handed:
                return
            item.handed = True
        if isinstance(result, str):
            self.on_done(item, result)
        elif result is None:
            self.on_stopped(item)
        else:
            self.on_failed(item, result)

    def _copy(self, group: list[FetchItem], checks: bool) -> list[tuple[FetchItem, CsSyncError]]:
        by_path = {i.relpath: i for i in group}
        for i in group:
            _clear(i)

        def copied(name: str) -> None:
            item = by_path[name]
            item.done_bytes = item.size
            self._hand(item, "batch")

        local_root = str(group[0].local.parent.parent)
        warm, self.warm = self.warm, None
        try:
            failed = self.rclone.copy_files(self.vpath, local_root, [i.relpath for i in group], on_copied=copied,
                                            progress=self.progress, key_for=lambda n: by_path[n].key if n in by_path else None,
                                            what=f"fetching {len(group)} part(s)",
                                            extra=batch_flags(self.transfers, self.streams, checks), warm=warm)
        except CsSyncError as exc:
            if self.stop.is_set():
                return []
            for i in group:
                if i.done_bytes == 0:
                    self._hand(i, exc)  # typed as rclone raised it (remote unreachable, disk full, ...)
            return []
        return [(by_path[n], why) for n, why in failed.items()]


def _clear(item: FetchItem) -> None:
    """Remove the part and any partial copy of it left by an rclone that was killed."""
    for stale in item.local.parent.glob(f"{item.local.name}.*partial"):
        remove_quietly(stale)
    remove_quietly(item.local)


def batch_flags(transfers: int, streams: int, checks: bool) -> list[str]:
    """Flags of a batch copy. Without ``checks`` rclone's own post-copy hash is skipped (the
    sidecar's SHA-256 is checked while extracting); multi-thread settings the user set in
    the environment are left to rclone."""
    flags = ["--transfers", str(transfers), "--no-check-dest", *(() if checks else ("--ignore-checksum",))]
    if not any(os.environ.get(k) for k in _MT_ENV):
        flags += ["--multi-thread-streams", str(streams if streams > 1 else 0),
                  "--multi-thread-cutoff", MULTI_THREAD_CUTOFF, "--multi-thread-chunk-size", MULTI_THREAD_CHUNK]
    return flags
