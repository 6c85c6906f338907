"""A remote that fills up during the upload: the run stops at once with one line saying the
remote is full (exit 6), never that the local disk is; nothing looks complete that is not;
once there is room, the same command finishes the version.

The remote is a real ``rclone serve sftp`` whose folder is a small tmpfs: the server passes
its disk's ENOSPC on (``sftp: "write ...: no space left on device" (SSH_FX_FAILURE)``), as an
SFTP host with a full disk or quota does; Dropbox says ``insufficient_space`` (unit tests).
"""

from __future__ import annotations

import subprocess

import pytest

from cybershake_tree import FaultSpec
from manifests import write_tree_manifest
from servers import serving, start_sftp
from small_fs import small_fs
from upload_checks import assert_complete_means_complete, run_upload, verify_version

CAP = 1500 * 1000
FAULTS = [FaultSpec("AlpineK2T", rels=4, median=True, bb_size=1_000_000),
          FaultSpec("Hope1888", rels=3, median=False, bb_size=1_000_000)]  # about 9.6 MiB in all


@pytest.mark.parametrize("small_files", ["batched", "rcat"], indirect=True)
def test_a_full_remote_stops_the_run_with_one_line_then_the_rerun_finishes(make_tree, tmp_path, rclone_bin,
                                                                           monkeypatch, small_files):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    with small_fs(tmp_path / "remote_disk", 3 << 20) as disk:
        with serving(start_sftp(rclone_bin, disk / "srv"), monkeypatch) as srv:
            args = [root, man, "--remote", srv.remote + "archive", "--tmp_dir", tmp_path / "scratch",
                    "--max-size", str(CAP)]
            full = run_upload(args)
            assert full.returncode == 6, full.stdout + full.stderr
            errors = [ln for ln in full.stderr.splitlines() if ln.strip()]
            assert len(errors) == 1 and "the remote is full" in errors[0], full.stderr
            assert "local disk" not in full.stderr and "FAILED" not in full.stdout
            assert "free space on the remote" in errors[0]
            assert_complete_means_complete(srv.root / "archive", root, man, CAP)

            subprocess.run(["mount", "-o", "remount,size=64m", str(disk)], check=True)  # room again
            again = run_upload(args)
            assert again.returncode == 0, again.stdout + again.stderr
            verify_version(srv.root / "archive", root, man, CAP)
