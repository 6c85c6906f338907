"""The part writer: exact sizes, offsets and hashes, GNU tar compatibility, clean failures."""

import builtins
import hashlib
import os
import subprocess
import tarfile

import pytest

from cs_sync.archive.tar_write import MemberSource, PartWriter, hash_file, hash_source, tar_size
from cs_sync.core.errors import LocalIOError, SourceChanged


def make_sources(root, spec):
    """spec: {relpath: size} -> list of MemberSource (member name = basename)."""
    out = []
    for i, (rel, size) in enumerate(spec.items()):
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(size) if size < 1 << 16 else (bytes([i % 251]) * size))
        st = p.stat()
        out.append(MemberSource(os.path.basename(rel), rel, size, st.st_mtime_ns))
    return out


LONG = "L" * 140 + "_BB.bin"


@pytest.mark.parametrize("buffer_size", [4096, 1 << 20])
def test_part_matches_gnu_tar_offsets_and_hashes(tmp_path, buffer_size):
    src = tmp_path / "src"
    members = make_sources(src, {"a/x.bin": 0, "a/y.bin": 1, "b/z.bin": 513, "c/" + LONG: 70_000, "d/big.bin": 300_001})
    with PartWriter(buffer_size) as w:
        part = w.write("F_BB.tar", members, src, tmp_path / "out", expected_size=tar_size((m.name, m.size) for m in members))
    data = part.path.read_bytes()
    assert len(data) == part.size == tar_size((m.name, m.size) for m in members)
    assert hashlib.sha256(data).hexdigest() == part.sha256
    assert not list((tmp_path / "out").glob("*.tmp"))
    for wm, m in zip(part.members, members):
        original = (src / m.source).read_bytes()
        assert data[wm.offset: wm.offset + wm.size] == original
        assert wm.sha256 == hashlib.sha256(original).hexdigest()
        assert wm.mtime_ns == m.mtime_ns and wm.source == m.source
    # Python's reader agrees on offsets
    with tarfile.open(part.path) as tf:
        assert [(ti.name, ti.offset_data) for ti in tf.getmembers()] == [(wm.name, wm.offset) for wm in part.members]
    # GNU tar extracts every member byte for byte
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(["tar", "-xf", str(part.path), "-C", str(dest)], check=True)
    for m in members:
        assert (dest / m.name).read_bytes() == (src / m.source).read_bytes()


def test_writer_reused_for_several_parts(tmp_path):
    src = tmp_path / "src"
    ms = make_sources(src, {f"f{i}.bin": 10_000 * (i + 1) for i in range(4)})
    with PartWriter(8192) as w:
        p1 = w.write("p_0.tar", ms[:2], src, tmp_path / "o")
        p2 = w.write("p_1f.tar", ms[2:], src, tmp_path / "o")
    assert hash_file(p1.path) == (p1.size, p1.sha256)
    assert hash_file(p2.path) == (p2.size, p2.sha256)


def test_changed_source_stops_the_part_and_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    ms = make_sources(src, {"a.bin": 1000, "b.bin": 1000})
    (src / "b.bin").write_bytes(b"x" * 999)
    with PartWriter(4096) as w, pytest.raises(SourceChanged, match="b.bin: is 999 bytes, preprocess recorded 1000"):
        w.write("p.tar", ms, src, tmp_path / "o")
    assert list((tmp_path / "o").iterdir()) == []


def test_touched_and_vanished_sources(tmp_path):
    src = tmp_path / "src"
    ms = make_sources(src, {"a.bin": 100, "b.bin": 100})
    os.utime(src / "a.bin", ns=(1, 2))
    with PartWriter(4096) as w, pytest.raises(SourceChanged, match="a.bin: modified since preprocess"):
        w.write("p.tar", ms, src, tmp_path / "o")
    (src / "a.bin").unlink()
    with PartWriter(4096) as w, pytest.raises(SourceChanged, match="a.bin: vanished since preprocess"):
        w.write("p.tar", ms, src, tmp_path / "o")
    with pytest.raises(SourceChanged, match="vanished"):
        hash_source(ms[0], src)
    assert hash_source(ms[1], src)[1] == hashlib.sha256((src / "b.bin").read_bytes()).hexdigest()
    assert list((tmp_path / "o").iterdir()) == []


def test_full_disk_is_a_local_io_error_and_leaves_no_part(tmp_path, monkeypatch):
    src = tmp_path / "src"
    ms = make_sources(src, {"a.bin": 100_000})
    real_open = builtins.open

    def fake_open(path, mode="r", *a, **k):  # the part's .tmp lands on a full disk
        if str(path).endswith(".tmp"):
            return real_open("/dev/full", "wb")
        return real_open(path, mode, *a, **k)

    monkeypatch.setattr(builtins, "open", fake_open)
    with PartWriter(4096) as w, pytest.raises(LocalIOError, match="no space left"):
        w.write("p.tar", ms, src, tmp_path / "o")
    monkeypatch.undo()
    assert not (tmp_path / "o" / "p.tar").exists()
