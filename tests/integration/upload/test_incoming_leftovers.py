"""What stopped runs left in ``{version}/_cs_sync/incoming`` (files streamed but never checked and
moved: a killed run, a part of an older plan) is removed at the end of the next run that owns
those sets, in one ``rclone delete``, and said in the summary and the log. Never anything of
another set (a concurrent shard may be streaming it), a name this tool does not make, or a
file outside the incoming folder."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from cs_sync.cli.upload import main
from cs_sync.core.sharding import assign_shards
from cs_sync.inputs.manifest import read_manifest
from cs_sync.slurm.submit import upload_weights
from cs_sync.upload.engine import UploadSettings

from cybershake_tree import FaultSpec
from manifests import write_tree_manifest
from upload_checks import kill_group, run_upload, start_upload, verify_version

CAP = 64 * 1024
FAULTS = [
    FaultSpec("AlpineK2T", rels=3, median=True, perturbed=True, bb_size=30_000),
    FaultSpec("Hope1888", rels=2, median=False, bb_size=20_000),  # BB: one part at 64K, two at 40K
]


def incoming_files(vdir: Path) -> set[str]:
    inc = vdir / "_cs_sync" / "incoming"
    return {str(p.relative_to(inc)) for p in inc.rglob("*") if p.is_file()} if inc.exists() else set()


def plant(vdir: Path, names: list[str]) -> None:
    for name in names:
        p = vdir / "_cs_sync" / "incoming" / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * 1000)


def deletes_in_log(log: str) -> int:
    return len(re.findall(r"rclone delete ", log))


@pytest.fixture(params=["local", "webdav"])
def remote(request, tmp_path) -> tuple[str, Path]:
    """(what --remote gets, the local folder holding its files)."""
    if request.param == "local":
        return str(tmp_path / "remote"), tmp_path / "remote"
    srv = request.getfixturevalue("webdav")
    return srv.remote + "archive", srv.root / "archive"


def test_a_run_removes_what_stopped_runs_left_for_its_sets_and_nothing_else(make_tree, tmp_path, capsys, remote):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    where, base = remote
    vdir = base / root.name
    ours = ["Hope1888/Hope1888_BB_7.tar", "AlpineK2T/AlpineK2T_BB.tar", "AlpineK2T/AlpineK2T_REL01_BB.bin"]
    not_ours = ["AlpineK2T/notes.txt", "Wairau/Wairau_BB.tar", "AlpineK2T/AlpineK2T_BB_0.tar.partial"]
    plant(vdir, [*ours, *not_ours, "list.txt"])  # (list.txt: this run streams its own over it)
    (vdir / "Wairau").mkdir()
    (vdir / "Wairau" / "Wairau_BB.tar").write_bytes(b"y" * 10)  # outside incoming, same name
    scratch = tmp_path / "scratch"
    code = main([str(root), str(man), "--remote", where, "--tmp_dir", str(scratch), "--max-size", str(CAP)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert incoming_files(vdir) == set(not_ours)
    assert (vdir / "Wairau" / "Wairau_BB.tar").read_bytes() == b"y" * 10
    assert f"removed 3 files (2.9 KiB) that stopped runs left in {root.name}/_cs_sync/incoming" in out
    log = (scratch / root.name / "upload.log").read_text()
    for name in ours:
        assert f"removed _cs_sync/incoming/{name} (1000 B), left by a stopped run" in log
    assert deletes_in_log(log) == 1  # one batched call, not one per file
    verify_version(base, root, man, CAP)

    # nothing left to remove: no delete at all, no summary line
    before = len(log)
    code = main([str(root), str(man), "--remote", where, "--tmp_dir", str(scratch), "--max-size", str(CAP)])
    out = capsys.readouterr().out
    assert code == 0 and "stopped runs left" not in out
    assert deletes_in_log((scratch / root.name / "upload.log").read_text()[before:]) == 0  # (the log is appended to)


def test_a_rerun_with_another_max_size_removes_the_part_the_killed_run_streamed(make_tree, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    remote = tmp_path / "remote"
    vdir = remote / root.name
    base = [root, man, "--remote", remote, "--tmp_dir", tmp_path / "scratch", "--transfers", "1"]
    pause = tmp_path / "pause"
    pause.mkdir()
    # killed with Hope1888_BB.tar streamed into incoming, not yet checked
    proc = start_upload([*base, "--max-size", str(CAP)], env={
        "CS_SYNC_TEST_PAUSE_AT": "uploaded", "CS_SYNC_TEST_PAUSE_DIR": str(pause),
        "CS_SYNC_TEST_PAUSE_MATCH": "Hope1888/Hope1888_BB.tar"})
    deadline = time.monotonic() + 120
    while not (pause / "paused").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the part was never streamed"
        time.sleep(0.02)
    kill_group(proc)
    assert "Hope1888/Hope1888_BB.tar" in incoming_files(vdir)

    again = run_upload([*base, "--max-size", "40K"])  # Hope1888_BB is now _0.tar and _1f.tar
    assert again.returncode == 0, again.stdout + again.stderr
    assert incoming_files(vdir) == set()
    assert not (vdir / "_cs_sync" / "incoming").exists()  # and its empty folders (a lone run)
    assert "that stopped runs left in v22p12/_cs_sync/incoming" in again.stdout
    verify_version(remote, root, man, 40 * 1024)


def test_a_shard_leaves_the_files_another_shard_is_streaming(make_tree, tmp_path, webdav):
    """Shard A is paused with a part streamed into incoming (not yet checked); shard B of the same
    split runs to its end meanwhile: it removes what stopped runs left for its own faults only.
    Then A goes on, finishes, and removes its own leftovers."""
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    where, base = webdav.remote + "archive", webdav.root / "archive"
    vdir = base / root.name
    settings = UploadSettings(cs_root=root, manifest=man, tmp_dir=tmp_path / "t", max_size=CAP)
    shards = assign_shards(upload_weights(read_manifest(man, root), settings), 2)
    a = next(i for i, faults in enumerate(shards) if "Hope1888" in faults)
    b = 1 - a
    assert shards[b] == ["AlpineK2T"]
    plant(vdir, ["Hope1888/Hope1888_BB_7.tar", "AlpineK2T/AlpineK2T_BB_9.tar", "list.txt"])
    common = [root, man, "--remote", where, "--tmp_dir", tmp_path / "scratch", "--max-size", str(CAP),
              "--transfers", "1"]
    pause = tmp_path / "pause"
    pause.mkdir()
    proc = start_upload([*common, "--shard", f"{a}/2"], env={
        "CS_SYNC_TEST_PAUSE_AT": "uploaded", "CS_SYNC_TEST_PAUSE_DIR": str(pause),
        "CS_SYNC_TEST_PAUSE_MATCH": "Hope1888/"})
    try:
        deadline = time.monotonic() + 120
        while not (pause / "paused").exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "shard A never streamed a part"
            time.sleep(0.02)
        in_flight = (pause / "paused").read_text()
        assert in_flight.startswith("Hope1888/") and in_flight in incoming_files(vdir)

        other = run_upload([*common, "--shard", f"{b}/2"])
        assert other.returncode == 0, other.stdout + other.stderr
        left = incoming_files(vdir)
        assert "AlpineK2T/AlpineK2T_BB_9.tar" not in left  # B's own leftover
        assert {in_flight, "Hope1888/Hope1888_BB_7.tar"} <= left  # A's, in flight and left over
        assert ("list.txt" in left) == (b != 0)  # the root files are shard 0's
        (pause / "resume").write_text("")
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, out + err
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert incoming_files(vdir) == set()
    verify_version(base, root, man, CAP)
