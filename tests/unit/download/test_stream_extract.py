"""Extracting a part as it arrives: every check of the file path, and nothing kept from a bad part."""

import hashlib
import io
import tarfile

import pytest

from cs_sync.archive.sidecar import MemberInfo
from cs_sync.archive.tar_read import ArchiveError, PartHashMismatch, UnsafeMemberError
from cs_sync.download.stream_extract import extract_stream


def make_tar(members: list[tuple[str, bytes]], *, link: str | None = None) -> tuple[bytes, list[MemberInfo]]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tf:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(data), 1_600_000_000
            tf.addfile(ti, io.BytesIO(data))
        if link:
            ti = tarfile.TarInfo(link)
            ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tf.addfile(ti)
    raw = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        infos = [MemberInfo(ti.name, "p.tar", ti.offset_data, ti.size, ti.mtime,
                            hashlib.sha256(tf.extractfile(ti).read()).hexdigest(), "src/" + ti.name)
                 for ti in tf.getmembers() if ti.isreg()]
    return raw, infos


def run(raw: bytes, infos, dest, **kw):
    return extract_stream(io.BytesIO(raw), dest, label="F/p.tar", expected=infos,
                          part_sha256=kw.pop("sha", hashlib.sha256(raw).hexdigest()), size=kw.pop("size", len(raw)), **kw)


def test_members_land_only_when_the_whole_part_checked(tmp_path):
    raw, infos = make_tar([("a.bin", b"x" * 70_000), ("L" * 150 + ".bin", b"y" * 10)])
    seen = []
    rep = run(raw, infos, tmp_path / "s", on_bytes=seen.append)
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == sorted(m.name for m in infos)
    assert (tmp_path / "s" / "a.bin").read_bytes() == b"x" * 70_000 and seen[-1] == len(raw)
    assert rep.bytes == 70_010


@pytest.mark.parametrize("damage,error,text", [
    ("hash", PartHashMismatch, "SHA-256 differs"),
    ("truncated", ArchiveError, "truncated"),
    ("extra", ArchiveError, "not in the sidecar"),
    ("missing", ArchiveError, "not in the TAR"),
    ("offset", ArchiveError, "sidecar says"),
])
def test_a_bad_part_leaves_none_of_its_members(tmp_path, damage, error, text):
    raw, infos = make_tar([("a.bin", b"x" * 70_000), ("b.bin", b"y" * 5000)])
    kw = {}
    if damage == "hash":  # one byte of a member's data, same size: only the part's hash tells
        kw["sha"] = hashlib.sha256(raw).hexdigest()
        raw = raw[:600] + bytes([raw[600] ^ 1]) + raw[601:]
    elif damage == "truncated":
        raw = raw[:40_000]
        kw["size"] = 10_000_000
    elif damage == "extra":
        infos = infos[:1]
    elif damage == "missing":
        infos = infos + [MemberInfo("c.bin", "p.tar", 99, 1, 1.0, "0" * 64, "src/c.bin")]
    elif damage == "offset":
        infos = [infos[0], MemberInfo(**{**infos[1].__dict__, "offset": infos[1].offset + 512})]
    with pytest.raises(error, match=text):
        run(raw, infos, tmp_path / "s", **kw)
    assert not [p for p in (tmp_path / "s").rglob("*") if p.is_file()]  # not even temporary names


@pytest.mark.parametrize("name", ["../../evil.bin", "/abs/evil.bin"])
def test_unsafe_names_and_links_are_refused(tmp_path, name):
    raw, infos = make_tar([(name, b"z")])
    infos = [MemberInfo("evil.bin", "p.tar", 512, 1, 1.0, "0" * 64, "x")]
    with pytest.raises(UnsafeMemberError):
        run(raw, infos, tmp_path / "s")
    raw, infos = make_tar([("a.bin", b"x")], link="ln")
    with pytest.raises(UnsafeMemberError, match="a link"):
        run(raw, infos, tmp_path / "t")
    assert not (tmp_path.parent / "evil.bin").exists() and not [p for p in tmp_path.rglob("*") if p.is_file()]
