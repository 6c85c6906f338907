"""The header walk of older TAR parts: real TARs (GNU tar, Python's tarfile in pax format),
read through a function that serves byte ranges of the file and counts what it served."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest

from cs_sync.archive.tar_index import (
    BLOCK,
    READ_MIN,
    WHOLE_PART,
    TarIndexError,
    check_member_header,
    hash_part,
    walk_part,
)


class Ranges:
    """``read(offset, length)`` over bytes, recording every request."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.calls: list[tuple[int, int]] = []

    def __call__(self, offset: int, length: int) -> bytes:
        self.calls.append((offset, length))
        return self.data[offset:offset + length]

    @property
    def served(self) -> int:
        return sum(len(self.data[o:o + n]) for o, n in self.calls)


def gnu_tar(tmp_path: Path, files: dict[str, bytes], *, fmt: str = "gnu", extra: tuple[str, ...] = ()) -> bytes:
    src = tmp_path / "src"
    for name, data in files.items():
        p = src / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        os.utime(p, (1_600_000_000, 1_600_000_000))
    out = tmp_path / "part.tar"
    subprocess.run(["tar", "cf", str(out), f"--format={fmt}", *extra, "-C", str(src), *files], check=True)
    return out.read_bytes()


def reference(data: bytes) -> list[tuple[str, int, int]]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(ti.name, ti.offset_data, ti.size) for ti in tar if ti.isreg()]


def walked(data: bytes) -> tuple[list[tuple[str, int, int]], Ranges]:
    r = Ranges(data)
    w = walk_part(r, len(data), label="F/F_BB_0.tar")
    return [(m.name, m.offset, m.size) for m in w.members], r


def blob(n: int, seed: str) -> bytes:
    h = hashlib.sha256(seed.encode()).digest()
    return (h * (n // len(h) + 1))[:n]


# -- what the walk finds -------------------------------------------------------------------


def test_large_members_cost_one_small_read_each(tmp_path):
    files = {f"F_REL{i:02d}_BB.bin": blob(300_000 + i, str(i)) for i in range(1, 32)}
    data = gnu_tar(tmp_path, files)
    got, r = walked(data)
    assert got == reference(data) and len(got) == 31
    assert len(r.calls) <= 33  # a header per member and the end blocks
    assert r.served <= 33 * READ_MIN < len(data) / 50
    w = walk_part(Ranges(data), len(data), label="p")
    assert w.members[0].mtime == 1_600_000_000 and w.members[0].header == w.members[0].offset - BLOCK


def test_long_names_gnu_and_pax_and_folders(tmp_path):
    deep = "F_REL01/" + "a_very_long_folder_name_that_goes_on/" * 5 + "BB.bin"
    files = {deep: blob(5000, "deep"), "F_REL02/BB/Acc/BB.bin": blob(7000, "b"), "x" * 150 + ".csv": b"1,2\n"}
    for fmt in ("gnu", "pax"):
        data = gnu_tar(tmp_path / fmt, files, fmt=fmt)
        got, _ = walked(data)
        assert got == reference(data)
        assert {n for n, _, _ in got} == set(files)
    w = walk_part(Ranges(data), len(data), label="p")
    assert w.dirs == 0  # tar was given files, not folders
    data = gnu_tar(tmp_path / "dirs", {"F_REL01/BB/Acc/BB.bin": b"x" * 10}, extra=())
    src = tmp_path / "dirs" / "src"
    subprocess.run(["tar", "cf", str(tmp_path / "d.tar"), "-C", str(src), "F_REL01"], check=True)
    data = (tmp_path / "d.tar").read_bytes()
    w = walk_part(Ranges(data), len(data), label="p")
    assert [m.name for m in w.members] == ["F_REL01/BB/Acc/BB.bin"] and w.dirs == 3


def test_python_pax_tar_with_long_names(tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(5):
            d = blob(1000 * i + 1, str(i))
            ti = tarfile.TarInfo(("n" * 120) + f"_{i}.bin")
            ti.size = len(d)
            ti.mtime = 1_700_000_000.5
            tar.addfile(ti, io.BytesIO(d))
    data = buf.getvalue()
    got, _ = walked(data)
    assert got == reference(data)


def test_many_small_members_are_read_a_window_at_a_time(tmp_path):
    files = {f"F_REL{i:03d}.csv": blob(300, str(i)) for i in range(400)}
    data = gnu_tar(tmp_path, files)
    assert len(data) > WHOLE_PART
    got, r = walked(data)
    assert got == reference(data) and len(got) == 400
    assert len(r.calls) < 400 / 10  # the reader looks ahead once the members prove small


def test_a_small_part_is_read_whole_in_one_request(tmp_path):
    data = gnu_tar(tmp_path, {f"f{i}.yaml": blob(100, str(i)) for i in range(20)})
    assert len(data) <= WHOLE_PART
    got, r = walked(data)
    assert got == reference(data) and r.calls == [(0, len(data))]


def test_empty_members_and_an_empty_archive(tmp_path):
    data = gnu_tar(tmp_path, {"empty.bin": b"", "one.bin": b"1"})
    got, _ = walked(data)
    assert got == reference(data) == [("empty.bin", 512, 0), ("one.bin", 1024, 1)]
    empty = bytes(10240)  # what `tar cf x.tar -T /dev/null` writes: a whole TAR with no members
    w = walk_part(Ranges(empty), len(empty), label="p")
    assert w.members == [] and w.end == 0


def test_hash_part_streams_once_and_hashes_members_and_part(tmp_path):
    files = {f"F_REL{i:02d}_BB.bin": blob(70_000 * i + 3, str(i)) for i in range(1, 6)}
    files["F_REL01/deep/" + "y" * 120] = b"deep"
    data = gnu_tar(tmp_path, files)
    chunks = [data[i:i + 7777] for i in range(0, len(data), 7777)]
    w = hash_part(iter(chunks), len(data), label="p")
    assert [(m.name, m.offset, m.size) for m in w.members] == reference(data)
    assert {m.name: m.sha256 for m in w.members} == {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}
    assert w.sha256 == hashlib.sha256(data).hexdigest() and w.bytes_read == len(data)


# -- damaged parts: named, never a short index ---------------------------------------------------


@pytest.fixture
def part(tmp_path) -> bytes:
    return gnu_tar(tmp_path, {f"F_REL{i:02d}_BB.bin": blob(10_000 + i, str(i)) for i in range(1, 6)})


def _both(data: bytes, match: str, size: int | None = None):
    size = len(data) if size is None else size
    with pytest.raises(TarIndexError, match=match) as exc:
        walk_part(Ranges(data), size, label="F/F_BB_0.tar")
    assert "F/F_BB_0.tar" in exc.value.message
    with pytest.raises(TarIndexError, match=match):
        hash_part(iter([data]), size, label="F/F_BB_0.tar")


def test_not_a_tar():
    _both(os.urandom(5000), "not a TAR")
    _both(b"", "empty file")
    _both(b"PK\x03\x04 a zip", "shorter than one TAR header")


def test_truncated_inside_a_member_and_at_a_boundary_and_in_the_end_blocks(part):
    offs = reference(part)
    _both(part[:offs[2][1] + 100], "runs past the end|truncated")
    end_of_third = offs[2][1] + -(-offs[2][2] // 512) * 512
    _both(part[:end_of_third], "without the end-of-archive blocks")
    last = offs[-1][1] + -(-offs[-1][2] // 512) * 512
    _both(part[:last + 100], "inside the end-of-archive blocks")


def test_damaged_header_in_the_middle_is_not_taken_for_the_end(part):
    offs = reference(part)
    bad = bytearray(part)
    bad[offs[3][1] - 512 + 10] ^= 0xFF  # a byte of the fourth member's name: checksum fails
    _both(bytes(bad), "damaged TAR header at byte")


def _set_size(data: bytes, header_at: int, size: int) -> bytes:
    """Rewrite one header's size field and fix its checksum (a consistent but lying header)."""
    b = bytearray(data)
    b[header_at + 124:header_at + 136] = f"{size:011o}\0".encode()
    b[header_at + 148:header_at + 156] = b" " * 8
    b[header_at + 148:header_at + 156] = f"{sum(b[header_at:header_at + 512]):06o}\0 ".encode()
    return bytes(b)


def test_member_whose_size_runs_past_the_part_end(part):
    offs = reference(part)
    bad = _set_size(part, offs[-1][1] - 512, len(part) * 3)
    _both(bad, "runs past the end of the part")


def test_unsafe_names_links_and_devices(tmp_path):
    for name, kind in (("../../evil", "leave the target"), ("/etc/evil", "leave the target")):
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            ti = tarfile.TarInfo(name)
            ti.size = 3
            tar.addfile(ti, io.BytesIO(b"abc"))
        _both(buf.getvalue(), kind)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ti = tarfile.TarInfo("link")
        ti.type, ti.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(ti)
    _both(buf.getvalue(), "is a link")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        ti = tarfile.TarInfo("fifo")
        ti.type = tarfile.FIFOTYPE
        tar.addfile(ti)
    _both(buf.getvalue(), "not a regular file")


def test_part_shorter_than_the_listing_says(part):
    with pytest.raises(TarIndexError):
        walk_part(Ranges(part[:len(part) // 2]), len(part), label="p")


# -- the header in front of a member read by range ---------------------------------------------


def test_check_member_header(part):
    name, off, size = reference(part)[1]
    block = part[off - 512:off]
    check_member_header(block, name=name, size=size, label="p")
    with pytest.raises(TarIndexError, match="says"):
        check_member_header(block, name=name, size=size + 1, label="p")
    with pytest.raises(TarIndexError, match="names"):
        check_member_header(block, name="other.bin", size=size, label="p")
    bad = bytearray(block)
    bad[0] ^= 1
    with pytest.raises(TarIndexError, match="damaged"):
        check_member_header(bytes(bad), name=name, size=size, label="p")
    with pytest.raises(TarIndexError, match="damaged"):
        check_member_header(part[off:off + 512], name=name, size=size, label="p")  # data, not a header


# -- seeded mutations: the walk never crashes and never vouches for what is not there ------------


def _mutations(seed: int, n: int):
    import random

    rng = random.Random(seed)
    for i in range(n):
        buf = io.BytesIO()
        fmt = rng.choice([tarfile.GNU_FORMAT, tarfile.PAX_FORMAT, tarfile.USTAR_FORMAT])
        with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
            for j in range(rng.randint(1, 6)):
                data = rng.randbytes(rng.choice([0, 1, 511, 512, 513, 3000, 70_000]))
                long = 120 if fmt != tarfile.USTAR_FORMAT else 90  # ustar cannot hold a 120-character name
                ti = tarfile.TarInfo(f"F_REL{j:02d}/" + "d" * rng.choice([1, 60, long]) + ".bin")
                ti.size, ti.mtime = len(data), 1_700_000_000
                tar.addfile(ti, io.BytesIO(data))
        b = bytearray(buf.getvalue())
        how = rng.randrange(5)
        if how == 0:
            for _ in range(rng.randint(1, 6)):
                b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        elif how == 1:
            b = b[:rng.randrange(len(b))]
        elif how == 2:
            at = 512 * rng.randrange(len(b) // 512)
            b[at:at + 512] = rng.randbytes(512)
        elif how == 3:
            heads = [o for o in range(0, len(b) - 512, 512) if b[o + 257:o + 262] == b"ustar"]
            if heads:
                b = bytearray(_set_size(bytes(b), rng.choice(heads), rng.choice([0, 1, 10**6, 10**11])))
        yield i, bytes(b)


def test_mutated_parts_never_crash_the_walk_and_never_give_members_outside_the_part():
    for i, data in _mutations(20261201, 300):
        outcomes = []
        for walk in (lambda d: walk_part(Ranges(d), len(d), label="p"),
                     lambda d: hash_part(iter([d[k:k + 1000] for k in range(0, len(d), 1000)]), len(d), label="p")):
            try:
                w = walk(data)
            except TarIndexError:
                outcomes.append(None)
                continue
            for m in w.members:
                assert 0 < m.offset and m.offset + m.size <= len(data), (i, m)
                assert not m.name.startswith("/") and ".." not in m.name.split("/"), (i, m)
            outcomes.append([(m.name, m.offset, m.size) for m in w.members])
        assert outcomes[0] == outcomes[1], i  # the ranged walk and the stream agree on every case


class SlowRanges(Ranges):
    """Each request waits as a round trip to cloud storage would (here 20 ms)."""

    def __call__(self, offset: int, length: int) -> bytes:
        time.sleep(0.02)
        return super().__call__(offset, length)


def test_equal_members_are_walked_with_guessed_headers_in_parallel(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    files = {f"F_REL{i:02d}_BB.bin": blob(300_000, str(i)) for i in range(1, 32)}  # one fault: equal sizes
    data = gnu_tar(tmp_path, files)
    t0 = time.monotonic()
    alone = walk_part(SlowRanges(data), len(data), label="p")
    sequential = time.monotonic() - t0
    with ThreadPoolExecutor(8) as pool:
        r = SlowRanges(data)
        t0 = time.monotonic()
        ahead = walk_part(r, len(data), label="p", submit=pool.submit)
        parallel = time.monotonic() - t0
    assert [(m.name, m.offset, m.size) for m in ahead.members] == [(m.name, m.offset, m.size) for m in alone.members]
    assert parallel < sequential / 2, (parallel, sequential)  # 32 round trips one after another, or ~6 waits
    assert r.served <= 45 * READ_MIN  # the guesses past the end are not made; few wasted reads


def test_guesses_that_miss_never_change_the_answer(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    sizes = [300_000] * 5 + [310_000] + [300_000] * 4 + [1000] + [300_000] * 6  # equal runs broken
    files = {f"F_REL{i:02d}_BB.bin": blob(n, str(i)) for i, n in enumerate(sizes, 1)}
    data = gnu_tar(tmp_path, files)
    with ThreadPoolExecutor(8) as pool:
        w = walk_part(Ranges(data), len(data), label="p", submit=pool.submit)
        assert [(m.name, m.offset, m.size) for m in w.members] == reference(data)
        bad = _set_size(data, reference(data)[7][1] - 512, 10**9)  # damage after guesses were made
        with pytest.raises(TarIndexError, match="runs past the end"):
            walk_part(Ranges(bad), len(bad), label="p", submit=pool.submit)
