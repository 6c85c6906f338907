"""The part stream: exact sizes, offsets and hashes, GNU tar compatibility, refusals that never block."""

import hashlib
import io
import os
import subprocess
import tarfile
import threading

import pytest

from cs_sync.archive.tar_write import MemberSource, stream_part, tar_size
from cs_sync.core.errors import SourceChanged
from cs_sync.core.hashes import new_hasher


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


class Collect:
    """A sink that keeps what it was given (the bytes rclone would have received)."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()

    def write(self, data) -> None:
        self.buf.write(bytes(data))

    @property
    def data(self) -> bytes:
        return self.buf.getvalue()


LONG = "L" * 140 + "_BB.bin"


@pytest.mark.parametrize("buffer_size", [4096, 1 << 20])
def test_part_matches_gnu_tar_offsets_and_hashes(tmp_path, buffer_size):
    src = tmp_path / "src"
    members = make_sources(src, {"a/x.bin": 0, "a/y.bin": 1, "b/z.bin": 513, "c/" + LONG: 70_000, "d/big.bin": 300_001})
    sink = Collect()
    seen = []
    size = tar_size((m.name, m.size) for m in members)
    part = stream_part("F_BB.tar", members, src, sink, expected_size=size, buffer_size=buffer_size,
                       hash_types=["dropbox", "md5"], on_bytes=seen.append)
    data = sink.data
    assert len(data) == part.size == size and seen[-1] == size and seen == sorted(seen)
    assert hashlib.sha256(data).hexdigest() == part.sha256 == part.hashes["sha256"]
    assert part.hashes["md5"] == hashlib.md5(data).hexdigest()
    dbx = new_hasher("dropbox")
    dbx.update(data)
    assert part.hashes["dropbox"] == dbx.hexdigest()
    for wm, m in zip(part.members, members):
        original = (src / m.source).read_bytes()
        assert data[wm.offset: wm.offset + wm.size] == original
        assert wm.sha256 == hashlib.sha256(original).hexdigest()
        assert wm.mtime_ns == m.mtime_ns and wm.source == m.source
    (tmp_path / "p.tar").write_bytes(data)
    with tarfile.open(tmp_path / "p.tar") as tf:  # Python's reader agrees on offsets
        assert [(ti.name, ti.offset_data) for ti in tf.getmembers()] == [(wm.name, wm.offset) for wm in part.members]
    dest = tmp_path / "x"
    dest.mkdir()
    subprocess.run(["tar", "-xf", str(tmp_path / "p.tar"), "-C", str(dest)], check=True)  # GNU tar agrees on bytes
    for m in members:
        assert (dest / m.name).read_bytes() == (src / m.source).read_bytes()


def test_plain_part_is_the_file_itself(tmp_path):
    src = tmp_path / "src"
    [m] = make_sources(src, {"F/BB.bin": 100_000})
    sink = Collect()
    part = stream_part("F_BB.bin", [m], src, sink, plain=True, hash_types=["sha1"])
    original = (src / m.source).read_bytes()
    assert sink.data == original and part.size == len(original)
    assert part.sha256 == part.members[0].sha256 == hashlib.sha256(original).hexdigest()
    assert part.hashes["sha1"] == hashlib.sha1(original).hexdigest() and part.members[0].offset == 0


def test_changed_source_stops_the_stream(tmp_path):
    src = tmp_path / "src"
    ms = make_sources(src, {"a.bin": 1000, "b.bin": 1000})
    (src / "b.bin").write_bytes(b"x" * 999)
    with pytest.raises(SourceChanged, match="b.bin: is 999 bytes, preprocess recorded 1000"):
        stream_part("p.tar", ms, src, Collect())


def test_touched_and_vanished_sources(tmp_path):
    src = tmp_path / "src"
    ms = make_sources(src, {"a.bin": 100, "b.bin": 100})
    os.utime(src / "a.bin", ns=(1, 2))
    with pytest.raises(SourceChanged, match="a.bin: modified since preprocess"):
        stream_part("p.tar", ms, src, Collect())
    (src / "a.bin").unlink()
    with pytest.raises(SourceChanged, match="a.bin: vanished since preprocess"):
        stream_part("p.tar", ms, src, Collect())


def test_source_growing_while_streamed_is_named(tmp_path):
    src = tmp_path / "src"
    ms = make_sources(src, {"a.bin": 300_000})

    class Grow(Collect):
        def write(self, data) -> None:  # the file grows while its first bytes are on their way
            super().write(data)
            with open(src / "a.bin", "ab") as fh:
                fh.write(b"more")

    with pytest.raises(SourceChanged, match="a.bin: grew while being streamed"):
        stream_part("p.tar", ms, src, Grow(), buffer_size=65536)


@pytest.mark.parametrize("kind", ["fifo", "dir"])
def test_a_source_that_is_not_a_regular_file_is_refused_without_blocking(tmp_path, kind):
    src = tmp_path / "src"
    ms = make_sources(src, {"a.bin": 10})
    (src / "a.bin").unlink()
    if kind == "fifo":
        os.mkfifo(src / "a.bin")
    else:
        (src / "a.bin").mkdir()
    ms = [MemberSource("a.bin", "a.bin", 10, None)]
    out: list[BaseException] = []
    t = threading.Thread(target=lambda: out.append(pytest.raises(SourceChanged, stream_part, "p.tar", ms, src,
                                                                    Collect()).value), daemon=True)
    t.start()
    t.join(10)
    assert not t.is_alive(), "opening the source blocked"
    assert "a.bin: not a regular file (a FIFO)" in str(out[0]) if kind == "fifo" else \
        "a.bin: not a regular file (a folder)" in str(out[0])


def test_a_failing_sink_passes_its_error_through(tmp_path):
    src = tmp_path / "src"
    ms = make_sources(src, {"a.bin": 100_000})

    class Broken:
        def write(self, data) -> None:
            raise BrokenPipeError("rclone went away")

    with pytest.raises(BrokenPipeError):
        stream_part("p.tar", ms, src, Broken())
