"""The streamed upload against real remotes and real faults.

Remotes (real rclone on 127.0.0.1): SFTP (the server hashes the file it stored),
a hasher remote keeping Dropbox's content hash over WebDAV (the Dropbox hash path
end to end), WebDAV behind a proxy that drops connections mid-upload. Faults: a
byte changed on the server before the check, a source changing while its part is
streamed, a FIFO at a source path, the local disk filling up. Progress: totals from
the whole plan from the first line, the same lines in upload.log, what a re-run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cs_sync.archive.sidecar import SetSidecar
from cs_sync.core.hashes import new_hasher
from cs_sync.core.sizes import format_size

from cybershake_tree import FaultSpec
from manifests import write_tree_manifest
from servers import hasher_env, start_webdav
from throttle_proxy import ThrottleProxy
from upload_checks import (
    assert_complete_means_complete,
    expected_plan,
    kill_group,
    parts_line,
    run_upload,
    sets_line,
    start_upload,
    verify_version,
)

CAP = 64 * 1024
FAULTS = [
    FaultSpec("AlpineK2T", rels=3, median=True, perturbed=True, bb_size=30_000),
    FaultSpec("Hope1888", rels=2, median=False, bb_size=20_000),
]


@pytest.fixture
def sftp(tmp_path, rclone_bin, monkeypatch):
    """A loopback SFTP remote with the server's directory cache on (the shared fixture turns it
    off, which costs about 0.5 s per request here). Files changed behind its back keep their
    size, and the server's md5sum/sha1sum read them from disk as they are."""
    from servers import serving, start_sftp

    with serving(start_sftp(rclone_bin, tmp_path / "sftp_root"), monkeypatch) as srv:
        yield srv


@pytest.fixture
def version(make_tree):
    root, _ = make_tree(FAULTS)
    (root / "Runs/Hope1888/Hope1888_REL02/BB/Acc/BB.bin").write_bytes(os.urandom(600_000))  # a part of its own
    return root, write_tree_manifest(root)


def args_for(version, remote: str, tmp_path: Path, *extra) -> list:
    root, man = version
    return [root, man, "--remote", remote, "--tmp_dir", tmp_path / "scratch", "--max-size", str(CAP), *extra]


def log_of(tmp_path: Path) -> str:
    return (tmp_path / "scratch" / "v22p12" / "upload.log").read_text()


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"the upload ended (exit {proc.returncode}) before pausing:\n{out}\n{err}")
        assert time.monotonic() < deadline, "the upload never paused"
        time.sleep(0.05)


# -- remotes that keep their own hash ----------------------------------------------------------


def test_sftp_parts_checked_by_the_servers_own_hash(version, sftp, tmp_path):
    root, man = version
    res = run_upload(args_for(version, sftp.remote + "archive", tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"checks: \d+ by the remote's own sha1 hash", res.stdout), res.stdout
    base = sftp.root / "archive"
    sidecars = verify_version(base, root, man, CAP)
    for sc in sidecars.values():
        for p in sc.parts:  # the hash the server was compared with is recorded, and right
            data = (base / "v22p12" / sc.fault / p.name).read_bytes()
            assert p.hashes == {"sha256": hashlib.sha256(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest()}
    assert "$ " in log_of(tmp_path) and "sha1sum" not in res.stdout


def test_a_samples_sidecar_records_the_remotes_hash_so_verify_checks_it_by_hash(version, sftp, tmp_path):
    """SAMPLE_BB is a plain file, not a TAR: its sidecar lists it as a part with the hash the
    server computes, so `cs-sync verify` compares it by that hash rather than by size only."""
    from dl_helpers import run_cs_sync

    res = run_upload(args_for(version, sftp.remote + "archive", tmp_path, "-t", "BB", "SAMPLE_BB"))
    assert res.returncode == 0, res.stdout + res.stderr
    base = sftp.root / "archive"
    sample = SetSidecar.from_json((base / "v22p12" / "_cs_sync" / "AlpineK2T_SAMPLE_BB.json").read_text())
    [part] = sample.parts
    data = (base / "v22p12" / "AlpineK2T" / part.name).read_bytes()
    assert part.hashes == {"sha256": hashlib.sha256(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest()}
    code, out, err = run_cs_sync("verify", "v22p12", "--remote", sftp.remote + "archive")
    assert code == 0, out + err
    assert re.search(r"parts: \d+ by hash \(\d+ sha1\), 0 by SIZE ONLY, 0 DIFFER", out), out


def test_dropbox_content_hash_end_to_end_through_a_hasher_remote(version, webdav, tmp_path, monkeypatch, rclone_bin):
    root, man = version
    for k, v in hasher_env("csdbx", webdav.remote + "hashed", tmp_path / "rclone_cache").items():
        monkeypatch.setenv(k, v)
    res = run_upload(args_for(version, "csdbx:archive", tmp_path))
    assert res.returncode == 0, res.stdout + res.stderr
    assert re.search(r"checks: \d+ by the remote's own dropbox hash", res.stdout), res.stdout
    base = webdav.root / "hashed" / "archive"
    sidecars = verify_version(base, root, man, CAP)
    big = sidecars["Hope1888_BB"].parts[-1]
    path = base / "v22p12/Hope1888" / big.name
    ours = new_hasher("dropbox")
    ours.update(path.read_bytes())
    rclone_says = subprocess.run([rclone_bin, "hashsum", "dropbox", str(path)], capture_output=True, text=True,
                                 check=True).stdout.split()[0]
    assert big.hashes["dropbox"] == ours.hexdigest() == rclone_says


# -- faults on the remote ------------------------------------------------------------------


def _flip_middle_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[len(out) // 2] ^= 0xFF  # same size, one byte different: only a hash can tell
    return bytes(out)


@pytest.fixture(params=[("sftp", "batched"), ("sftp", "rcat"), ("dropbox", "rcat")], ids=lambda p: "-".join(p))
def hashing_remote(request, tmp_path, monkeypatch, rclone_bin):
    """(remote root, the folder its files are in, the hash it keeps, how to change a file's bytes
    on the server): SFTP (the server hashes its file), or Dropbox's hash via a hasher remote.

    Small files go in batches or one rcat each. For the hasher, rcat only: a hash hasher took
    while an ``rclone copy`` sent a file it keeps for good, so there it would vouch for the
    bytes sent, not for the bytes stored (Dropbox itself hashes what it stored, either way).
    """
    kind, small = request.param
    if small == "rcat":
        monkeypatch.setenv("CS_SYNC_SMALL_FILE", "0")
    if kind == "sftp":
        srv = request.getfixturevalue("sftp")
        base = srv.root / "archive"

        def corrupt(rel: str) -> None:  # on the server's disk: its md5sum/sha1sum read that
            landed = base / "v22p12/_cs_sync/incoming" / rel
            landed.write_bytes(_flip_middle_byte(landed.read_bytes()))

        return srv.remote + "archive", base, "sha1", corrupt
    dav = request.getfixturevalue("webdav")
    for k, v in hasher_env("csdbx", dav.remote + "hashed", tmp_path / "rclone_cache").items():
        monkeypatch.setenv(k, v)
    base = dav.root / "hashed" / "archive"

    def corrupt(rel: str) -> None:
        # through the server (its cache then knows), a second later: another mtime, so hasher
        # takes its hash again from the bytes the server holds
        landed = base / "v22p12/_cs_sync/incoming" / rel
        bad = _flip_middle_byte(landed.read_bytes())
        time.sleep(1.1)
        subprocess.run([rclone_bin, "rcat", f"{dav.remote}hashed/archive/v22p12/_cs_sync/incoming/{rel}"],
                       input=bad, check=True, capture_output=True)

    return "csdbx:archive", base, "dropbox", corrupt


def test_a_byte_changed_on_the_server_before_the_check_is_sent_again(version, hashing_remote, tmp_path):
    root, man = version
    remote, base, hash_type, corrupt = hashing_remote
    pause = tmp_path / "pause"
    pause.mkdir()
    proc = start_upload(args_for(version, remote, tmp_path, "--transfers", "1"),
                        env={"CS_SYNC_TEST_PAUSE_AT": "uploaded:1", "CS_SYNC_TEST_PAUSE_DIR": str(pause),
                             "CS_SYNC_TEST_PAUSE_MATCH": ".tar"})
    try:
        wait_for(pause / "paused", proc)
        relpath = (pause / "paused").read_text()
        corrupt(relpath)
        (pause / "resume").touch()
        out, err = proc.communicate(timeout=300)
    finally:
        kill_group(proc)
    assert proc.returncode == 0, out + err
    log = log_of(tmp_path)
    assert f"{relpath}: attempt 1/3 failed" in log and f"{hash_type} hash differs" in log
    assert parts_line(out)["resent"] == 1
    verify_version(base, root, man, CAP)  # the part under its name is the one sent again


def test_connections_dropped_mid_upload_are_retried_then_that_set_fails(version, rclone_bin, tmp_path, monkeypatch, small_files):
    root, man = version
    srv = start_webdav(rclone_bin, tmp_path / "served")
    proxy = ThrottleProxy(srv.port, drop_after=200_000)  # the 600 KB part never gets through; the others do
    for k, v in srv.env_via(proxy.port).items():
        monkeypatch.setenv(k, v)
    try:
        res = run_upload(args_for(version, srv.remote + "archive", tmp_path))
        assert res.returncode == 7, res.stdout + res.stderr
        assert "Hope1888_BB" in res.stderr and "1 set(s) failed" in res.stderr
        assert "after 3 attempts" in res.stdout and proxy.dropped >= 3
        assert sets_line(res.stdout)["uploaded"] == 7
        base = srv.root / "archive"
        assert not (base / "v22p12/_cs_sync/Hope1888_BB.json").exists()
        assert_complete_means_complete(base, root, man, CAP)
        proxy.drop_after = None  # the network is back: the same command finishes the job
        again = run_upload(args_for(version, srv.remote + "archive", tmp_path))
        assert again.returncode == 0, again.stdout + again.stderr
        verify_version(base, root, man, CAP)
        assert sets_line(again.stdout)["uploaded"] == 1
    finally:
        srv.stop()
        proxy.close()


# -- faults at the source ------------------------------------------------------------------


def test_a_source_changing_while_its_part_is_streamed_stops_that_set(make_tree, tmp_path, small_files):
    root, _ = make_tree([FaultSpec("AlpineK2T", rels=4, median=True, bb_size=30_000),
                         FaultSpec("Hope1888", rels=3, median=True, bb_size=30_000)])
    man = write_tree_manifest(root)
    pause = tmp_path / "pause"
    pause.mkdir()
    remote = tmp_path / "remote"
    proc = start_upload([root, man, "--remote", remote, "--tmp_dir", tmp_path / "scratch", "-t", "BB"],
                        env={"CS_SYNC_TEST_PAUSE_AT": "member_written:1", "CS_SYNC_TEST_PAUSE_DIR": str(pause),
                             "CS_SYNC_TEST_PAUSE_MATCH": "/BB.bin"})
    try:
        wait_for(pause / "paused", proc)
        first = (pause / "paused").read_text()  # Runs/FAULT/EVENT/BB/Acc/BB.bin: its part is on its way
        fault = first.split("/")[1]
        other = ({"AlpineK2T", "Hope1888"} - {fault}).pop()
        for p in (root / "Runs" / fault).glob("*/BB/Acc/BB.bin"):
            if not str(p).endswith(first):  # the part's other members grow while it is streamed
                with open(p, "ab") as fh:
                    fh.write(b"later")
        (pause / "resume").touch()
        out, err = proc.communicate(timeout=300)
    finally:
        kill_group(proc)
    assert proc.returncode == 7, out + err
    assert f"{fault}_BB" in err and "1 set(s) failed" in err
    assert re.search(rf"FAILED {fault}_BB: Runs/{fault}/\S+/BB/Acc/BB.bin: is \d+ bytes, preprocess recorded", out), out
    assert not (remote / f"v22p12/{fault}/{fault}_BB.tar").exists()
    assert not (remote / f"v22p12/_cs_sync/{fault}_BB.json").exists()
    assert (remote / f"v22p12/_cs_sync/{other}_BB.json").exists()  # the other set went through
    assert not list((remote / "v22p12/_cs_sync/incoming").rglob("*.tar"))  # the abandoned stream was taken back


def test_a_fifo_at_a_source_path_stops_that_set_without_hanging(version, tmp_path):
    root, man = version
    src = root / "Runs/AlpineK2T/AlpineK2T_REL01/IM_calc/AlpineK2T_REL01.csv"
    src.unlink()
    os.mkfifo(src)  # a FIFO where the manifest lists a file: opening it to read would block forever
    t0 = time.monotonic()
    res = run_upload(args_for(version, str(tmp_path / "remote"), tmp_path), timeout=120)
    assert time.monotonic() - t0 < 110
    assert res.returncode == 7, res.stdout + res.stderr
    assert "AlpineK2T_IM" in res.stderr
    assert "Runs/AlpineK2T/AlpineK2T_REL01/IM_calc/AlpineK2T_REL01.csv: not a regular file (a FIFO)" in res.stdout
    assert sets_line(res.stdout)["uploaded"] == 7
    assert not (tmp_path / "remote/v22p12/AlpineK2T/AlpineK2T_IM.tar").exists()


# -- the local disk filling up -----------------------------------------------------------------


@pytest.fixture
def small_tmpfs(tmp_path):
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a small tmpfs (a real full disk); .ci/run runs as root")
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_local_disk_full_stops_the_run_with_one_line_naming_the_path(version, small_tmpfs, tmp_path, small_files):
    root, man = version
    pause = tmp_path / "pause"
    pause.mkdir()
    remote = tmp_path / "remote"
    args = [root, man, "--remote", remote, "--tmp_dir", small_tmpfs, "--max-size", str(CAP), "--transfers", "2"]
    proc = start_upload(args, env={"CS_SYNC_TEST_PAUSE_AT": "checked:3", "CS_SYNC_TEST_PAUSE_DIR": str(pause)})
    try:
        wait_for(pause / "paused", proc)
        filler = small_tmpfs / "filler"
        with open(filler, "wb") as fh:  # fill the disk holding the journals and the log
            try:
                while True:
                    fh.write(b"\0" * 65536)
            except OSError:
                pass
        (pause / "resume").touch()
        out, err = proc.communicate(timeout=300)
    finally:
        kill_group(proc)
    assert proc.returncode == 9, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and re.search(rf"no space left on device: .*{re.escape(str(small_tmpfs))}/", lines[0]), err
    assert "Traceback" not in out + err
    assert_complete_means_complete(remote, root, man, CAP)  # nothing that looks complete is not
    filler.unlink()
    again = run_upload(args)
    assert again.returncode == 0, again.stdout + again.stderr
    verify_version(remote, root, man, CAP)


# -- progress that tells the truth -------------------------------------------------------------


def test_totals_come_from_the_whole_plan_from_the_first_line_and_a_rerun_says_what_it_resumes(version, tmp_path):
    root, man = version
    remote = tmp_path / "remote"
    args = [*args_for(version, str(remote), tmp_path), "--progress-interval", "0.05", "--transfers", "2"]
    plan = expected_plan(root, man, CAP)
    roots = (root / "list.txt").stat().st_size + (root.parent / "v22p12_stocktake.csv").stat().st_size
    total = sum(p.size for sp in plan.sets for p in sp.parts) + roots
    n_files = sum(len(sp.parts) for sp in plan.sets) + 2
    killed = run_upload(args, env={"CS_SYNC_TEST_KILL_AFTER": "checked:6", "RCLONE_BWLIMIT": "1M"})
    assert killed.returncode == -9
    status = [ln for ln in killed.stdout.splitlines() if re.match(r"\[\d\d:\d\d:\d\d \+\d+ ?s\] upload ", ln)]
    assert status, killed.stdout
    m = re.search(r"upload (\d+)/(\d+), (.+?)/(.+?) \(\d+%\)", status[0])
    assert m and int(m.group(2)) == n_files and m.group(4) == format_size(total), (status[0], total)
    log = log_of(tmp_path)
    assert status[0].split("] ", 1)[1] in log  # the same status lines in upload.log
    assert "directory not found" not in log and "Attempt 1/3" not in log  # a first upload: no alarming lines
    checked = sum(1 for j in (tmp_path / "scratch/v22p12/journal").glob("*.json")
                  for p in json.loads(j.read_text())["parts"].values() if p["state"] == "checked")
    again = run_upload(args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert re.search(rf"resuming: {checked} part\(s\) already checked, \d+ to go", again.stdout), again.stdout
    verify_version(remote, root, man, CAP)


def test_sidecars_record_the_hashes_and_old_sidecars_stay_readable(version, tmp_path):
    root, man = version
    remote = tmp_path / "remote"
    assert run_upload(args_for(version, str(remote), tmp_path)).returncode == 0
    for j in (remote / "v22p12/_cs_sync").glob("*.json"):
        doc = json.loads(j.read_text())
        for p in doc["parts"]:
            assert set(p["hashes"]) == {"sha256"} and p["hashes"]["sha256"] == p["sha256"]
            p.pop("hashes")  # how sidecars written before streaming look
        j.write_text(json.dumps(doc))
        SetSidecar.from_json(j.read_text())
    again = run_upload(args_for(version, str(remote), tmp_path))
    assert again.returncode == 0 and sets_line(again.stdout)["skipped"] == 8, again.stdout + again.stderr


# -- Dropbox settings -----------------------------------------------------------------------


def test_a_dropbox_remote_gets_rclones_large_upload_settings_unless_the_config_sets_them(tmp_path, monkeypatch):
    from cs_sync.remote.rclone import Rclone
    from cs_sync.upload.engine import _tuning

    conf = tmp_path / "rclone.conf"
    conf.write_text("[mine]\ntype = dropbox\nchunk_size = 64Mi\ntoken = {\"access_token\":\"x\"}\n")
    monkeypatch.setenv("RCLONE_CONFIG", str(conf))
    monkeypatch.setenv("RCLONE_CONFIG_ENVDBX_TYPE", "dropbox")
    logged: list[str] = []
    rc = Rclone(log=logged.append)
    assert rc.remote_type("envdbx:Cybershake") == "dropbox" and rc.remote_type("mine:") == "dropbox"
    assert rc.remote_type(":webdav,url='http://x:1':p") == "webdav" and rc.remote_type(str(tmp_path)) == "local"
    assert rc.remote_type("nosuch:x") is None
    assert "chunk_size" in rc.config_keys("mine") and not any("access_token" in ln for ln in logged)
    t = _tuning(rc, "envdbx:Cybershake", "dropbox", logged.append)
    assert t.rcat == ["--dropbox-chunk-size", "148Mi"] and "--dropbox-batch-mode" in t.batch
    assert any(ln.startswith("Dropbox remote: adding --dropbox-chunk-size 148Mi") for ln in logged)
    assert _tuning(rc, "mine:Cybershake", "dropbox", logged.append).rcat == []  # the user's chunk size stays


# -- Ctrl-C -----------------------------------------------------------------------------------


def _checked_parts(scratch: Path) -> dict[str, set[str]]:
    """Set -> parts its journal records as checked, for the sets not finished (no sidecar yet)."""
    out: dict[str, set[str]] = {}
    for j in (scratch / "v22p12" / "journal").glob("*.json"):
        try:
            doc = json.loads(j.read_text())
        except (OSError, ValueError):  # being replaced this instant
            continue
        if not doc.get("done"):
            out[doc["set"]] = {p for p, rec in doc["parts"].items() if rec["state"] == "checked"}
    return out


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM", "SIGHUP"])
def test_ctrl_c_mid_run_keeps_the_checked_parts_and_the_rerun_does_not_send_them_again(version, tmp_path, sig):
    """Ctrl-C (SIGINT to the terminal's process group), Slurm's SIGTERM or a closed screen window or
    ssh session (SIGHUP to the group) in the middle of a run: exit 130 with "interrupted" and no
    FAILED lines, the lock released (a re-run from another login node must not find it), nothing
    unchecked under a final name; the
    same command then resumes with exactly the parts recorded as checked, and sends only the others."""
    root, man = version
    remote = tmp_path / "remote"
    args = [*args_for(version, str(remote), tmp_path), "--transfers", "2"]
    proc = start_upload([*args, "--bwlimit", "150K"])  # slow enough to stop it in the middle
    deadline = time.monotonic() + 120
    try:
        while sum(map(len, _checked_parts(tmp_path / "scratch").values())) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        os.killpg(proc.pid, getattr(signal, sig))
        out, err = proc.communicate(timeout=60)
    finally:
        kill_group(proc)
    assert proc.returncode == 130, out + err
    assert "interrupted" in err and "Traceback" not in out + err and "FAILED" not in out + err, out + err
    assert not list((tmp_path / "scratch").rglob("*.lock")), list((tmp_path / "scratch").rglob("*"))
    assert_complete_means_complete(remote, root, man, CAP)
    kept = _checked_parts(tmp_path / "scratch")
    n_kept = sum(map(len, kept.values()))
    assert n_kept >= 3
    again = run_upload(args)
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"resuming: {n_kept} part(s) already checked" in again.stdout, again.stdout
    summary = re.search(rf"parts: (\d+) uploaded and checked .*, {n_kept} already uploaded by an interrupted run",
                        again.stdout)
    assert summary, again.stdout
    to_go = re.search(r"resuming: \d+ part\(s\) already checked, (\d+) to go", again.stdout)
    assert to_go and to_go.group(1) == summary.group(1), again.stdout  # parts, as the summary counts them
    sent = set(re.findall(r"uploaded and checked (\S+)", log_of(tmp_path).split("resuming:")[-1]))
    kept_paths = {f"{s.split('_')[0]}/{p}" for s, parts in kept.items() for p in parts}
    assert sent and kept_paths and not kept_paths & sent, (kept_paths, sent)  # the rest sent, none twice
    verify_version(remote, root, man, CAP)
