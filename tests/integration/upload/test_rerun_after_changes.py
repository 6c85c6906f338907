"""A run that stopped part-way, then a re-run after something changed: the re-run finishes the
sets the first run began without --overwrite, and never leaves a set of its own without a
sidecar (which status and download would take for one made by the older scripts).

Changes between the runs: another --max-size; a source deleted (the first run stops that set
and says to re-run preprocess, which then plans fewer parts); a sidecar cut by a kill in the
middle of its write (``rclone serve webdav``, like many servers, leaves a cut PUT as a short
file under the final name).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from cybershake_tree import FaultSpec
from manifests import write_tree_manifest
from upload_checks import (
    assert_complete_means_complete,
    kill_group,
    run_upload,
    sets_line,
    start_upload,
    verify_version,
)

CAP = 64 * 1024
FAULTS = [
    FaultSpec("AlpineK2T", rels=3, median=True, perturbed=True, bb_size=30_000),
    FaultSpec("Hope1888", rels=2, median=False, bb_size=20_000),  # BB: one part at 64K, two at 40K
]


def status(remote: Path, manifest: Path) -> tuple[int, dict]:
    p = subprocess.run([sys.executable, "-c", "from cs_sync.cli.main import entry; entry()", "status", "v22p12",
                        "--remote", str(remote), "--manifest", str(manifest), "--json"],
                       capture_output=True, text=True)
    cells = {f"{c['fault']}_{c['type']}": c for c in json.loads(p.stdout)["cells"]}
    return p.returncode, cells


def killed_when_checked(args: list, match: str, tmp_path: Path) -> None:
    """Run ``args`` until the part whose path holds ``match`` is checked and under its name
    (its set's sidecar not yet written), then SIGKILL the run and its rclone children."""
    pause = tmp_path / "pause"
    pause.mkdir(exist_ok=True)
    proc = start_upload(args, env={"CS_SYNC_TEST_PAUSE_AT": "checked", "CS_SYNC_TEST_PAUSE_DIR": str(pause),
                                   "CS_SYNC_TEST_PAUSE_MATCH": match})
    deadline = time.monotonic() + 120
    while not (pause / "paused").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the part was never checked"
        time.sleep(0.02)
    kill_group(proc)


def test_a_rerun_with_another_max_size_finishes_the_sets_the_killed_run_began(make_tree, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    remote = tmp_path / "remote"
    base = [root, man, "--remote", remote, "--tmp_dir", tmp_path / "scratch", "--transfers", "1"]
    killed_when_checked([*base, "--max-size", str(CAP)], "Hope1888/Hope1888_BB.tar", tmp_path)
    # Hope1888_BB.tar is whole and checked, its sidecar not written: complete by its name only
    assert (remote / "v22p12/Hope1888/Hope1888_BB.tar").is_file()
    assert not (remote / "v22p12/_cs_sync/Hope1888_BB.json").exists()
    assert_complete_means_complete(remote, root, man, CAP)

    again = run_upload([*base, "--max-size", "40K"])
    assert again.returncode == 0, again.stdout + again.stderr
    assert sets_line(again.stdout)["unverified"] == 0, again.stdout  # not "made by the older scripts"
    sidecars = verify_version(remote, root, man, 40 * 1024)  # every set has its sidecar, at the new cap
    assert [p.name for p in sidecars["Hope1888_BB"].parts] == ["Hope1888_BB_0.tar", "Hope1888_BB_1f.tar"]
    assert not (remote / "v22p12/Hope1888/Hope1888_BB.tar").exists()
    code, cells = status(remote, man)
    assert code == 0 and cells["Hope1888_BB"]["check"] == "content", cells["Hope1888_BB"]


def test_a_source_deleted_after_preprocess_then_preprocess_again_converges_without_overwrite(make_tree, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    remote = tmp_path / "remote"
    args = [root, man, "--remote", remote, "--tmp_dir", tmp_path / "scratch", "--max-size", str(CAP)]
    gone = "Runs/AlpineK2T/AlpineK2T_REL01/BB/Acc/BB.bin"
    os.unlink(root / gone)
    first = run_upload(args)
    assert first.returncode == 7, first.stdout + first.stderr
    assert f"FAILED AlpineK2T_BB: {gone}: vanished since preprocess (re-run cs-sync-preprocess)" in first.stdout
    assert_complete_means_complete(remote, root, man, CAP)
    code, cells = status(remote, man)
    assert code == 7 and cells["AlpineK2T_BB"]["state"] == "incomplete"

    write_tree_manifest(root)  # what the message says: preprocess again (the set now makes fewer parts)
    again = run_upload(args)
    assert again.returncode == 0, again.stdout + again.stderr  # not "re-run with --overwrite"
    verify_version(remote, root, man, CAP)
    code, cells = status(remote, man)
    assert code == 0 and cells["AlpineK2T_BB"]["state"] == "complete"


def test_a_sidecar_cut_by_a_kill_is_rewritten_by_the_rerun(make_tree, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    ref, remote = tmp_path / "ref", tmp_path / "remote"
    base = ["--tmp_dir", tmp_path / "scratch", "--max-size", str(CAP), "--transfers", "1"]
    assert run_upload([root, man, "--remote", ref, *base]).returncode == 0
    whole = (ref / "v22p12/_cs_sync/Hope1888_BB.json").read_bytes()

    killed_when_checked([root, man, "--remote", remote, *base], "Hope1888/Hope1888_BB.tar", tmp_path)
    cut = remote / "v22p12/_cs_sync/Hope1888_BB.json"
    cut.parent.mkdir(parents=True, exist_ok=True)
    cut.write_bytes(whole[: len(whole) // 2])  # what a PUT cut by the kill leaves
    code, cells = status(remote, man)
    assert code == 7 and cells["Hope1888_BB"]["state"] == "damaged sidecar"  # never complete meanwhile

    again = run_upload([root, man, "--remote", remote, *base])
    assert again.returncode == 0, again.stdout + again.stderr  # the journal says every part is ours and checked
    assert "Hope1888_BB: resume" in (tmp_path / "scratch/v22p12/upload.log").read_text()
    verify_version(remote, root, man, CAP)
    code, cells = status(remote, man)
    assert code == 0 and cells["Hope1888_BB"]["state"] == "complete"
