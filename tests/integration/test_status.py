"""cs-sync status end to end: complete, partial, ambiguous and mismatched versions; --manifest; --json."""

from __future__ import annotations

import json
import os
import shutil

from cs_sync.inputs.manifest import FileRecord, Manifest, write_manifest

from archive_builder import collect_sets, write_version
from dl_helpers import FAULT_NAMES, MAX_PART, assert_one_line_error, make_remote, run_cs_sync

V = "v22p12"


def _status(remote, *args):
    return run_cs_sync("status", *args, "--remote", remote.root)


def test_complete_version_plain_table_and_versions_list(remote, tree):
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    (remote.folder / V / "list.txt").write_text("AlpineK2T 4\n")
    write_version(tree, remote.folder, "v19p5", ["Hope1888"], sidecar=False)
    (remote.folder / "_trash").mkdir()
    code, out, err = _status(remote, V)
    assert code == 0, out + err
    assert "\x1b[" not in out  # not a terminal: plain text
    lines = out.splitlines()
    assert lines[1].split() == ["fault", "BB", "IM", "Source", "SAMPLE_BB"]
    alpine = next(ln for ln in lines if ln.startswith("AlpineK2T"))
    assert f"ok {len(built.parts[('AlpineK2T', 'BB')])} parts" in alpine
    assert f"total: 2 faults, {len(built.sets)} complete" in out
    assert "list.txt: yes (1 fault); stocktake.csv: MISSING" in out
    assert "on the remote, not in list.txt: Hope1888" in out
    code, out, err = _status(remote)
    assert code == 0, err
    rows = {ln.split()[0]: ln.split() for ln in out.splitlines()[1:-1]}
    assert set(rows) == {"v19p5", "v22p12"}
    assert rows["v22p12"][1:3] == ["2", str(len(built.sets))] and rows["v19p5"][1:3] == ["1", "4"]
    code, out, err = _status(remote, "--json")
    assert code == 0 and {v["name"] for v in json.loads(out)["versions"]} == {"v19p5", "v22p12"}


def test_partial_ambiguous_and_mismatched_version(remote, tree):
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    vdir = remote.folder / V
    (vdir / "AlpineK2T" / built.parts[("AlpineK2T", "BB")][1]).unlink()
    shutil.copy(vdir / "Hope1888" / "Hope1888_IM.tar", vdir / "Hope1888" / "Hope1888_IM_0f.tar")
    with open(vdir / "AlpineK2T" / "AlpineK2T_Source.tar", "ab") as fh:
        fh.write(b"\0" * 512)
    code, out, err = _status(remote, V, "--json")
    assert code == 7, err
    doc = json.loads(out)
    cells = {(c["fault"], c["type"]): c for c in doc["cells"]}
    assert cells[("AlpineK2T", "BB")]["state"] == "incomplete"
    assert "AlpineK2T_BB_1.tar" in cells[("AlpineK2T", "BB")]["problems"][0]
    assert cells[("Hope1888", "IM")]["state"] == "ambiguous"
    assert cells[("AlpineK2T", "Source")]["state"] == "mismatch"
    assert cells[("Hope1888", "BB")]["state"] == "complete" and cells[("Hope1888", "BB")]["verified"]
    assert doc["totals"]["sets"]["incomplete"] == 1 and doc["exit_code"] == 7
    code, out, err = _status(remote, V)
    assert code == 7
    assert "INCOMPLETE" in out and "AMBIGUOUS" in out and "MISMATCH" in out


def test_manifest_shows_stale_and_not_uploaded(tmp_path, tree):
    remote = make_remote("local", tmp_path)
    write_version(tree, remote.folder, V, ["AlpineK2T"], max_part=MAX_PART)
    man = Manifest(version=V, cs_root=str(tree))
    for (fault, dtype), files in collect_sets(tree, FAULT_NAMES).items():
        if dtype == "SAMPLE_BB":
            continue
        man.faults.setdefault(fault, {})[dtype] = {
            f.source: FileRecord(f.source, f.path.stat().st_size, f.path.stat().st_mtime_ns) for f in files}
    mpath = tmp_path / "files_to_sync.yaml"
    write_manifest(mpath, man)
    code, out, err = _status(remote, V, "--manifest", str(mpath), "--json")
    assert code == 7, err  # Hope1888 is in the manifest, not on the remote
    cells = {(c["fault"], c["type"]): c for c in json.loads(out)["cells"]}
    assert {k for k, c in cells.items() if c["state"] == "not uploaded"} == {
        ("Hope1888", t) for t in ("BB", "IM", "Source", "SAMPLE_BB")}
    assert all(c["state"] == "complete" for (f, _), c in cells.items() if f == "AlpineK2T")
    # a source changes after upload: its set is stale, the sample of it too
    bb = tree / "Runs/AlpineK2T/AlpineK2T/BB/Acc/BB.bin"
    st = bb.stat()
    os.utime(bb, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    man.faults["AlpineK2T"]["BB"][bb.relative_to(tree).as_posix()] = FileRecord(
        bb.relative_to(tree).as_posix(), st.st_size, bb.stat().st_mtime_ns)
    del man.faults["Hope1888"]
    write_manifest(mpath, man)
    code, out, err = _status(remote, V, "--manifest", str(mpath))
    assert code == 7, err
    row = next(ln for ln in out.splitlines() if ln.startswith("AlpineK2T"))
    assert row.count("STALE") == 2
    about = [ln for ln in out.splitlines() if ln.split()[:1] == ["AlpineK2T"]]  # the row, and details below it
    assert any("modified since upload" in ln for ln in about)
    assert "(compared with" in out


def test_status_errors_are_one_line(tmp_path):
    remote = make_remote("local", tmp_path)
    (remote.folder / "v1").mkdir()
    code, out, err = _status(remote, "v9")
    assert code == 6
    assert_one_line_error(err, "version 'v9' not found")
    code, out, err = run_cs_sync("status", "v1", "--remote", "nosuchremote:")
    assert code == 6
    assert_one_line_error(err, "unknown rclone remote nosuchremote")
    code, out, err = run_cs_sync("status", "--remote", str(tmp_path / "nothing_here"))
    assert code == 6
    assert_one_line_error(err, "not found")
    code, out, err = _status(remote, "v1", "--manifest", str(tmp_path / "missing.yaml"))
    assert code == 3
    assert_one_line_error(err, "manifest not found")


def test_mixed_version_says_which_sets_a_sidecar_vouches_for(remote, tree):
    """Sidecar sets, older-script sets (complete, a gap, no final part, two final parts), an indexed
    older set, a damaged sidecar, a sidecar without parts, stray files and a '_' folder."""
    write_version(tree, remote.folder, V, ["AlpineK2T"], max_part=MAX_PART)
    write_version(tree, remote.folder, V, ["Hope1888"], sidecar=False, max_part=10_000)
    vdir = remote.folder / V
    hope = sorted(p.name for p in (vdir / "Hope1888").glob("Hope1888_BB_*.tar"))
    assert len(hope) >= 3, hope
    (vdir / "Hope1888" / "Hope1888_BB_1.tar").unlink()  # a gap in an older set
    (vdir / "notes.txt").write_text("x")
    (vdir / "_old").mkdir()
    (vdir / "_old" / "AlpineK2T_BB.tar").write_text("x")
    # (all before the server first lists the version: `rclone serve webdav` caches its listings)
    code, out, err = run_cs_sync("index", V, "--remote", remote.root, "-t", "IM")
    assert code == 0, out + err
    (vdir / "_cs_sync" / "AlpineK2T_IM.json").write_text('{"fault": "AlpineK2T", "dty')  # cut by a kill
    code, out, err = _status(remote, V)
    assert code == 7, out + err
    rows = {f: next(ln for ln in out.splitlines() if ln.startswith(f + " ")) for f in ("AlpineK2T", "Hope1888")}
    assert "unverified 1 part" in rows["Hope1888"] and "(no sidecar)" in rows["Hope1888"]  # Source, SAMPLE_BB
    assert "ok 1 part, 10.0 KiB (indexed)" in rows["Hope1888"]
    assert "INCOMPLETE" in rows["Hope1888"] and "DAMAGED SIDECAR" in rows["AlpineK2T"]
    assert rows["AlpineK2T"].count("unverified") == 0
    assert "6 complete (2 without a sidecar, 1 indexed), 1 incomplete, 1 damaged sidecar;" in out
    assert "other files (not parts of any set, left alone): notes.txt" in out
    code, out, err = _status(remote, V, "--json")
    doc = json.loads(out)
    cells = {(c["fault"], c["type"]): c for c in doc["cells"]}
    assert cells[("AlpineK2T", "IM")]["state"] == "damaged sidecar"
    assert cells[("AlpineK2T", "IM")]["check"] is None  # the tool's own set, not an older script's
    assert doc["totals"]["checks"]["no sidecar"] == 3 and doc["totals"]["checks"]["indexed"] == 1
    assert sum(doc["totals"]["sets"].values()) == len(doc["cells"]) == 8
    assert doc["totals"]["parts"] == sum(c["parts"] for c in doc["cells"])


def test_faults_of_list_txt_missing_from_the_remote_are_not_uploaded(remote, tree):
    """The version's own list.txt says which faults it should hold: one with nothing on the remote
    makes the version incomplete (exit 7) even without --manifest; one the list does not name is noted."""
    write_version(tree, remote.folder, V, ["AlpineK2T"], max_part=MAX_PART)
    write_version(tree, remote.folder, V, ["Hope1888"])
    (remote.folder / V / "list.txt").write_text("AlpineK2T 4\nKelly 3\n")
    code, out, err = _status(remote, V)
    assert code == 7, out + err
    kelly = next(ln for ln in out.splitlines() if ln.startswith("Kelly "))
    assert kelly.count("NOT UPLOADED: in list.txt, nothing on the remote") == 4, kelly
    assert "list.txt: yes (2 faults, 1 with nothing on the remote)" in out
    assert "on the remote, not in list.txt: Hope1888" in out
    code, out, err = _status(remote, V, "--json")
    doc = json.loads(out)
    assert (doc["list_faults"], doc["list_missing"], doc["unlisted"]) == (2, ["Kelly"], ["Hope1888"])
    assert doc["totals"]["sets"]["not uploaded"] == 4 and doc["exit_code"] == 7
    code, out, err = run_cs_sync("report", V, "--remote", remote.root, "-o", str(remote.folder.parent / "r.html"))
    assert code == 0, err
    page = (remote.folder.parent / "r.html").read_text()
    assert "--inc_fault Kelly" in page and "in list.txt, nothing on the remote" in page
    assert "list.txt: yes (2 faults, 1 with nothing on the remote; on the remote, not in it: Hope1888)" in page


def test_status_of_500_faults_starts_three_rclone_processes(tmp_path, monkeypatch):
    """One listing, one copy of the sidecars, one read of list.txt: never a call per fault."""
    from cs_sync.archive.sidecar import PartInfo, SetSidecar
    from cs_sync.remote.rclone import find_rclone

    remote = make_remote("local", tmp_path)
    vdir = remote.folder / V
    (vdir / "_cs_sync").mkdir(parents=True)
    faults = [f"F{i:03d}" for i in range(500)]
    for i, f in enumerate(faults):
        (vdir / f).mkdir()
        for dtype in ("BB", "IM"):
            (vdir / f / f"{f}_{dtype}.tar").write_bytes(b"\0" * 1024)
            if i % 2:  # half with sidecars, half as the older scripts left them
                sc = SetSidecar(f, dtype, V, parts=[PartInfo(f"{f}_{dtype}.tar", 1024, "0" * 64)])
                (vdir / "_cs_sync" / f"{f}_{dtype}.json").write_text(sc.to_json())
    (vdir / "list.txt").write_text("".join(f"{f} 3\n" for f in faults))
    calls = tmp_path / "calls.txt"
    wrapper = tmp_path / "rclone"
    wrapper.write_text(f'#!/bin/sh\necho "$1" >> {calls}\nexec {find_rclone()} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("CS_SYNC_RCLONE", str(wrapper))
    code, out, err = _status(remote, V, "--json")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["totals"]["sets"]["complete"] == 1000 and doc["totals"]["checks"]["no sidecar"] == 500
    assert sorted(calls.read_text().split()) == ["cat", "copy", "lsjson"]
