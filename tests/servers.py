"""A real network remote for integration tests: ``rclone serve webdav`` on 127.0.0.1.

The remote is configured the way users configure theirs (an rclone config
section), through ``RCLONE_CONFIG_<NAME>_*`` environment variables.
"""

from __future__ import annotations

import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path


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

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_webdav(rclone_bin: str, root: Path, name: str = "csdav", extra: list[str] | None = None) -> WebdavServer:
    """Start a loopback WebDAV server on a random free port and wait until it answers."""
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [rclone_bin, "serve", "webdav", str(root), "--addr", f"127.0.0.1:{port}", *(extra or [])],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("rclone serve webdav exited early") from None
            time.sleep(0.1)
    else:
        proc.kill()
        raise RuntimeError("rclone serve webdav did not start")
    env = {f"RCLONE_CONFIG_{name.upper()}_TYPE": "webdav", f"RCLONE_CONFIG_{name.upper()}_URL": url}
    return WebdavServer(root=root, remote=f"{name}:", url=url, proc=proc, env=env)
