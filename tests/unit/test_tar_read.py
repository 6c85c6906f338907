"""Safe, verifying extraction: crafted TARs with traversal, links and devices; sizes and hashes."""

import errno
import hashlib
import io
import os
import tarfile

import pytest

from cs_sync.errors import LocalIOError, from_os_error
from cs_sync.sidecar import MemberInfo
from cs_sync.tar_read import (
    ArchiveError,
    UnsafeMemberError,
    extract_part,
    move_into_place,
    safe_relpath,
    write_verified,
)


@pytest.mark.parametrize(
    "name,clean",
    [("a.bin", "a.bin"), ("./a/b", "a/b"), ("a//b/", "a/b"), ("../evil", None), ("a/../../evil", None),
     ("/etc/passwd", None), ("", None), (".", None), ("a/\x00b", None), ("..", None), ("a/..", None)],
)
def test_safe_relpath(name, clean):
    assert safe_relpath(name) == clean


_TYPES = (tarfile.SYMTYPE, tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE, tarfile.DIRTYPE)


def _tar(path, entries):
    """entries: (name, bytes) for files or (name, TarInfo type, linkname) for others."""
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as tar:
        for e in entries:
            ti = tarfile.TarInfo(e[0])
            if e[1] not in _TYPES:
                ti.size = len(e[1])
                ti.mtime = 1_600_000_000
                tar.addfile(ti, io.BytesIO(e[1]))
            else:
                ti.type = e[1]
                ti.linkname = e[2] if len(e) > 2 else ""
                tar.addfile(ti)
    return path


def _info(name, data, part="p.tar"):
    return MemberInfo(name=name, part=part, offset=0, size=len(data), mtime=1.0, sha256=hashlib.sha256(data).hexdigest(),
                      source=name)


def test_extracts_and_checks_sizes_and_hashes(tmp_path):
    part = _tar(tmp_path / "p.tar", [("a.bin", b"A" * 3000), ("sub/b.txt", b"hello"), ("d", tarfile.DIRTYPE)])
    dest = tmp_path / "out"
    rep = extract_part(part, dest, label="F/p.tar", expected=[_info("a.bin", b"A" * 3000), _info("sub/b.txt", b"hello")])
    assert sorted(rep.members) == ["a.bin", "sub/b.txt"] and rep.bytes == 3005
    assert (dest / "a.bin").read_bytes() == b"A" * 3000 and (dest / "sub/b.txt").read_bytes() == b"hello"
    assert int((dest / "a.bin").stat().st_mtime) == 1  # sidecar mtime wins
    assert not list(dest.rglob("*.cs_sync_tmp"))


def test_hash_mismatch_and_sidecar_disagreements(tmp_path):
    part = _tar(tmp_path / "p.tar", [("a.bin", b"A" * 100)])
    with pytest.raises(ArchiveError, match="SHA-256 differs"):
        extract_part(part, tmp_path / "o1", label="F/p.tar", expected=[_info("a.bin", b"B" * 100)])
    assert not (tmp_path / "o1" / "a.bin").exists()  # a bad member never appears under its name
    with pytest.raises(ArchiveError, match="sidecar says 99"):
        extract_part(part, tmp_path / "o2", label="F/p.tar", expected=[_info("a.bin", b"A" * 99)])
    with pytest.raises(ArchiveError, match="not in the sidecar"):
        extract_part(part, tmp_path / "o3", label="F/p.tar", expected=[_info("z.bin", b"A")])
    with pytest.raises(ArchiveError, match="not in the TAR"):
        extract_part(part, tmp_path / "o4", label="F/p.tar", expected=[_info("a.bin", b"A" * 100), _info("z", b"")])


@pytest.mark.parametrize(
    "entry,why",
    [
        (("../evil", b"x"), "would leave the target"),
        (("/abs/evil", b"x"), "would leave the target"),
        (("ok/../../evil", b"x"), "would leave the target"),
        (("link", tarfile.SYMTYPE, "/etc/passwd"), "a link"),
        (("hard", tarfile.LNKTYPE, "good.bin"), "a link"),
        (("dev", tarfile.CHRTYPE), "not a regular file"),
        (("blk", tarfile.BLKTYPE), "not a regular file"),
        (("fifo", tarfile.FIFOTYPE), "not a regular file"),
    ],
)
def test_unsafe_members_are_refused_naming_part_and_member(tmp_path, entry, why):
    part = _tar(tmp_path / "bad.tar", [("good.bin", b"g"), entry])
    dest = tmp_path / "box" / "out"
    with pytest.raises(UnsafeMemberError) as ei:
        extract_part(part, dest, label="F/F_BB_0.tar")
    msg = ei.value.one_line()
    assert "F/F_BB_0.tar" in msg and repr(entry[0]) in msg and why in msg
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["bad.tar", "box/out/good.bin"]  # nothing outside the target


def test_symlinked_folder_in_target_cannot_be_used_to_escape(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(tmp_path / "elsewhere", dest / "sub")
    part = _tar(tmp_path / "p.tar", [("sub/x", b"x")])
    with pytest.raises(UnsafeMemberError, match="outside the target"):
        extract_part(part, dest, label="F/p.tar")
    assert not list((tmp_path / "elsewhere").iterdir())


def test_filter_and_truncated_and_garbage(tmp_path):
    part = _tar(tmp_path / "p.tar", [("F_REL01_BB.bin", b"1" * 700), ("F_REL02_BB.bin", b"2" * 700)])
    rep = extract_part(part, tmp_path / "o", label="F/p.tar", wanted=lambda n: "REL02" in n)
    assert rep.members == ["F_REL02_BB.bin"] and rep.skipped == 1
    assert not (tmp_path / "o" / "F_REL01_BB.bin").exists()
    data = part.read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[:1200])
    with pytest.raises(ArchiveError, match="F/cut.tar"):
        extract_part(tmp_path / "cut.tar", tmp_path / "o2", label="F/cut.tar")
    (tmp_path / "junk.tar").write_bytes(os.urandom(4096))
    with pytest.raises(ArchiveError, match="not a readable TAR"):
        extract_part(tmp_path / "junk.tar", tmp_path / "o3", label="F/junk.tar")


def test_write_verified_refuses_too_many_or_too_few_bytes(tmp_path):
    with pytest.raises(ArchiveError, match="more than the 3 bytes"):
        write_verified(iter([b"ab", b"cd"]), tmp_path / "x", size=3, sha256=None, what="x")
    with pytest.raises(ArchiveError, match="truncated"):
        write_verified(iter([b"ab"]), tmp_path / "x", size=3, sha256=None, what="x")
    assert not list(tmp_path.iterdir())


def test_no_space_left_becomes_one_local_io_line(tmp_path, monkeypatch):
    exc = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))
    err = from_os_error(exc, "writing x")
    assert isinstance(err, LocalIOError) and err.exit_code == 9 and "no space left" in err.one_line()

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "x"))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(LocalIOError, match="no space left on device"):
        write_verified(iter([b"abc"]), tmp_path / "x", size=3, sha256=None, what="x")
    assert not list(tmp_path.iterdir())


def test_move_into_place_renames_or_merges_and_drops_temp_files(tmp_path):
    st, final = tmp_path / ".BB.partial", tmp_path / "BB"
    (st / "d").mkdir(parents=True)
    (st / "a").write_text("new")
    (st / "d" / "b").write_text("b")
    (st / ".a.cs_sync_tmp").write_text("torn")
    move_into_place(st, final)
    assert sorted(p.name for p in final.rglob("*")) == ["a", "b", "d"] and not st.exists()
    st.mkdir()
    (st / "a").write_text("newer")
    (st / "c").write_text("c")
    move_into_place(st, final)
    assert (final / "a").read_text() == "newer" and (final / "c").exists() and (final / "d" / "b").exists()
    assert not st.exists()
