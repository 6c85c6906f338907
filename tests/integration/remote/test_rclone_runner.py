"""The rclone runner against the real binary: a local folder and a loopback WebDAV remote."""

import pytest

from cs_sync.core.errors import RemoteError
from cs_sync.core.progress import NullProgress
from cs_sync.remote.rclone import Rclone


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
