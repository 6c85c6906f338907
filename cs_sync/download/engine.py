"""Download engine: selected sets of a remote version, fetched, verified, extracted.

One listing of the remote decides what is complete (remote_state); selection
decides what is wanted; whole parts are fetched by :mod:`part_fetch` (one rclone
copy, or byte ranges on a remote that proves slow per connection) and each is
verified and extracted in one pass (the part's SHA-256 while its members are
written) as soon as it lands, while others are still coming. With
``--rel``/``--member`` and a sidecar, only the wanted members' byte ranges are
read (``rclone cat --offset --count``), each checked against its own SHA-256.

A set is extracted into a hidden staging folder and moved into
``{download_dir}/{fault}/{TYPE}/`` only when every part passed. Progress goes
through the Progress protocol; the result is data (:class:`DownloadResult`); the
engine never prints and never exits.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

from cs_sync.archive.sidecar import MemberInfo
from cs_sync.archive.tar_index import BLOCK
from cs_sync.archive.tar_read import (
    DestinationBlocked,
    PartHashMismatch,
    UnsafeMemberError,
    extract_part,
    link_or_copy,
    move_into_place,
    write_verified,
)
from cs_sync.core.atomic import missing_dirs, remove_empty_dirs, remove_quietly
from cs_sync.core.errors import (
    CsSyncError,
    IncompleteError,
    InputError,
    Interrupted,
    LocalDiskFull,
    LocalIOError,
    RemoteUnreachable,
    SidecarUnsafe,
    VerifyError,
    from_os_error,
    is_fatal,
)
from cs_sync.core.hashes import file_sha256
from cs_sync.core.lock import download_lock
from cs_sync.core.progress import NULL_PROGRESS, Progress, declare_total
from cs_sync.core.safe_names import local_path
from cs_sync.download.legacy import LazyReader, after_header, index_on_the_fly, sets_to_walk
from cs_sync.download.part_fetch import FetchItem, PartFetcher
from cs_sync.download.result import DownloadResult, SetOutcome, SetStatus, summary_lines
from cs_sync.download.selection import (
    MemberFilter,
    PartPlan,
    Selection,
    SetPlan,
    select,
    shard_selection,
    unmatched_filter_values,
)
from cs_sync.download.state import ALL, DownloadState, Unit
from cs_sync.download.stream_extract import extract_stream
from cs_sync.remote.outage import OutageWatch
from cs_sync.remote.rclone import Rclone, WarmCopy, join
from cs_sync.remote.sets import RemoteSet
from cs_sync.remote.state import read_version

STAGING_SUFFIX = ".cs_sync_partial"
SPACE_HINT = "free space or choose another --download_dir, then re-run the same command"
PREFERRED_HASHES = ("sha256", "dropbox", "sha1", "md5")
# A fetch that met the remote unreachable after rclone's retries (and ours for single reads): the
# remote is asked after again for some minutes (CS_SYNC_OUTAGE_WAITS, as upload does), and the fetch
# starts again once it answers, at most MAX_OUTAGES times; a remote that answers at once had only
# cut this fetch's connection: it is tried again, ATTEMPTS times in all, then its set fails
ATTEMPTS = 3
MAX_OUTAGES = 5


class NotDownloadedError(IncompleteError):
    """``--no_download`` was given but a part is not in the download folder."""


@dataclass(frozen=True, kw_only=True)
class DownloadSettings:
    """Everything one download run needs; built by the CLI, read by :func:`download`."""

    version: str  # CS_VER: the version folder under the remote root
    remote: str  # remote root, e.g. dropbox:/QuakeCoRE/Public/Cybershake
    download_dir: Path  # sets land in {download_dir}/{fault}/{TYPE}/; state files here too
    types: tuple[str, ...] = ()  # -t: data types (all on the remote when empty)
    inc_faults: tuple[str, ...] = ()  # --inc_fault: only these faults (all when empty)
    exc_faults: tuple[str, ...] = ()  # --exc_fault: never these (wins over include)
    rels: tuple[str, ...] = ()  # --rel: only members of these realisations ('median' too)
    members: tuple[str, ...] = ()  # --member: only members whose name matches a glob
    cleanup: bool = False  # keep no TAR: with a sidecar, each part is extracted as it arrives
    stream_cleanup: bool = True  # False: --cleanup fetches each part to disk first (the way before; benchmarks)
    no_download: bool = False  # extract what is already in download_dir; fetch nothing
    force_untar: bool = False  # ignore the state files: extract everything again
    transfers: int = 4  # parts fetched at once
    streams: int = 4  # streams of one part above 16 MiB (rclone's multi-thread copy); 1: one stream
    allow_incomplete: bool = False  # fetch what is there of incomplete/ambiguous sets
    shard: tuple[int, int] | None = None  # (i, N): only shard i's faults
    extract_workers: int = 2  # parts extracted at once
    bwlimit: float | None = None  # bytes/s for the whole run (shared among its rclone processes)


def prepare_download_dir(path: Path) -> Path:
    """Create the download folder and prove it can be written (LocalIOError otherwise)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".cs_sync_probe_", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise from_os_error(exc, f"cannot write download folder {path}", hint=SPACE_HINT) from None
    return path


def _is_local(remote: str) -> bool:
    head, sep, _ = remote.partition(":")
    return os.path.isabs(remote) or remote.startswith(".") or not sep or "/" in head


def listing_hash_types(rclone: Rclone, remote: str) -> tuple[str, ...]:
    """The one hash worth asking the listing for: one the remote stores (Dropbox: ``dropbox``).

    A local folder computes hashes by reading every file, so none is asked there.
    """
    if _is_local(remote):
        return ()
    offered = rclone.hash_types(remote)
    for h in PREFERRED_HASHES:
        if h in offered:
            return (h,)
    return ()


def download(settings: DownloadSettings, rclone: Rclone, progress: Progress = NULL_PROGRESS, *,
             on_ready: Callable[[Path], None] | None = None) -> DownloadResult:
    """Bring the selected sets of ``settings.version`` down, verified; see the module doc.

    Nothing is created locally before the version is found on the remote (an unknown
    version raises VersionNotFound naming the versions there). Then the download folder
    is made, its lock taken (a second run into it raises LockHeld, exit 11) and
    ``on_ready(download_dir)`` called (the CLI opens its log file there).
    """
    t0 = time.monotonic()
    if settings.transfers < 1:
        raise InputError(f"--transfers {settings.transfers}: must be at least 1")
    if settings.bwlimit:  # one batch copy (all its streams in one process), plus member reads with --rel/--member,
        # plus with --cleanup the parts streamed at once (each its own rclone cat)
        streamed = settings.transfers * max(1, settings.streams) if settings.cleanup and settings.stream_cleanup else 0
        rclone.limit_total_rate(settings.bwlimit,
                                1 + (settings.transfers if settings.rels or settings.members else 0) + streamed)
    ddir = Path(settings.download_dir)
    flt = MemberFilter.from_options(settings.rels, settings.members)
    hash_types = listing_hash_types(rclone, settings.remote)
    # a full download's one batch copy is started now: its start-up overlaps the listing
    # (rclone creates nothing locally before it is given its list)
    warm = None if settings.no_download or flt.active else PartFetcher.start_batch(
        rclone, join(settings.remote, settings.version), ddir, settings.transfers, settings.streams)
    reader = LazyReader(rclone, join(settings.remote, settings.version))  # started only if ranges of older sets are read
    try:
        # the sidecars are read into the download folder (the disk the user chose); folders made
        # for that are removed again when the run stops before it starts (an unknown version or
        # -t), so such a run leaves nothing behind
        made = missing_dirs(ddir)
        ddir = prepare_download_dir(ddir)
        try:
            listing = read_version(rclone, settings.remote, settings.version, hash_types=hash_types, scratch=ddir)
            sel = select(listing, types=settings.types, inc_faults=settings.inc_faults,
                         exc_faults=settings.exc_faults, member_filter=flt, allow_incomplete=settings.allow_incomplete)
            if sel.unknown_types:  # as upload and preprocess do: a wrong -t stops the run before it starts
                raise InputError(sel.unknown_types[0], hint="'cs-sync status CS_VER' shows what the remote holds")
            if not (flt.active and not settings.no_download and sets_to_walk(sel)):  # (else known after the walk)
                _check_selected(sel, settings)  # a name that matched nothing: before the log and lock are made
        except BaseException:
            remove_empty_dirs(made)
            raise
        with download_lock(ddir, settings.shard):
            if on_ready is not None:
                on_ready(ddir)
            return _download(settings, rclone, progress, t0, ddir, flt, hash_types, warm, sel, listing, reader)
    finally:
        if warm is not None:
            warm.discard()
        reader.close()


def _check_selected(sel: Selection, settings: DownloadSettings) -> None:
    """Nothing at all selected, because an --inc_fault, --rel or --member matched nothing: bad input."""
    if not sel.sets and not sel.refused and sel.unmatched and settings.shard is None:
        raise InputError(f"nothing selected: {sel.unmatched[0]}", hint="'cs-sync status CS_VER' shows what the remote holds")


def _select(settings: DownloadSettings, listing, flt: MemberFilter) -> Selection:
    sel = select(listing, types=settings.types, inc_faults=settings.inc_faults, exc_faults=settings.exc_faults,
                 member_filter=flt, allow_incomplete=settings.allow_incomplete)
    return shard_selection(sel, *settings.shard) if settings.shard is not None else sel


def _download(settings: DownloadSettings, rclone: Rclone, progress: Progress, t0: float, ddir: Path,
              flt: MemberFilter, hash_types: tuple[str, ...], warm: WarmCopy | None,
              sel: Selection, listing, reader: LazyReader) -> DownloadResult:
    if settings.shard is not None:
        sel = shard_selection(sel, *settings.shard)
    walked = None
    if flt.active and not settings.no_download and sets_to_walk(sel):
        # sets without any index: walk their headers now, then plan them like indexed sets
        walked = index_on_the_fly(reader, sets_to_walk(sel), settings.version, transfers=settings.transfers,
                                  progress=progress)
        sel = _select(settings, listing, flt)
    _check_selected(sel, settings)
    for line in sel.unmatched:
        progress.note(f"warning: {line}")
    if not sel.sets and not sel.refused:
        where = f" in shard {settings.shard[0]}/{settings.shard[1]}" if settings.shard else ""
        progress.note(f"nothing to download{where}: no set of {settings.version} matches the selection")
    state = DownloadState(ddir, settings.version, settings.shard, ignore_old=settings.force_untar)
    result = DownloadResult(version=settings.version, remote=settings.remote, download_dir=ddir,
                            unmatched=list(sel.unmatched), selective=flt.active,
                            state_files=(str(state.ok_path), str(state.error_path)))
    if walked is not None:
        result.walked_sets, result.walked_parts, result.walk_bytes = walked.sets, walked.parts, walked.bytes
        result.bytes_fetched += walked.bytes
    for rs in sel.refused:
        why = f"{rs.state.value}: {'; '.join(rs.problems)}"
        if isinstance(rs.damage, SidecarUnsafe):  # forged names: refused whatever the options, exit 8
            progress.note(f"refused {rs.fault} {rs.dtype}: {why}")
            result.sets.append(SetOutcome(rs.fault, rs.dtype, SetStatus.FAILED, [why], full_size=rs.size,
                                          codes={int(rs.damage.exit_code)}))
            continue
        progress.note(f"refused {rs.fault} {rs.dtype}: {why} ({_refusal_hint(rs, settings.version)})")
        result.sets.append(SetOutcome(rs.fault, rs.dtype, SetStatus.INCOMPLETE, [why], full_size=rs.size))
    if sel.nothing_wanted:
        progress.note(nothing_wanted_line(sel.nothing_wanted, flt.option_values()))
    for plan in sel.sets:
        if plan.forced:
            progress.note(f"{plan.fault} {plan.dtype} is {plan.rs.state.value} ({'; '.join(plan.rs.problems)}); "
                          "fetching what is there (--allow-incomplete), verified by rclone check only")
    runner = _Runner(settings, rclone, progress, state, ddir, flt, result,
                     rclone_hashes=_is_local(settings.remote) or bool(hash_types), warm=warm, reader=reader)
    runner.run(sel)
    result.full_size = sel.full_size
    result.wanted_size = sel.fetch_size
    if flt.active and sel.filter_unknown and runner.filter_known:
        result.unmatched += unmatched_filter_values(flt, sel.filter_hits | runner.filter_hits)
        for line in result.unmatched[len(sel.unmatched):]:
            progress.note(f"warning: {line}")
    result.elapsed = time.monotonic() - t0
    return result


def nothing_wanted_line(sets: list[RemoteSet], values: list[str]) -> str:
    """One line for every selected set that holds no wanted member, counted by type: one file
    asked for by name across a version of hundreds of faults is not hundreds of lines."""
    by_type: dict[str, int] = {}
    for rs in sets:
        by_type[rs.dtype] = by_type.get(rs.dtype, 0) + 1
    counts = ", ".join(f"{dtype}: {n}" for dtype, n in sorted(by_type.items()))
    return (f"{len(sets)} set(s) hold no member matching {', '.join(values)} ({counts}): "
            "nothing to fetch from them")


@dataclass
class _Work:
    """One unit of a set to bring down: a whole part, or one member by byte range."""

    part: PartPlan
    unit: Unit
    filter_sig: str
    member: MemberInfo | None = None  # ranged member
    wanted: set[str] | None = None  # members to extract from a whole part (None: all)


@dataclass
class _Tries:
    """How often one fetch met the remote unreachable: with it up (attempts), and after outages."""

    attempts: int = 0
    outages: int = 0


class _SetRun:
    def __init__(self, plan: SetPlan, ddir: Path, work: list[_Work], outcome: SetOutcome) -> None:
        self.plan = plan
        self.fault_dir = ddir / plan.fault
        self.staging = self.fault_dir / f".{plan.dtype}{STAGING_SUFFIX}"
        self.final = self.fault_dir / plan.dtype
        self.work = work
        self.pending = len(work)
        self.outcome = outcome
        self.errors: list[CsSyncError] = []
        self.lock = threading.Lock()


class _Runner:
    def __init__(self, settings: DownloadSettings, rclone: Rclone, progress: Progress, state: DownloadState,
                 ddir: Path, flt: MemberFilter, result: DownloadResult, *, rclone_hashes: bool,
                 warm: WarmCopy | None = None, reader: LazyReader | None = None) -> None:
        self.reader = reader
        self.s = settings
        self.warm = warm
        self.rclone_hashes = rclone_hashes  # rclone copy compares a hash on the way (else sizes only)
        self.rclone = rclone
        self.progress = progress
        self.state = state
        self.ddir = ddir
        self.flt = flt
        self.result = result
        self.vpath = join(settings.remote, settings.version)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.filter_hits: set[str] = set()
        self.filter_known = True  # every unverified set was read this run (hits are complete)
        self._extract_pool: ThreadPoolExecutor | None = None
        self._extract_futures: list[Future] = []
        self.outage = OutageWatch(
            rclone, self.vpath, stopped=self.stop.is_set,
            on_down=lambda exc, waits: progress.note(f"{exc.message}; waiting for it to answer again (up to "
                                                     f"{sum(waits):g} s)"),
            on_back=lambda: progress.note("the remote answers again: what it cut off meanwhile is fetched again"))

    # -- planning one set --------------------------------------------------------------

    def _work_for(self, plan: SetPlan) -> list[_Work]:
        work: list[_Work] = []
        for part in plan.parts:
            if part.whole:
                sig = self.flt.signature() if (self.flt.active and not plan.verified) else ALL
                work.append(_Work(part, Unit(plan.fault, part.name, part.size, part.sha256), sig))
            elif self.s.no_download:
                # nothing may be fetched: take the wanted members out of a part already here
                work.append(_Work(part, Unit(plan.fault, part.name, part.size, part.sha256), self.flt.signature(),
                                  wanted={m.name for m in part.ranged}))
            else:
                for m in part.ranged:
                    work.append(_Work(part, Unit(plan.fault, part.name, m.size, m.sha256, member=m.name), ALL, member=m))
        return work

    def _in_place(self, run: _SetRun) -> bool:
        """Are the set's wanted files in the final folder (sizes checked when the sidecar gives them)?"""
        if not run.final.is_dir():
            return False
        if not run.plan.verified:
            return True
        for w in run.work:
            names = [w.member] if w.member else [m for m in w.part.members if w.wanted is None or m.name in w.wanted]
            if w.part.plain and not w.part.members:
                continue
            for m in names:
                try:
                    if (run.final / m.name).stat().st_size != m.size:
                        return False
                except OSError:
                    return False
        return True

    def _prepare(self, plan: SetPlan) -> tuple[_SetRun, list[_Work]] | None:
        """The set's run and the work still to do; None when it is already done."""
        work = self._work_for(plan)
        outcome = SetOutcome(plan.fault, plan.dtype, SetStatus.FETCHED, full_size=plan.full_size,
                             wanted_size=plan.fetch_size)
        run = _SetRun(plan, self.ddir, work, outcome)
        outcome.target = str(run.final)
        self.result.sets.append(outcome)
        try:
            if self.s.force_untar and run.staging.exists():
                shutil.rmtree(run.staging)
            done = [self.state.is_done(w.unit, w.filter_sig) for w in work]
            if all(done):
                if run.staging.exists():
                    try:
                        move_into_place(run.staging, run.final)  # an earlier run stopped while moving
                    except DestinationBlocked as exc:
                        self._unit_failed(run, None, exc, count=False)
                        return None
                    self.progress.note(f"{plan.fault} {plan.dtype}: finished moving into place ({run.final})")
                    return None
                if self._in_place(run):
                    outcome.status = SetStatus.SKIPPED
                    return None
                self.progress.note(f"{plan.fault} {plan.dtype}: done earlier but not in {run.final}; fetching again")
                todo = work
            elif run.staging.exists():
                todo = [w for w, d in zip(work, done) if not d]
            else:
                todo = work
            run.staging.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise from_os_error(exc, f"preparing {run.staging}") from None
        run.pending = len(todo)
        if not plan.verified and len(todo) < len(work):
            self.filter_known = False  # some parts were extracted by an earlier run: their matches are unknown
        return run, todo

    # -- the run -----------------------------------------------------------------------

    def run(self, sel: Selection) -> None:
        jobs: list[tuple[_SetRun, _Work]] = []
        for plan in sel.sets:
            if self.stop.is_set():
                self.result.sets.append(SetOutcome(plan.fault, plan.dtype, SetStatus.NOT_ATTEMPTED,
                                                   ["not attempted: the run stopped on an earlier error"],
                                                   full_size=plan.full_size, wanted_size=plan.fetch_size))
                continue
            try:
                prepared = self._prepare(plan)
            except LocalIOError as exc:
                self.result.fatal = _for_download(exc)
                self.result.sets[-1].status = SetStatus.FAILED
                self.result.sets[-1].problems.append(exc.one_line())
                self.result.sets[-1].codes.add(int(exc.exit_code))
                self.stop.set()
                continue
            if prepared is None:
                if not plan.verified:
                    self.filter_known = False
                continue
            run, todo = prepared
            jobs += [(run, w) for w in todo]
        if self.stop.is_set() or not jobs:
            return
        # largest first: the last transfers to finish are small ones, so all --transfers
        # slots stay busy until the end (sorted() is stable: sets keep their order on ties)
        jobs = sorted(jobs, key=lambda j: -(j[1].member.size if j[1].member else j[1].part.size))
        self._declare_totals(jobs)
        fetch_pool = ThreadPoolExecutor(self.s.transfers, thread_name_prefix="cs_sync_fetch")
        # --cleanup streams: one connection per part, so transfers x streams parts at once (what the
        # copy would open as ranged streams); each holds a buffer, not a part, on disk
        stream_pool = ThreadPoolExecutor(max(1, self.s.transfers * max(1, self.s.streams)),
                                         thread_name_prefix="cs_sync_stream")
        self._extract_pool = ThreadPoolExecutor(max(1, self.s.extract_workers), thread_name_prefix="cs_sync_extract")
        try:
            # parts already here are checked (and extracted); the others are fetched together
            checked = [(run, w, fetch_pool.submit(self._local_part, run, w)) for run, w in jobs if w.member is None]
            members = [fetch_pool.submit(self._fetch_member_unit, run, w) for run, w in jobs if w.member is not None]
            items: dict[FetchItem, tuple[_SetRun, _Work]] = {}
            for run, w, fut in checked:
                item = fut.result()
                if item is not None and self._streamable(run, w):  # --cleanup: extracted as it arrives
                    members.append(stream_pool.submit(self._stream_unit, run, w, item))
                elif item is not None:
                    items[item] = (run, w)
            if items and not self.stop.is_set():
                self._fetch_parts(items)
            elif items:
                for run, _w in items.values():
                    self._stopped(run)
            wait(members)
            for f in members:
                f.result()  # a bug in a worker surfaces here
            fetch_pool.shutdown(wait=True)
            stream_pool.shutdown(wait=True)
            with self.lock:
                extracts = list(self._extract_futures)
            wait(extracts)
            for f in extracts:
                f.result()
        except BaseException:  # Ctrl-C, SIGTERM (Slurm time limit): stop the transfers now
            self.stop.set()
            fetch_pool.shutdown(wait=False, cancel_futures=True)
            stream_pool.shutdown(wait=False, cancel_futures=True)
            self._extract_pool.shutdown(wait=False, cancel_futures=True)
            self.rclone.kill_running()
            raise
        self._extract_pool.shutdown(wait=True)

    def _declare_totals(self, jobs: list[tuple[_SetRun, _Work]]) -> None:
        """Tell the display what the whole run will fetch and extract, before it starts."""
        fetch = [w.member.size if w.member else w.part.size for run, w in jobs
                 if w.member is not None or not _same_size(run.fault_dir / w.part.name, w.part.size)]
        whole = [w.part.size for _run, w in jobs if w.member is None]
        if not self.s.no_download:
            declare_total(self.progress, "download", sum(fetch), len(fetch))
        declare_total(self.progress, "extract", sum(whole), len(whole))

    # -- workers -----------------------------------------------------------------------

    def _streamable(self, run: _SetRun, w: _Work) -> bool:
        """--cleanup asks for no TAR to be kept: a part whose sidecar gives its SHA-256 (and each
        member's offset) need not touch the disk; it is extracted as it arrives."""
        return (self.s.cleanup and self.s.stream_cleanup and not self.s.no_download and run.plan.verified
                and bool(w.part.sha256) and w.wanted is None and (w.part.plain or bool(w.part.members)))

    def _stream_unit(self, run: _SetRun, w: _Work, item: FetchItem) -> None:
        """One part by ``rclone cat``, extracted (or, a plain file, written) into staging as it arrives;
        its members keep temporary names until the part's SHA-256 passed (:mod:`stream_extract`)."""
        if self.stop.is_set():
            return self._stopped(run)
        part = w.part
        tries = _Tries()
        while True:
            self.progress.task_started(item.key, item.label, part.size, kind="download")
            try:
                names = self._stream_part(run, part, item)
                self.state.record_ok(w.unit, w.filter_sig)
                break
            except CsSyncError as exc:
                if self.stop.is_set() or _interrupted(exc):
                    self.stop.set()
                    return self._stopped(run)
                self.progress.task_finished(item.key, ok=False, note=exc.message)
                if not self._again(exc, tries, item.label):
                    return self._unit_failed(run, w, exc)
        self._count_bytes(run, part.size)
        with self.lock:
            self.result.parts_sha256 += 1
            self.result.parts_streamed += 1
        self._note_hits(run, names)
        self.progress.task_finished(item.key, ok=True)
        self._unit_done(run)

    def _stream_part(self, run: _SetRun, part: PartPlan, item: FetchItem) -> list[str]:
        """Stream one part into staging (see :meth:`_stream_unit`); the names of its members."""
        # when the bytes stop early and rclone failed, the stream raises rclone's error (the
        # remote stopped), not what extraction made of the short read (see RcloneStream)
        with self.rclone.cat(self._remote_part(run, part.name), what=f"fetching {item.label}") as stream:
            if part.plain:
                m = part.members[0] if part.members else None
                mtime = (m.mtime_ns / 1e9 if m.mtime_ns else m.mtime) if m else None
                write_verified(stream.iter_chunks(), local_path(run.staging, part.name, flat=True, what=item.label),
                               size=part.size, sha256=m.sha256 if m else part.sha256, what=item.label,
                               mtime=mtime, on_bytes=lambda n: self.progress.task_advanced(item.key, n))
                names = [part.name]
            else:
                assert part.sha256 is not None  # _streamable: only a part with a SHA-256 streams
                report = extract_stream(_EndMarking(stream), run.staging, label=item.label,
                                        expected=part.members, part_sha256=part.sha256, size=part.size,
                                        on_bytes=lambda n: self.progress.task_advanced(item.key, n))
                names = report.members
        return names

    def _fetch_member_unit(self, run: _SetRun, w: _Work) -> None:
        if self.stop.is_set():
            return self._stopped(run)
        tries = _Tries()
        while True:
            try:
                self._fetch_member(run, w)
                self.state.record_ok(w.unit, w.filter_sig)
                break
            except CsSyncError as exc:
                if self.stop.is_set() or _interrupted(exc):  # interrupted, not a failure of the set
                    self.stop.set()
                    return self._stopped(run)
                if not self._again(exc, tries, f"{run.plan.fault}/{w.part.name}: member {w.member.name!r}"
                                   if w.member else run.plan.fault):
                    return self._unit_failed(run, w, exc)
        self._unit_done(run)

    def _submit_extract(self, run: _SetRun, w: _Work, local: Path, how: str | None) -> None:
        assert self._extract_pool is not None
        fut = self._extract_pool.submit(self._extract, run, w, local, how)
        with self.lock:
            self._extract_futures.append(fut)

    def _fetch_parts(self, items: dict[FetchItem, tuple[_SetRun, _Work]]) -> None:
        """Fetch every part not here yet (one rclone copy, or byte ranges on a slow remote)."""

        def done(item: FetchItem, how: str) -> None:
            run, w = items[item]
            self._count_bytes(run, item.size)
            self._submit_extract(run, w, item.local, how)

        tries = {item: _Tries() for item in items}
        again: list[FetchItem] = []

        def failed(item: FetchItem, exc: CsSyncError) -> None:
            run, w = items[item]
            if self.stop.is_set() or _interrupted(exc):
                self.stop.set()
                return self._stopped(run)
            if isinstance(exc, LocalDiskFull):  # rclone could not write the local copy
                exc = LocalDiskFull(f"no space left on device: writing {item.local}", hint=SPACE_HINT)
            if self._again(exc, tries[item], item.label, started):  # the copy ended: fetched again by the next one
                again.append(item)
            else:
                self._unit_failed(run, w, exc)

        todo, warm = list(items), self.warm
        while todo:
            started = time.monotonic()
            fetcher = PartFetcher(self.rclone, self.vpath, transfers=self.s.transfers, streams=self.s.streams,
                                  stop=self.stop, on_done=done, on_failed=failed,
                                  on_stopped=lambda item: self._stopped(items[item][0]), progress=self.progress,
                                  warm=warm)
            fetcher.run(todo)
            self.result.fetch_plan = fetcher.how
            todo, again, warm = again, [], None
            for item in todo:
                item.handed, item.done_bytes = False, 0

    def _again(self, exc: CsSyncError, tries: _Tries, label: str, failed_at: float | None = None) -> bool:
        """Fetch it again after ``exc``? Only a remote that is unreachable (after rclone's own retries):
        while it is down it is waited for (:class:`OutageWatch`), then every fetch it cut starts again;
        one that answers at once had only cut this fetch's connection, tried ATTEMPTS times in all.
        A remote down for good stops the run (False: the caller's set is then stopped, not failed)."""
        if not isinstance(exc, RemoteUnreachable) or self.stop.is_set():
            return False
        try:
            back = self.outage.over(time.monotonic() if failed_at is None else failed_at)
        except CsSyncError as stop:  # down through every wait, a refused login, or the run stopping
            self._halt(stop)
            return False
        if back:
            tries.outages += 1
            tries.attempts = 0
            return tries.outages <= MAX_OUTAGES
        tries.attempts += 1
        if tries.attempts < ATTEMPTS:
            self.progress.note(f"{label}: attempt {tries.attempts}/{ATTEMPTS} failed ({exc.one_line()}); fetching it again")
            return True
        return False

    def _halt(self, exc: CsSyncError) -> None:
        """Stop the run on an error every other set would meet too (the disk, the remote gone):
        reported once, as the run's error; the sets it cut short are stopped, not failed."""
        with self.lock:
            if self.result.fatal is None:
                self.result.fatal = _for_download(exc)
        self.stop.set()
        self.rclone.kill_running()  # transfers in flight cannot land anyway

    def _stopped(self, run: _SetRun) -> None:
        with run.lock:
            if run.outcome.status == SetStatus.FETCHED:
                run.outcome.status = SetStatus.NOT_ATTEMPTED
                run.outcome.problems.append("not attempted: the run stopped on an earlier error")
            run.pending -= 1

    def _remote_part(self, run: _SetRun, name: str) -> str:
        return join(self.vpath, run.plan.fault, name)

    def _local_part(self, run: _SetRun, w: _Work) -> FetchItem | None:
        """A copy already in the download folder is verified and extracted; else what to fetch.

        Returns None when nothing needs fetching (or the unit failed for good).
        """
        if self.stop.is_set():
            self._stopped(run)
            return None
        part = w.part
        label = f"{run.plan.fault}/{part.name}"
        local = local_path(run.fault_dir, part.name, flat=True, what=label)
        try:
            if local.exists():
                if local.stat().st_size == part.size:
                    try:
                        self._verify(run, part, local)
                        self._submit_extract(run, w, local, None)
                        return None
                    except VerifyError as exc:
                        if self.s.no_download:
                            raise
                        self.progress.note(f"{label}: the copy already here is bad ({exc.message}); fetching it again")
                elif self.s.no_download:
                    raise VerifyError(f"{label}: {local} is {local.stat().st_size} bytes, the remote's is {part.size}",
                                      hint="run without --no_download to fetch it again")
                _remove(local)
            elif self.s.no_download:
                raise NotDownloadedError(f"{label}: not in {run.fault_dir} (--no_download fetches nothing)",
                                         hint="run without --no_download to fetch it")
        except CsSyncError as exc:
            self._unit_failed(run, w, exc)
            return None
        except OSError as exc:
            self._unit_failed(run, w, from_os_error(exc, f"reading {local}"))
            return None
        return FetchItem(relpath=f"{run.plan.fault}/{part.name}", local=local, size=part.size, label=label,
                         key=f"download:{label}", rclone_checks=not part.sha256)

    def _verify(self, run: _SetRun, part: PartPlan, local: Path) -> None:
        """SHA-256 against the sidecar; without one, rclone check against the remote's own hash."""
        label = f"{run.plan.fault}/{part.name}"
        try:
            size = local.stat().st_size
            if size != part.size:
                raise VerifyError(f"{label}: {size} bytes after download, the remote's is {part.size}")
            if part.sha256:
                if file_sha256(local) != part.sha256:
                    raise VerifyError(f"{label}: SHA-256 differs from the sidecar (corrupted on the remote or in transit)",
                                      hint="the bad copy was removed; re-run to fetch it again")
                with self.lock:
                    self.result.parts_sha256 += 1
                return
        except OSError as exc:
            raise from_os_error(exc, f"reading {local}") from None
        res = self.rclone.check(join(self.vpath, run.plan.fault), str(run.fault_dir), files=[part.name],
                                what=f"checking {label}")
        if not res.ok:
            raise VerifyError(f"{label}: differs from the remote's copy (rclone check)",
                              hint="the bad copy was removed; re-run to fetch it again")
        with self.lock:
            if res.hash_compared:
                self.result.parts_hash_checked += 1
            else:
                self.result.parts_size_only += 1

    def _fetch_member(self, run: _SetRun, w: _Work) -> None:
        """One member by byte range, streamed into staging and checked against its SHA-256.

        Members of an older set's index are read through the long-lived reader; without a
        SHA-256 (index made without --hash-members) the read starts at the member's TAR
        header, which is checked, and only the size of the data can be.
        """
        m = w.member
        assert m is not None
        sc = run.plan.rs.sidecar
        legacy = sc is not None and sc.is_index and self.reader is not None
        label = f"{run.plan.fault}/{w.part.name}: member {m.name!r}"
        key = f"download:{run.plan.fault}/{w.part.name}#{m.name}"
        self.progress.task_started(key, f"{run.plan.fault}/{w.part.name}: {m.name}", m.size, kind="download")
        target = local_path(run.staging, m.name, flat=not legacy, what=f"{label} (from its sidecar)")
        mtime = m.mtime_ns / 1e9 if m.mtime_ns else m.mtime
        try:
            if legacy:
                fetched = self._fetch_indexed_member(run, w, target, label, key, mtime)
            elif m.size == 0:
                write_verified(iter(()), target, size=0, sha256=m.sha256, what=label, mtime=mtime)
                fetched = 0
            else:
                # a failed read raises rclone's error (not "truncated"), retried while the remote is unreachable
                _, sent = self.rclone.read_range(
                    self._remote_part(run, w.part.name),
                    lambda chunks: write_verified(chunks, target, size=m.size, sha256=m.sha256, what=label, mtime=mtime,
                                                  on_bytes=lambda n: self.progress.task_advanced(key, n)),
                    offset=m.offset, count=m.size, what=f"fetching {label}", stats=True)
                fetched = sent if sent is not None else m.size
        except CsSyncError as exc:
            if not (_interrupted(exc) or self.stop.is_set()):
                self.progress.task_finished(key, ok=False, note=exc.message)
            raise
        self._count_bytes(run, fetched)
        with self.lock:
            self.result.members_ranged += 1
            if not m.sha256:
                self.result.members_size_only += 1
        self.progress.task_finished(key, ok=True)

    def _fetch_indexed_member(self, run: _SetRun, w: _Work, target: Path, label: str, key: str,
                              mtime: float) -> int:
        """A member of an index sidecar, through the reader; returns the bytes read."""
        m = w.member
        reader = self.reader
        assert m is not None and reader is not None
        head = 0 if m.sha256 else BLOCK  # no SHA-256: read the header too, and check it
        got = [0]

        def counted() -> Iterator[bytes]:
            for chunk in reader.get().stream(f"{run.plan.fault}/{w.part.name}", m.offset - head, m.size + head):
                got[0] += len(chunk)
                yield chunk

        chunks: Iterable[bytes] = counted()
        if head:
            chunks = after_header(chunks, name=m.name, size=m.size, label=f"{run.plan.fault}/{w.part.name}")
        write_verified(chunks, target, size=m.size, sha256=m.sha256, what=label, mtime=mtime,
                       on_bytes=lambda n: self.progress.task_advanced(key, n))
        return got[0]

    def _extract(self, run: _SetRun, w: _Work, local: Path, how: str | None) -> None:
        """Verify (unless ``how`` is None: checked already) and extract one part into staging.

        ``how`` says how the part arrived: "batch" (one rclone copy, which compared
        hashes on the way when there is no sidecar) or "ranges" (byte ranges).
        """
        if self.stop.is_set():
            return self._stopped(run)
        part = w.part
        label = f"{run.plan.fault}/{part.name}"
        key = f"extract:{label}"
        in_pass = how is not None and bool(part.sha256) and not part.plain
        self.progress.task_started(key, label, part.size, kind="extract")
        try:
            if how is not None and not in_pass:
                if part.sha256 or how == "ranges":
                    self._verify(run, part, local)
                else:
                    with self.lock:
                        if self.rclone_hashes:
                            self.result.parts_hash_checked += 1
                        else:
                            self.result.parts_size_only += 1
            if part.plain:
                m = part.members[0] if part.members else None
                link_or_copy(local, local_path(run.staging, part.name, flat=True, what=label), size=part.size, sha256=m.sha256 if m else None, what=label)
                self._note_hits(run, [part.name])
            else:
                wanted: Callable[[str], bool] | None = None
                if w.wanted is not None:
                    wanted = w.wanted.__contains__
                elif self.flt.active and not run.plan.verified:
                    wanted = lambda name: self.flt.wants(run.plan.fault, name)  # noqa: E731
                expected = part.members if run.plan.verified else None
                if expected is not None and w.wanted is not None:
                    expected = [m for m in expected if m.name in w.wanted]
                report = extract_part(local, run.staging, label=label, wanted=wanted, expected=expected,
                                      part_sha256=part.sha256 if in_pass else None, part_verified=not in_pass,
                                      progress=self.progress, key=key)
                if in_pass:
                    with self.lock:
                        self.result.parts_sha256 += 1
                self._note_hits(run, report.members)
            self.state.record_ok(w.unit, w.filter_sig)
            if self.s.cleanup:
                _remove(local)
        except OSError as exc:  # anything the helpers did not map: still one line naming the path, exit 9
            err = from_os_error(exc, f"extracting {label} into {run.staging}")
            self.progress.task_finished(key, ok=False, note=err.message)
            return self._unit_failed(run, w, err)
        except CsSyncError as exc:
            if isinstance(exc, PartHashMismatch) or (how is not None and isinstance(exc, VerifyError)
                                                     and not isinstance(exc, UnsafeMemberError)):
                remove_quietly(local)  # a bad copy: the next run fetches it again
            self.progress.task_finished(key, ok=False, note=exc.message)
            return self._unit_failed(run, w, exc)
        self.progress.task_finished(key, ok=True)
        self._unit_done(run)

    def _note_hits(self, run: _SetRun, names: list[str]) -> None:
        if not self.flt.active:
            return
        hits: set[str] = set()
        for n in names:
            hits |= self.flt.hits(run.plan.fault, n)
        with self.lock:
            self.filter_hits |= hits

    def _count_bytes(self, run: _SetRun, n: int) -> None:
        with self.lock:
            self.result.bytes_fetched += n
        with run.lock:
            run.outcome.fetched += n

    def _unit_done(self, run: _SetRun) -> None:
        with run.lock:
            run.pending -= 1
            last = run.pending == 0
            ok = not run.errors and run.outcome.status == SetStatus.FETCHED
        if last and ok:
            try:
                move_into_place(run.staging, run.final)
            except (LocalIOError, DestinationBlocked) as exc:
                self._unit_failed(run, None, exc, count=False)

    def _unit_failed(self, run: _SetRun, w: _Work | None, exc: CsSyncError, *, count: bool = True) -> None:
        exc = _for_download(exc)
        if is_fatal(exc):  # the disk, the remote gone: not this set's fault; the run's one error says it
            self._halt(exc)
            if count:
                return self._stopped(run)
            with run.lock:
                if run.outcome.status == SetStatus.FETCHED:
                    run.outcome.status = SetStatus.NOT_ATTEMPTED
                    run.outcome.problems.append("not attempted: the run stopped on an earlier error")
            return
        if w is not None:
            try:
                self.state.record_error(w.unit, exc.message)
            except LocalIOError:
                pass
        self.progress.note(f"FAILED {run.plan.fault} {run.plan.dtype}: {exc.one_line()}")
        if not run.plan.verified:
            self.filter_known = False  # its members were not all seen: --rel/--member hits are unknown
        with run.lock:
            run.errors.append(exc)
            run.outcome.status = SetStatus.FAILED
            run.outcome.problems.append(exc.one_line())
            run.outcome.codes.add(int(exc.exit_code))
            if count:
                run.pending -= 1


def _for_download(exc: CsSyncError) -> CsSyncError:
    """A full disk's remedy, said in download's terms (it has --download_dir, not --tmp_dir)."""
    if isinstance(exc, LocalDiskFull):
        exc.hint = SPACE_HINT
    return exc


def _same_size(path: Path, size: int) -> bool:
    try:
        return path.stat().st_size == size
    except OSError:
        return False


class _EndMarking:
    """rclone's output as a file for :func:`extract_stream`, marking the stream ended when a
    read comes back empty (so a failed rclone's own error is raised, see RcloneStream)."""

    def __init__(self, stream) -> None:
        self.stream = stream

    def read(self, n: int = -1) -> bytes:
        data = self.stream.stdout.read(n)
        if not data:
            self.stream.eof = True
        return data


def _interrupted(exc: CsSyncError) -> bool:
    """rclone stopped by Ctrl-C / SIGTERM, or by us as the run stops."""
    return isinstance(exc, Interrupted)


def _remove(p: Path) -> None:
    try:
        os.unlink(p)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise from_os_error(exc, f"removing {p}") from None


__all__ = ["DownloadResult", "DownloadSettings", "SetOutcome", "SetStatus", "download", "prepare_download_dir",
           "summary_lines"]


def _refusal_hint(rs: RemoteSet, version: str) -> str:
    """What to do about a set refused as not complete. A set whose sidecar came from
    ``cs-sync index`` and no longer matches its parts was rewritten after indexing:
    indexing it again is the fix, fetching what is there is the fallback."""
    if rs.sidecar is not None and rs.sidecar.is_index:
        return (f"not downloaded; its parts changed since it was indexed: `cs-sync index {version} --reindex` "
                "indexes it again, --allow-incomplete fetches what is there")
    return "not downloaded; --allow-incomplete fetches what is there"
