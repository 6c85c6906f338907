"""The local copy of a version's sidecars lives under the run's own folder and never
outlives the run: a run killed while reading them leaves a folder the next run clears."""

from __future__ import annotations

import os
import subprocess

from cs_sync.remote.state import SCRATCH_PREFIX

from archive_builder import write_version
from dl_helpers import FAULT_NAMES, _env, script

V = "v22p12"


def _run(args, tmp_path, **env):
    full = _env()
    full["TMPDIR"] = str(tmp_path / "systmp")
    full.update(env)
    return subprocess.run(args, capture_output=True, text=True, env=full, timeout=300, start_new_session=True)


def _leftovers(folder):
    return sorted(p.name for p in folder.glob(SCRATCH_PREFIX + "*"))


def test_download_killed_while_reading_sidecars_leaves_them_in_its_folder_and_the_next_run_clears_them(tree, tmp_path):
    (tmp_path / "systmp").mkdir()
    remote = tmp_path / "remote"
    write_version(tree, remote, V, FAULT_NAMES[:1], types=["IM"])
    ddir = tmp_path / "dl"
    cmd = [script("cs-sync-download"), V, "--remote", str(remote), "--download_dir", str(ddir)]
    killed = _run(cmd, tmp_path, CS_SYNC_TEST_KILL_AFTER="sidecars_copied")
    assert killed.returncode == -9, killed.stdout + killed.stderr
    left = _leftovers(ddir)
    assert len(left) == 1 and list((ddir / left[0]).glob("*.json"))  # under the download folder ...
    assert os.listdir(tmp_path / "systmp") == []  # ... not the system temp folder
    done = _run(cmd, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _leftovers(ddir) == []


def test_status_killed_while_reading_sidecars_is_cleared_by_the_next_status(tree, tmp_path):
    (tmp_path / "systmp").mkdir()
    remote = tmp_path / "remote"
    write_version(tree, remote, V, FAULT_NAMES[:1], types=["IM"])
    cmd = [script("cs-sync"), "status", V, "--remote", str(remote)]
    killed = _run(cmd, tmp_path, CS_SYNC_TEST_KILL_AFTER="sidecars_copied")
    assert killed.returncode == -9
    assert len(_leftovers(tmp_path / "systmp")) == 1
    live = tmp_path / "systmp" / f"{SCRATCH_PREFIX}.otherhost.1.0"  # another host's: may be alive, kept
    live.mkdir()
    done = _run(cmd, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert _leftovers(tmp_path / "systmp") == [live.name]
