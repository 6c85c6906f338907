"""Two real runs of the same upload (or into the same download folder) at once: the second is
told who holds the lock and exits 11, the first finishes as if alone; a run killed with
SIGKILL leaves a lock that the next run on this host takes over."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

from cs_sync.core.lock import LockOwner

from archive_builder import assert_tree_matches, write_version
from cybershake_tree import FaultSpec
from dl_helpers import assert_one_line_error, script
from manifests import write_tree_manifest
from upload_checks import kill_group, run_upload, start_upload, verify_version

CAP = 256 * 1024
FAULTS = [FaultSpec("AlpineK2T", rels=3, bb_size=400_000), FaultSpec("Hope1888", rels=3, bb_size=400_000)]
SLOW = {"RCLONE_BWLIMIT": "1M"}  # each rclone at 1 MiB/s: the first run lasts a few seconds


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.02)


def test_second_identical_upload_is_refused_while_the_first_finishes(make_tree, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    args = [root, man, "--remote", tmp_path / "remote", "--tmp_dir", tmp_path / "scratch", "--max-size", CAP,
            "--transfers", "2"]
    first = start_upload(args, env=SLOW)
    lock = tmp_path / "scratch" / root.name / "upload.lock"
    try:
        _wait_for(lock, first)
        second = run_upload(args, env=SLOW, timeout=120)
        holder = LockOwner.from_json(lock.read_text())
        out, err = first.communicate(timeout=300)
    finally:
        kill_group(first)
    assert second.returncode == 11, second.stdout + second.stderr
    assert_one_line_error(second.stderr, "another run holds the lock on the upload of v22p12",
                          f"PID {holder.pid} on {socket.gethostname()}", "started ", f"kill {holder.pid}")
    assert holder.pid == first.pid
    assert first.returncode == 0, out + err  # untouched by the second run: no corruption-like messages
    assert "differs" not in out + err
    verify_version(tmp_path / "remote", root, man, CAP)
    assert not lock.exists()


def test_lock_of_a_killed_upload_is_taken_over(make_tree, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    args = [root, man, "--remote", tmp_path / "remote", "--tmp_dir", tmp_path / "scratch", "--max-size", CAP]
    killed = run_upload(args, env={"CS_SYNC_TEST_KILL_AFTER": "packed"})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    lock = tmp_path / "scratch" / root.name / "upload.lock"
    stale = LockOwner.from_json(lock.read_text())  # left behind by the SIGKILL
    assert stale is not None and stale.gone()
    again = run_upload(args)
    assert again.returncode == 0, again.stdout + again.stderr
    verify_version(tmp_path / "remote", root, man, CAP)
    assert not lock.exists()


def test_shard_and_whole_upload_exclude_each_other_but_shards_do_not(make_tree, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    args = [root, man, "--remote", tmp_path / "remote", "--tmp_dir", tmp_path / "scratch", "--max-size", CAP]
    shard0 = start_upload([*args, "--shard", "0/2"], env=SLOW)
    try:
        _wait_for(tmp_path / "scratch" / root.name / "upload.shard-0-of-2.lock", shard0)
        whole = run_upload(args, timeout=120)
        shard1 = run_upload([*args, "--shard", "1/2"], timeout=300)
        out, err = shard0.communicate(timeout=300)
    finally:
        kill_group(shard0)
    assert whole.returncode == 11 and "(shard 0/2)" not in whole.stderr, whole.stderr
    assert_one_line_error(whole.stderr, "another run holds the lock", f"PID {shard0.pid}")
    assert shard1.returncode == 0, shard1.stdout + shard1.stderr
    assert shard0.returncode == 0, out + err
    verify_version(tmp_path / "remote", root, man, CAP)


def test_lock_left_on_another_host_is_not_taken_and_says_how_to_clear_it(make_tree, tmp_path):
    root, _ = make_tree(FAULTS[:1])
    man = write_tree_manifest(root)
    lock = tmp_path / "scratch" / root.name / "upload.lock"
    lock.parent.mkdir(parents=True)
    lock.write_text(LockOwner(host="node-b17", pid=4242, started=time.time() - 7200, command="cs-sync-upload ...",
                              token="x" * 32, slurm_job="812345_2").to_json())
    args = [root, man, "--remote", tmp_path / "remote", "--tmp_dir", tmp_path / "scratch"]
    p = run_upload(args)
    assert p.returncode == 11
    assert_one_line_error(p.stderr, "PID 4242 on node-b17, Slurm job 812345_2", "(2 h 0 min ago)",
                          "squeue -j 812345", f"remove {lock} and re-run")
    assert not (tmp_path / "remote").exists()  # refused before anything was done
    lock.unlink()
    assert run_upload(args).returncode == 0


def _download(*args, env=None) -> subprocess.Popen:
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.Popen([script("cs-sync-download"), *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=full, start_new_session=True)


def test_second_download_into_the_same_folder_is_refused(make_tree, tmp_path):
    root, _ = make_tree(FAULTS)
    built = write_version(root, tmp_path / "remote", "v22p12", [f.name for f in FAULTS], max_part=CAP)
    ddir = tmp_path / "dl"
    first = _download("v22p12", "--remote", tmp_path / "remote", "--download_dir", ddir, env=SLOW)
    try:
        _wait_for(ddir / "cs_sync_download.lock", first)
        second = _download("v22p12", "--remote", tmp_path / "remote", "--download_dir", ddir, "-t", "IM")
        out2, err2 = second.communicate(timeout=120)
        other = _download("v22p12", "--remote", tmp_path / "remote", "--download_dir", tmp_path / "dl2", "-t", "IM")
        out3, err3 = other.communicate(timeout=120)
        out, err = first.communicate(timeout=300)
    finally:
        kill_group(first)
    assert second.returncode == 11, out2 + err2
    assert_one_line_error(err2, f"another run holds the lock on the download folder {ddir}", f"PID {first.pid}")
    assert other.returncode == 0, out3 + err3  # another folder: runs alongside
    assert first.returncode == 0, out + err
    assert assert_tree_matches(ddir, built) > 0
    assert not (ddir / "cs_sync_download.lock").exists()
