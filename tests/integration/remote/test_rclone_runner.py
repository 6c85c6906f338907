"""The rclone runner against the real binary: a local folder and a loopback WebDAV remote."""

import os
import shutil
import threading
import time

import pytest

from cs_sync.core.errors import RcloneInterrupted, RemoteError
from cs_sync.core.progress import NullProgress
from cs_sync.remote.rclone import Rclone

from servers import free_port


class Recorder(NullProgress):
    def __init__(self):
        self.done = []

    def task_advanced(self, key, done):
        self.done.append(done)


def test_copy_list_check_cat_local(tmp_path, rclone_bin):
    src = tmp_path / "src"
    src.mkdir()
    (src / "a.bin").write_bytes(b"0123456789" * 1000)
    rc = Rclone(rclone_bin)
    rec = Recorder()
    rc.copyto(str(src / "a.bin"), str(tmp_path / "remote" / "v1" / "a.bin"), progress=rec, key="a")
    assert rec.done and rec.done[-1] == 10000
    [item] = rc.lsjson(str(tmp_path / "remote"), hash_types=["sha256"])
    assert item.path == "v1/a.bin" and item.size == 10000 and "sha256" in item.hashes
    res = rc.check(str(src), str(tmp_path / "remote" / "v1"))
    assert res.ok and res.hash_compared
    with rc.cat(str(tmp_path / "remote" / "v1" / "a.bin"), offset=12, count=5) as s:
        assert s.stdout.read() == b"23456"


def test_check_against_webdav_says_sizes_only(tmp_path, rclone_bin, webdav):
    src = tmp_path / "src"
    src.mkdir()
    (src / "x").write_bytes(b"hello")
    rc = Rclone(rclone_bin)
    rc.copyto(str(src / "x"), webdav.remote + "v/x")
    res = rc.check(str(src), webdav.remote + "v")
    assert res.ok and not res.hash_compared
    (src / "y").write_bytes(b"new")
    res = rc.check(str(src), webdav.remote + "v")
    assert not res.ok and res.missing == ["y"]


def test_errors_are_one_line_and_classified(tmp_path, rclone_bin):
    rc = Rclone(rclone_bin)
    with pytest.raises(RemoteError, match="unknown rclone remote nosuchremote"):
        rc.lsjson("nosuchremote:/x")
    with pytest.raises(RemoteError, match="not found"):
        rc.lsjson(str(tmp_path / "absent"))
    assert not rc.exists(str(tmp_path / "absent"))


def test_kill_running_stops_every_kind_of_rclone(tmp_path, rclone_bin, monkeypatch):
    """A listing waiting on a dead remote, a check and a cat are all registered, and all stopped."""
    src = tmp_path / "src"
    src.mkdir()
    (src / "big").write_bytes(os.urandom(8 << 20))
    shutil.copytree(src, tmp_path / "other")
    monkeypatch.setenv("RCLONE_CONFIG_DEAD_TYPE", "webdav")
    monkeypatch.setenv("RCLONE_CONFIG_DEAD_URL", f"http://127.0.0.1:{free_port()}")
    rc = Rclone(rclone_bin, env={"RCLONE_BWLIMIT": "1M"}, retry_waits=(30, 30))
    results: dict[str, object] = {}

    def listing():  # rclone's own low-level retries take seconds against a refused port
        try:
            rc.lsjson("dead:x")
        except Exception as exc:
            results["listing"] = exc

    def reading():
        try:
            with rc.cat(str(src / "big")) as s:
                for _ in s.iter_chunks():
                    pass
        except Exception as exc:
            results["cat"] = exc

    def checking():
        try:
            rc.check(str(src), str(tmp_path / "other"), extra=["--download"])
        except Exception as exc:
            results["check"] = exc

    threads = [threading.Thread(target=f) for f in (listing, reading, checking)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(rc._running) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(rc._running) == 3
    t0 = time.monotonic()
    rc.kill_running()
    for t in threads:
        t.join(timeout=20)
    assert time.monotonic() - t0 < 5  # stopped, not waited for (nor retried after 30 s)
    assert isinstance(results.get("listing"), RcloneInterrupted), results
    assert isinstance(results.get("cat"), RcloneInterrupted), results
    assert isinstance(results.get("check"), RcloneInterrupted), results
    assert not rc._running


def test_lsjson_skip_dirs_neither_lists_nor_enters_a_folder(tmp_path, rclone_bin):
    root = tmp_path / "v1"
    for rel in ("F/F_BB.tar", "_cs_sync/F_BB.json", "_cs_sync/incoming/F/F_IM.tar", "_cs_sync/incoming[1]/x"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(b"x")
    rc = Rclone(rclone_bin)
    names = sorted(f.path for f in rc.lsjson(str(root), skip_dirs=["_cs_sync/incoming"]))
    assert names == ["F/F_BB.tar", "_cs_sync/F_BB.json", "_cs_sync/incoming[1]/x"]  # glob characters are literal
    os.chmod(root / "_cs_sync/incoming", 0)  # a folder rclone entered would fail the listing (as non-root)
    try:
        assert len(rc.lsjson(str(root), skip_dirs=["_cs_sync/incoming"])) == 3
    finally:
        os.chmod(root / "_cs_sync/incoming", 0o755)
