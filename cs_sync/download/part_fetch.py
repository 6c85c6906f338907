"""Fetch whole parts into the download folder, as :mod:`fetch_plan` decides.

Either ONE ``rclone copy --files-from-raw`` for every part (fast remotes: no
process per part), with each part handed on the moment rclone reports it copied;
or byte ranges (``rclone cat --offset --count``) written at their offsets into a
``.cs_sync.partial`` file, several streams per part, the part handed on when its
last range lands (slow remotes, where one connection is the limit).

Parts are handed on through callbacks so the caller can extract one part while
others are still coming. This module decides nothing about verification.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from cs_sync.core.atomic import remove_quietly
from cs_sync.core.errors import CsSyncError, RcloneError, from_os_error
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.download.fetch_plan import FetchPlan, ProbeResult, plan_fetch, split_ranges, splittable
from cs_sync.remote.rclone import Rclone, WarmCopy, join

PARTIAL_SUFFIX = ".cs_sync.partial"
BATCH_ATTEMPTS = 2  # a part that failed in the batch copy is tried once more
RANGE_ATTEMPTS = 2


@dataclass(eq=False)
class FetchItem:
    """One part to bring down."""

    relpath: str  # FAULT/PART, relative to the version folder
    local: Path  # where the finished part goes
    size: int
    label: str  # for messages
    key: str  # progress key
    rclone_checks: bool  # no sidecar SHA-256: let rclone compare hashes on the way (batch copy)
    done_bytes: int = 0
    failed: bool = False
    ranges_left: int = 0
    handed: bool = False  # given to exactly one of on_done / on_failed / on_stopped
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def partial(self) -> Path:
        return self.local.with_name(self.local.name + PARTIAL_SUFFIX)


Done = Callable[[FetchItem, str], None]  # (item, how: "batch" | "ranges")
Failed = Callable[[FetchItem, CsSyncError], None]


class PartFetcher:
    """Runs one fetch plan over a list of parts; see the module doc."""

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
        self.plan: FetchPlan | None = None

    @staticmethod
    def start_batch(rclone: Rclone, version_path: str, local_root: Path, transfers: int) -> WarmCopy:
        """Start the rclone of the first batch copy now (parts with a sidecar SHA-256), so its
        start-up overlaps the listing; it copies nothing before it is given the list."""
        return rclone.start_copy_files(version_path, str(local_root), _batch_flags(transfers, checks=False))

    def run(self, items: list[FetchItem]) -> None:
        """Fetch ``items``; returns when each was handed to on_done, on_failed or on_stopped."""
        if not items:
            return
        items = sorted(items, key=lambda i: -i.size)  # largest first: the tail is small parts
        try:
            self._run(items)
        finally:
            for item in items:  # anything not handed on yet: the run was stopped
                self._hand(item, None)

    def _run(self, items: list[FetchItem]) -> None:
        big = [i for i in items if splittable(i.size)]
        if self.streams < 2 or not big:
            self.plan = FetchPlan(False, 0, "one rclone copy" + ("" if self.streams > 1 else " (--streams 1)"))
            return self._batch(items)
        # Start as if the remote were fast: one rclone copy of everything. If it is still
        # running at its first stats report, its per-file speed decides whether splitting
        # pays; if so it is stopped and what it had not finished goes by byte ranges.
        cancel = threading.Event()
        big_names = {i.relpath for i in big}
        decided: list[FetchPlan] = []

        def watch(stats: dict, seconds: float) -> None:
            if decided:
                return
            moving = [t for t in stats.get("transferring") or []
                      if t.get("name") in big_names and int(t.get("bytes") or 0) > 0]
            speeds = sorted(float(t.get("speedAvg") or t.get("speed") or 0) for t in moving)
            if not speeds or speeds[len(speeds) // 2] <= 0:
                return
            # the batch rclone may have been started ahead (its start-up then hidden):
            # starting a range fetch costs at least what the quickest rclone call took
            start_cost = max(seconds - float(stats.get("transferTime") or 0), self.rclone.quickest_call or 0.0)
            probe = ProbeResult.from_rate(speeds[len(speeds) // 2], start_cost)
            plan = plan_fetch([i.size for i in big if not i.handed], probe)
            decided.append(plan)
            if plan.ranged:
                cancel.set()

        self._batch(items, cancel, on_stats=watch)
        self.plan = decided[0] if decided else FetchPlan(False, 0, "one rclone copy (done before its first speed report)")
        if not cancel.is_set() or self.stop.is_set():
            return
        rest = [i for i in items if not i.handed]
        self.progress.note(f"fetch: {self.plan.reason}")
        with ThreadPoolExecutor(1, thread_name_prefix="cs_sync_batch") as pool:
            small = pool.submit(self._batch, [i for i in rest if not splittable(i.size)])
            self._ranges([i for i in rest if splittable(i.size)], self.plan.range_size)
            small.result()

    def _hand(self, item: FetchItem, result: str | CsSyncError | None) -> None:
        """Give ``item`` to on_done (how), on_failed (error) or on_stopped (None), once."""
        with item.lock:
            if item.handed:
                return
            item.handed = True
        if isinstance(result, str):
            self.on_done(item, result)
        elif result is None:
            remove_quietly(item.partial)
            self.on_stopped(item)
        else:
            remove_quietly(item.partial)
            self.on_failed(item, result)

    # -- one rclone copy --------------------------------------------------------------

    def _batch(self, items: list[FetchItem], cancel: threading.Event | None = None,
               on_stats: Callable[[dict, float], None] | None = None) -> None:
        """One rclone copy of ``items`` (failures tried once more); stops early when ``cancel`` is set,
        leaving what was not finished un-handed for the caller."""
        todo = items
        for attempt in range(BATCH_ATTEMPTS):
            failed: list[tuple[FetchItem, str]] = []
            for checks in (False, True):
                group = [i for i in todo if i.rclone_checks == checks]
                if group and not self.stop.is_set() and not (cancel and cancel.is_set()):
                    failed += self._copy(group, checks, cancel, on_stats)
            if self.stop.is_set() or (cancel and cancel.is_set()) or not failed:
                return
            if attempt + 1 < BATCH_ATTEMPTS:
                todo = [i for i, _ in failed]
                continue
            for item, why in failed:
                self._hand(item, RcloneError(f"fetching {item.label}: {why}"))

    def _copy(self, group: list[FetchItem], checks: bool, cancel: threading.Event | None,
              on_stats: Callable[[dict, float], None] | None) -> list[tuple[FetchItem, str]]:
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
                                            what=f"fetching {len(group)} part(s)", extra=_batch_flags(self.transfers, checks),
                                            cancel=cancel, on_stats=on_stats, warm=warm)
        except CsSyncError as exc:
            return [(i, exc.message) for i in group if i.done_bytes == 0]
        return [(by_path[n], why) for n, why in failed.items()]

    # -- byte ranges ------------------------------------------------------------------

    def _ranges(self, items: list[FetchItem], range_size: int) -> None:
        jobs: list[tuple[FetchItem, int, int]] = []
        for item in items:
            try:
                self._prepare_partial(item)
            except CsSyncError as exc:
                self._hand(item, exc)
                continue
            item.done_bytes = 0
            rngs = split_ranges(item.size, range_size)
            item.ranges_left = len(rngs)
            self.progress.task_started(item.key, item.label, item.size, kind="download")
            if not rngs:
                self._range_finished(item)
            jobs += [(item, off, cnt) for off, cnt in rngs]
        pool = ThreadPoolExecutor(max(1, self.transfers * self.streams), thread_name_prefix="cs_sync_range")
        try:
            futures = [pool.submit(self._range, item, off, cnt) for item, off, cnt in jobs]
            wait(futures)
            for f in futures:
                f.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _range(self, item: FetchItem, offset: int, count: int) -> None:
        if item.failed or item.handed:
            return
        if self.stop.is_set():
            return self._fail_once(item, None)
        err: CsSyncError | None = None
        for _ in range(RANGE_ATTEMPTS):
            written = [0]
            try:
                with self.rclone.cat(join(self.vpath, item.relpath), offset=offset, count=count,
                                     what=f"fetching {item.label} bytes {offset}-{offset + count - 1}") as stream:
                    self._write_stream(item, stream, offset, written)
                if written[0] != count:
                    raise RcloneError(f"fetching {item.label}: {written[0]} of {count} bytes at offset {offset} "
                                      "(the remote's copy is shorter than listed)")
                err = None
                break
            except CsSyncError as exc:
                err = exc
                with item.lock:
                    item.done_bytes -= written[0]  # this range starts over
                if self.stop.is_set():
                    return self._fail_once(item, None)
        if err is not None:
            return self._fail_once(item, err)
        self._range_finished(item)

    def _range_finished(self, item: FetchItem) -> None:
        with item.lock:
            item.ranges_left -= 1
            last = item.ranges_left <= 0 and not item.failed
        if not last:
            return
        try:
            os.replace(item.partial, item.local)
        except OSError as exc:
            return self._fail_once(item, from_os_error(exc, f"moving {item.partial} into place"))
        self.progress.task_finished(item.key, ok=True)
        self._hand(item, "ranges")

    def _fail_once(self, item: FetchItem, exc: CsSyncError | None) -> None:
        with item.lock:
            if item.failed:
                return
            item.failed = True
        if exc is not None:
            self.progress.task_finished(item.key, ok=False, note=exc.message)
        self._hand(item, exc)

    # -- files --------------------------------------------------------------------

    def _prepare_partial(self, item: FetchItem) -> None:
        try:
            _clear(item)
            item.local.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(item.partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.ftruncate(fd, item.size)
            finally:
                os.close(fd)
        except OSError as exc:
            raise from_os_error(exc, f"creating {item.partial}") from None

    def _write_stream(self, item: FetchItem, stream, offset: int, written: list[int]) -> None:
        """Write what ``stream`` yields at ``offset`` of the partial file, counting into ``written[0]``."""
        try:
            fd = os.open(item.partial, os.O_WRONLY)
        except OSError as exc:
            raise from_os_error(exc, f"opening {item.partial}") from None
        try:
            for chunk in stream.iter_chunks():
                os.pwrite(fd, chunk, offset + written[0])
                written[0] += len(chunk)
                with item.lock:
                    item.done_bytes += len(chunk)
                    done = item.done_bytes
                self.progress.task_advanced(item.key, done)
        except OSError as exc:
            raise from_os_error(exc, f"writing {item.partial}") from None
        finally:
            os.close(fd)


def _clear(item: FetchItem) -> None:
    """Remove the part and any partial copy of it left by an rclone or a range fetch that was killed."""
    for stale in item.local.parent.glob(f"{item.local.name}.*partial"):
        remove_quietly(stale)
    remove_quietly(item.local)


def _batch_flags(transfers: int, checks: bool) -> list[str]:
    """Flags of a batch copy; without ``checks`` rclone's own post-copy hash is skipped
    (the sidecar's SHA-256 is checked while extracting)."""
    return ["--transfers", str(transfers), "--no-check-dest", *(() if checks else ("--ignore-checksum",))]
