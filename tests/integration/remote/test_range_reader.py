"""The long-lived ranged reader (one ``rclone rcd --rc-serve``) against real remotes:
a local folder, loopback WebDAV behind a byte counter, loopback SFTP."""

from __future__ import annotations

import os
import time

import pytest

from cs_sync.core.errors import CsSyncError, RemoteError
from cs_sync.remote.rclone import Rclone


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split()[2] != "Z"
    except OSError:
        return False


def _file(folder, size=3_000_000):
    data = os.urandom(size)
    (folder / "v1" / "F").mkdir(parents=True, exist_ok=True)
    (folder / "v1" / "F" / "F BB.tar").write_bytes(data)  # a space: names are URL-quoted
    return data


def test_local_ranges_streams_sizes_and_stop_by_pid(tmp_path, rclone_bin):
    data = _file(tmp_path / "remote")
    rc = Rclone(rclone_bin)
    with rc.range_reader(str(tmp_path / "remote")) as r:
        assert r.read("v1/F/F BB.tar", 1000, 512) == data[1000:1512]
        assert r.read("v1/F/F BB.tar", len(data) - 10, 512) == data[-10:]
        assert r.read("v1/F/F BB.tar", len(data) + 1, 512) == b""
        assert b"".join(r.stream("v1/F/F BB.tar")) == data
        assert b"".join(r.stream("v1/F/F BB.tar", 7, 100)) == data[7:107]
        assert r.sizes["v1/F/F BB.tar"] == len(data)
        assert r.requests == 5 and r.bytes == 512 + 10 + len(data) + 100
        with pytest.raises(RemoteError, match="not found on the remote: v1/F/nope.tar"):
            r.read("v1/F/nope.tar", 0, 10)
        pid = r.pid
        assert _alive(pid) and rc._running  # known to kill_running while it runs
    assert not _alive(pid) and not rc._running


def test_kill_running_stops_it(tmp_path, rclone_bin):
    _file(tmp_path / "remote", 1000)
    rc = Rclone(rclone_bin)
    r = rc.range_reader(str(tmp_path / "remote"))
    pid = r.pid
    rc.kill_running()
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    with pytest.raises(CsSyncError, match="rclone"):  # one line naming what stopped, not a traceback
        r.read("v1/F/F BB.tar", 0, 10)
    r.close()


def test_webdav_reads_only_the_ranges_asked_on_the_wire(rclone_bin, counted_webdav):
    srv, proxy = counted_webdav
    data = _file(srv.root, 20_000_000)
    with Rclone(rclone_bin).range_reader("cspx:") as r:
        proxy.reset()
        for i in range(40):
            off = i * 490_000 + 17
            assert r.read("v1/F/F BB.tar", off, 512) == data[off:off + 512]
        time.sleep(0.2)
        assert r.requests == 40
        assert proxy.down < 40 * 3000, proxy.down  # each range alone, plus its HTTP headers


def test_sftp(tmp_path, rclone_bin, sftp):
    data = _file(sftp.root, 100_000)
    with Rclone(rclone_bin).range_reader(sftp.remote) as r:
        assert r.read("v1/F/F BB.tar", 99_000, 5000) == data[99_000:]
        assert b"".join(r.stream("v1/F/F BB.tar")) == data


def test_unknown_remote_is_named(rclone_bin):
    with Rclone(rclone_bin).range_reader("nosuchremote:x") as r:
        with pytest.raises(RemoteError, match="unknown rclone remote nosuchremote"):
            r.read("a.tar", 0, 1)
