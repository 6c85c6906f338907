"""Upload with its --tmp_dir on a real full file system (a tmpfs short of inodes, so each
new file in turn is the one that fails: parts, check files, journals): exit 9 with one
line naming the path, and never a set on the remote that looks complete but is not."""

from __future__ import annotations

import subprocess

import pytest

from cybershake_tree import FaultSpec
from dl_helpers import assert_one_line_error
from manifests import write_tree_manifest
from small_fs import small_fs
from upload_checks import UPLOAD, assert_complete_means_complete

CAP = 64 * 1024


def test_journal_and_scratch_writes_on_a_full_tmp_dir(make_tree, tmp_path):
    root, _ = make_tree([FaultSpec("AlpineK2T", rels=3, median=True, bb_size=30_000)])
    man = write_tree_manifest(root)
    failures = []
    for n in range(6, 24):  # inodes: the n-th new file (or folder) in --tmp_dir fails with ENOSPC
        remote = tmp_path / f"remote{n}"
        with small_fs(tmp_path / f"small{n}", 4 << 20, inodes=n) as fs:
            proc = subprocess.run([*UPLOAD, str(root), str(man), "--remote", str(remote), "--tmp_dir", str(fs),
                                   "--max-size", str(CAP)], capture_output=True, text=True, timeout=300)
        if proc.returncode == 0:
            break  # enough inodes for the whole upload
        assert proc.returncode == 9, (n, proc.stdout + proc.stderr)
        assert_one_line_error(proc.stderr, "no space left on device", str(fs))
        assert "Traceback" not in proc.stdout
        assert_complete_means_complete(remote, root, man, CAP)
        failures.append(proc.stderr)
        if f"{fs}/{root.name}/journal/" in proc.stderr:
            return  # a journal write failed, said as it should be
    pytest.fail(f"no run failed at a journal write (the sweep needs adjusting); errors: {failures}")
