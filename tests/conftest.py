"""Shared fixtures: Cybershake-like trees from a compact description, the real rclone."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT / "tests"))

from cybershake_tree import FaultSpec, make_version  # noqa: E402

# The tests split tiny trees into parts of a few KiB; a user's --max-size below 1 MiB is
# refused (tests/integration/cli/ checks that, with this unset). Subprocesses inherit it.
os.environ.setdefault("CS_SYNC_TEST_MIN_PART_SIZE", "1")


@pytest.fixture
def make_tree(tmp_path):
    """``make_tree([FaultSpec(...)], layout=..., name="v22p12")`` -> (cs_root, list.txt)."""

    def _make(faults: list[FaultSpec], layout: str = "v22p12", name: str = "v22p12"):
        root = tmp_path / name
        lst = make_version(root, faults, layout)
        return root, lst

    return _make


@pytest.fixture(scope="session")
def rclone_bin() -> str:
    from cs_sync.remote.rclone import find_rclone

    return find_rclone()


__all__ = ["FaultSpec"]


@pytest.fixture
def webdav(tmp_path, rclone_bin, monkeypatch):
    """A loopback WebDAV remote; its rclone config is in this process's environment."""
    from servers import serving, start_webdav

    with serving(start_webdav(rclone_bin, tmp_path / "webdav_root"), monkeypatch) as srv:
        yield srv


@pytest.fixture
def sftp(tmp_path, rclone_bin, monkeypatch):
    """A loopback SFTP remote (``rclone serve sftp``: MD5 and SHA-1 computed on the server).

    Its directory cache is off: a real host hashes a file as it is now, and tests change
    files behind the server's back.
    """
    from servers import serving, start_sftp

    with serving(start_sftp(rclone_bin, tmp_path / "sftp_root", extra=["--dir-cache-time", "0s"]), monkeypatch) as srv:
        yield srv


@pytest.fixture
def counted_webdav(tmp_path, rclone_bin, monkeypatch):
    """(server, proxy): a loopback WebDAV server on ``tmp_path/served``, reached as the remote
    ``cspx:`` through a byte counter, so a test sees what crossed the wire, not what rclone says."""
    from byte_proxy import CountingProxy
    from servers import serving, start_webdav

    with serving(start_webdav(rclone_bin, tmp_path / "served", name="cspx"), monkeypatch) as srv:
        proxy = CountingProxy(srv.port)
        for k, v in srv.env_via(proxy.port).items():  # the remote goes through the proxy
            monkeypatch.setenv(k, v)
        try:
            yield srv, proxy
        finally:
            proxy.close()
