"""Upload meets a set whose sidecar is damaged (cut, mistyped): it says so, naming the
sidecar and the field, and never calls it "made by the older scripts"; --overwrite
rebuilds it, after which status, download and the bytes agree with the sources."""

from __future__ import annotations

import json

import pytest

from archive_builder import flip_byte
from cybershake_tree import FaultSpec
from dl_helpers import assert_one_line_error, run_cs_sync, run_download
from manifests import write_tree_manifest
from upload_checks import run_upload, sets_line, verify_version

CAP = 64 * 1024
FAULTS = [FaultSpec("AlpineK2T", rels=3, median=True, bb_size=30_000), FaultSpec("Hope1888", rels=2, bb_size=20_000)]


@pytest.mark.parametrize("damage", ["cut", "members-null", "size-string"])
def test_damaged_sidecar_is_reported_then_rebuilt_with_overwrite(make_tree, tmp_path, damage):
    root, _ = make_tree(FAULTS)
    man = write_tree_manifest(root)
    remote = tmp_path / "remote"
    args = [root, man, "--remote", remote, "--tmp_dir", tmp_path / "scratch", "--max-size", str(CAP)]
    first = run_upload(args)
    assert first.returncode == 0, first.stdout + first.stderr
    vdir = remote / root.name
    sc = vdir / "_cs_sync" / "AlpineK2T_BB.json"
    text = sc.read_text()
    doc = json.loads(text)
    field = {"cut": "file", "members-null": "members", "size-string": "members[0].size"}[damage]
    if damage == "cut":
        sc.write_text(text[: len(text) // 2])
    elif damage == "members-null":
        doc["members"] = None
        sc.write_text(json.dumps(doc))
    else:
        doc["members"][0]["size"] = str(doc["members"][0]["size"])
        sc.write_text(json.dumps(doc))
    flip_byte(vdir / "AlpineK2T" / doc["parts"][0]["name"])  # same size: only the sidecar could tell

    again = run_upload(args)
    out = again.stdout + again.stderr
    assert again.returncode == 7, out
    assert not [ln for ln in out.splitlines() if "AlpineK2T_BB" in ln and "older scripts" in ln]
    assert sets_line(again.stdout)["unverified"] == 0
    line = next(ln for ln in out.splitlines() if "AlpineK2T_BB" in ln and "damaged sidecar" in ln)
    assert "the remote set has a damaged sidecar (sidecar invalid: _cs_sync/AlpineK2T_BB.json: " + field in line, line
    assert "--overwrite" in line
    assert "MISMATCH" not in out.upper() and "corrupted on the remote" not in out
    assert "Traceback" not in again.stderr

    fixed = run_upload([*args, "--overwrite"])
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    log = (tmp_path / "scratch" / root.name / "upload.log").read_text()
    assert "AlpineK2T_BB: replace (--overwrite: replacing the set with a damaged sidecar (sidecar invalid: " in log
    assert sets_line(fixed.stdout)["uploaded"] >= 1
    verify_version(remote, root, man, CAP)  # every part and member, byte for byte
    code, sout, serr = run_cs_sync("status", root.name, "--remote", str(remote))
    assert code == 0, sout + serr
    ddir = tmp_path / "dl"
    code, dout, derr = run_download(root.name, "--remote", str(remote), "--download_dir", str(ddir), "-t", "BB",
                                    "--inc_fault", "AlpineK2T")
    assert code == 0, dout + derr
    got = ddir / "AlpineK2T" / "BB" / "AlpineK2T_REL01_BB.bin"
    assert got.read_bytes() == (root / "Runs/AlpineK2T/AlpineK2T_REL01/BB/Acc/BB.bin").read_bytes()


def test_refused_download_of_a_damaged_set_is_one_line(make_tree, tmp_path):
    root, _ = make_tree(FAULTS[:1])
    man = write_tree_manifest(root)
    remote = tmp_path / "remote"
    assert run_upload([root, man, "--remote", remote, "--tmp_dir", tmp_path / "s"]).returncode == 0
    sc = remote / root.name / "_cs_sync" / "AlpineK2T_IM.json"
    sc.write_text("{")
    code, out, err = run_download(root.name, "--remote", str(remote), "--download_dir", str(tmp_path / "dl"))
    assert code == 7, out + err
    assert "_cs_sync/AlpineK2T_IM.json: file: not JSON" in out
    assert_one_line_error(err, "refused")
    assert not (tmp_path / "dl" / "AlpineK2T" / "IM").exists()
