"""A network blip at an upload's first listing is waited out; a remote that stays down is exit 6.

The remote is a real loopback ``rclone serve webdav``, killed before the upload
starts. rclone's low-level retries are set to 1 so its own retries end at once;
the tool's bounded retry of the listing (``CS_SYNC_RETRY_WAITS``) is what is tested.
"""

from __future__ import annotations

import time

from cybershake_tree import FaultSpec
from manifests import write_tree_manifest
from upload_checks import assert_complete_means_complete, run_upload, start_upload, verify_version

CAP = 64 * 1024
FAULTS = [FaultSpec("AlpineK2T", rels=2, median=True, bb_size=30_000)]


def _env(srv, waits: str) -> dict[str, str]:
    return {**srv.env, "RCLONE_LOW_LEVEL_RETRIES": "1", "CS_SYNC_RETRY_WAITS": waits}


def test_blip_at_the_first_listing_is_retried(make_tree, webdav, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    webdav.kill()
    scratch = tmp_path / "scratch"
    args = [root, man, "--remote", webdav.remote + "archive", "--tmp_dir", scratch, "--max-size", CAP]
    proc = start_upload(args, env=_env(webdav, ",".join(["1"] * 20)))
    log = scratch / root.name / "upload.log"
    deadline = time.monotonic() + 60
    while not (log.is_file() and "trying again" in log.read_text()):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the listing was not retried"
        time.sleep(0.05)
    webdav.restart()  # the remote is back while the tool waits
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "remote unreachable" in log.read_text() and "connection refused" in log.read_text()
    verify_version(webdav.root / "archive", root, man, CAP)


def test_remote_down_for_good_exits_6_after_bounded_retries(make_tree, webdav, tmp_path):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    webdav.kill()
    scratch = tmp_path / "scratch"
    t0 = time.monotonic()
    proc = run_upload([root, man, "--remote", webdav.remote + "archive", "--tmp_dir", scratch, "--max-size", CAP],
                      env=_env(webdav, "0.3,0.3,0.3"))
    assert proc.returncode == 6, proc.stdout + proc.stderr
    assert time.monotonic() - t0 < 60
    errors = [ln for ln in proc.stderr.splitlines() if ": error: " in ln]
    assert len(errors) == 1 and "remote unreachable" in errors[0] and "connection refused" in errors[0], proc.stderr
    log = (scratch / root.name / "upload.log").read_text()
    # the first call to the remote (making the version folder, then the listing) is what waits
    first = [ln for ln in log.splitlines() if "trying again" in ln
             and (f" creating {webdav.remote}" in ln or f" listing {webdav.remote}" in ln)]
    assert len(first) == 3, log  # one retry per wait given, then it stops
    assert not list(scratch.rglob("*.tar"))  # nothing packed before the remote answered


def _paused_upload(make_tree, webdav, tmp_path, pause_at: str, outage_waits: str):
    """An upload of two faults, one file per stream, paused at ``pause_at`` (the remote
    then goes away): (cs_root, manifest, args, scratch, pause folder, process)."""
    root, _ = make_tree([FaultSpec("AlpineK2T", rels=3, median=True, bb_size=30_000),
                         FaultSpec("Hope1888", rels=2, median=False, bb_size=30_000)])
    man = write_tree_manifest(root)
    scratch, pause = tmp_path / "scratch", tmp_path / "pause"
    pause.mkdir()
    args = [root, man, "--remote", webdav.remote + "archive", "--tmp_dir", scratch, "--max-size", CAP,
            "--transfers", "1"]
    # each file by its own stream, so the parts after the outage are streams cut or refused
    proc = start_upload(args, env={**_env(webdav, "0.2,0.2"), "CS_SYNC_SMALL_FILE": "0",
                                   "CS_SYNC_OUTAGE_WAITS": outage_waits,
                                   "CS_SYNC_TEST_PAUSE_AT": pause_at, "CS_SYNC_TEST_PAUSE_DIR": str(pause)})
    deadline = time.monotonic() + 120
    while not (pause / "paused").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    return root, man, args, scratch, pause, proc


def test_remote_gone_mid_run_stops_it_with_one_line_and_no_failed_sets_then_the_rerun_finishes(
        make_tree, webdav, tmp_path):
    root, man, args, _, pause, proc = _paused_upload(make_tree, webdav, tmp_path, "checked", "0.3,0.3")
    webdav.kill()  # gone for longer than the run's retries
    (pause / "resume").write_text("")
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 6, out + err
    errors = [ln for ln in err.splitlines() if ln.strip()]
    assert len(errors) == 1 and "remote unreachable" in errors[0], err
    assert "FAILED" not in out, out  # the sets did not fail: the remote went away
    webdav.restart()
    assert_complete_means_complete(webdav.root / "archive", root, man, CAP)
    again = run_upload(args, env=webdav.env)
    assert again.returncode == 0, again.stdout + again.stderr
    verify_version(webdav.root / "archive", root, man, CAP)


def test_remote_down_for_a_while_mid_run_is_waited_out_and_the_run_finishes(make_tree, webdav, tmp_path):
    root, man, _, scratch, pause, proc = _paused_upload(make_tree, webdav, tmp_path, "uploaded",
                                                         ",".join(["0.5"] * 120))
    deadline = time.monotonic() + 120
    # the first file is on the remote, not yet checked (one sender: nothing else in flight)
    webdav.kill()  # an outage: every request refused, longer than a file's attempts
    (pause / "resume").write_text("")
    log = scratch / root.name / "upload.log"
    while "the remote does not answer" not in log.read_text():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    time.sleep(1.0)
    webdav.restart()  # the outage ends while the run waits
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, out + err
    assert "FAILED" not in out and "the remote answers again" in log.read_text()
    verify_version(webdav.root / "archive", root, man, CAP)
