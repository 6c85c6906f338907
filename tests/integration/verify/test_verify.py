"""``cs-sync verify`` end to end: sets written with sidecars (as upload does) and sets the older
scripts made, indexed; a local folder, loopback WebDAV behind a byte counter, loopback SFTP
(which computes MD5/SHA-1 on the server); parts damaged in place."""

from __future__ import annotations

import json
import os

import pytest

from archive_builder import flip_byte, write_version
from cybershake_tree import FaultSpec
from dl_helpers import assert_one_line_error, make_source_tree, run_cs_sync

V = "v22p12"
FAULTS = [
    FaultSpec("AlpineK2T", rels=4, median=True, perturbed=True, bb_size=200_000),
    FaultSpec("Hope1888", rels=3, median=False, bb_size=150_000),
]
NAMES = [f.name for f in FAULTS]


def _verify(root, *args):
    return run_cs_sync("verify", V, "--remote", root, *args)


def _flip_keep_mtime(path, offset=None):
    """A byte changed in place, size and modification time as they were."""
    st = path.stat()
    flip_byte(path, offset)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def _nparts(built, faults=NAMES):
    return sum(len(p) for (f, t), p in built.parts.items() if f in faults)


def test_local_folder_compares_sha256_and_finds_a_flipped_byte(tmp_path):
    tree = make_source_tree(tmp_path, FAULTS)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, NAMES, max_part=300_000)
    code, out, err = _verify(str(remote))
    assert code == 0, out + err
    n = _nparts(built)
    assert f"parts: {n} by hash ({n} sha256), 0 by SIZE ONLY, 0 DIFFER" in out
    assert "sets: 8 checked, 0 unindexed" in out
    # a local folder hashes by reading its files: only parts whose sidecar recorded a hash are hashed
    assert f"listing: one without hashes, {n} part(s) listed again with sha256" in out
    bad = remote / V / "AlpineK2T" / built.parts[("AlpineK2T", "BB")][1]
    _flip_keep_mtime(bad)
    code, out, err = _verify(str(remote))
    assert code == 8, out + err
    assert f"DIFFERS: AlpineK2T/{bad.name}: its sha256 hash differs from the sidecar's (recorded at upload" in out
    assert_one_line_error(err, f"1 part(s) differ from their sidecar (first: AlpineK2T/{bad.name}")
    # truncated: the size tells, and a missing part is incomplete (exit 7 unless something differs)
    bad.write_bytes(bad.read_bytes()[:1000])
    code, out, err = _verify(str(remote))
    assert code == 8 and "1000 bytes, the sidecar says" in out
    bad.unlink()
    code, out, err = _verify(str(remote))
    assert code == 7 and f"missing: AlpineK2T/{bad.name}: listed in the sidecar, not on the remote" in out


def test_a_part_found_by_the_listing_and_by_read_data_counts_once(tmp_path):
    """Both findings are listed (the read back names the member), but it is one part: before,
    the summary said 2 DIFFER and '2 part(s) differ' for one changed part."""
    tree = make_source_tree(tmp_path, FAULTS[1:])
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, ["Hope1888"], max_part=200_000)
    bad = remote / V / "Hope1888" / built.parts[("Hope1888", "BB")][0]
    _flip_keep_mtime(bad, 3000)
    code, out, err = _verify(str(remote), "--read-data", "100%")
    assert code == 8, out + err
    assert f"DIFFERS: Hope1888/{bad.name}: its sha256 hash differs" in out
    assert f"DIFFERS: Hope1888/{bad.name}: read back: SHA-256 of the part differs" in out
    assert ", 1 DIFFER" in out, out
    assert_one_line_error(err, "1 part(s) differ from their sidecar")


def test_webdav_verify_reads_no_part_data_and_read_data_slices_cover_everything(tmp_path, counted_webdav):
    tree = make_source_tree(tmp_path, FAULTS)
    srv, proxy = counted_webdav
    built = write_version(tree, srv.root, V, NAMES, max_part=300_000)
    smallest = min(p.stat().st_size for p in (srv.root / V).rglob("*") if p.is_file() and "_cs_sync" not in p.parts)
    sidecars = sum(p.stat().st_size for p in (srv.root / V / "_cs_sync").iterdir())
    proxy.reset()
    code, out, err = _verify("cspx:")
    assert code == 0, out + err
    assert "listing: one without hashes; no part data read" in out
    n = _nparts(built)
    assert f"0 by hash, {n} by SIZE ONLY" in out and "the remote offers no hash" in out
    assert proxy.down < sidecars + 20_000 < smallest * 5, (proxy.down, sidecars, smallest)  # listing + sidecars
    total = sum(p.stat().st_size for p in (srv.root / V).rglob("*") if p.is_file() and "_cs_sync" not in p.parts)
    proxy.reset()
    streamed = 0
    for k in (1, 2, 3):
        code, out, err = _verify("cspx:", "--read-data", f"{k}/3")
        assert code == 0, out + err
        streamed += int(out.split("read-data (slice")[1].split(": ")[1].split(" part(s)")[0])
    assert streamed == n  # three slices: every part once
    assert total <= proxy.down < total * 1.05 + 3 * (sidecars + 20_000)


def test_read_data_finds_what_sizes_cannot(tmp_path, rclone_bin):
    from servers import start_webdav

    tree = make_source_tree(tmp_path, FAULTS)
    srv = start_webdav(rclone_bin, tmp_path / "served", extra=["--dir-cache-time", "0s"])
    try:
        os.environ.update(srv.env)
        built = write_version(tree, srv.root, V, ["Hope1888"], max_part=200_000)
        bad = srv.root / V / "Hope1888" / built.parts[("Hope1888", "BB")][0]
        _flip_keep_mtime(bad, 2000)
        code, out, err = _verify(srv.remote)
        assert code == 0 and "SIZE ONLY" in out  # WebDAV: no hash, the size is right
        code, out, err = _verify(srv.remote, "--read-data", "100%")
        assert code == 8, out + err
        assert f"DIFFERS: Hope1888/{bad.name}: read back: SHA-256 of the part differs" in out
    finally:
        srv.stop()
        for k in srv.env:
            os.environ.pop(k, None)


def test_sftp_old_sidecars_size_only_and_index_hashes_compared_on_the_server(tmp_path, sftp):
    tree = make_source_tree(tmp_path, FAULTS)
    built = write_version(tree, sftp.root, V, ["AlpineK2T"], max_part=300_000)  # SHA-256 only, as before hashes
    write_version(tree, sftp.root, V, ["Hope1888"], max_part=200_000, sidecar=False)  # the older scripts'
    code, out, err = _verify(sftp.remote)
    assert code == 0, out + err
    assert "the remote offers md5/sha1, the sidecar recorded sha256" in out
    assert "unindexed: Hope1888 BB" in out
    code, out, err = run_cs_sync("index", V, "--remote", sftp.remote)
    assert code == 0, out + err
    code, out, err = _verify(sftp.remote, "--inc_fault", "Hope1888")
    assert code == 0 and "by hash (" in out and "sha1)" in out, out + err
    hope = sorted((sftp.root / V / "Hope1888").glob("Hope1888_BB_*.tar"))[0]
    _flip_keep_mtime(hope, 3000)  # inside a member's data: no header changes
    code, out, err = _verify(sftp.remote, "--inc_fault", "Hope1888")
    assert code == 8, out + err
    assert f"DIFFERS: Hope1888/{hope.name}: its sha1 hash differs from the sidecar's (recorded at indexing" in out
    assert built.parts


def test_a_sidecar_with_the_remotes_own_hashes_is_compared_by_them(tmp_path, sftp):
    """Sidecars that record per-part ``hashes`` (the remote's types at upload): compared even
    when only a type the first listing did not ask for was recorded."""
    import hashlib

    tree = make_source_tree(tmp_path, FAULTS)
    built = write_version(tree, sftp.root, V, ["Hope1888"], max_part=200_000)
    path = sftp.root / V / "_cs_sync" / "Hope1888_BB.json"
    doc = json.loads(path.read_text())
    for p in doc["parts"]:
        p["hashes"] = {"md5": hashlib.md5((sftp.root / V / "Hope1888" / p["name"]).read_bytes()).hexdigest()}
    doc["format"] = 2
    path.write_text(json.dumps(doc))
    code, out, err = _verify(sftp.remote, "-t", "BB")
    assert code == 0, out + err
    n = len(built.parts[("Hope1888", "BB")])
    assert f"parts: {n} by hash ({n} md5), 0 by SIZE ONLY" in out


@pytest.mark.parametrize("bad", ["-t", "--read-data"])
def test_bad_input(tmp_path, bad):
    tree = make_source_tree(tmp_path, FAULTS[1:])
    remote = tmp_path / "remote"
    write_version(tree, remote, V, ["Hope1888"])
    if bad == "-t":
        code, out, err = _verify(str(remote), "-t", "XX")
        assert code == 3
        assert_one_line_error(err, "-t 'XX' is not a data type of v22p12 on the remote (there: ")
    else:
        code, out, err = _verify(str(remote), "--read-data", "0/2")
        assert code == 2
        assert_one_line_error(err, "--read-data '0/2': K/N needs 1 <= K <= N")
