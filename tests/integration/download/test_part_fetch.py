"""Whole parts brought down by PartFetcher with the real rclone, from a local-folder remote.

A slow remote is made by limiting every file transfer (``RCLONE_BWLIMIT_FILE``, which
rclone reads like its ``--bwlimit-file`` flag): one stream then moves ~4 MiB/s, and
the first stats report should switch to byte ranges fetched by several streams at once. (At 4 MiB/s a
24 MiB part is split unless starting one rclone took over 0.6 s: safe on a busy machine.)
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from cs_sync.core.errors import CsSyncError
from cs_sync.core.progress import NullProgress
from cs_sync.download.fetch_plan import MIN_RANGE, MiB
from cs_sync.download.part_fetch import PARTIAL_SUFFIX, FetchItem, PartFetcher
from cs_sync.remote.rclone import Rclone

SLOW = {"RCLONE_BWLIMIT_FILE": "4M"}


class Handed(NullProgress):
    """Records what the fetcher hands on (and its notes); fails on an item handed twice."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done: dict[str, str] = {}
        self.failed: dict[str, CsSyncError] = {}
        self.stopped: list[str] = []
        self.twice: list[str] = []
        self.notes: list[str] = []

    def _seen(self, name: str) -> None:
        if name in self.done or name in self.failed or name in self.stopped:
            self.twice.append(name)

    def on_done(self, item: FetchItem, how: str) -> None:
        assert item.local.is_file(), f"{item.label} handed on before it is in place"
        with self.lock:
            self._seen(item.relpath)
            self.done[item.relpath] = how

    def on_failed(self, item: FetchItem, exc: CsSyncError) -> None:
        with self.lock:
            self._seen(item.relpath)
            self.failed[item.relpath] = exc

    def on_stopped(self, item: FetchItem) -> None:
        with self.lock:
            self._seen(item.relpath)
            self.stopped.append(item.relpath)

    def note(self, message: str) -> None:
        with self.lock:
            self.notes.append(message)

    def count(self) -> int:
        return len(self.done) + len(self.failed) + len(self.stopped)


def _remote(tmp_path: Path, sizes: dict[str, int]) -> Path:
    """A version folder holding ``F/{name}`` of each size (random bytes)."""
    vdir = tmp_path / "remote" / "v1"
    (vdir / "F").mkdir(parents=True)
    for name, size in sizes.items():
        (vdir / "F" / name).write_bytes(os.urandom(size))
    return vdir


def _items(ddir: Path, sizes: dict[str, int], checks=lambda name: False) -> list[FetchItem]:
    return [FetchItem(relpath=f"F/{n}", local=ddir / "F" / n, size=s, label=f"F/{n}", key=f"download:F/{n}",
                      rclone_checks=checks(n)) for n, s in sizes.items()]


def _fetcher(rc: Rclone, vdir: Path, rec: Handed, stop: threading.Event | None = None, *, transfers=2, streams=4):
    return PartFetcher(rc, str(vdir), transfers=transfers, streams=streams, stop=stop or threading.Event(),
                       on_done=rec.on_done, on_failed=rec.on_failed, on_stopped=rec.on_stopped, progress=rec)


def _assert_same(vdir: Path, ddir: Path, names) -> None:
    for n in names:
        got, want = ddir / "F" / n, vdir / "F" / n
        assert got.is_file(), f"missing {got}"
        assert got.stat().st_size == want.stat().st_size and got.read_bytes() == want.read_bytes(), f"{n} differs"


def _leftovers(ddir: Path) -> list[str]:
    return sorted(p.name for p in ddir.rglob("*") if p.is_file() and "partial" in p.name)


def _rclones_with(needle: str) -> list[str]:
    """Command lines of running processes that mention ``needle`` (Linux /proc)."""
    out = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if needle in cmd and "rclone" in cmd and state != "Z":
            out.append(cmd)
    return out


needs_proc = pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs /proc")


# -- one rclone copy on a fast remote ------------------------------------------------------


def test_fast_remote_fetches_every_part_with_one_copy(tmp_path, rclone_bin):
    sizes = {"F_BB_0.tar": 17 * MiB, "F_BB_1.tar": 1 * MiB + 3, "F_IM.tar": 3000, "F_BB.bin": 70_000, "empty.tar": 0}
    vdir = _remote(tmp_path, sizes)
    ddir = tmp_path / "dl"
    (ddir / "F").mkdir(parents=True)
    (ddir / "F" / "F_IM.tar").write_bytes(b"stale copy")  # replaced, not appended to
    (ddir / "F" / f"F_BB_0.tar{PARTIAL_SUFFIX}").write_bytes(b"from a killed run")
    rec = Handed()
    fetcher = _fetcher(Rclone(rclone_bin), vdir, rec)
    # parts without a sidecar SHA-256 go in a copy that compares hashes: both groups are exercised
    fetcher.run(_items(ddir, sizes, checks=lambda n: n.endswith(".bin")))
    assert not rec.twice and not rec.failed and not rec.stopped
    assert rec.done == {f"F/{n}": "batch" for n in sizes}
    assert fetcher.plan is not None and not fetcher.plan.ranged
    assert "one rclone copy" in fetcher.plan.reason  # done before a first speed report, or measured fast
    _assert_same(vdir, ddir, sizes)
    assert _leftovers(ddir) == []


def test_streams_1_never_measures(tmp_path, rclone_bin):
    sizes = {"F_BB_0.tar": 17 * MiB, "F_IM.tar": 3000}
    vdir = _remote(tmp_path, sizes)
    rec = Handed()
    fetcher = _fetcher(Rclone(rclone_bin), vdir, rec, streams=1)
    fetcher.run(_items(tmp_path / "dl", sizes))
    assert rec.done == {f"F/{n}": "batch" for n in sizes}
    assert not fetcher.plan.ranged and "--streams 1" in fetcher.plan.reason
    _assert_same(vdir, tmp_path / "dl", sizes)


def test_parts_rclone_fetches_by_multi_thread_copy_are_handed_on(tmp_path, rclone_bin):
    """rclone logs "Multi-thread Copied (new)" for a file it fetched by several ranged streams."""
    sizes = {"F_BB_0.tar": 3 * MiB + 5, "F_BB_1.tar": 2 * MiB, "F_IM.tar": 3000}
    vdir = _remote(tmp_path, sizes)
    rec = Handed()
    mt = ["--multi-thread-streams", "2", "--multi-thread-cutoff", "1Mi", "--multi-thread-chunk-size", "1Mi"]
    fetcher = _fetcher(Rclone(rclone_bin, extra_args=mt), vdir, rec, streams=1)
    fetcher.run(_items(tmp_path / "dl", sizes))
    assert not rec.failed and not rec.twice
    assert rec.done == {f"F/{n}": "batch" for n in sizes}
    _assert_same(vdir, tmp_path / "dl", sizes)
    assert _leftovers(tmp_path / "dl") == []


# -- byte ranges on a slow remote ----------------------------------------------------------


def test_slow_remote_fetches_big_parts_by_ranges(tmp_path, rclone_bin):
    sizes = {"F_BB_0.tar": 24 * MiB + 11, "F_BB_1.tar": 17 * MiB, "F_IM.tar": 1 * MiB, "F_Source.tar": 3000}
    vdir = _remote(tmp_path, sizes)
    ddir = tmp_path / "dl"
    rec = Handed()
    fetcher = _fetcher(Rclone(rclone_bin, env=SLOW), vdir, rec)
    t0 = time.monotonic()
    fetcher.run(_items(ddir, sizes))
    elapsed = time.monotonic() - t0
    plan = fetcher.plan
    assert plan is not None and plan.ranged, plan
    assert plan.range_size >= MIN_RANGE and plan.range_size < 24 * MiB
    assert any(f"split into {plan.range_size // MiB} MiB ranges" in n for n in rec.notes), rec.notes
    assert not rec.twice and not rec.failed and not rec.stopped
    assert set(rec.done) == {f"F/{n}" for n in sizes}
    # the splittable parts went by ranges; small ones can only go by rclone copy
    assert rec.done["F/F_BB_0.tar"] == "ranges" and rec.done["F/F_BB_1.tar"] == "ranges"
    assert rec.done["F/F_IM.tar"] == "batch" and rec.done["F/F_Source.tar"] == "batch"
    _assert_same(vdir, ddir, sizes)
    assert _leftovers(ddir) == []
    # one stream at 4 MiB/s would need > 10 s for the 41 MiB; several streams at once do better
    assert elapsed < 8.0, elapsed


# -- failures and stops -------------------------------------------------------------------


@pytest.mark.parametrize("slow", [False, True], ids=["batch", "ranged"])
def test_part_missing_on_the_remote_fails_alone(tmp_path, rclone_bin, slow):
    sizes = {"F_BB_0.tar": 24 * MiB, "F_BB_1.tar": 17 * MiB, "F_IM.tar": 5000, "F_Source.tar": 3000}
    vdir = _remote(tmp_path, sizes)
    gone = "F_BB_1.tar" if slow else "F_IM.tar"  # ranged: a part that is fetched by ranges
    (vdir / "F" / gone).unlink()
    ddir = tmp_path / "dl"
    rec = Handed()
    fetcher = _fetcher(Rclone(rclone_bin, env=SLOW if slow else None), vdir, rec)
    fetcher.run(_items(ddir, sizes))
    assert not rec.twice and not rec.stopped
    assert list(rec.failed) == [f"F/{gone}"]
    assert f"F/{gone}" in rec.failed[f"F/{gone}"].message
    assert set(rec.done) == {f"F/{n}" for n in sizes if n != gone}
    assert fetcher.plan.ranged == slow, fetcher.plan
    if slow:
        assert rec.done["F/F_BB_0.tar"] == "ranges"
    _assert_same(vdir, ddir, [n for n in sizes if n != gone])
    assert not (ddir / "F" / gone).exists() and _leftovers(ddir) == []


@pytest.mark.parametrize("streams", [1, 4])
def test_stop_before_run_hands_every_part_to_on_stopped(tmp_path, rclone_bin, streams):
    sizes = {"F_BB_0.tar": 17 * MiB, "F_IM.tar": 5000}
    vdir = _remote(tmp_path, sizes)
    ddir = tmp_path / "dl"
    stop = threading.Event()
    stop.set()
    rec = Handed()
    _fetcher(Rclone(rclone_bin, env=SLOW), vdir, rec, stop, streams=streams).run(_items(ddir, sizes))
    assert not rec.twice and not rec.done and not rec.failed
    assert sorted(rec.stopped) == sorted(f"F/{n}" for n in sizes)
    assert not ddir.exists() or not [p for p in ddir.rglob("*") if p.is_file()]


@needs_proc
def test_stop_during_ranged_fetch_leaves_no_partial(tmp_path, rclone_bin):
    """Stop set the moment the first range file appears: each part is handed on once, as done
    (byte-exact) or stopped (nothing of it left), and no rclone is left running."""
    sizes = {"F_BB_0.tar": 24 * MiB, "F_BB_1.tar": 17 * MiB, "F_IM.tar": 5000}
    vdir = _remote(tmp_path, sizes)
    ddir = tmp_path / "dl"
    stop = threading.Event()
    rec = Handed()

    def stop_when_ranges_start():
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and not stop.is_set():
            if ddir.exists() and any(p.name.endswith(PARTIAL_SUFFIX) for p in ddir.rglob("*")):
                stop.set()
            time.sleep(0.005)

    watcher = threading.Thread(target=stop_when_ranges_start, daemon=True)
    watcher.start()
    # two range streams in all: the smaller part's ranges wait behind the larger one's
    _fetcher(Rclone(rclone_bin, env=SLOW), vdir, rec, stop, transfers=1, streams=2).run(_items(ddir, sizes))
    watcher.join()
    assert stop.is_set(), "the ranged fetch never started"
    # ranges already running finish (the caller kills rclone on Ctrl-C); the others stop
    assert not rec.twice and not rec.failed and rec.count() == len(sizes)
    assert "F/F_BB_1.tar" in rec.stopped, rec.done
    assert all(how == "ranges" for r, how in rec.done.items() if r != "F/F_IM.tar"), rec.done
    _assert_same(vdir, ddir, [r.split("/", 1)[1] for r in rec.done])
    for r in rec.stopped:
        assert not (ddir / r).exists()
    assert _leftovers(ddir) == []
    assert _rclones_with(str(vdir)) == []


# -- Rclone.copy_files cancelled -------------------------------------------------------------


@needs_proc
def test_copy_files_cancel_kills_rclone_and_returns_the_unfinished(tmp_path, rclone_bin):
    src = tmp_path / "src"
    src.mkdir()
    (src / "tiny").write_bytes(b"t" * 100)
    for n in ("big1", "big2"):
        (src / n).write_bytes(os.urandom(8 * MiB))  # 8 s each at 1 MiB/s
    dst = tmp_path / "dst"
    rc = Rclone(rclone_bin, env={"RCLONE_BWLIMIT_FILE": "1M"})
    cancel = threading.Event()
    copied: list[str] = []

    def on_copied(name):
        copied.append(name)
        cancel.set()  # the tiny file is in: stop the rest

    backstop = threading.Timer(3.0, cancel.set)  # if nothing arrives, the cancel is still tested
    backstop.start()
    t0 = time.monotonic()
    try:
        failed = rc.copy_files(str(src), str(dst), ["tiny", "big1", "big2"], on_copied=on_copied,
                               what="copying", cancel=cancel)
    finally:
        backstop.cancel()
    elapsed = time.monotonic() - t0
    assert copied == ["tiny"] and (dst / "tiny").read_bytes() == b"t" * 100
    assert failed == {"big1": "cancelled", "big2": "cancelled"}
    assert elapsed < 4.0, elapsed  # killed, not waited for
    assert not (dst / "big1").exists() and not (dst / "big2").exists()  # never under the final name
    assert not rc._running
    assert _rclones_with(str(dst)) == []


# -- Rclone.start_copy_files: the batch rclone started ahead of its list --------------------


@needs_proc
def test_warm_copy_copies_nothing_before_its_list_then_only_the_list(tmp_path, rclone_bin):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(os.urandom(MiB))
    (src / "b").write_bytes(b"b" * 10)
    dst = tmp_path / "dst"
    dst.mkdir()
    log: list[str] = []
    rc = Rclone(rclone_bin, log=log.append)
    warm = rc.start_copy_files(str(src), str(dst), ["--transfers", "2"])
    time.sleep(0.5)  # long enough for rclone to start and open both sides
    assert len(_rclones_with(str(dst))) == 1
    assert list(dst.iterdir()) == []  # waiting for its list: nothing copied
    copied: list[str] = []
    failed = rc.copy_files(str(src), str(dst), ["a"], on_copied=copied.append, what="copying",
                           extra=["--transfers", "2"], warm=warm)
    assert failed == {} and copied == ["a"]
    assert (dst / "a").read_bytes() == (src / "a").read_bytes() and not (dst / "b").exists()
    assert sum("$ (started earlier) " in line for line in log) == 1  # the warm rclone did the copy
    warm.discard()  # taken already: nothing to stop
    assert not rc._running and _rclones_with(str(dst)) == []


@needs_proc
def test_warm_copy_with_other_arguments_or_unused_is_stopped(tmp_path, rclone_bin):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a").write_bytes(b"a" * 100)
    dst = tmp_path / "dst"
    dst.mkdir()
    log: list[str] = []
    rc = Rclone(rclone_bin, log=log.append)
    warm = rc.start_copy_files(str(src), str(dst), ["--transfers", "2", "--ignore-checksum"])
    # the copy wants rclone's own checksum: the warm one (started without it) is not used
    failed = rc.copy_files(str(src), str(dst), ["a"], on_copied=lambda n: None, what="copying",
                           extra=["--transfers", "2"], warm=warm)
    assert failed == {} and (dst / "a").read_bytes() == b"a" * 100
    assert not any("(started earlier)" in line for line in log)
    assert _rclones_with(str(dst)) == []  # stopped, not left waiting
    unused = rc.start_copy_files(str(src), str(dst))
    time.sleep(0.2)
    assert len(_rclones_with(str(dst))) == 1
    unused.discard()
    unused.discard()  # twice is fine
    assert not rc._running and _rclones_with(str(dst)) == []
