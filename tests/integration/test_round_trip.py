"""The whole pipeline: cs-sync-preprocess, cs-sync-upload, cs-sync-download; byte-exact against the sources.

Runs on a local-folder remote and on the loopback WebDAV remote. Every file the
manifest lists must come back, under its member name, byte for byte; so must
one realisation fetched alone by byte range.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from cybershake_tree import FaultSpec, make_version
from dl_helpers import _env, make_remote, run_download, script

FAULTS = [
    FaultSpec("AlpineK2T", rels=4, median=True, perturbed=True, bb_size=120_000),
    FaultSpec("Hope1888", rels=3, median=False, bb_size=90_000),
]


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, env=_env(), timeout=300)


@pytest.fixture(params=["local", "webdav"])
def remote(request, tmp_path):
    webdav = request.getfixturevalue("webdav") if request.param == "webdav" else None
    return make_remote(request.param, tmp_path, webdav)


def test_preprocess_upload_download_byte_exact(remote, tmp_path):
    cs_root = tmp_path / "v22p12"
    lst = make_version(cs_root, FAULTS)
    manifest = tmp_path / "files_to_sync.yaml"
    p = _run(script("cs-sync-preprocess"), str(cs_root), str(lst), "--out_file", str(manifest),
             "--stocktake_csv", str(tmp_path / "stocktake.csv"))
    assert p.returncode == 0, p.stdout + p.stderr
    p = _run(script("cs-sync-upload"), str(cs_root), str(manifest), "--remote", remote.root, "--max-size", "300K",
             "--tmp_dir", str(tmp_path / "tmp"))
    assert p.returncode == 0, p.stdout + p.stderr

    sidecars = [json.loads(f.read_text()) for f in sorted((remote.folder / "v22p12" / "_cs_sync").glob("*.json"))]
    members = [(sc["fault"], sc["dtype"], m) for sc in sidecars for m in sc["members"]]
    split = [sc for sc in sidecars if len(sc["parts"]) > 1]
    assert split, "the test needs a set split into parts"
    ddir = tmp_path / "dl"
    code, out, err = run_download("v22p12", "--remote", remote.root, "--download_dir", str(ddir))
    assert code == 0, out + err
    assert f"sets: {len(sidecars)} fetched" in out and "by SHA-256 from the sidecar" in out
    for fault, dtype, m in members:
        got = ddir / fault / dtype / m["name"]
        assert got.read_bytes() == (cs_root / m["source"]).read_bytes(), got
    # every file of the manifest came back (samples are copies of BB files)
    import yaml

    listed = {path for fault, types in yaml.safe_load(manifest.read_text()).items() if fault != "."
              for files in types.values() for path in files}
    assert {m["source"] for _, dtype, m in members if dtype != "SAMPLE_BB"} == listed

    # one realisation alone, by byte range, from a part that holds other members too
    def shares_a_part(sc):
        rel = [m for m in sc["members"] if "_REL02" in m["name"]]
        return rel and any(m["part"] == rel[0]["part"] and "_REL02" not in m["name"] for m in sc["members"])

    sc = next(sc for sc in split if shares_a_part(sc))
    rel_members = [m for m in sc["members"] if "_REL02" in m["name"]]
    one = tmp_path / "one"
    code, out, err = run_download("v22p12", "--remote", remote.root, "--download_dir", str(one), "-t", sc["dtype"],
                                  "--inc_fault", sc["fault"], "--rel", "2")
    assert code == 0, out + err
    got = sorted(p.name for p in (one / sc["fault"] / sc["dtype"]).iterdir())
    assert got == sorted(m["name"] for m in rel_members)
    for m in rel_members:
        assert (one / sc["fault"] / sc["dtype"] / m["name"]).read_bytes() == (cs_root / m["source"]).read_bytes()
    want = sum(m["size"] for m in rel_members)
    assert f"fetched ({want} B) for" in out  # rclone transferred exactly the members' bytes
    assert f"{len(rel_members)} member(s) read by byte range" in out
