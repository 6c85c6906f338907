"""The run lock: atomic creation, who holds it, taking over a dead run's lock, conflicts."""

from __future__ import annotations

import errno
import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from cs_sync.core.errors import ExitCode, LockHeld
from cs_sync.core.lock import LockOwner, RunLock, conflicts, download_lock, lock_name, upload_lock


def _dead_pid() -> int:
    """A PID that certainly belongs to no process now (a child that was reaped)."""
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _write_owner(path, **kw) -> LockOwner:
    base = dict(host=socket.gethostname(), pid=os.getpid(), started=time.time(), command="cs-sync-upload x y",
                token="t" * 32, slurm_job="")
    base.update(kw)
    owner = LockOwner(**base)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(owner.to_json())
    return owner


def test_lock_file_records_host_pid_start_and_is_removed_on_release(tmp_path):
    path = tmp_path / "w" / "upload.lock"
    with RunLock(path, "upload of v1") as lock:
        rec = json.loads(path.read_text())
        assert rec["host"] == socket.gethostname() and rec["pid"] == os.getpid()
        assert abs(rec["started"] - time.time()) < 60 and rec["token"] == lock.owner.token
        assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # the temp file is gone
    assert not path.exists()


def test_second_lock_names_the_holder_and_exits_11(tmp_path):
    path = tmp_path / "upload.lock"
    with RunLock(path, "upload of v1 with tmp dir /t"):
        with pytest.raises(LockHeld) as ei:
            RunLock(path, "upload of v1 with tmp dir /t").acquire()
    msg = ei.value.one_line()
    assert ei.value.exit_code == ExitCode.LOCKED == 11
    assert f"PID {os.getpid()} on {socket.gethostname()}" in msg and "started " in msg
    assert "upload of v1 with tmp dir /t" in msg and f"kill {os.getpid()}" in msg


def test_lock_of_a_dead_run_on_this_host_is_taken_over(tmp_path):
    path = tmp_path / "upload.lock"
    stale = _write_owner(path, pid=_dead_pid(), started=time.time() - 3600)
    with RunLock(path, "upload") as lock:
        rec = LockOwner.from_json(path.read_text())
        assert rec.pid == os.getpid() and rec.token == lock.owner.token != stale.token
    assert not path.exists()


def test_pid_reused_by_a_later_process_counts_as_gone(tmp_path):
    path = tmp_path / "upload.lock"
    # our own PID, but "locked" a day before this process started: the PID was reused
    _write_owner(path, started=time.time() - 10 * 86400)
    if LockOwner.from_json(path.read_text()).gone():
        with RunLock(path, "upload"):
            pass
    else:
        pytest.skip("no /proc start times here")


def test_lock_held_on_another_host_says_how_to_clear_it(tmp_path):
    path = tmp_path / "cs_sync_download.lock"
    _write_owner(path, host="node-elsewhere", pid=_dead_pid(), slurm_job="812345_3")
    with pytest.raises(LockHeld) as ei:
        RunLock(path, "download folder /d").acquire()
    msg = ei.value.one_line()
    assert "on node-elsewhere, Slurm job 812345_3" in msg
    assert "squeue -j 812345" in msg and f"remove {path} and re-run" in msg
    assert path.exists()  # never taken over: another host's PID means nothing here
    _write_owner(path, host="node-elsewhere")
    with pytest.raises(LockHeld) as ei:
        RunLock(path, "download folder /d").acquire()
    assert f"ssh node-elsewhere ps -p {os.getpid()}" in ei.value.one_line()


def test_release_never_removes_a_successors_lock(tmp_path):
    path = tmp_path / "upload.lock"
    lock = RunLock(path, "upload").acquire()
    _write_owner(path, token="s" * 32)  # someone else's lock now stands there
    lock.release()
    assert LockOwner.from_json(path.read_text()).token == "s" * 32


def test_unreadable_old_lock_file_is_reported_not_removed(tmp_path):
    path = tmp_path / "upload.lock"
    path.write_text("garbage")
    old = time.time() - 60
    os.utime(path, (old, old))
    with pytest.raises(LockHeld) as ei:
        RunLock(path, "upload").acquire()
    assert "cannot be read" in ei.value.one_line() and f"remove {path}" in ei.value.one_line()
    assert path.read_text() == "garbage"


def test_only_one_of_many_racing_takers_wins(tmp_path):
    path = tmp_path / "upload.lock"
    _write_owner(path, pid=_dead_pid())  # every racer sees a stale lock to take over
    start = threading.Barrier(8)
    won, refused = [], []

    def race():
        start.wait()
        try:
            won.append(RunLock(path, "upload").acquire())
        except LockHeld:
            refused.append(1)

    threads = [threading.Thread(target=race) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # the racers are threads of one process (same PID), so each sees the winner alive
    assert len(won) == 1 and len(refused) == 7
    assert LockOwner.from_json(path.read_text()).token == won[0].owner.token


def test_without_hard_links_the_lock_is_made_with_o_excl(tmp_path, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    path = tmp_path / "upload.lock"
    with RunLock(path, "upload") as lock:
        assert LockOwner.from_json(path.read_text()).token == lock.owner.token
        with pytest.raises(LockHeld):
            RunLock(path, "upload").acquire()


@pytest.mark.parametrize("a, b, expect", [
    ("upload.lock", "upload.shard-0-of-4.lock", True),  # a whole run tidies every fault's scratch
    ("upload.shard-0-of-4.lock", "upload.shard-1-of-4.lock", False),  # shards of one split share nothing
    ("upload.shard-0-of-4.lock", "upload.shard-0-of-2.lock", True),  # another split shares faults
    ("upload.lock", "cs_sync_download.lock", False),
])
def test_which_runs_exclude_each_other(a, b, expect):
    assert conflicts(a, b) is expect and conflicts(b, a) is expect


def test_a_shard_and_a_whole_run_of_one_upload_exclude_each_other(tmp_path):
    with upload_lock(tmp_path / "v1", "v1", tmp_path, (0, 2)):
        with upload_lock(tmp_path / "v1", "v1", tmp_path, (1, 2)):  # the other shard of the same split: fine
            with pytest.raises(LockHeld) as ei:
                upload_lock(tmp_path / "v1", "v1", tmp_path, None).acquire()
            assert "another run holds the lock" in ei.value.one_line()
    assert not (tmp_path / "v1" / "upload.lock").exists()  # the refused run left nothing behind
    with download_lock(tmp_path / "d", None):
        with pytest.raises(LockHeld):
            download_lock(tmp_path / "d", (0, 3)).acquire()
    assert lock_name("cs_sync_download", (2, 3)) == "cs_sync_download.shard-2-of-3.lock"


def test_temporary_files_left_by_killed_lock_attempts_are_cleared_once_the_lock_is_taken(tmp_path):
    path = tmp_path / "v1.lock"
    old = tmp_path / ".v1.lock.0123abcd.tmp"  # a run killed between writing it and linking it
    fresh = tmp_path / ".v1.lock.4567ef01.tmp"  # another run's attempt this very instant
    other = tmp_path / ".v2.lock.89ab.tmp"  # another lock's: not ours to judge
    for f in (old, fresh, other):
        f.write_text("{}")
    an_hour_ago = time.time() - 3600
    for f in (old, other):
        os.utime(f, (an_hour_ago, an_hour_ago))
    with RunLock(path, "upload of v1"):
        assert not old.exists() and fresh.exists() and other.exists()
