"""Checks the upload tests share: what a remote version folder holds, verified from its bytes.

The remote in these tests is always a local folder (a directory remote, or the
folder a loopback WebDAV server serves), so its files can be read directly.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from cs_sync.archive.sidecar import SetSidecar
from cs_sync.inputs.config import load_config
from cs_sync.inputs.manifest import read_manifest
from cs_sync.remote.rclone import Rclone
from cs_sync.remote.sets import SetState
from cs_sync.remote.state import read_version
from cs_sync.upload.planning import plan_upload

UPLOAD = [sys.executable, "-c", "from cs_sync.cli.upload import entry; entry()"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_plan(cs_root: Path, manifest: Path, max_size: int):
    m = read_manifest(manifest, cs_root)
    return plan_upload(m, load_config(), max_size=max_size, hard_limit=1 << 50)


def extract(part: Path) -> dict[str, bytes]:
    """Members of a TAR as GNU tar extracts them."""
    with tempfile.TemporaryDirectory() as d:
        subprocess.run(["tar", "-xf", str(part), "-C", d], check=True)
        return {p.name: p.read_bytes() for p in Path(d).iterdir()}


def verify_sidecar_set(vdir: Path, cs_root: Path, sc: SetSidecar) -> None:
    """Every part's size and SHA-256, every member's bytes (by offset and by GNU tar) match the sources."""
    fdir = vdir / sc.fault
    sample = sc.dtype == "SAMPLE_BB"  # plain files: its parts are the files themselves, not TARs
    parts = {}
    for p in sc.parts:
        data = (fdir / p.name).read_bytes()
        assert len(data) == p.size and sha(data) == p.sha256, p.name
        parts[p.name] = data
    extracted = {} if sample else {name: extract(fdir / name) for name in parts}
    for m in sc.members:
        source = (cs_root / m.source).read_bytes()
        assert len(source) == m.size and sha(source) == m.sha256, m.source
        if not sample:
            assert parts[m.part][m.offset: m.offset + m.size] == source, (m.part, m.name)
            assert extracted[m.part][m.name] == source, (m.part, m.name)
        else:  # a sample: a plain file
            assert m.offset == 0 and (fdir / m.part).read_bytes() == source
    if not sample:
        names = sorted(n for d in extracted.values() for n in d)
        assert names == sorted(m.name for m in sc.members)


def verify_version(base: Path, cs_root: Path, manifest: Path, max_size: int, *, expect_all: bool = True) -> dict:
    """Every set the plan makes is on the remote with a sidecar, and the bytes prove it.

    Returns {set name: sidecar}. With ``expect_all`` every planned set must be there and
    every manifest file must be in some set.
    """
    vdir = base / cs_root.name
    plan = expected_plan(cs_root, manifest, max_size)
    sidecars = {}
    for j in sorted((vdir / "_cs_sync").glob("*.json")):
        sc = SetSidecar.from_json(j.read_text())
        verify_sidecar_set(vdir, cs_root, sc)
        sidecars[f"{sc.fault}_{sc.dtype}"] = sc
    if expect_all:
        assert sorted(sidecars) == sorted(sp.name for sp in plan.sets)
        for sp in plan.sets:
            assert [p.name for p in sidecars[sp.name].parts] == [p.name for p in sp.parts]
        m = read_manifest(manifest, cs_root)
        in_sets = {mm.source for sc in sidecars.values() if sc.dtype != "SAMPLE_BB" for mm in sc.members}
        in_manifest = {r.path for types in m.faults.values() for recs in types.values() for r in recs.values()}
        assert in_sets == in_manifest
        assert (vdir / "list.txt").read_bytes() == (cs_root / "list.txt").read_bytes()
        assert (vdir / "stocktake.csv").is_file()
    return sidecars


def assert_complete_means_complete(base: Path, cs_root: Path, manifest: Path, max_size: int) -> int:
    """Any set a reader would take as complete (by sidecar, or by part names alone) is whole.

    Returns how many sets are complete.
    """
    version = cs_root.name
    if not (base / version).exists():
        return 0
    listing = read_version(Rclone(), str(base), version, missing_ok=True)
    plan = {sp.name: sp for sp in expected_plan(cs_root, manifest, max_size).sets}
    n = 0
    for (fault, dtype), rs in listing.sets.items():
        if rs.state != SetState.COMPLETE:
            continue
        n += 1
        if rs.sidecar is not None:
            verify_sidecar_set(base / version, cs_root, rs.sidecar)
            continue
        sp = plan[f"{fault}_{dtype}"]
        if sp.sample:
            [p] = sp.parts
            assert (base / version / fault / p.name).read_bytes() == (cs_root / p.members[0].source).read_bytes()
            continue
        got = {}
        for name in rs.files:
            got.update(extract(base / version / fault / name))
        want = {m.name: (cs_root / m.source).read_bytes() for m in sp.members}
        assert got == want, f"{fault}_{dtype} looks complete by its names but its TARs do not hold the set"
    return n


_PARTS_RE = re.compile(
    r"parts: (\d+) uploaded and checked .*?, (\d+) sent again after a failed attempt, "
    r"(\d+) already uploaded by an interrupted run"
)


def parts_line(out: str) -> dict[str, int]:
    m = _PARTS_RE.search(out)
    assert m, out
    return dict(zip(("uploaded", "resent", "on_remote"), map(int, m.groups())))


def sets_line(out: str) -> dict[str, int]:
    m = re.search(r"sets: (\d+) uploaded, (\d+) skipped .*?, (\d+) unverified .*?, (\d+) stale, (\d+) failed", out)
    assert m, out
    return dict(zip(("uploaded", "skipped", "unverified", "stale", "failed"), map(int, m.groups())))


def run_upload(args: list[str], env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """The real command in its own process group (so a test kill takes rclone children with it)."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.run(
        [*UPLOAD, *map(str, args)], capture_output=True, text=True, env=full_env, timeout=timeout,
        start_new_session=True,
    )


def start_upload(args: list[str], env: dict | None = None) -> subprocess.Popen:
    full_env = dict(os.environ)
    full_env.update(env or {})
    return subprocess.Popen([*UPLOAD, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=full_env, start_new_session=True)


def kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.communicate()


def local_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")} if root.exists() else set()


def tar_members(path: Path) -> list[str]:
    with tarfile.open(path) as tf:
        return tf.getnames()
