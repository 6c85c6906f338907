"""A remote given as a connection string with credentials: they appear in nothing the tool writes.

The remote is a loopback ``rclone serve webdav --user --pass``; the tool gets it as
``:webdav,url='...',user=...,pass=<rclone obscure>:archive``. Upload, status (table,
JSON, versions), the HTML report, download (whole sets and ``--rel``), failures that quote the remote
(a wrong port, a password that is not obscured), ``--debug`` runs, and the Slurm
rendering (``cs-sync slurm upload|download --dry-run``, whose array and summary
scripts are then run by hand as the jobs would) all run as real commands. Every file they wrote and
everything they printed is searched for the secret values: only the run folder's
0600 ``remote`` file may hold them.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from cybershake_tree import FaultSpec
from dl_helpers import script
from manifests import write_tree_manifest
from servers import free_port

USER = "csuser4217"
PLAIN = "Plain-Secret-8813"
TOKEN = "Bearer-Token-5521"


@pytest.fixture
def secured(tmp_path, rclone_bin):
    """(served folder, connection string, the secret values) of a webdav server with user/pass."""
    root = tmp_path / "served"
    root.mkdir()
    port = free_port()
    proc = subprocess.Popen([rclone_bin, "serve", "webdav", str(root), "--addr", f"127.0.0.1:{port}",
                             "--user", USER, "--pass", PLAIN], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    import socket
    import time

    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline and proc.poll() is None, "webdav server did not start"
            time.sleep(0.1)
    obscured = subprocess.run([rclone_bin, "obscure", PLAIN], capture_output=True, text=True, check=True).stdout.strip()
    url = f"http://127.0.0.1:{port}"
    yield root, url, obscured, port
    proc.kill()
    proc.wait()


def conn(url: str, obscured: str, *, token: bool = False) -> str:
    return f":webdav,url='{url}',user={USER},pass={obscured}" + (f",bearer_token={TOKEN}" if token else "") + ":archive"


class Runs:
    """Runs the real commands, keeping everything they printed."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.printed: list[tuple[str, str]] = []

    def __call__(self, cmd: str, *args, ok=(0,), **kw) -> subprocess.CompletedProcess:
        proc = subprocess.run([script(cmd), *map(str, args)], capture_output=True, text=True, env=self.env,
                              timeout=300, **kw)
        self.printed.append((f"{cmd} {args}", proc.stdout + proc.stderr))
        assert proc.returncode in ok, proc.stdout + proc.stderr
        return proc


def _files(*roots: Path) -> list[Path]:
    return sorted(p for r in roots if r.exists() for p in r.rglob("*") if p.is_file() and not p.is_symlink())


def test_credentials_appear_nowhere(secured, make_tree, tmp_path):
    served, url, obscured, port = secured
    secrets = [obscured, PLAIN, TOKEN, USER]
    remote = conn(url, obscured)
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
           "CS_SYNC_RETRY_WAITS": "0.1", "RCLONE_LOW_LEVEL_RETRIES": "1"}
    env.pop("CS_SYNC_REMOTE", None)
    run = Runs(env)
    root, _ = make_tree([FaultSpec("AlpineK2T", rels=2, median=True, bb_size=30_000),
                         FaultSpec("Hope1888", rels=1, bb_size=20_000)])
    man = write_tree_manifest(root)
    scratch, dl, dl_rel, runs = tmp_path / "scratch", tmp_path / "dl", tmp_path / "dl_rel", tmp_path / "runs"
    v = root.name

    # upload (and --debug: the rclone commands are printed), status, download
    run("cs-sync-upload", root, man, "--remote", remote, "--tmp_dir", scratch, "--max-size", 65536, "--debug")
    assert (served / "archive" / v / "list.txt").is_file()  # the credentials worked
    run("cs-sync-upload", root, man, "--remote", remote, "--tmp_dir", scratch, "--max-size", 65536, "--dry-run")
    run("cs-sync", "status", "--remote", remote)
    run("cs-sync", "status", v, "--remote", remote, "--manifest", man)
    run("cs-sync", "status", v, "--remote", remote, "--json", "--debug")
    run("cs-sync", "report", v, "--remote", remote, "-o", tmp_path / "reports" / "page.html")
    run("cs-sync", "report", "--all", "--remote", remote, "-o", tmp_path / "reports" / "all")
    run("cs-sync-download", v, "--remote", remote, "--download_dir", dl)
    run("cs-sync-download", v, "--remote", remote, "--download_dir", dl_rel, "-t", "BB", "--rel", "1", "--debug")
    assert list(dl.glob("AlpineK2T/BB/*")) and list(dl_rel.glob("AlpineK2T/BB/*"))

    # failures that quote the remote: nothing listens there; the password is not obscured
    dead = conn(f"http://127.0.0.1:{free_port()}", obscured, token=True)
    p = run("cs-sync-download", v, "--remote", dead, "--download_dir", tmp_path / "dl_dead", ok=(6,))
    assert "unreachable" in p.stderr and "pass=XXX" in p.stderr
    run("cs-sync", "status", v, "--remote", conn(url, PLAIN), ok=(6,))
    run("cs-sync-upload", root, man, "--remote", dead, "--tmp_dir", tmp_path / "scratch_dead", ok=(6,))

    # Slurm: rendering, and the rendered upload script run by hand as task 0 of 2 would run
    up_run, down_run = runs / "up", runs / "down"
    run("cs-sync", "slurm", "upload", root, man, "--tasks", "2", "--dry-run", "--run-dir", up_run,
        "--remote", conn(url, obscured, token=True), "--tmp_dir", scratch, "--max-size", 65536)
    run("cs-sync", "slurm", "download", v, "--tasks", "2", "--dry-run", "--run-dir", down_run,
        "--remote", remote, "--download_dir", tmp_path / "dl_slurm")
    for d in (up_run, down_run):
        f = d / "remote"
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert "CS_REMOTE_FILE=" in (d / "summary.sl").read_text()
    assert (up_run / "remote").read_text() == conn(url, obscured, token=True)
    (up_run / "remote").write_text(remote)  # the task itself needs working credentials (no token)
    for i in (0, 1):
        task = subprocess.run(["bash", str(up_run / "upload_array.sl")], capture_output=True, text=True, timeout=300,
                              env={**env, "SLURM_ARRAY_TASK_ID": str(i)})
        run.printed.append((f"upload_array.sl task {i}", task.stdout + task.stderr))
        assert task.returncode == 0, task.stdout + task.stderr
        assert (up_run / "tasks" / f"upload_{i}.exit").read_text().strip() == "0"
    # the summary job reads the same file for its `cs-sync status`, and finds the version complete
    summary = subprocess.run(["bash", str(up_run / "summary.sl")], capture_output=True, text=True, timeout=300, env=env)
    run.printed.append(("summary.sl", summary.stdout + summary.stderr))
    assert summary.returncode == 0, summary.stdout + summary.stderr
    assert (up_run / "status.json").is_file() and (up_run / "report.txt").is_file()

    allowed = {up_run / "remote", down_run / "remote"}
    written = [f for f in _files(scratch, tmp_path / "scratch_dead", dl, dl_rel, tmp_path / "dl_dead", runs,
                                 tmp_path / "reports", served / "archive") if f not in allowed]
    assert len(written) > 30, written  # logs, journals, state files, scripts, run.json, the remote's files
    assert any(f.name == "upload.log" for f in written) and any(f.name == "cs_sync_download.log" for f in written)
    assert {"run.json", "upload_array.sl", "summary.sl", "download_array.sl", "page.html", "index.html"} <= {
        f.name for f in written}
    leaks = [(str(f), s) for f in written for s in secrets if s.encode() in f.read_bytes()]
    leaks += [(what, s) for what, text in run.printed for s in secrets if s in text]
    assert not leaks, leaks
    assert any("pass=XXX" in text for _, text in run.printed)  # the remote is shown, redacted
