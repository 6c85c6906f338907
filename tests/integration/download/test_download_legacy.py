"""Selective retrieval from archives the older scripts made (GNU tar, no sidecar of upload's):
headers walked on the fly, or an index sidecar from ``cs-sync index``; what crossed the wire
counted between rclone and a loopback WebDAV server."""

from __future__ import annotations

import hashlib
import os
import tarfile

import pytest

from archive_builder import assert_tree_matches, flip_byte, write_version
from cybershake_tree import FaultSpec
from dl_helpers import files_under, make_source_tree, run_cs_sync, run_download

V = "v18p6"
BB = 1_000_000
FAULTS = [FaultSpec("AlpineK2T", rels=7, median=True, bb_size=BB)]  # 8 BB.bin in 4 parts of 2
REL03 = "Runs/AlpineK2T/AlpineK2T_REL03/BB/Acc/BB.bin"


@pytest.fixture
def proxied(tmp_path, counted_webdav):
    """A WebDAV server holding an older-layout version, reached through a byte counter."""
    tree = make_source_tree(tmp_path, FAULTS)
    srv, proxy = counted_webdav
    built = write_version(tree, srv.root, V, ["AlpineK2T"], sidecar=False, max_part=2 * BB + 10_000,
                          member_paths=True, types=["BB", "IM"])
    return srv, proxy, built


def _full(srv) -> int:
    return sum(p.stat().st_size for p in (srv.root / V / "AlpineK2T").glob("*_BB_*.tar"))


def test_unindexed_set_walks_headers_and_reads_one_member(proxied, tmp_path):
    srv, proxy, built = proxied
    assert len(built.parts[("AlpineK2T", "BB")]) == 4
    ddir = tmp_path / "dl"
    proxy.reset()
    code, out, err = run_download(V, "--remote", "cspx:", "--download_dir", str(ddir), "-t", "BB", "--rel", "3")
    assert code == 0, out + err
    assert files_under(ddir / "AlpineK2T" / "BB") == [REL03]
    assert_tree_matches(ddir, built, keys={("AlpineK2T", "BB")}, members={REL03})
    assert "walked the TAR headers of 4 part(s)" in out and "cs-sync index CS_VER would save this step" in out
    assert "1 member(s) read by range by SIZE AND TAR HEADER ONLY" in out
    assert not list(ddir.rglob("*.tar"))
    assert BB <= proxy.down < BB + 150_000 < _full(srv) / 5  # one member and some headers crossed the wire


def test_indexed_set_reads_one_member_and_the_index_is_used(proxied, tmp_path):
    srv, proxy, built = proxied
    code, out, err = run_cs_sync("index", V, "--remote", "cspx:")
    assert code == 0, out + err
    ddir = tmp_path / "dl"
    proxy.reset()
    code, out, err = run_download(V, "--remote", "cspx:", "--download_dir", str(ddir), "-t", "BB", "--rel", "3",
                                  "median")
    assert code == 0, out + err
    assert "walked the TAR headers" not in out
    assert files_under(ddir / "AlpineK2T" / "BB") == sorted(["Runs/AlpineK2T/AlpineK2T/BB/Acc/BB.bin", REL03])
    assert 2 * BB <= proxy.down < 2 * BB + 100_000
    # a full download of the indexed set: whole parts, every member's place checked against the index
    code, out, err = run_download(V, "--remote", "cspx:", "--download_dir", str(tmp_path / "all"), "-t", "BB", "IM")
    assert code == 0, out + err
    assert assert_tree_matches(tmp_path / "all", built, keys={("AlpineK2T", "BB"), ("AlpineK2T", "IM")}) == 16
    assert "by SIZE ONLY" in out  # WebDAV has no hash, and the index recorded none


def test_hash_members_index_checks_member_content(proxied, tmp_path):
    srv, proxy, built = proxied
    code, out, err = run_cs_sync("index", V, "--remote", "cspx:", "-t", "BB", "--hash-members")
    assert code == 0, out + err
    code, out, err = run_download(V, "--remote", "cspx:", "--download_dir", str(tmp_path / "dl"), "-t", "BB",
                                  "--rel", "3")
    assert code == 0 and "1 member(s) read by range by their own SHA-256" in out, out + err


def _member(srv, built, name):
    for part in built.parts[("AlpineK2T", "BB")]:
        path = srv.root / V / "AlpineK2T" / part
        with tarfile.open(path) as tar:
            for ti in tar:
                if ti.name == name:
                    return path, ti
    raise AssertionError(name)


def test_a_changed_byte_inside_a_member(tmp_path, rclone_bin, monkeypatch):
    """Without SHA-256s an index cannot see it (and says so); with them the member fails, exit 8."""
    from servers import start_webdav

    tree = make_source_tree(tmp_path, FAULTS)
    srv = start_webdav(rclone_bin, tmp_path / "served", extra=["--dir-cache-time", "0s"])
    for k, v in srv.env.items():
        monkeypatch.setenv(k, v)
    try:
        built = write_version(tree, srv.root, V, ["AlpineK2T"], sidecar=False, max_part=2 * BB + 10_000,
                              member_paths=True, types=["BB"])
        code, out, err = run_cs_sync("index", V, "--remote", srv.remote, "--hash-members")
        assert code == 0, out + err
        path, ti = _member(srv, built, REL03)
        flip_byte(path, ti.offset_data + 1000)  # size and mtime as before
        code, out, err = run_download(V, "--remote", srv.remote, "--download_dir", str(tmp_path / "dl"), "--rel", "3")
        assert code == 8, out + err
        assert "SHA-256 differs from the sidecar" in out and not (tmp_path / "dl" / "AlpineK2T" / "BB").exists()
        code, out, err = run_cs_sync("index", V, "--remote", srv.remote, "--reindex")  # without SHA-256s now
        assert code == 0, out + err
        code, out, err = run_download(V, "--remote", srv.remote, "--download_dir", str(tmp_path / "dl2"), "--rel", "3")
        assert code == 0 and "SIZE AND TAR HEADER ONLY" in out, out + err
    finally:
        srv.stop()


def _indexed_older_bb(tmp_path):
    """AlpineK2T's BB as the older scripts made it (two parts, no sidecar), then indexed:
    (source tree, remote root, the set's part paths)."""
    tree = make_source_tree(tmp_path, FAULTS)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, ["AlpineK2T"], sidecar=False, max_part=2 * BB + 10_000,
                          member_paths=True, types=["BB"])
    code, out, err = run_cs_sync("index", V, "--remote", str(remote))
    assert code == 0, out + err
    return tree, remote, [remote / V / "AlpineK2T" / name for name in built.parts[("AlpineK2T", "BB")]]


def test_a_part_rewritten_after_indexing_is_caught_by_its_header(tmp_path):
    """The same names and sizes, members in another order: the header at the indexed offset differs."""
    tree, remote, parts = _indexed_older_bb(tmp_path)
    part = parts[1]
    with tarfile.open(part) as tar:
        names = [ti.name for ti in tar]
    src = tmp_path / "redo"
    for n in names:
        (src / n).parent.mkdir(parents=True, exist_ok=True)
        (src / n).write_bytes((tree / n).read_bytes())
    os.unlink(part)
    import subprocess

    subprocess.run(["tar", "cf", str(part), "-C", str(src), *reversed(names)], check=True)
    code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(tmp_path / "dl"), "--rel", "3")
    assert code == 8, out + err
    assert "the part changed since it was indexed" in out


def test_sftp_unindexed_selective_download(tmp_path, sftp):
    tree = make_source_tree(tmp_path, FAULTS)
    built = write_version(tree, sftp.root, V, ["AlpineK2T"], sidecar=False, max_part=2 * BB + 10_000, types=["BB"])
    ddir = tmp_path / "dl"
    code, out, err = run_download(V, "--remote", sftp.remote, "--download_dir", str(ddir), "--rel", "5")
    assert code == 0, out + err
    assert files_under(ddir / "AlpineK2T" / "BB") == ["AlpineK2T_REL05_BB.bin"]
    got = (ddir / "AlpineK2T" / "BB" / "AlpineK2T_REL05_BB.bin").read_bytes()
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(
        (tree / "Runs/AlpineK2T/AlpineK2T_REL05/BB/Acc/BB.bin").read_bytes()).hexdigest()
    assert built.parts[("AlpineK2T", "BB")]


def _cut_or_damaged_part(path, how: str) -> int:
    """An older part of two members, cut just after the first one or with the second's header
    damaged; returns the byte where the second header starts."""
    first = tarfile.TarInfo("Runs/AlpineK2T/AlpineK2T_REL01/BB/Acc/BB.bin")
    first.size = 5120
    second = tarfile.TarInfo("Runs/AlpineK2T/AlpineK2T_REL02/BB/Acc/BB.bin")
    second.size = 3072
    import io

    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        tar.addfile(first, io.BytesIO(b"a" * first.size))
        tar.addfile(second, io.BytesIO(b"b" * second.size))
    at = 512 + first.size
    data = bytearray(path.read_bytes())
    if how == "cut":
        data = data[:at]  # exactly between the two members: no end-of-archive blocks
    else:
        data[at + 3] ^= 0x20  # the second header's name: its checksum no longer matches
    path.write_bytes(bytes(data))
    return at


@pytest.mark.parametrize("how, message", [("cut", "without the end-of-archive blocks (truncated)"),
                                          ("header", "damaged TAR header at byte")])
@pytest.mark.parametrize("rel", [False, True])
def test_a_part_cut_between_members_or_with_a_damaged_header_is_not_taken_as_whole(tmp_path, how, message, rel):
    """tarfile stops quietly at such a place: the set must fail (exit 8), not come down without
    the members after it (a full download said 'fetched', exit 0; --rel said 'matches nothing')."""
    remote = tmp_path / "remote"
    (remote / V / "AlpineK2T").mkdir(parents=True)
    at = _cut_or_damaged_part(remote / V / "AlpineK2T" / "AlpineK2T_BB.tar", how)
    ddir = tmp_path / "dl"
    code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(ddir),
                                  *(["--rel", "2"] if rel else []))
    assert code == 8, out + err
    assert message in out and f"byte {at}" in out, out
    assert "matches no member" not in out and "1 failed" in out, out
    assert not (ddir / "AlpineK2T" / "BB").exists()


def test_a_set_whose_parts_changed_since_indexing_is_refused_with_the_reindex_hint(tmp_path):
    """A part rewritten with another size after `cs-sync index`: the set no longer matches its
    index, and the way out is to index it again, which the refusal names."""
    _, remote, parts = _indexed_older_bb(tmp_path)
    with open(parts[0], "ab") as fh:  # one more record of zeros: a TAR still, another size
        fh.write(bytes(10240))
    code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(tmp_path / "dl"))
    assert code != 0, out + err
    assert f"cs-sync index {V} --reindex" in out + err
    assert not (tmp_path / "dl" / "AlpineK2T" / "BB").exists()
    code, out, err = run_cs_sync("index", V, "--remote", str(remote), "--reindex")
    assert code == 0, out + err
    code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(tmp_path / "dl"))
    assert code == 0, out + err
