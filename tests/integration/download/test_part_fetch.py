"""Whole parts brought down by PartFetcher with the real rclone: one rclone copy for all of
them, big parts in several streams by rclone's multi-thread copy (from a local folder,
and from loopback WebDAV behind the link model)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from cs_sync.core.errors import CsSyncError, RcloneInterrupted
from cs_sync.core.progress import NullProgress
from cs_sync.download.part_fetch import FetchItem, PartFetcher, batch_flags
from cs_sync.remote.rclone import Rclone

from servers import start_webdav
from throttle_proxy import ThrottleProxy

MiB = 1 << 20
MB = 1_000_000

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


# -- one rclone copy ------------------------------------------------------------------------


def test_every_part_comes_with_one_copy(tmp_path, rclone_bin):
    sizes = {"F_BB_0.tar": 17 * MiB, "F_BB_1.tar": 1 * MiB + 3, "F_IM.tar": 3000, "F_BB.bin": 70_000, "empty.tar": 0}
    vdir = _remote(tmp_path, sizes)
    ddir = tmp_path / "dl"
    (ddir / "F").mkdir(parents=True)
    (ddir / "F" / "F_IM.tar").write_bytes(b"stale copy")  # replaced, not appended to
    (ddir / "F" / "F_BB_0.tar.abc123.partial").write_bytes(b"from a killed rclone")
    log: list[str] = []
    rec = Handed()
    fetcher = _fetcher(Rclone(rclone_bin, log=log.append), vdir, rec)
    # parts without a sidecar SHA-256 go in a copy that compares hashes: both groups are exercised
    fetcher.run(_items(ddir, sizes, checks=lambda n: n.endswith(".bin")))
    assert not rec.twice and not rec.failed and not rec.stopped
    assert rec.done == {f"F/{n}": "batch" for n in sizes}
    assert "one rclone copy" in fetcher.how and "4 streams" in fetcher.how
    assert sum(" copy " in line for line in log) == 2  # one per check mode, not one per part
    _assert_same(vdir, ddir, sizes)
    assert _leftovers(ddir) == []


def test_streams_1_asks_rclone_for_one_stream_per_part(tmp_path, rclone_bin):
    sizes = {"F_BB_0.tar": 17 * MiB, "F_IM.tar": 3000}
    vdir = _remote(tmp_path, sizes)
    log: list[str] = []
    rec = Handed()
    fetcher = _fetcher(Rclone(rclone_bin, log=log.append), vdir, rec, streams=1)
    fetcher.run(_items(tmp_path / "dl", sizes))
    assert rec.done == {f"F/{n}": "batch" for n in sizes}
    assert "one stream per part" in fetcher.how
    assert any("--multi-thread-streams 0" in line for line in log), log
    _assert_same(vdir, tmp_path / "dl", sizes)


def test_multi_thread_settings_in_the_environment_are_the_users(monkeypatch):
    assert "--multi-thread-streams" in batch_flags(4, 4, checks=False)
    monkeypatch.setenv("RCLONE_MULTI_THREAD_STREAMS", "8")
    assert "--multi-thread-streams" not in batch_flags(4, 4, checks=False)


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


def test_a_big_part_over_webdav_comes_in_several_streams(tmp_path, rclone_bin):
    """Through the link model (8 MB/s per connection) a 48 MiB part (three 16 MiB chunks) is
    read over three connections at once by rclone's multi-thread copy, byte-exact."""
    sizes = {"F_BB_0.tar": 48 * MiB + 11, "F_IM.tar": 3000}
    vdir = _remote(tmp_path, sizes)
    server = start_webdav(rclone_bin, vdir.parent)
    try:
        with ThrottleProxy(server.port, link_rate=40 * MB, conn_rate=8 * MB) as proxy:
            rec = Handed()
            rc = Rclone(rclone_bin, env=server.env_via(proxy.port))
            _fetcher(rc, f"{server.remote}v1", rec, transfers=1, streams=4).run(_items(tmp_path / "dl", sizes))
            assert rec.done == {f"F/{n}": "batch" for n in sizes} and not rec.failed
            assert proxy.connections >= 3, proxy.connections
            assert proxy.down >= sum(sizes.values())
    finally:
        server.stop()
    _assert_same(vdir, tmp_path / "dl", sizes)


# -- failures and stops -------------------------------------------------------------------


def test_part_missing_on_the_remote_fails_alone(tmp_path, rclone_bin):
    sizes = {"F_BB_0.tar": 17 * MiB, "F_IM.tar": 5000, "F_Source.tar": 3000}
    vdir = _remote(tmp_path, sizes)
    gone = "F_IM.tar"
    (vdir / "F" / gone).unlink()
    ddir = tmp_path / "dl"
    rec = Handed()
    _fetcher(Rclone(rclone_bin), vdir, rec).run(_items(ddir, sizes))
    assert not rec.twice and not rec.stopped
    assert list(rec.failed) == [f"F/{gone}"]
    assert f"F/{gone}" in rec.failed[f"F/{gone}"].message
    assert set(rec.done) == {f"F/{n}" for n in sizes if n != gone}
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
    assert {n: type(e) for n, e in failed.items()} == {"big1": RcloneInterrupted, "big2": RcloneInterrupted}
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
