"""Real network remotes for tests and benchmarks: ``rclone serve webdav`` / ``sftp`` / ``s3`` on 127.0.0.1.

The remote is configured the way users configure theirs (an rclone config
section), through ``RCLONE_CONFIG_<NAME>_*`` environment variables. ``env_via(port)``
gives the same section pointing at another port, e.g. a ThrottleProxy in front.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SFTP_USER = "cs"
SFTP_PASS = "cs-sync-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class WebdavServer:
    root: Path  # the folder the server serves
    remote: str  # rclone remote name, e.g. "csdav:"
    url: str
    proc: subprocess.Popen
    env: dict[str, str]
    port: int = 0
    env_via: Callable[[int], dict[str, str]] = lambda port: {}  # the config section, at another port
    cmd: list[str] | None = None  # how it was started: restart() runs it again, on the same port

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """Die at once (SIGKILL): connections in flight are cut, new ones refused."""
        self.proc.kill()
        self.proc.wait()

    def restart(self) -> None:
        """Serve again on the same address (after stop() or kill())."""
        assert self.cmd is not None
        self.proc = _launch(self.cmd, self.port)


SftpServer = WebdavServer  # same shape; ``url`` is sftp://127.0.0.1:PORT


def _serve(rclone_bin: str, kind: str, root: Path, args: list[str]) -> tuple[subprocess.Popen, int]:
    """Start ``rclone serve KIND ROOT`` on a free loopback port and wait until it accepts."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    return _launch(_serve_cmd(rclone_bin, kind, root, port, args), port), port


def _serve_cmd(rclone_bin: str, kind: str, root: Path, port: int, args: list[str]) -> list[str]:
    return [rclone_bin, "serve", kind, str(root), "--addr", f"127.0.0.1:{port}", *args]


def _launch(cmd: list[str], port: int) -> subprocess.Popen:
    """Start a server command listening on ``port`` and wait until it accepts."""
    kind = cmd[2]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return proc
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError(f"rclone serve {kind} exited early") from None
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"rclone serve {kind} did not start")


def start_webdav(rclone_bin: str, root: Path, name: str = "csdav", extra: list[str] | None = None) -> WebdavServer:
    """Start a loopback WebDAV server (no hashes) on a random free port and wait until it answers."""
    proc, port = _serve(rclone_bin, "webdav", root, extra or [])
    pre = f"RCLONE_CONFIG_{name.upper()}_"

    def env_via(p: int) -> dict[str, str]:
        return {pre + "TYPE": "webdav", pre + "URL": f"http://127.0.0.1:{p}"}

    return WebdavServer(root=root, remote=f"{name}:", url=f"http://127.0.0.1:{port}", proc=proc, env=env_via(port),
                        port=port, env_via=env_via, cmd=_serve_cmd(rclone_bin, "webdav", root, port, extra or []))


def start_sftp(rclone_bin: str, root: Path, name: str = "cssftp", extra: list[str] | None = None) -> SftpServer:
    """Start a loopback SFTP server (it computes MD5/SHA-1 of the files it holds) with a password login.

    The client section is what ``rclone config`` saves for such a server (shell type and
    hash commands detected once and stored), so no rclone spends round trips detecting them.
    """
    args = ["--user", SFTP_USER, "--pass", SFTP_PASS, *(extra or [])]
    proc, port = _serve(rclone_bin, "sftp", root, args)
    obscured = subprocess.run([rclone_bin, "obscure", SFTP_PASS], capture_output=True, text=True,
                              check=True).stdout.strip()
    pre = f"RCLONE_CONFIG_{name.upper()}_"

    def env_via(p: int) -> dict[str, str]:
        return {pre + "TYPE": "sftp", pre + "HOST": "127.0.0.1", pre + "PORT": str(p), pre + "USER": SFTP_USER,
                pre + "PASS": obscured, pre + "KNOWN_HOSTS_FILE": "none", pre + "SHELL_TYPE": "unix",
                pre + "MD5SUM_COMMAND": "md5sum", pre + "SHA1SUM_COMMAND": "sha1sum"}

    return SftpServer(root=root, remote=f"{name}:", url=f"sftp://127.0.0.1:{port}", proc=proc, env=env_via(port),
                      port=port, env_via=env_via, cmd=_serve_cmd(rclone_bin, "sftp", root, port, args))


S3_KEY = "csaccess"
S3_SECRET = "cs-sync-secret"
S3_BUCKET = "cybershake"


def start_s3(rclone_bin: str, root: Path, name: str = "css3", extra: list[str] | None = None,
             upload_cutoff: str = "64k") -> SftpServer:
    """Start a loopback S3 server (``rclone serve s3``; each top-level folder of ``root`` is a
    bucket, and the bucket ``S3_BUCKET`` is made) with an access key.

    The client section is what a user saves for an S3-compatible store. Its upload cutoff
    is small so that parts of a few dozen KiB go up by multipart upload, as multi-GiB
    parts do against real S3 (the chunk size stays at rclone's 5 MiB minimum). The server
    lists the MD5 of the file it holds as each object's ETag, also for multipart objects.
    """
    (root / S3_BUCKET).mkdir(parents=True, exist_ok=True)
    proc, port = _serve(rclone_bin, "s3", root, ["--auth-key", f"{S3_KEY},{S3_SECRET}", *(extra or [])])
    pre = f"RCLONE_CONFIG_{name.upper()}_"

    def env_via(p: int) -> dict[str, str]:
        return {pre + "TYPE": "s3", pre + "PROVIDER": "Rclone", pre + "ENDPOINT": f"http://127.0.0.1:{p}",
                pre + "ACCESS_KEY_ID": S3_KEY, pre + "SECRET_ACCESS_KEY": S3_SECRET,
                pre + "UPLOAD_CUTOFF": upload_cutoff, pre + "CHUNK_SIZE": "5M"}

    return SftpServer(root=root, remote=f"{name}:", url=f"http://127.0.0.1:{port}", proc=proc, env=env_via(port),
                      port=port, env_via=env_via,
                      cmd=_serve_cmd(rclone_bin, "s3", root, port, ["--auth-key", f"{S3_KEY},{S3_SECRET}",
                                                                     *(extra or [])]))


def hasher_env(name: str, over: str, cache_dir: Path, hashes: str = "dropbox") -> dict[str, str]:
    """A ``hasher`` remote over the remote ``over`` (e.g. ``csdav:``) keeping ``hashes``.

    Asked for a hash it does not have yet, hasher reads the file from the remote under
    it and hashes those bytes (``auto_size``); a hash it took while a file was uploaded
    (``rclone copy``) it keeps until the file's size or mtime changes. Both go in a
    database under ``cache_dir`` (one per test: no stale entries from other runs). It stands in for
    Dropbox in tests: ``rclone backend features`` offers ``dropbox`` only, as a real
    Dropbox remote does, and the hash comes from the bytes the remote holds.
    """
    n = name.upper()
    return {f"RCLONE_CONFIG_{n}_TYPE": "hasher", f"RCLONE_CONFIG_{n}_REMOTE": over,
            f"RCLONE_CONFIG_{n}_HASHES": hashes, f"RCLONE_CONFIG_{n}_MAX_AGE": "off",
            f"RCLONE_CONFIG_{n}_AUTO_SIZE": "1T", "RCLONE_CACHE_DIR": str(cache_dir)}


@contextlib.contextmanager
def serving(srv, monkeypatch):
    """Put ``srv``'s rclone config in this process's environment while it runs; stop it after."""
    for k, v in srv.env.items():
        monkeypatch.setenv(k, v)
    try:
        yield srv
    finally:
        srv.stop()
