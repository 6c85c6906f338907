"""Hostile or damaged remote content: forged sidecars never steer a download outside its
folder, and a damaged sidecar is never silently taken as "made by the older scripts".

Each case goes through status and download with the real rclone and a local-folder
remote, asserting the documented exit code, one line naming the file, no traceback,
and nothing written outside the download folder.
"""

from __future__ import annotations

import json

import pytest

from archive_builder import flip_byte, write_version
from dl_helpers import assert_one_line_error, make_remote, run_cs_sync, run_download

V = "v22p12"


def _sidecar(remote, fault, dtype):
    return remote.folder / V / "_cs_sync" / f"{fault}_{dtype}.json"


def _dl(remote, ddir, *args):
    return run_download(V, "--remote", remote.root, "--download_dir", str(ddir), *args)


def _outside(tmp_path, ddir):
    """Every path under tmp_path but the download folder (compare before and after a run)."""
    return {p for p in tmp_path.rglob("*") if p != ddir and ddir not in p.parents}


@pytest.mark.parametrize("forged", ["../../../../../../{escape}/AlpineK2T_REL02.csv", "{escape}/AlpineK2T_REL02.csv",
                                    "sub/AlpineK2T_REL02.csv", ".."])
@pytest.mark.parametrize("how", [("-t", "IM", "--rel", "2"), ("-t", "IM")], ids=["rel", "full"])
def test_forged_member_name_in_sidecar_is_refused_exit_8(tree, tmp_path, forged, how):
    remote = make_remote("local", tmp_path)
    write_version(tree, remote.folder, V, ["AlpineK2T"], types=["IM"])
    path = _sidecar(remote, "AlpineK2T", "IM")
    doc = json.loads(path.read_text())
    escape = tmp_path / "escape"
    forged = forged.format(escape=str(escape).lstrip("/"))
    target = next(m for m in doc["members"] if m["name"] == "AlpineK2T_REL02.csv")
    target["name"] = forged  # offset and SHA-256 stay right for the bytes
    path.write_text(json.dumps(doc))
    ddir = tmp_path / "dl"
    before = _outside(tmp_path, ddir)
    code, out, err = _dl(remote, ddir, *how)
    assert code == 8, out + err
    assert "_cs_sync/AlpineK2T_IM.json" in out and repr(forged) in out
    assert "Traceback" not in err
    assert not escape.exists()
    assert not (tmp_path / "sub").exists()
    assert _outside(tmp_path, ddir) - before == set()
    assert not (ddir / "AlpineK2T" / "IM").exists()
    # --allow-incomplete does not open the door either
    code, out, err = _dl(remote, ddir, *how, "--allow-incomplete")
    assert code == 8 and not escape.exists()
    # status names the set as damaged
    code, out, err = run_cs_sync("status", V, "--remote", remote.root)
    assert code == 7
    assert "damaged sidecar" in out


def test_forged_part_name_in_sidecar_is_refused(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    write_version(tree, remote.folder, V, ["AlpineK2T"], types=["IM"])
    path = _sidecar(remote, "AlpineK2T", "IM")
    doc = json.loads(path.read_text())
    doc["parts"][0]["name"] = "../../x.tar"
    path.write_text(json.dumps(doc))
    code, out, err = _dl(remote, tmp_path / "dl")
    assert code == 8
    assert "parts[0].name" in out and "'../../x.tar'" in out
    assert not (tmp_path / "x.tar").exists()


@pytest.mark.parametrize("damage", ["cut", "members-null", "size-string", "unknown-member-key"])
def test_damaged_sidecar_with_a_flipped_byte_never_passes(tree, tmp_path, damage):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, ["AlpineK2T"], types=["BB"], max_part=250_000)
    path = _sidecar(remote, "AlpineK2T", "BB")
    text = path.read_text()
    doc = json.loads(text)
    if damage == "cut":
        path.write_text(text[: len(text) // 2])
    else:
        if damage == "members-null":
            doc["members"] = None
        elif damage == "size-string":
            doc["members"][0]["size"] = str(doc["members"][0]["size"])
        else:
            doc["members"][0]["colour"] = "red"
        path.write_text(json.dumps(doc))
    flip_byte(remote.folder / V / "AlpineK2T" / built.parts[("AlpineK2T", "BB")][0])  # same size
    code, out, err = run_cs_sync("status", V, "--remote", remote.root)
    assert code == 7, out + err
    assert "damaged sidecar" in out
    assert "sidecar invalid" in out and "_cs_sync/AlpineK2T_BB.json" in out
    assert "MISMATCH" not in out.upper().replace("MISMATCHED", "")
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir)
    assert code == 7, out + err
    assert "Traceback" not in err
    assert_one_line_error(err, "refused")
    assert not (ddir / "AlpineK2T" / "BB").exists()
