"""The hashes upload computes while streaming equal what rclone computes from the same file.

rclone is the reference (it is what compares them with the remote's); these tests
run ``rclone hashsum`` on the same bytes, including sizes at and around Dropbox's
4 MiB block boundary and data fed in odd-sized chunks.
"""

from __future__ import annotations

import os
import random
import subprocess

import pytest

from cs_sync.core.hashes import DROPBOX_BLOCK, FILE_CHUNK, PREFERRED, file_sha256, new_hasher, pick_remote_hash, sha256_of_chunks


def rclone_hash(rclone_bin: str, kind: str, path) -> str:
    out = subprocess.run([rclone_bin, "hashsum", kind, str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[0]


@pytest.mark.parametrize("size", [0, 1, DROPBOX_BLOCK - 1, DROPBOX_BLOCK, DROPBOX_BLOCK + 1, 2 * DROPBOX_BLOCK + 12345])
@pytest.mark.parametrize("kind", PREFERRED)
def test_same_hash_as_rclone_hashsum(kind, size, tmp_path, rclone_bin):
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    h = new_hasher(kind)
    rng = random.Random(7)
    pos = 0
    while pos < size:  # chunks that do not line up with the 4 MiB blocks
        n = rng.randint(1, 3 << 20)
        h.update(memoryview(data)[pos: pos + n])
        pos += n
    assert h.hexdigest() == rclone_hash(rclone_bin, kind, path)


def test_hexdigest_can_be_read_twice_and_bytes_work():
    h = new_hasher("dropbox")
    h.update(os.urandom(1000))
    assert h.hexdigest() == h.hexdigest()


def test_pick_prefers_the_strongest_hash_we_can_compute():
    assert pick_remote_hash(["md5", "sha1"]) == "sha1"
    assert pick_remote_hash(["DropBox"]) == "dropbox"
    assert pick_remote_hash(["quickxor"]) is None
    assert pick_remote_hash([]) is None
    assert pick_remote_hash(["md5", "sha256", "dropbox"]) == "sha256"
    with pytest.raises(ValueError):
        new_hasher("quickxor")


@pytest.mark.parametrize("size", [0, 1, FILE_CHUNK - 1, FILE_CHUNK, FILE_CHUNK + 1, 3 * FILE_CHUNK + 77])
def test_the_one_file_sha256_is_rclones(size, tmp_path, rclone_bin):
    data = random.Random(size).randbytes(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    want = rclone_hash(rclone_bin, "sha256", path)
    assert file_sha256(path) == want
    pieces = [memoryview(data)[i: i + 1000] for i in range(0, size, 1000)]
    assert sha256_of_chunks(pieces) == (size, want)
