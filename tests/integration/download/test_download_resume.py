"""A download killed with SIGKILL at any moment is finished by running the same command again.

The command runs as a child process over a bandwidth-limited WebDAV remote; it is
killed (with its rclone children: the whole process group, as a Slurm job kill or
a lost login session would) while a part is being transferred, while a member is
being written during extraction, and between parts; each time the same command is
started again. The last run must end with exit 0 and byte-exact files, and nothing
half-done left behind.
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
from servers import start_webdav

V = "v1"
FAULTS = [FaultSpec("AlpineK2T", rels=3, median=True, bb_size=3_000_000),
          FaultSpec("Hope1888", rels=2, median=False, bb_size=2_000_000)]


def _start(args):
    return subprocess.Popen([script("cs-sync-download"), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=_env(), start_new_session=True)


def _kill_when(proc, seen, what, limit=120.0):
    """Poll as fast as we can for ``seen()``; SIGKILL the group the moment it is true."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if seen():
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            return
        if proc.poll() is not None:
            pytest.fail(f"the download ended (exit {proc.returncode}) before {what} was seen: {proc.stderr.read()}")
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail(f"{what} not seen within {limit}s")


def _any(root: Path, pred) -> bool:
    for dirpath, _dirs, files in os.walk(root):
        for f in files:
            if pred(dirpath, f):
                return True
    return False


@contextlib.contextmanager
def _throttled_webdav(tmp_path: Path, rclone_bin: str, bwlimit: str):
    """A loopback WebDAV remote served at ``bwlimit``, configured in this process's environment."""
    srv = start_webdav(rclone_bin, tmp_path / "served", extra=["--bwlimit", bwlimit])
    os.environ.update(srv.env)
    try:
        yield srv
    finally:
        srv.stop()
        for k in srv.env:
            os.environ.pop(k, None)


def _wait_for_partial(proc, ddir: Path, limit: float = 60.0) -> None:
    """Wait until a transfer is under way (a ``.partial`` file exists), the command ends, or ``limit`` passes."""
    deadline = time.monotonic() + limit
    while not _any(ddir, lambda d, f: ".partial" in f) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.01)


@pytest.mark.parametrize("sidecar", [True, False])
def test_sigkill_during_transfer_and_extraction_then_rerun(tmp_path, rclone_bin, sidecar):
    tree = make_source_tree(tmp_path, FAULTS)
    with _throttled_webdav(tmp_path, rclone_bin, "6M") as srv:
        built = write_version(tree, srv.root, V, [f.name for f in FAULTS], max_part=7_000_000, sidecar=sidecar)
        ddir = tmp_path / "dl"
        args = [V, "--remote", srv.remote, "--download_dir", str(ddir), "--transfers", "2"]

        proc = _start(args)  # 1: while rclone is writing a part
        _kill_when(proc, lambda: _any(ddir, lambda d, f: ".partial" in f and not d.endswith("cs_sync_partial")),
                   "a part being transferred")

        proc = _start(args)  # 2: while a member is being written into a staging folder
        _kill_when(proc, lambda: _any(ddir, lambda d, f: f.endswith(".cs_sync_tmp")), "a member being extracted")

        proc = _start(args)  # 3: after a part was recorded as extracted, before the run ends
        ok_log = ddir / "tar_ok.log"
        before = len(ok_log.read_text().splitlines()) if ok_log.exists() else 0
        _kill_when(proc, lambda: ok_log.exists() and len(ok_log.read_text().splitlines()) > before,
                   "one more part recorded as done")

        proc = _start(args)  # 4: to the end
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        assert assert_tree_matches(ddir, built) == sum(len(f) for f in built.sets.values())
        leftovers = [str(p) for p in ddir.rglob("*") if ".partial" in p.name or p.name.endswith(".cs_sync_tmp")]
        assert not leftovers
        lines = ok_log.read_text().splitlines()
        assert len({ln.split("\t")[2] for ln in lines}) == sum(len(p) for p in built.parts.values())


def test_ctrl_c_exits_130_with_one_line_and_rerun_finishes(tmp_path, rclone_bin):
    tree = make_source_tree(tmp_path, FAULTS[:1])
    with _throttled_webdav(tmp_path, rclone_bin, "4M") as srv:
        built = write_version(tree, srv.root, V, ["AlpineK2T"], max_part=7_000_000)
        ddir = tmp_path / "dl"
        args = [V, "--remote", srv.remote, "--download_dir", str(ddir)]
        proc = _start(args)
        _wait_for_partial(proc, ddir)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130
        assert err.decode().strip().splitlines() == ["cs-sync-download: interrupted; re-run the same command to continue"]
        assert not (ddir / "tar_error.log").exists()  # an interruption is not a failure of any set
        proc = _start(args)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        assert_tree_matches(ddir, built)


def _processes_mentioning(text: str) -> list[int]:
    out = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if text.encode() in (d / "cmdline").read_bytes():
                    out.append(int(d.name))
            except OSError:
                pass
    return out


def test_sigterm_to_the_command_alone_stops_its_transfers(tmp_path, rclone_bin):
    """Slurm's time limit sends SIGTERM: the command stops its rclone children and exits 130."""
    tree = make_source_tree(tmp_path, FAULTS[:1])
    with _throttled_webdav(tmp_path, rclone_bin, "1M") as srv:
        built = write_version(tree, srv.root, V, ["AlpineK2T"], max_part=7_000_000)
        ddir = tmp_path / "dl_sigterm"
        args = [V, "--remote", srv.remote, "--download_dir", str(ddir)]
        proc = _start(args)
        _wait_for_partial(proc, ddir)
        os.kill(proc.pid, signal.SIGTERM)  # the command only, not its process group
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err.decode()
        assert "interrupted; re-run the same command to continue" in err.decode()
        assert _processes_mentioning(str(ddir)) == []  # no rclone left fetching into the folder
        # the 6 MB parts (1 MiB/s) were stopped, not waited for: none of them arrived
        assert not list(ddir.glob("AlpineK2T/AlpineK2T_BB_*.tar"))
        assert not (ddir / "tar_error.log").exists()
        proc = _start(args)
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err.decode()
        assert_tree_matches(ddir, built)
