"""Shared by the download and status integration tests: small versions, remotes, CLI runs."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from cybershake_tree import FaultSpec, make_version

FAULTS = [
    FaultSpec("AlpineK2T", rels=4, median=True, perturbed=True, bb_size=30_000),
    FaultSpec("Hope1888", rels=3, median=False, bb_size=20_000),
]
FAULT_NAMES = [f.name for f in FAULTS]
MAX_PART = 50_000  # AlpineK2T's BB (5 x 30 kB) splits into parts


@dataclass
class Remote:
    root: str  # what --remote gets
    folder: Path  # the local folder behind it (to build or damage archives)
    kind: str


def make_remote(kind: str, tmp_path: Path, webdav=None) -> Remote:
    if kind == "local":
        folder = tmp_path / "remote"
        folder.mkdir(parents=True, exist_ok=True)
        return Remote(str(folder), folder, kind)
    assert webdav is not None
    return Remote(webdav.remote, webdav.root, kind)


def make_source_tree(tmp_path: Path, faults=FAULTS) -> Path:
    tree = tmp_path / "tree"
    make_version(tree, faults)
    return tree


def run_download(*args: str) -> tuple[int, str, str]:
    """Run ``cs-sync-download`` in a child process (real entry point, real rclone)."""
    proc = subprocess.run([script("cs-sync-download"), *args], capture_output=True, text=True, env=_env(), timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def run_cs_sync(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([script("cs-sync"), *args], capture_output=True, text=True, env=_env(), timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def script(name: str) -> str:
    """The installed console script (the entry point users run)."""
    return str(Path(sys.executable).parent / name)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("CS_SYNC_REMOTE", None)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def assert_one_line_error(err: str, *needles: str) -> None:
    """stderr holds exactly one error line, no traceback, and it says what is needed."""
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    errors = [ln for ln in lines if ": error: " in ln]
    assert len(errors) == 1, err
    for n in needles:
        assert n in errors[0], errors[0]


def files_under(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())

