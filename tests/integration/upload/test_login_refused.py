"""A login the remote stops accepting in the middle of a long upload (a Dropbox token that
expired or was revoked, a password changed): the run stops at once with one line saying so
(exit 6), instead of failing every remaining set one by one after three attempts each; once
the login works again, the same command finishes the version.

The remote is a real ``rclone serve webdav`` with a user and password, restarted on the same
port with another password while the upload runs: every request then gets 401 Unauthorized.
"""

from __future__ import annotations

import subprocess
import time

from cybershake_tree import FaultSpec
from manifests import write_tree_manifest
from servers import serving, start_webdav
from upload_checks import assert_complete_means_complete, run_upload, start_upload, verify_version

CAP = 64 * 1024
FAULTS = [FaultSpec("AlpineK2T", rels=3, median=True, bb_size=30_000),
          FaultSpec("Hope1888", rels=2, median=False, bb_size=20_000)]


def test_a_login_refused_mid_run_stops_it_with_one_line_then_the_rerun_finishes(make_tree, tmp_path, rclone_bin,
                                                                                monkeypatch):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    with serving(start_webdav(rclone_bin, tmp_path / "dav", extra=["--user", "cs", "--pass", "right"]),
                 monkeypatch) as srv:
        obscured = subprocess.run([rclone_bin, "obscure", "right"], capture_output=True, text=True,
                                  check=True).stdout.strip()
        monkeypatch.setenv("RCLONE_CONFIG_CSDAV_USER", "cs")
        monkeypatch.setenv("RCLONE_CONFIG_CSDAV_PASS", obscured)
        args = [root, man, "--remote", srv.remote + "archive", "--tmp_dir", tmp_path / "scratch",
                "--max-size", str(CAP), "--transfers", "1"]
        pause = tmp_path / "pause"
        pause.mkdir()
        proc = start_upload(args, env={"CS_SYNC_TEST_PAUSE_AT": "checked", "CS_SYNC_TEST_PAUSE_DIR": str(pause)})
        deadline = time.monotonic() + 120
        while not (pause / "paused").exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.02)
        right = list(srv.cmd or [])
        srv.stop()
        srv.cmd = [("changed" if a == "right" else a) for a in right]  # the login no longer works
        srv.restart()
        (pause / "resume").write_text("")
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 6, out + err
        errors = [ln for ln in err.splitlines() if ln.strip()]
        assert len(errors) == 1 and "refused the login" in errors[0] and "401" in errors[0], err
        assert "rclone config reconnect" in errors[0]
        assert "FAILED" not in out, out  # not one line per remaining set
        assert_complete_means_complete(srv.root / "archive", root, man, CAP)

        srv.stop()
        srv.cmd = right  # the login renewed
        srv.restart()
        again = run_upload(args)
        assert again.returncode == 0, again.stdout + again.stderr
        verify_version(srv.root / "archive", root, man, CAP)
