"""verify's pure comparisons: a listing entry against a sidecar's part, and --read-data slices."""

import random

import pytest

from cs_sync.archive.sidecar import PartInfo
from cs_sync.core.errors import UsageError
from cs_sync.remote.sets import RemoteFile
from cs_sync.verify.compare import Check, DataSlice, choose_slice, compare_part, parse_slice

A, B = "a" * 64, "b" * 64


def _rf(size=100, **hashes):
    return RemoteFile("F/F_BB.tar", size, hashes)


@pytest.mark.parametrize("part,remote,offered,check,detail", [
    (PartInfo("p", 100, A), _rf(sha256=A), ("sha256",), Check.HASH, "sha256"),
    (PartInfo("p", 100, A), _rf(sha256=B), ("sha256",), Check.MISMATCH, "sha256 hash differs"),
    (PartInfo("p", 100, A), _rf(101, sha256=A), ("sha256",), Check.MISMATCH, "101 bytes, the sidecar says 100"),
    (PartInfo("p", 100, A, {"dropbox": "CC"}), _rf(dropbox="cc"), ("dropbox",), Check.HASH, "dropbox"),
    (PartInfo("p", 100, None, {"dropbox": "cc"}), _rf(dropbox="dd"), ("dropbox",), Check.MISMATCH, "dropbox"),
    # a sidecar written before per-part hashes: SHA-256 only, on a remote without it
    (PartInfo("p", 100, A), _rf(md5="x"), ("md5", "sha1"), Check.SIZE_ONLY,
     "the remote offers md5/sha1, the sidecar recorded sha256"),
    (PartInfo("p", 100, A), _rf(), (), Check.SIZE_ONLY, "the remote offers no hash"),
    # the type is offered and recorded, but this file came without it (an S3 multipart upload)
    (PartInfo("p", 100, A, {"md5": "E"}), _rf(), ("md5",), Check.SIZE_ONLY,
     "the remote gave no md5 for this file (the sidecar recorded it)"),
    (PartInfo("p", 100, None), _rf(sha1="x"), ("sha1",), Check.SIZE_ONLY, "the sidecar recorded no hash"),
    (PartInfo("p", 100, A, {"sha1": "E", "md5": "F"}), _rf(sha1="e", md5="0"), ("md5", "sha1"), Check.MISMATCH, "md5"),
    (PartInfo("p", 100, A), None, ("sha256",), Check.MISSING, "not on the remote"),
])
def test_compare_part(part, remote, offered, check, detail):
    got = compare_part(part, remote, offered=offered)
    assert got.check == check and detail in got.detail


def test_parse_slice():
    assert parse_slice("3/10") == DataSlice(k=3, n=10)
    assert parse_slice("5%") == DataSlice(percent=5.0) == parse_slice("5")
    for bad in ("0/3", "4/3", "0%", "101%", "x", "1/0"):
        with pytest.raises(UsageError, match="--read-data"):
            parse_slice(bad)


def test_k_of_n_slices_cover_every_part_exactly_once_and_stay_put():
    parts = [(f"F{i}/F{i}_BB_{j}.tar", 1000) for i in range(30) for j in range(4)]
    slices = [set(choose_slice(parts, DataSlice(k=k, n=7))) for k in range(1, 8)]
    assert sum(len(s) for s in slices) == len(parts) and set().union(*slices) == {k for k, _ in parts}
    assert all(slices)  # 120 names over 7 slices: none empty
    # another part appearing elsewhere does not move the others
    more = parts + [("G/G_BB.tar", 5)]
    assert set(choose_slice(more, DataSlice(k=2, n=7))) - {"G/G_BB.tar"} == slices[1]


def test_percentage_reads_at_least_that_share_of_the_bytes():
    parts = [(f"p{i}", 1000 * (i + 1)) for i in range(20)]
    total = sum(s for _, s in parts)
    got = choose_slice(parts, DataSlice(percent=10), random.Random(1))
    assert sum(s for k, s in parts if k in got) >= total / 10
    assert len(choose_slice(parts, DataSlice(percent=0.001), random.Random(2))) == 1
    assert set(choose_slice(parts, DataSlice(percent=100))) == {k for k, _ in parts}
