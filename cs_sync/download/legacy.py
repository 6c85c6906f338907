"""Selective retrieval from sets the older scripts made (no sidecar of upload's).

Such a set either has an index sidecar (``cs-sync index``) or has nothing: then,
when only some members are wanted (``--rel`` / ``--member``), its parts' TAR headers
are walked on the fly, the same walk ``cs-sync index`` does, and the result is used
as an in-memory index, so only the wanted members' byte ranges are read instead of
whole parts. Members of an index made without ``--hash-members`` have no SHA-256:
their ranged read starts at their TAR header, which is checked (checksum, size,
name) before the data, and the data's size; the summary says that is all.

Reads go through one long-lived rclone (:class:`~cs_sync.remote.rclone.RangeReader`),
started when first needed.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from cs_sync.archive.tar_index import BLOCK, check_member_header
from cs_sync.core.errors import CsSyncError
from cs_sync.core.progress import Progress
from cs_sync.download.selection import Selection
from cs_sync.index.walk import PartResult, set_sidecar, walk_remote_part
from cs_sync.remote.rclone import RangeReader, Rclone
from cs_sync.remote.sets import RemoteSet


class LazyReader:
    """The run's RangeReaders, each started on first use and closed at the end: one for
    header walks (small reads), one for members' data."""

    def __init__(self, rclone: Rclone, vpath: str) -> None:
        self._rclone = rclone
        self._vpath = vpath
        self._readers: dict[bool, Future] = {}
        self._lock = threading.Lock()

    def _future(self, small_reads: bool) -> Future:
        with self._lock:  # held only to pick the future: the two readers start side by side
            fut = self._readers.get(small_reads)
            if fut is None:
                fut = self._readers[small_reads] = Future()
                mine = True
            else:
                mine = False
        if mine:
            try:
                fut.set_result(self._rclone.range_reader(self._vpath, what=f"reading {self._vpath} by range",
                                                         small_reads=small_reads))
            except BaseException as exc:
                fut.set_exception(exc)
        return fut

    def get(self, *, small_reads: bool = False) -> RangeReader:
        return self._future(small_reads).result()

    def start_soon(self, *, small_reads: bool = False) -> None:
        """Start (and open the remote in) that reader in the background, e.g. while headers are walked."""
        def start() -> None:
            try:
                self.get(small_reads=small_reads).warm_up()
            except CsSyncError:
                pass  # the first real read reports it

        threading.Thread(target=start, daemon=True).start()

    def close(self) -> None:
        with self._lock:
            futures, self._readers = list(self._readers.values()), {}
        for f in futures:
            try:
                if f.exception(timeout=120) is None:  # one that never started has nothing to stop
                    f.result().close()
            except TimeoutError:
                pass


@dataclass
class WalkReport:
    sets: int = 0  # sets given an in-memory index
    parts: int = 0  # parts walked
    bytes: int = 0  # bytes the walks read
    failed: list[str] = field(default_factory=list)  # sets left as they were (fetched whole), with why


def sets_to_walk(sel: Selection) -> list[RemoteSet]:
    """Complete sets with no sidecar at all whose members are filtered: worth walking."""
    return [p.rs for p in sel.sets if not p.verified and not p.forced and not p.rs.is_sample and p.rs.sidecar is None]


def index_on_the_fly(reader: LazyReader, sets: list[RemoteSet], version: str, *, transfers: int,
                     progress: Progress) -> WalkReport:
    """Walk every part of ``sets`` (``transfers`` at once) and attach each set's index as
    ``rs.sidecar`` (in memory only: nothing is written to the remote). A set whose
    walk fails keeps no sidecar: its parts are then fetched whole, as before."""
    report = WalkReport()
    if not sets:
        return report
    reader.start_soon()  # the members' reader opens while the headers are walked
    r = reader.get(small_reads=True)
    before = r.bytes
    jobs = [(rs, name) for rs in sets for name in rs.ordered_part_names()]
    progress.note(f"{len(sets)} set(s) without an index: reading the TAR headers of {len(jobs)} part(s) to find the "
                  "wanted members (cs-sync index CS_VER would save this step next time)")

    def walk(job: tuple[RemoteSet, str]) -> PartResult | CsSyncError:
        rs, name = job
        try:
            return walk_remote_part(r, rs.fault, name, rs.files[name].size)
        except CsSyncError as exc:
            return exc

    with ThreadPoolExecutor(max(1, transfers), thread_name_prefix="cs_sync_walk") as pool:
        outcomes = list(pool.map(walk, jobs))
    by_set: dict[tuple[str, str], list[PartResult | CsSyncError]] = {}
    for (rs, _name), out in zip(jobs, outcomes):
        by_set.setdefault((rs.fault, rs.dtype), []).append(out)
    for rs in sets:
        outs = by_set[(rs.fault, rs.dtype)]
        report.parts += len(outs)
        errors = [o for o in outs if isinstance(o, CsSyncError)]
        if not errors:
            try:
                rs.sidecar = set_sidecar(rs, version, [o for o in outs if isinstance(o, PartResult)], ())
                report.sets += 1
                continue
            except CsSyncError as exc:
                errors = [exc]
        why = "; ".join(e.one_line() for e in errors)
        report.failed.append(f"{rs.fault} {rs.dtype}: {why}")
        progress.note(f"{rs.fault} {rs.dtype}: its TAR headers could not be walked ({why}); fetching its parts whole")
    report.bytes = r.bytes - before
    return report


def after_header(chunks: Iterable[bytes], *, name: str, size: int, label: str) -> Iterator[bytes]:
    """The data of a member read from its header on: the 512-byte header is checked
    (see :func:`~cs_sync.archive.tar_index.check_member_header`) and not passed on."""
    it = iter(chunks)
    head = b""
    for chunk in it:
        head += chunk
        if len(head) >= BLOCK:
            break
    check_member_header(head[:BLOCK], name=name, size=size, label=label)
    if len(head) > BLOCK:
        yield head[BLOCK:]
    yield from it
