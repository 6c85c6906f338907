"""Safe, verifying extraction: crafted TARs with traversal, links and devices; sizes and hashes."""

import errno
import hashlib
import io
import os
import tarfile

import pytest

from cs_sync.archive.sidecar import MemberInfo
from cs_sync.archive.tar_read import (
    ArchiveError,
    PartHashMismatch,
    UnsafeMemberError,
    extract_part,
    move_into_place,
    write_verified,
)
from cs_sync.core.errors import LocalIOError, from_os_error

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
    (st / ".a.cs_sync_tmp").write_text("torn")  # an earlier version's name
    (st / "d" / ".b.x1y2z3w4.cs_sync_tmp").write_text("torn")  # this version's
    move_into_place(st, final)
    assert sorted(p.name for p in final.rglob("*")) == ["a", "b", "d"] and not st.exists()
    st.mkdir()
    (st / "a").write_text("newer")
    (st / "c").write_text("c")
    move_into_place(st, final)
    assert (final / "a").read_text() == "newer" and (final / "c").exists() and (final / "d" / "b").exists()
    assert not st.exists()


# -- the part's SHA-256, checked in the extraction pass ------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


_BIG = os.urandom(3 * (1 << 20) + 77)  # spans several 1 MiB read chunks
_SMALL = b"hello world\n" * 50


def _hashed_part(tmp_path, name="p.tar"):
    """A part with two members; returns (path, part SHA-256, {member: real data offset})."""
    part = _tar(tmp_path / name, [("big.bin", _BIG), ("sub/small.txt", _SMALL)])
    with tarfile.open(part) as tar:
        offsets = {ti.name: ti.offset_data for ti in tar.getmembers()}
    return part, _sha(part.read_bytes()), offsets


def _flip(path, at):
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _sidecar(offsets, sha=None):
    """Members as the sidecar records them: real data offsets, true hashes unless ``sha`` overrides them."""
    sha = sha or {}
    return [MemberInfo(name=n, part="p.tar", offset=offsets[n], size=len(d), mtime=1.0,
                       sha256=sha.get(n, _sha(d)), source=n)
            for n, d in (("big.bin", _BIG), ("sub/small.txt", _SMALL))]


def test_correct_part_hash_passes_and_extracts_byte_exact(tmp_path):
    part, digest, offsets = _hashed_part(tmp_path)
    dest = tmp_path / "out"
    rep = extract_part(part, dest, label="F/p.tar", part_sha256=digest, expected=_sidecar(offsets))
    assert sorted(rep.members) == ["big.bin", "sub/small.txt"] and rep.bytes == len(_BIG) + len(_SMALL)
    assert (dest / "big.bin").read_bytes() == _BIG and (dest / "sub/small.txt").read_bytes() == _SMALL
    # without a sidecar's member list, too
    rep = extract_part(part, tmp_path / "out2", label="F/p.tar", part_sha256=digest)
    assert (tmp_path / "out2" / "big.bin").read_bytes() == _BIG and rep.bytes == len(_BIG) + len(_SMALL)
    assert not list(tmp_path.rglob("*.cs_sync_tmp"))


@pytest.mark.parametrize("where", ["big", "small", "trailer"])
def test_one_data_byte_flipped_is_a_part_hash_mismatch(tmp_path, where):
    part, digest, offsets = _hashed_part(tmp_path)
    size = part.stat().st_size
    at = {"big": offsets["big.bin"] + len(_BIG) // 2, "small": offsets["sub/small.txt"] + 3, "trailer": size - 1}[where]
    _flip(part, at)
    assert part.stat().st_size == size
    with pytest.raises(PartHashMismatch, match="F/p.tar: SHA-256 differs from the sidecar"):
        extract_part(part, tmp_path / "out", label="F/p.tar", part_sha256=digest, expected=_sidecar(offsets))


@pytest.mark.parametrize("member", ["big.bin", "sub/small.txt"])
def test_header_byte_flipped_is_a_part_hash_mismatch_not_a_tar_error(tmp_path, member):
    """A damaged header makes tarfile refuse the part (first header) or stop early (a later one);
    with the part's SHA-256 known, the error says the copy is corrupted, not that the TAR is bad."""
    part, digest, offsets = _hashed_part(tmp_path)
    header = offsets[member] - 512  # GNU format, short names: one header block before the data
    _flip(part, header + 3)  # inside the name field
    with pytest.raises(PartHashMismatch, match="SHA-256 differs from the sidecar"):
        extract_part(part, tmp_path / "out", label="F/p.tar", part_sha256=digest, expected=_sidecar(offsets))
    # the same damage without the part's hash: a TAR / sidecar error (so the check above was needed)
    with pytest.raises(ArchiveError) as ei:
        extract_part(part, tmp_path / "out2", label="F/p.tar", expected=_sidecar(offsets))
    assert not isinstance(ei.value, PartHashMismatch)


def test_truncated_part_with_part_hash_is_a_mismatch(tmp_path):
    part, digest, offsets = _hashed_part(tmp_path)
    part.write_bytes(part.read_bytes()[: offsets["big.bin"] + 1000])
    with pytest.raises(PartHashMismatch):
        extract_part(part, tmp_path / "out", label="F/p.tar", part_sha256=digest, expected=_sidecar(offsets))


def test_member_at_its_recorded_offset_is_covered_by_the_part_hash(tmp_path):
    """The sidecar's member SHA-256 and part SHA-256 were taken from the same bytes, so a member
    found at the offset the sidecar recorded is checked by the part's hash alone: its own hash is
    not computed again. Shown by giving it a WRONG member hash with the RIGHT part hash: it passes,
    because those bytes are exactly the ones the (matching) part hash covered."""
    part, digest, offsets = _hashed_part(tmp_path)
    wrong = {"big.bin": "0" * 64, "sub/small.txt": "f" * 64}
    dest = tmp_path / "out"
    rep = extract_part(part, dest, label="F/p.tar", part_sha256=digest, expected=_sidecar(offsets, wrong))
    assert sorted(rep.members) == ["big.bin", "sub/small.txt"]
    assert (dest / "big.bin").read_bytes() == _BIG and (dest / "sub/small.txt").read_bytes() == _SMALL
    # the caller having checked the part already (part_verified) covers it the same way
    extract_part(part, tmp_path / "out2", label="F/p.tar", part_verified=True, expected=_sidecar(offsets, wrong))
    assert (tmp_path / "out2" / "big.bin").read_bytes() == _BIG
    # nobody checked the part: the member's own hash is checked and the wrong one is caught
    with pytest.raises(ArchiveError, match="member 'big.bin': SHA-256 differs"):
        extract_part(part, tmp_path / "out3", label="F/p.tar", expected=_sidecar(offsets, wrong))


def test_member_at_another_offset_is_hashed_on_its_own(tmp_path):
    """A sidecar offset that is not where the member really is: the part hash says nothing about
    which bytes the sidecar's member hash was taken from, so the member is hashed as it is written."""
    part, digest, offsets = _hashed_part(tmp_path)
    moved = dict(offsets, **{"big.bin": offsets["big.bin"] + 512})
    with pytest.raises(ArchiveError, match="member 'big.bin': SHA-256 differs") as ei:
        extract_part(part, tmp_path / "out", label="F/p.tar", part_sha256=digest,
                     expected=_sidecar(moved, {"big.bin": "0" * 64}))
    assert not isinstance(ei.value, PartHashMismatch)  # the part itself is fine
    assert not (tmp_path / "out" / "big.bin").exists()
    # with the right member hash the misplaced offset alone is no error: the member is checked on its own
    rep = extract_part(part, tmp_path / "out2", label="F/p.tar", part_sha256=digest, expected=_sidecar(moved))
    assert (tmp_path / "out2" / "big.bin").read_bytes() == _BIG and len(rep.members) == 2
