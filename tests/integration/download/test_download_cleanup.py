"""``--cleanup`` downloads: each part of a set with a sidecar is extracted as it arrives.

No TAR is ever written to the download folder (a thread watches it for the whole
run); the part's SHA-256 is checked in the same pass; members keep temporary names
until it passed, so a corrupted or cut part leaves none of its members; a killed run
finishes when the same command runs again.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
from disk_watch import DiskWatch

from archive_builder import assert_tree_matches, flip_byte, write_version
from cybershake_tree import FaultSpec
from dl_helpers import FAULT_NAMES, MAX_PART, _env, files_under, make_remote, make_source_tree, run_download, script

V = "v22p12"


def test_cleanup_extracts_each_part_as_it_arrives_and_writes_no_tar(remote, tree, tmp_path):
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    ddir = tmp_path / "dl"
    ddir.mkdir()
    with DiskWatch(ddir, interval=0.002) as watch:
        code, out, err = run_download(V, "--remote", remote.root, "--download_dir", str(ddir), "--cleanup")
    assert code == 0, out + err
    nparts = sum(len(p) for p in built.parts.values())
    assert f"{nparts} part(s) extracted as they arrived" in out and f"{nparts} part(s) by SHA-256" in out
    assert not [f for f in watch.seen if ".tar" in f], sorted(watch.seen)  # no part, nor any partial of one
    assert assert_tree_matches(ddir, built) == sum(len(f) for f in built.sets.values())
    assert not list(ddir.rglob("*.cs_sync_tmp")) and not list(ddir.rglob("*.cs_sync_partial"))
    data = sum(os.path.getsize(p) for p in ddir.rglob("*") if p.is_file())
    biggest = max((remote.folder / V / f / n).stat().st_size for (f, _t), names in built.parts.items() for n in names)
    assert watch.peak <= data + biggest  # the data plus at most one part's worth in flight, never every part


def test_a_corrupted_part_leaves_none_of_its_members(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    bad = built.parts[("AlpineK2T", "BB")][1]
    flip_byte(remote.folder / V / "AlpineK2T" / bad)  # same size, one byte off: only the SHA-256 tells
    ddir = tmp_path / "dl"
    code, out, err = run_download(V, "--remote", remote.root, "--download_dir", str(ddir), "--cleanup", "-t", "BB")
    assert code == 8, out + err
    assert f"AlpineK2T/{bad}: SHA-256 differs from the sidecar" in out
    assert not (ddir / "AlpineK2T" / "BB").exists()  # the set never looks done
    staged = files_under(ddir / "AlpineK2T") if (ddir / "AlpineK2T").exists() else []
    from cs_sync.archive.sidecar import SetSidecar

    sidecar = SetSidecar.from_json((remote.folder / V / "_cs_sync" / "AlpineK2T_BB.json").read_text())
    bad_members = {m.name for m in sidecar.members if m.part == bad}
    assert bad_members and not [f for f in staged if any(f.endswith(n) for n in bad_members)], staged
    assert not [f for f in staged if f.endswith(".tar")]
    assert assert_tree_matches(ddir, built, keys={("Hope1888", "BB")}) > 0


def test_killed_while_streaming_then_the_same_command_finishes(tmp_path, rclone_bin):
    from servers import start_webdav

    tree = make_source_tree(tmp_path, [FaultSpec("AlpineK2T", rels=3, median=True, bb_size=2_000_000),
                                       FaultSpec("Hope1888", rels=2, median=False, bb_size=1_500_000)])
    srv = start_webdav(rclone_bin, tmp_path / "served", extra=["--bwlimit", "3M"])
    try:
        built = write_version(tree, srv.root, V, ["AlpineK2T", "Hope1888"], max_part=3_000_000)
        ddir = tmp_path / "dl"
        args = [V, "--remote", srv.remote, "--download_dir", str(ddir), "--cleanup", "--transfers", "2"]
        env = {**_env(), **srv.env}
        for wait in (1.0, 2.5):
            proc = subprocess.Popen([script("cs-sync-download"), *args], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True)
            time.sleep(wait)  # parts on their way, some members written under temporary names
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            assert not list(ddir.rglob("*.tar"))
        proc = subprocess.run([script("cs-sync-download"), *args], capture_output=True, text=True, env=env, timeout=300)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert assert_tree_matches(ddir, built) == sum(len(f) for f in built.sets.values())
        assert not list(ddir.rglob("*.cs_sync_tmp")) and not list(ddir.rglob("*.tar"))
    finally:
        srv.stop()


@pytest.mark.parametrize("case", ["no sidecar, --cleanup", "sidecar, no --cleanup"])
def test_without_a_sidecar_or_without_cleanup_parts_come_down_as_files(tree, tmp_path, case):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART, sidecar=case.startswith("sidecar"))
    ddir = tmp_path / "dl"
    extra = ["--cleanup"] if "--cleanup" in case and "no --cleanup" not in case else []
    code, out, err = run_download(V, "--remote", remote.root, "--download_dir", str(ddir), *extra)
    assert code == 0, out + err
    assert "extracted as they arrived" not in out  # fetched as files (no SHA-256 to check a stream against, or kept)
    assert assert_tree_matches(ddir, built) > 0
    assert bool(list(ddir.rglob("*.tar"))) == (not extra)  # --no_download users rely on the kept TARs
