"""cs-sync-upload end to end with the real rclone: a local directory remote and a loopback WebDAV remote."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from cs_sync.archive.sidecar import SetSidecar
from cs_sync.cli.upload import main
from cs_sync.core.atomic import TMP_SUFFIX
from cs_sync.inputs.manifest import read_manifest, write_manifest
from cs_sync.upload.batching import MAX_BATCH

from cybershake_tree import FaultSpec
from manifests import refresh_mtime, write_tree_manifest
from upload_checks import (
    assert_complete_means_complete,
    kill_group,
    local_files,
    parts_line,
    run_upload,
    sets_line,
    start_upload,
    tar_members,
    verify_version,
)

CAP = 64 * 1024  # forces BB sets of these trees into several parts
CAP_ARG = str(CAP)
FAULTS = [
    FaultSpec("AlpineK2T", rels=3, median=True, perturbed=True, bb_size=30_000),
    FaultSpec("Hope1888", rels=2, median=False, bb_size=20_000),
]


@pytest.fixture
def version(make_tree):
    """(cs_root, manifest) of a small version: BB sets split in parts at CAP, one BB.bin above CAP."""
    faults = [*FAULTS]
    root, _ = make_tree(faults)
    big = root / "Runs/Hope1888/Hope1888_REL02/BB/Acc/BB.bin"
    big.write_bytes(os.urandom(100_000))  # larger than the cap: a part of its own
    return root, write_tree_manifest(root)


class Remote:
    def __init__(self, root: str, base: Path, kind: str) -> None:
        self.root = root  # what --remote gets
        self.base = base  # the local folder holding the remote's files
        self.kind = kind


@pytest.fixture(params=["local", "webdav"])
def remote(request, tmp_path) -> Remote:
    if request.param == "local":
        return Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    srv = request.getfixturevalue("webdav")
    return Remote(srv.remote + "archive", srv.root / "archive", "webdav")


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def base_args(version, remote, tmp_path):
    root, man = version
    return [root, man, "--remote", remote.root, "--tmp_dir", tmp_path / "scratch", "--max-size", CAP_ARG]


def test_upload_split_sets_verified_byte_for_byte_then_skipped(version, remote, tmp_path, capsys, small_files):
    root, man = version
    code, out, err = cli(capsys, *base_args(version, remote, tmp_path), "--transfers", "3")
    assert code == 0, out + err
    assert "larger than the part cap" in out and "Hope1888_REL02/BB/Acc/BB.bin" in out
    sidecars = verify_version(remote.base, root, man, CAP)
    assert len(sidecars["AlpineK2T_BB"].parts) >= 3
    assert [p.name for p in sidecars["Hope1888_BB"].parts] == ["Hope1888_BB_0.tar", "Hope1888_BB_1f.tar"]
    assert tar_members(remote.base / "v22p12/Hope1888/Hope1888_BB_1f.tar") == ["Hope1888_REL02_BB.bin"]
    assert (remote.base / "v22p12/AlpineK2T/AlpineK2T_BB.bin").is_file()  # the sample, median event
    assert sets_line(out)["uploaded"] == len(sidecars)
    if remote.kind == "webdav":
        assert "SIZES ONLY" in out and "--verify download" in out
    else:
        assert "by the remote's own sha256 hash" in out
    # each sidecar says how its parts were checked (status and the report count them)
    assert {sc.check for sc in sidecars.values()} == {"size" if remote.kind == "webdav" else "content"}
    assert "remote re-read: every set that should be there is complete" in out
    assert not (remote.base / "v22p12/_cs_sync/incoming").exists()  # every file moved into place, folders gone
    scratch = tmp_path / "scratch" / "v22p12"
    assert sorted(p.name for p in scratch.rglob("*") if p.is_file()) == ["upload.log"]  # nothing staged, journals gone
    log = (scratch / "upload.log").read_text()
    if remote.kind == "local":  # a folder on this machine: written directly, no rclone per part
        assert "rclone rcat" not in log and "/dev/shm" not in log
    else:
        assert ("rclone rcat --size" if small_files == "rcat" else "rclone copy /dev/shm/") in log
    assert "uploaded and checked" in log

    code, out, err = cli(capsys, *base_args(version, remote, tmp_path))
    assert code == 0, out + err
    s = sets_line(out)
    assert s["skipped"] == len(sidecars) and s["uploaded"] == 0
    assert parts_line(out)["uploaded"] == 0


def test_upload_after_the_real_preprocess(make_tree, tmp_path, capsys):
    from cs_sync.cli import preprocess

    root, lst = make_tree(FAULTS)
    man = tmp_path / "files_to_sync.yaml"
    assert preprocess.main([str(root), str(lst), "--out_file", str(man), "--stocktake_csv",
                            str(tmp_path / "stocktake.csv")]) == 0
    capsys.readouterr()
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    code, out, err = cli(capsys, *base_args((root, man), r, tmp_path))
    assert code == 0, out + err
    verify_version(r.base, root, man, CAP)
    assert (r.base / "v22p12/stocktake.csv").read_bytes() == (tmp_path / "stocktake.csv").read_bytes()


def test_verify_download_on_webdav_compares_sha256(version, webdav, tmp_path, capsys):
    root, man = version
    r = Remote(webdav.remote + "archive", webdav.root / "archive", "webdav")
    code, out, err = cli(capsys, *base_args(version, r, tmp_path), "--verify", "download", "-t", "IM", "SAMPLE_BB")
    assert code == 0, out + err
    assert "read back and SHA-256 compared (--verify download)" in out
    sidecars = verify_version(r.base, root, man, CAP, expect_all=False)
    assert {sc.check for sc in sidecars.values()} == {"content"}  # read back, though WebDAV has no hash
    assert sorted(sidecars) == ["AlpineK2T_IM", "AlpineK2T_SAMPLE_BB", "Hope1888_IM", "Hope1888_SAMPLE_BB"]


def test_no_checksum_still_compares_sizes(version, tmp_path, capsys):
    root, man = version
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    code, out, err = cli(capsys, *base_args(version, r, tmp_path), "--no_checksum", "-t", "IM", "BB")
    assert code == 0, out + err
    assert "by size only (--no_checksum)" in out and "own sha256 hash" not in out
    sidecars = verify_version(r.base, root, man, CAP, expect_all=False)
    assert sorted(sidecars) == ["AlpineK2T_BB", "AlpineK2T_IM", "Hope1888_BB", "Hope1888_IM"]
    assert {sc.check for sc in sidecars.values()} == {"size"}


def test_inc_fault_uploads_only_that_fault_and_a_typo_is_refused(version, tmp_path, capsys):
    """The report's fix commands name one set: -t TYPE --inc_fault F."""
    root, man = version
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    code, out, err = cli(capsys, *base_args(version, r, tmp_path), "-t", "IM", "--inc_fault", "Hope1888")
    assert code == 0, out + err
    assert sorted(verify_version(r.base, root, man, CAP, expect_all=False)) == ["Hope1888_IM"]
    assert not (r.base / "v22p12/AlpineK2T").exists()
    code, out, err = cli(capsys, *base_args(version, r, tmp_path), "--inc_fault", "Hope1888", "Hope188")
    assert code == 2
    assert "--inc_fault 'Hope188' is not a fault of" in err and err.count("error:") == 1


def test_hard_limit_refused_before_any_transfer(version, tmp_path, capsys):
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    code, out, err = cli(capsys, *base_args(version, r, tmp_path), "--hard-limit", "90K")
    assert code == 3
    assert "Runs/Hope1888/Hope1888_REL02/BB/Acc/BB.bin" in err and "hard limit" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "remote").exists()
    assert not list((tmp_path / "scratch").rglob("*.tar"))


def test_dry_run_writes_nothing(version, tmp_path, capsys):
    before = local_files(tmp_path)
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    code, out, err = cli(capsys, *base_args(version, r, tmp_path), "--dry-run")
    assert code == 0, err
    assert local_files(tmp_path) == before  # no tmp dir, no log, no remote
    assert "AlpineK2T_BB_0.tar" in out and "would upload 8 sets" in out
    # after a real upload, a dry run says what it would skip and still writes nothing
    assert cli(capsys, *base_args(version, r, tmp_path))[0] == 0
    before = local_files(tmp_path)
    code, out, _ = cli(capsys, *base_args(version, r, tmp_path), "--dry-run", "--hard-limit", "90K")
    assert code == 3 and "skip 7 complete" in out and "1 refused" in out
    assert local_files(tmp_path) == before


def test_overwrite_with_fewer_parts_leaves_no_old_final(version, tmp_path, capsys):
    root, man = version
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    assert cli(capsys, *base_args(version, r, tmp_path), "--max-size", "40K")[0] == 0
    bb = r.base / "v22p12/AlpineK2T"
    old = sorted(p.name for p in bb.glob("AlpineK2T_BB*.tar"))
    assert len(old) >= 4 and old[-1].endswith("f.tar")
    # without --overwrite, a different cap changes nothing: the sets are complete
    code, out, _ = cli(capsys, *base_args(version, r, tmp_path), "--max-size", "1M")
    assert code == 0 and sets_line(out)["skipped"] == 8
    code, out, err = cli(capsys, *base_args(version, r, tmp_path), "--max-size", "1M", "--overwrite")
    assert code == 0, out + err
    assert sorted(p.name for p in bb.glob("AlpineK2T_BB*.tar")) == ["AlpineK2T_BB.tar"]
    verify_version(r.base, root, man, 1 << 20)
    # and back to many parts: the single .tar goes
    code, out, err = cli(capsys, *base_args(version, r, tmp_path), "--max-size", "40K", "-f", "-t", "BB")
    assert code == 0, out + err
    assert sorted(p.name for p in bb.glob("AlpineK2T_BB*.tar")) == old


def test_stale_sets_reported_then_redone_with_update(version, remote, tmp_path, capsys):
    root, man = version
    assert cli(capsys, *base_args(version, remote, tmp_path))[0] == 0
    rel = "Runs/AlpineK2T/AlpineK2T_REL02/IM_calc/AlpineK2T_REL02.csv"
    (root / rel).write_bytes(b"changed,values\n" * 20)
    m = refresh_mtime(read_manifest(man, root), root, rel)
    write_manifest(man, m)  # what a re-run of preprocess writes
    code, out, err = cli(capsys, *base_args(version, remote, tmp_path))
    assert code == 7 and "stale" in err and "AlpineK2T_IM" in err and "--update" in err
    assert "stale: AlpineK2T_IM" in out and sets_line(out)["stale"] == 1
    code, out, err = cli(capsys, *base_args(version, remote, tmp_path), "--update")
    assert code == 0, out + err
    assert sets_line(out) == {"uploaded": 1, "skipped": 7, "unverified": 0, "stale": 0, "failed": 0}
    sc = verify_version(remote.base, root, man, CAP)["AlpineK2T_IM"]
    assert any(mm.source == rel and mm.size == (root / rel).stat().st_size for mm in sc.members)


def test_source_deleted_after_preprocess_fails_that_set_only(version, tmp_path, capsys):
    root, man = version
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    (root / "Runs/AlpineK2T/AlpineK2T_REL02/BB/Acc/BB.bin").unlink()
    code, out, err = cli(capsys, *base_args(version, r, tmp_path))
    assert code == 7
    assert "AlpineK2T_BB" in err and "1 set(s) failed" in err
    assert "Runs/AlpineK2T/AlpineK2T_REL02/BB/Acc/BB.bin: vanished since preprocess" in out
    s = sets_line(out)
    assert s["failed"] == 1 and s["uploaded"] == 7
    sidecars = verify_version(r.base, root, man, CAP, expect_all=False)
    assert "AlpineK2T_BB" not in sidecars and len(sidecars) == 7
    # the failed set has no final part on the remote: nobody can take it for complete
    assert not list((r.base / "v22p12/AlpineK2T").glob("AlpineK2T_BB*f.tar"))
    assert not (r.base / "v22p12/AlpineK2T/AlpineK2T_BB.tar").exists()
    assert_complete_means_complete(r.base, root, man, CAP)


@pytest.mark.timeout(120)
def test_fifo_at_a_source_path_stops_that_set_and_never_blocks(version, tmp_path, capsys):
    """A FIFO put where preprocess saw a file: opening it plainly would wait for a writer forever."""
    root, man = version
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    src = root / "Runs/AlpineK2T/AlpineK2T_REL02/BB/Acc/BB.bin"
    src.unlink()
    os.mkfifo(src)
    code, out, err = cli(capsys, *base_args(version, r, tmp_path))
    assert code == 7, out + err
    assert "Runs/AlpineK2T/AlpineK2T_REL02/BB/Acc/BB.bin: not a regular file (a FIFO)" in out
    assert "Traceback" not in err
    assert sets_line(out)["failed"] == 1
    assert not list((r.base / "v22p12/AlpineK2T").glob("AlpineK2T_BB*f.tar"))
    assert not (r.base / "v22p12/_cs_sync/AlpineK2T_BB.json").exists()


def test_older_script_sets_count_as_unverified(version, tmp_path, capsys):
    root, man = version
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    fdir = r.base / "v22p12/Hope1888"
    fdir.mkdir(parents=True)
    (fdir / "Hope1888_IM.tar").write_bytes(b"x" * 10240)  # made by the older scripts: no sidecar
    code, out, err = cli(capsys, *base_args(version, r, tmp_path))
    assert code == 0, out + err
    assert "unverified: Hope1888_IM (made by the older scripts" in out
    assert sets_line(out)["unverified"] == 1
    assert (fdir / "Hope1888_IM.tar").read_bytes() == b"x" * 10240
    assert not (r.base / "v22p12/_cs_sync/Hope1888_IM.json").exists()


def test_manifest_from_another_version_is_refused(version, tmp_path, capsys):
    root, man = version
    m = read_manifest(man, root)
    m.version = "v99p1"
    write_manifest(man, m)
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    code, out, err = cli(capsys, *base_args(version, r, tmp_path))
    assert code == 3 and "v99p1" in err and "v22p12" in err
    assert not (tmp_path / "remote").exists()


def test_unknown_and_unreachable_remotes_exit_6_before_packing(version, tmp_path, capsys, monkeypatch):
    root, man = version
    code, _, err = cli(capsys, root, man, "--remote", "nosuchremote:/x", "--tmp_dir", tmp_path / "s")
    assert code == 6 and "unknown rclone remote nosuchremote" in err and len(err.strip().splitlines()) == 1
    monkeypatch.setenv("RCLONE_CONFIG_DEAD_TYPE", "webdav")
    monkeypatch.setenv("RCLONE_CONFIG_DEAD_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("RCLONE_LOW_LEVEL_RETRIES", "1")
    monkeypatch.setenv("CS_SYNC_RETRY_WAITS", "0.1")  # retries stay on, short (test_outage.py)
    code, _, err = cli(capsys, root, man, "--remote", "dead:/x", "--tmp_dir", tmp_path / "s")
    assert code == 6 and "unreachable" in err
    assert not list((tmp_path / "s").rglob("*.tar"))


def test_rclone_missing_and_unusable_tmp_dir(version, tmp_path, capsys, monkeypatch):
    root, man = version
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    code, _, err = cli(capsys, root, man, "--remote", r.root, "--tmp_dir", not_a_dir)
    assert code == 9 and str(not_a_dir) in err
    assert not [p for p in (tmp_path / "remote").rglob("*") if p.is_file()]  # nothing was sent
    monkeypatch.setenv("CS_SYNC_RCLONE", str(tmp_path / "no-rclone"))
    code, _, err = cli(capsys, *base_args(version, r, tmp_path))
    assert code == 5 and "CS_SYNC_RCLONE" in err
    assert not (tmp_path / "remote").exists()


def test_shards_split_faults_and_only_shard_0_uploads_the_root_files(version, tmp_path, capsys):
    root, man = version
    r = Remote(str(tmp_path / "remote"), tmp_path / "remote", "local")
    args = base_args(version, r, tmp_path)
    p0 = start_upload([*args, "--shard", "0/2"])
    p1 = start_upload([*args, "--shard", "1/2"])
    out0, err0 = p0.communicate(timeout=300)
    out1, err1 = p1.communicate(timeout=300)
    assert p0.returncode == 0 and p1.returncode == 0, err0 + err1
    assert "list.txt, stocktake.csv uploaded" in out0 and "list.txt" not in out1.split("summary")[1]
    assert sets_line(out0)["uploaded"] == 4 and sets_line(out1)["uploaded"] == 4
    verify_version(r.base, root, man, CAP)
    logs = sorted(p.name for p in (tmp_path / "scratch/v22p12").glob("*.log"))
    assert logs == ["upload.shard0of2.log", "upload.shard1of2.log"]


# -- killed and resumed --------------------------------------------------------------------


def journal_checked(scratch: Path) -> int:
    n = 0
    for j in (scratch / "v22p12" / "journal").glob("*.json"):
        n += sum(1 for p in json.loads(j.read_text())["parts"].values() if p["state"] == "checked")
    return n


@pytest.mark.parametrize(
    "event", ["member_written:4", "packed:3", "uploaded:2", "checked:5", "set_done:3", "checked:9"]
)
def test_killed_at_any_point_then_resumed(event, version, tmp_path, small_files):
    root, man = version
    scratch = tmp_path / "scratch"
    remote = tmp_path / "remote"
    args = [root, man, "--remote", remote, "--tmp_dir", scratch, "--max-size", CAP_ARG, "--transfers", "2"]
    total = sum(len(sp.parts) for sp in __import__("upload_checks").expected_plan(root, man, CAP).sets)
    killed = run_upload(args, env={"CS_SYNC_TEST_KILL_AFTER": event})
    assert killed.returncode == -9, killed.stdout + killed.stderr
    assert_complete_means_complete(remote, root, man, CAP)
    checked_before = journal_checked(scratch)
    on_remote_before = sum(1 for p in (remote / "v22p12").glob("[!_]*/*") if p.is_file()) if remote.exists() else 0

    again = run_upload(args)
    assert again.returncode == 0, again.stdout + again.stderr
    verify_version(remote, root, man, CAP)
    parts = parts_line(again.stdout)
    # nothing recorded as checked is redone; everything else is done once
    assert parts["uploaded"] == total - checked_before, (parts, checked_before, total)
    # redone = uploaded again although already under its name on the remote: only what was moved
    # into place but not yet recorded as checked when the kill came, at most one move batch
    redone = parts["uploaded"] - (total - on_remote_before)
    assert redone <= MAX_BATCH, (parts, on_remote_before, total)
    assert not list(scratch.rglob(f"*{TMP_SUFFIX}")) and not list(scratch.rglob("*.tar"))


@pytest.mark.parametrize("small_files", ["batched", "rcat"], indirect=True)
def test_killed_during_a_transfer_then_resumed(version, remote, tmp_path, small_files):
    root, man = version
    scratch = tmp_path / "scratch"
    pause = tmp_path / "pause"
    pause.mkdir()
    args = [root, man, "--remote", remote.root, "--tmp_dir", scratch, "--max-size", "1M", "--transfers", "2"]
    # held with one member of the BB part streamed: the part is on its way, not all there
    proc = start_upload(args, env={"CS_SYNC_TEST_PAUSE_AT": "member_written:1", "CS_SYNC_TEST_PAUSE_DIR": str(pause),
                                   "CS_SYNC_TEST_PAUSE_MATCH": "AlpineK2T_REL01/BB"})
    deadline = time.monotonic() + 120
    while not (pause / "paused").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the part was never streamed"
        time.sleep(0.02)
    time.sleep(0.3)
    kill_group(proc)
    assert not (remote.base / "v22p12/_cs_sync/AlpineK2T_BB.json").exists()
    assert not (remote.base / "v22p12/AlpineK2T/AlpineK2T_BB.tar").exists()  # a cut stream never gets its name
    assert_complete_means_complete(remote.base, root, man, 1 << 20)
    again = run_upload(args)
    assert again.returncode == 0, again.stdout + again.stderr
    verify_version(remote.base, root, man, 1 << 20)
    log = (scratch / "v22p12" / "upload.log").read_text().split("cs-sync-upload")[-1]
    assert "uploaded and checked AlpineK2T/AlpineK2T_BB.tar" in log  # the cut part was streamed again


def test_overwrite_killed_after_removing_the_old_set_then_resumed(version, tmp_path):
    root, man = version
    scratch = tmp_path / "scratch"
    remote = tmp_path / "remote"
    base = [root, man, "--remote", remote, "--tmp_dir", scratch, "--transfers", "2"]
    assert run_upload([*base, "--max-size", "40K"]).returncode == 0
    args = [*base, "--max-size", CAP_ARG, "--overwrite"]
    killed = run_upload(args, env={"CS_SYNC_TEST_KILL_AFTER": "old_removed:2"})
    assert killed.returncode == -9
    assert_complete_means_complete(remote, root, man, CAP)
    killed = run_upload(args, env={"CS_SYNC_TEST_KILL_AFTER": "set_done:2"})
    assert killed.returncode == -9
    assert_complete_means_complete(remote, root, man, CAP)
    again = run_upload(args)
    assert again.returncode == 0, again.stdout + again.stderr
    verify_version(remote, root, man, CAP)
    # sets the interrupted --overwrite already replaced are not replaced again
    assert sets_line(again.stdout)["skipped"] >= 1
    for sc in (remote / "v22p12/_cs_sync").glob("*.json"):
        assert SetSidecar.from_json(sc.read_text()).max_size == CAP
    assert not list((scratch / "v22p12" / "journal").glob("*.json"))  # a finished run leaves no journal


# -- the batched check reports each file on its own; what passed is moved into place --------


@pytest.mark.parametrize("kind", ["local", "webdav"])
def test_one_lookup_checks_many_files_fails_only_the_bad_one_and_only_checked_files_move(kind, tmp_path, request):
    import hashlib

    from cs_sync.archive.tar_write import StreamedPart
    from cs_sync.remote.rclone import Rclone
    from cs_sync.upload.checks import CheckFailed, check_batch, choose_check
    from cs_sync.upload.results import CheckMode
    from cs_sync.upload.tracker import Job

    if kind == "local":
        root, base = str(tmp_path / "remote"), tmp_path / "remote"
    else:
        srv = request.getfixturevalue("webdav")
        root, base = srv.remote + "archive", srv.root / "archive"
    rc = Rclone()
    incoming = f"{root}/v1/_cs_sync/incoming"
    jobs = []
    for i, name in enumerate(["F/a.tar", "F/b.tar", "G/c.tar", "G/missing.tar"]):
        data = bytes([i]) * (1000 + i)
        if name != "G/missing.tar":
            (base / "v1/_cs_sync/incoming" / name).parent.mkdir(parents=True, exist_ok=True)
            (base / "v1/_cs_sync/incoming" / name).write_bytes(data)
        digest = hashlib.sha256(data).hexdigest()
        job = Job(relpath=name, size=len(data), members=(), plain=True)
        job.streamed = StreamedPart(name.split("/")[1], len(data), digest, {"sha256": digest}, ())
        jobs.append(job)
    (base / "v1/_cs_sync/incoming/F/b.tar").write_bytes(b"x" * 1001)  # same size, other bytes
    plan = choose_check(rc.hash_types(root), checksum=True, read_back=False)
    outcomes = check_batch(rc, incoming, jobs, plan)
    errors = [e for _, e in outcomes]
    assert errors[0] is None and errors[2] is None
    assert isinstance(errors[3], CheckFailed) and "missing.tar: not on the remote" in str(errors[3])
    if kind == "local":
        assert isinstance(errors[1], CheckFailed) and "sha256 hash differs" in str(errors[1])
        assert [m for m, _ in outcomes[:3]] == [CheckMode.HASH] * 3
    else:
        assert errors[1] is None  # WebDAV: sizes only, which is why the summary says so
        assert [m for m, _ in outcomes[:3]] == [CheckMode.SIZES_ONLY] * 3
    passed = [j.relpath for j, e in zip(jobs, errors) if e is None]
    # one rclone moves what passed and reports each file: one it cannot find fails alone
    failed = rc.move_files(incoming, f"{root}/v1", [*passed, "G/missing.tar"], what="moving")
    assert {n: (type(e).__name__, e.message) for n, e in failed.items()} == {
        "G/missing.tar": ("ObjectNotFound", "not moved (rclone did not find it)")}
    # what passed is moved to its name; nothing else is
    assert (base / "v1/F/a.tar").read_bytes() == bytes([0]) * 1000
    assert (base / "v1/G/c.tar").exists() and not (base / "v1/G/missing.tar").exists()
    assert (base / "v1/F/b.tar").exists() == (kind == "webdav")
