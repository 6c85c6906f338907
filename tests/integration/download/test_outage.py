"""A remote that dies during a download (whole parts, parts streamed with ``--cleanup``, ranged
reads with ``--rel``), and a download that is stopped.

The remote is a real loopback ``rclone serve webdav`` serving at 1 MiB/s; it is
killed (SIGKILL: connections cut, new ones refused) while a file is coming, and
either started again on the same port or left dead. rclone's own low-level retries
are set to 1 here, so what is tested is the tool's bounded retry after rclone gave
up (``CS_SYNC_RETRY_WAITS``), its wait for a remote that is away for minutes
(``CS_SYNC_OUTAGE_WAITS``, shortened here), and how a remote that stays down is
reported: one line with rclone's words (exit 6), no set "FAILED", never data "truncated".
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from archive_builder import assert_tree_matches, write_version
from cybershake_tree import FaultSpec
from dl_helpers import _env, make_source_tree, script
from servers import start_sftp, start_webdav

V = "v1"
FAULTS = [FaultSpec("AlpineK2T", rels=3, median=True, bb_size=3_000_000)]
REL = ["-t", "BB", "--rel", "2", "3"]  # two 3 MB members by byte range: ~3 s each at 1 MiB/s


@contextlib.contextmanager
def _slow_webdav(tmp_path: Path, rclone_bin: str, kind: str = "webdav"):
    start = start_sftp if kind == "sftp" else start_webdav
    srv = start(rclone_bin, tmp_path / "served", extra=["--bwlimit", "1M"])
    try:
        yield srv
    finally:
        with contextlib.suppress(Exception):
            srv.stop()


def _start(srv, ddir: Path, *extra: str, waits: str = "1,1,1,1,1,1,1,1", outage: str = "0.5,0.5",
           what: list[str] = REL) -> subprocess.Popen:
    env = {**_env(), **srv.env, "RCLONE_LOW_LEVEL_RETRIES": "1", "CS_SYNC_RETRY_WAITS": waits,
           "CS_SYNC_OUTAGE_WAITS": outage}
    return subprocess.Popen([script("cs-sync-download"), V, "--remote", srv.remote, "--download_dir", str(ddir),
                             *what, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                            start_new_session=True, text=True)


def _member_coming(proc: subprocess.Popen, ddir: Path, limit: float = 60.0) -> None:
    """Wait until a member (or a whole part) is being written (some bytes have arrived)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for p in [*ddir.rglob("*.cs_sync_tmp"), *ddir.rglob("*.partial")]:
            try:
                if p.stat().st_size > 100_000:
                    return
            except OSError:
                pass
        if proc.poll() is not None:
            pytest.fail(f"the download ended (exit {proc.returncode}) before a member was coming: "
                        f"{proc.stderr.read()}")
        time.sleep(0.02)
    pytest.fail("no member being fetched")


def _finish(proc: subprocess.Popen, timeout: float = 180) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def test_remote_killed_and_back_mid_member_the_read_is_retried(tmp_path, rclone_bin):
    tree = make_source_tree(tmp_path, FAULTS)
    with _slow_webdav(tmp_path, rclone_bin) as srv:
        built = write_version(tree, srv.root, V, ["AlpineK2T"])
        ddir = tmp_path / "dl"
        proc = _start(srv, ddir)
        _member_coming(proc, ddir)
        srv.kill()
        time.sleep(2.0)  # rclone (1 low-level retry) gives up; the tool waits and tries again
        srv.restart()
        code, out, err = _finish(proc)
        log = (ddir / "cs_sync_download.log").read_text()
    assert code == 0, out + err
    assert "trying again" in log  # the tool's own retry did it, not rclone's
    assert "truncated" not in out + err + log
    wanted = [f.member for f in built.sets[("AlpineK2T", "BB")] if "_REL02" in f.member or "_REL03" in f.member]
    assert len(wanted) == 2
    assert assert_tree_matches(ddir, built, keys=[("AlpineK2T", "BB")], members=wanted) == 2


def test_remote_dead_mid_member_is_a_remote_failure_exit_6(tmp_path, rclone_bin):
    tree = make_source_tree(tmp_path, FAULTS)
    with _slow_webdav(tmp_path, rclone_bin) as srv:
        write_version(tree, srv.root, V, ["AlpineK2T"])
        ddir = tmp_path / "dl"
        proc = _start(srv, ddir, waits="0.5,0.5")
        _member_coming(proc, ddir)
        srv.kill()
        code, out, err = _finish(proc)
        log = (ddir / "cs_sync_download.log").read_text()
    assert code == 6, out + err
    errors = [ln for ln in err.splitlines() if ": error: " in ln]
    assert len(errors) == 1 and "Traceback" not in err, err
    assert "remote unreachable" in errors[0] or "remote failed" in errors[0], errors[0]
    # rclone's own words reach the user (stdout) and the log
    said = ("connection refused", "unexpected EOF", "connection reset")
    assert any(s in out for s in said) and any(s in log for s in said), out
    assert "truncated" not in out + err + log
    assert log.count("trying again") >= 2  # bounded: the two waits given, then it stops
    assert not list(ddir.glob("AlpineK2T/BB/*"))  # nothing under a final name


@pytest.mark.parametrize("how", ["SIGTERM", "SIGINT to the group"])
def test_stopped_during_ranged_reads_says_interrupted_and_nothing_failed(tmp_path, rclone_bin, how):
    tree = make_source_tree(tmp_path, FAULTS)
    with _slow_webdav(tmp_path, rclone_bin) as srv:
        write_version(tree, srv.root, V, ["AlpineK2T"])
        ddir = tmp_path / "dl"
        proc = _start(srv, ddir)
        _member_coming(proc, ddir)
        if how == "SIGTERM":
            os.kill(proc.pid, signal.SIGTERM)  # the command alone (Slurm's time limit, scancel)
        else:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C in a terminal: rclone gets it too
        code, out, err = _finish(proc, timeout=60)
    assert code == 130, out + err
    assert err.strip().splitlines() == ["cs-sync-download: interrupted; re-run the same command to continue"], err
    assert "FAILED" not in out and "truncated" not in out, out
    assert not (ddir / "tar_error.log").exists()


# the three ways bytes come down: one rclone copy of whole parts, each part streamed and
# extracted as it arrives (--cleanup), members by byte range (--rel)
HOW = {"whole parts": ["-t", "BB"], "--cleanup streams": ["-t", "BB", "--cleanup"], "--rel ranges": REL}


def _wait_for_line(proc: subprocess.Popen, log: Path, needle: str, limit: float = 90.0) -> None:
    deadline = time.monotonic() + limit
    while not (log.is_file() and needle in log.read_text()):
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"no {needle!r} in the log: {proc.communicate()}")
        time.sleep(0.05)


def _assert_fetched_whole(ddir, built, how: str) -> None:
    """What the run asked for is there, byte for byte (the two realisations for --rel), and no
    temporary or partial file is left."""
    members = None if how != "--rel ranges" else [
        f.member for f in built.sets[("AlpineK2T", "BB")] if "_REL02" in f.member or "_REL03" in f.member]
    want = members or [f.member for f in built.sets[("AlpineK2T", "BB")]]
    assert assert_tree_matches(ddir, built, keys=[("AlpineK2T", "BB")], members=want) == len(want)
    assert not list(ddir.rglob("*.cs_sync_tmp")) and not list(ddir.rglob("*.partial"))


@pytest.mark.parametrize("how", list(HOW))
def test_remote_away_for_a_while_mid_download_is_waited_out(tmp_path, rclone_bin, how):
    """Longer than rclone's retries and the tool's short ones: the run waits, then fetches what was cut."""
    tree = make_source_tree(tmp_path, FAULTS)
    with _slow_webdav(tmp_path, rclone_bin) as srv:
        built = write_version(tree, srv.root, V, ["AlpineK2T"])
        ddir = tmp_path / "dl"
        proc = _start(srv, ddir, waits="0.2", outage=",".join(["0.5"] * 120), what=HOW[how])
        _member_coming(proc, ddir)
        srv.kill()
        _wait_for_line(proc, ddir / "cs_sync_download.log", "the remote does not answer")
        time.sleep(3.0)  # away for several of the run's waits
        srv.restart()
        code, out, err = _finish(proc)
        log = (ddir / "cs_sync_download.log").read_text()
    assert code == 0, out + err
    assert "the remote answers again" in out and "the remote answers again" in log, out
    assert not [ln for ln in out.splitlines() if ln.startswith("FAILED")], out
    assert "truncated" not in out + err + log
    _assert_fetched_whole(ddir, built, how)


@pytest.mark.parametrize("how", list(HOW))
def test_remote_gone_for_good_mid_download_is_one_line_exit_6_and_no_failed_set(tmp_path, rclone_bin, how):
    faults = [*FAULTS, FaultSpec("Hope1888", rels=2, median=False, bb_size=3_000_000)]
    tree = make_source_tree(tmp_path, faults)
    with _slow_webdav(tmp_path, rclone_bin) as srv:
        built = write_version(tree, srv.root, V, ["AlpineK2T", "Hope1888"])
        ddir = tmp_path / "dl"
        proc = _start(srv, ddir, waits="0.2", outage="0.3,0.3", what=HOW[how])
        _member_coming(proc, ddir)
        srv.kill()
        code, out, err = _finish(proc)
        log = (ddir / "cs_sync_download.log").read_text()
        assert code == 6, out + err
        errors = [ln for ln in err.splitlines() if ln.strip()]
        assert len(errors) == 1 and "remote unreachable" in errors[0] and "Traceback" not in err, err
        assert not [ln for ln in out.splitlines() if ln.startswith("FAILED")], out  # no set failed: the remote went
        assert " 0 failed" in out and "not attempted" in out, out
        assert log.count("asking again in 0.3 s") == 2, log  # the waits given, then it stops
        assert not (ddir / "tar_error.log").exists() or not (ddir / "tar_error.log").read_text().strip()
        assert not list(ddir.glob("*/BB"))  # nothing under a final name
        srv.restart()
        proc = _start(srv, ddir, what=HOW[how])
        code, out, err = _finish(proc)
    assert code == 0, out + err
    keys = [("AlpineK2T", "BB"), ("Hope1888", "BB")]
    if how == "--rel ranges":
        members = [f.member for k in keys for f in built.sets[k] if "_REL02" in f.member or "_REL03" in f.member]
        assert assert_tree_matches(ddir, built, keys=keys, members=members) == len(members)
    else:
        assert assert_tree_matches(ddir, built, keys=keys) == sum(len(built.sets[k]) for k in keys)


@pytest.mark.parametrize("how", ["whole parts", "--rel ranges"])
def test_a_login_refused_mid_download_stops_it_with_one_line_then_the_rerun_finishes(tmp_path, rclone_bin, how):
    """A Dropbox token that expired or was revoked, a password changed (webdav restarted with
    another password while a file is coming: every request gets 401): one line saying what to
    do, exit 6, no set FAILED, nothing under a final name; the same command finishes later."""
    tree = make_source_tree(tmp_path, FAULTS)
    srv = start_webdav(rclone_bin, tmp_path / "served", extra=["--bwlimit", "1M", "--user", "cs", "--pass", "right"])
    try:
        built = write_version(tree, srv.root, V, ["AlpineK2T"])
        obscured = subprocess.run([rclone_bin, "obscure", "right"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        srv.env = {**srv.env, "RCLONE_CONFIG_CSDAV_USER": "cs", "RCLONE_CONFIG_CSDAV_PASS": obscured}
        ddir = tmp_path / "dl"
        proc = _start(srv, ddir, what=HOW[how])
        _member_coming(proc, ddir)
        right = list(srv.cmd or [])
        srv.kill()
        srv.cmd = [("changed" if a == "right" else a) for a in right]  # the login no longer works
        srv.restart()
        code, out, err = _finish(proc)
        assert code == 6, out + err
        errors = [ln for ln in err.splitlines() if ln.strip()]
        assert len(errors) == 1 and "refused the login" in errors[0] and "rclone config reconnect" in errors[0], err
        assert not [ln for ln in out.splitlines() if ln.startswith("FAILED")], out
        assert not list(ddir.glob("*/BB"))  # nothing under a final name
        srv.kill()
        srv.cmd = right  # the login renewed
        srv.restart()
        code, out, err = _finish(_start(srv, ddir, what=HOW[how]))
    finally:
        srv.stop()
    assert code == 0, out + err
    members = None if how != "--rel ranges" else [
        f.member for f in built.sets[("AlpineK2T", "BB")] if "_REL02" in f.member or "_REL03" in f.member]
    want = members or [f.member for f in built.sets[("AlpineK2T", "BB")]]
    assert assert_tree_matches(ddir, built, keys=[("AlpineK2T", "BB")], members=want) == len(want)


@pytest.mark.parametrize("how", list(HOW))
@pytest.mark.parametrize(("event", "kind"), [("connections cut", "webdav"), ("connections cut", "sftp"),
                                             ("suspended (a laptop lid closed)", "webdav")])
def test_connections_cut_mid_file_with_the_remote_still_up_are_fetched_again(tmp_path, rclone_bin, how, event, kind):
    """Every connection cut mid-file (the server restarted at once, or the process stopped with
    SIGSTOP while the link went and came back, then SIGCONT): after rclone gave up, the remote
    answers at once, so what was cut is fetched again; no set fails. (SFTP says "connection lost".)"""
    tree = make_source_tree(tmp_path, FAULTS)
    with _slow_webdav(tmp_path, rclone_bin, kind) as srv:
        built = write_version(tree, srv.root, V, ["AlpineK2T"])
        ddir = tmp_path / "dl"
        proc = _start(srv, ddir, waits="0.2", outage="0.5", what=HOW[how])
        _member_coming(proc, ddir)
        if event == "connections cut":
            srv.kill()
            srv.restart()
        else:
            os.killpg(proc.pid, signal.SIGSTOP)
            srv.kill()
            time.sleep(3.0)
            srv.restart()
            os.killpg(proc.pid, signal.SIGCONT)
        code, out, err = _finish(proc)
        log = (ddir / "cs_sync_download.log").read_text()
    assert code == 0, out + err
    assert not [ln for ln in out.splitlines() if ln.startswith("FAILED")], out
    assert "truncated" not in out + err + log
    _assert_fetched_whole(ddir, built, how)


@pytest.mark.parametrize("how", ["whole parts", "--rel ranges"])
def test_ctrl_c_while_waiting_for_the_remote_says_interrupted_and_nothing_failed(tmp_path, rclone_bin, how):
    tree = make_source_tree(tmp_path, FAULTS)
    with _slow_webdav(tmp_path, rclone_bin) as srv:
        write_version(tree, srv.root, V, ["AlpineK2T"])
        ddir = tmp_path / "dl"
        proc = _start(srv, ddir, waits="0.2", outage="60", what=HOW[how])
        _member_coming(proc, ddir)
        srv.kill()
        _wait_for_line(proc, ddir / "cs_sync_download.log", "the remote does not answer")
        t0 = time.monotonic()
        os.killpg(proc.pid, signal.SIGINT)
        code, out, err = _finish(proc, timeout=60)
        assert time.monotonic() - t0 < 30  # the 60 s wait was not sat out
    assert code == 130, out + err
    assert err.strip().splitlines() == ["cs-sync-download: interrupted; re-run the same command to continue"], err
    assert not [ln for ln in out.splitlines() if ln.startswith("FAILED")], out
    assert not (ddir / "tar_error.log").exists() or not (ddir / "tar_error.log").read_text().strip()
    assert not list(ddir.glob("*/BB"))
