"""``cs-sync index`` end to end: archives made the older scripts' way (GNU tar, no sidecar),
real rclone against a local folder, loopback WebDAV behind a byte counter, loopback SFTP."""

from __future__ import annotations

import hashlib
import json
import os
import tarfile

import pytest

from cs_sync.archive.sidecar import parse_sidecar

from archive_builder import write_version
from cybershake_tree import FaultSpec
from dl_helpers import assert_one_line_error, make_source_tree, run_cs_sync

V = "v18p6"
LONG = "AlpineFault_Kaniere_to_Tophouse_Road_K2T"  # its paths pass 100 characters: GNU long-name headers
FAULTS = [
    FaultSpec(LONG, rels=6, median=True, perturbed=True, bb_size=400_000),
    FaultSpec("Hope1888", rels=3, median=False, bb_size=300_000),
]


def _tree(tmp_path):
    return make_source_tree(tmp_path, FAULTS)


def _index(root, *args):
    return run_cs_sync("index", V, "--remote", root, *args)


def _snapshot(folder):
    """Every data file's bytes' hash and mtime (index must change none of them)."""
    out = {}
    for p in sorted((folder / V).rglob("*")):
        if p.is_file() and "_cs_sync" not in p.parts:
            out[str(p.relative_to(folder))] = (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
    return out


def _sidecar(folder, fault, dtype):
    return parse_sidecar((folder / V / "_cs_sync" / f"{fault}_{dtype}.json").read_text(), where="test")


def _assert_matches_tar(folder, sc):
    """The sidecar records exactly what tarfile finds in each part: names, offsets, sizes."""
    got = {(m.part, m.name): (m.offset, m.size) for m in sc.members}
    want = {}
    for p in sc.parts:
        path = folder / V / sc.fault / p.name
        assert p.size == path.stat().st_size
        with tarfile.open(path) as tar:
            want.update({(p.name, ti.name): (ti.offset_data, ti.size) for ti in tar if ti.isreg()})
    assert got == want


def test_local_index_records_every_member_and_touches_no_data(tmp_path):
    tree = _tree(tmp_path)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, [f.name for f in FAULTS], sidecar=False, max_part=900_000,
                          member_paths=True)
    before = _snapshot(remote)
    code, out, err = _index(str(remote), "--dry-run")
    assert code == 0, out + err
    assert "dry run: 6 set(s) would be indexed" in out and not (remote / V / "_cs_sync").exists()
    code, out, err = _index(str(remote))
    assert code == 0, out + err
    assert "sets: 6 indexed" in out and "2 sample(s)" in out
    assert "not the content (--hash-members records SHA-256s)" in out
    assert _snapshot(remote) == before
    for (fault, dtype), parts in built.parts.items():
        if dtype == "SAMPLE_BB":
            assert not (remote / V / "_cs_sync" / f"{fault}_{dtype}.json").exists()
            continue
        sc = _sidecar(remote, fault, dtype)
        assert sc.is_index and not sc.hashed and [p.name for p in sc.parts] == parts
        assert "not the members' content" in sc.proves
        _assert_matches_tar(remote, sc)
    long_names = [m.name for m in _sidecar(remote, LONG, "BB").members if len(m.name) > 100]
    assert long_names and all("/" in n for n in long_names)
    # again: nothing to do
    code, out, err = _index(str(remote))
    assert code == 0 and "0 indexed" in out and "6 already had a sidecar" in out and "0 walked" in out
    # status still sees complete sets (and now knows their part sizes from the sidecars)
    code, out, err = run_cs_sync("status", V, "--remote", str(remote), "--json")
    assert code == 0, out + err
    cells = json.loads(out)["cells"]
    assert all(c["state"] == "complete" for c in cells)


def test_hash_members_records_sha256_and_upgrades_an_earlier_index(tmp_path):
    tree = _tree(tmp_path)
    remote = tmp_path / "remote"
    write_version(tree, remote, V, [f.name for f in FAULTS], sidecar=False, max_part=900_000, tar_format="pax",
                  member_paths=True)
    code, out, err = _index(str(remote), "-t", "BB", "--inc_fault", "Hope1888")
    assert code == 0 and "sets: 1 indexed" in out, out + err
    code, out, err = _index(str(remote), "-t", "BB", "--hash-members")
    assert code == 0, out + err
    assert "1 indexed, 1 upgraded" in out and "SHA-256 of every part and member" in out
    for fault in (LONG, "Hope1888"):
        sc = _sidecar(remote, fault, "BB")
        assert sc.hashed and "as strong as a sidecar written at upload" in sc.proves
        for p in sc.parts:
            data = (remote / V / fault / p.name).read_bytes()
            assert p.sha256 == hashlib.sha256(data).hexdigest()
            for m in (m for m in sc.members if m.part == p.name):
                assert m.sha256 == hashlib.sha256(data[m.offset:m.offset + m.size]).hexdigest()


def test_webdav_index_reads_headers_only_on_the_wire(tmp_path, counted_webdav):
    """A byte counter between rclone and the server: index reads well under 1% of the parts."""
    faults = [FaultSpec("AlpineK2T", rels=30, median=True, bb_size=1_000_000)]  # one part of 31 BB.bin
    tree = make_source_tree(tmp_path, faults)
    srv, proxy = counted_webdav
    write_version(tree, srv.root, V, ["AlpineK2T"], sidecar=False, types=["BB", "IM"])
    size = (srv.root / V / "AlpineK2T" / "AlpineK2T_BB.tar").stat().st_size
    proxy.reset()
    code, out, err = _index("cspx:")
    assert code == 0, out + err
    assert "sets: 2 indexed" in out and "the remote offers no hash to record" in out
    assert proxy.down < size / 100, (proxy.down, size)
    sc = _sidecar(srv.root, "AlpineK2T", "BB")
    assert len(sc.members) == 31
    _assert_matches_tar(srv.root, sc)
    with_hashes = proxy.down
    proxy.reset()
    code, out, err = _index("cspx:", "-t", "BB", "--hash-members")
    assert code == 0 and "1 upgraded" in out, out + err
    assert size <= proxy.down < size * 1.02 + with_hashes  # each part streamed once, no more


def test_sftp_index_records_the_servers_hash(tmp_path, sftp):
    tree = _tree(tmp_path)
    write_version(tree, sftp.root, V, ["Hope1888"], sidecar=False, max_part=400_000)
    code, out, err = _index(sftp.remote)
    assert code == 0, out + err
    assert "the remote's sha1 hash per part" in out
    sc = _sidecar(sftp.root, "Hope1888", "BB")
    assert len(sc.parts) >= 2
    for p in sc.parts:
        data = (sftp.root / V / "Hope1888" / p.name).read_bytes()
        assert p.hashes == {"sha1": hashlib.sha1(data).hexdigest()}


def _flip_header_name(path, member_index):
    with tarfile.open(path) as tar:
        ti = [t for t in tar if t.isreg()][member_index]
    with open(path, "r+b") as fh:
        fh.seek(ti.offset + 3)
        b = fh.read(1)
        fh.seek(ti.offset + 3)
        fh.write(bytes([b[0] ^ 0x20]))


def _set_size_field(path, member_index, size):
    with tarfile.open(path) as tar:
        ti = [t for t in tar if t.isreg()][member_index]
    with open(path, "r+b") as fh:
        fh.seek(ti.offset)
        block = bytearray(fh.read(512))
        block[124:136] = f"{size:011o}\0".encode()
        block[148:156] = b" " * 8
        block[148:156] = f"{sum(block):06o}\0 ".encode()
        fh.seek(ti.offset)
        fh.write(block)


@pytest.mark.parametrize("damage,message", [
    ("not_a_tar", "not a TAR"),
    ("truncated", "truncated"),
    ("header", "damaged TAR header at byte"),
    ("past_end", "runs past the end of the part"),
])
def test_damaged_parts_are_named_and_their_set_gets_no_sidecar(tmp_path, damage, message):
    tree = _tree(tmp_path)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, ["Hope1888"], sidecar=False, max_part=700_000)
    parts = built.parts[("Hope1888", "BB")]  # two BB.bin in the first part, one in the second
    bad = remote / V / "Hope1888" / parts[0]
    if damage == "not_a_tar":
        bad.write_bytes(os.urandom(bad.stat().st_size))
    elif damage == "truncated":
        data = bad.read_bytes()
        bad.write_bytes(data[:len(data) // 3])
    elif damage == "header":
        _flip_header_name(bad, 1)
    else:
        _set_size_field(bad, 1, 50 * 1024 * 1024)
    code, out, err = _index(str(remote))
    assert code == 8, out + err
    assert f"failed: Hope1888 BB: Hope1888/{parts[0]}: " in out and message in out
    assert "sets: 2 indexed" in out and "1 failed" in out
    assert not (remote / V / "_cs_sync" / "Hope1888_BB.json").exists()
    assert (remote / V / "_cs_sync" / "Hope1888_IM.json").exists()
    assert_one_line_error(err, "1 of 4 sets failed (no sidecar written)")


def test_a_flipped_data_byte_passes_the_index_but_not_hash_members(tmp_path):
    """What the index can see: a byte changed inside a member's data changes no header."""
    from archive_builder import flip_byte

    tree = _tree(tmp_path)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, ["Hope1888"], sidecar=False, types=["BB"])
    part = remote / V / "Hope1888" / built.parts[("Hope1888", "BB")][0]
    with tarfile.open(part) as tar:
        first = next(t for t in tar if t.isreg())
    good = hashlib.sha256(part.read_bytes()[first.offset_data:first.offset_data + first.size]).hexdigest()
    flip_byte(part, first.offset_data + 10)
    code, out, err = _index(str(remote))
    assert code == 0 and "1 indexed" in out, out + err
    code, out, err = _index(str(remote), "--hash-members")
    assert code == 0 and "1 upgraded" in out
    m = next(m for m in _sidecar(remote, "Hope1888", "BB").members if m.name == first.name)
    assert m.sha256 != good  # recorded as it is now: --hash-members vouches for today's bytes, verify compares later


def test_refused_sets_sets_made_at_upload_shards_and_bad_names(tmp_path):
    tree = _tree(tmp_path)
    remote = tmp_path / "remote"
    write_version(tree, remote, V, ["Hope1888"], sidecar=True, max_part=400_000)  # made by this tool
    write_version(tree, remote, V, [LONG], sidecar=False, max_part=900_000)
    parts = sorted((remote / V / LONG).glob(f"{LONG}_BB_*.tar"))
    parts[0].unlink()  # a gap: incomplete
    code, out, err = _index(str(remote))
    assert code == 7, out + err
    assert f"refused: {LONG} BB: incomplete: missing part _0; not indexed" in out
    assert "sets: 2 indexed" in out and "3 already had a sidecar" in out
    code, out, err = _index(str(remote), "--inc_fault", "Nope")
    assert code == 3
    assert_one_line_error(err, "nothing selected: --inc_fault Nope: no such fault")
    code, out, err = run_cs_sync("index", "v00", "--remote", str(remote))
    assert code == 6
    assert_one_line_error(err, "version 'v00' not found")


def test_shards_split_the_work_and_cover_everything(tmp_path):
    tree = _tree(tmp_path)
    remote = tmp_path / "remote"
    write_version(tree, remote, V, [f.name for f in FAULTS], sidecar=False, max_part=900_000)
    code0, out0, _ = _index(str(remote), "--shard", "0/2")
    names0 = set(os.listdir(remote / V / "_cs_sync"))
    code1, out1, _ = _index(str(remote), "--shard", "1/2")
    names1 = set(os.listdir(remote / V / "_cs_sync")) - names0
    assert code0 == code1 == 0
    assert names0 and names1 and {n.split("_")[0] for n in names0}.isdisjoint({n.split("_")[0] for n in names1})
    assert len(names0 | names1) == 6


def test_sigterm_keeps_the_finished_sets_and_a_rerun_continues(tmp_path, webdav):
    """Stopped as Slurm stops a task at its time limit: what is finished is written, the rest follows."""
    import signal
    import subprocess

    from dl_helpers import script

    faults = [FaultSpec(f"F{i:02d}", rels=2, median=True, bb_size=20_000) for i in range(12)]
    tree = make_source_tree(tmp_path, faults)
    write_version(tree, webdav.root, V, [f.name for f in faults], sidecar=False)
    proc = subprocess.Popen([script("cs-sync"), "index", V, "--remote", webdav.remote, "--transfers", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ})
    assert proc.stdout is not None
    for line in proc.stdout:
        if " done: " in line:  # the first part walked
            break
    for line in proc.stdout:
        if " done: " in line:  # a few more
            proc.send_signal(signal.SIGTERM)
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, out + err
    assert "interrupted; re-run the same command to continue" in err
    written = sorted(os.listdir(webdav.root / V / "_cs_sync"))
    assert 0 < len(written) < 36, written
    for name in written:  # whole, valid sidecars only
        parse_sidecar((webdav.root / V / "_cs_sync" / name).read_text())
    code, out, err = _index(webdav.remote)
    assert code == 0, out + err
    assert f"sets: {36 - len(written)} indexed" in out and f"{len(written)} already had a sidecar" in out
