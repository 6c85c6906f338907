"""The whole path against an S3-compatible store: a real ``rclone serve s3`` on 127.0.0.1.

Parts of 10-40 KiB straddle the client's 35 KiB upload cutoff, so some go up by one PUT and
the others by multipart upload (rclone's S3 backend streams every file of known size at or
above the cutoff that way). The remote root has a space and a non-ASCII letter, so every
object name carries both. Files arrive in ``_cs_sync/incoming`` and are moved into place:
on S3 that is a server-side copy and a delete, and the copy must keep the hash.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from archive_builder import flip_byte
from cybershake_tree import FaultSpec, make_version
from dl_helpers import _env, run_cs_sync, run_download, script
from servers import S3_BUCKET, serving, start_s3

V = "v22p12"
FAULTS = [
    FaultSpec("AlpineK2T", rels=4, median=True, perturbed=True, bb_size=30_000),
    FaultSpec("Hope1888", rels=3, median=False, bb_size=20_000),
]
CUTOFF = 35 << 10
SUB = "Cyber shake é"  # the remote root: a space and a non-ASCII letter in every object name


@pytest.fixture
def s3(tmp_path, rclone_bin, monkeypatch):
    with serving(start_s3(rclone_bin, tmp_path / "s3_root", upload_cutoff=f"{CUTOFF >> 10}k"), monkeypatch) as srv:
        yield srv


def _run(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, env=_env(), timeout=300)


def _upload(tmp_path, root: str):
    cs_root = tmp_path / V
    lst = make_version(cs_root, FAULTS)
    manifest = tmp_path / "files_to_sync.yaml"
    p = _run(script("cs-sync-preprocess"), str(cs_root), str(lst), "--out_file", str(manifest),
             "--stocktake_csv", str(tmp_path / "stocktake.csv"))
    assert p.returncode == 0, p.stdout + p.stderr
    p = _run(script("cs-sync-upload"), str(cs_root), str(manifest), "--remote", root, "--max-size", "50000",
             "--tmp_dir", str(tmp_path / "tmp"))
    assert p.returncode == 0, p.stdout + p.stderr
    return cs_root, p.stdout


def _sidecars(folder):
    return [json.loads(f.read_text()) for f in sorted((folder / V / "_cs_sync").glob("*.json"))]


def _lsjson(rclone_bin: str, path: str) -> list[dict]:
    p = _run(rclone_bin, "lsjson", "-R", "--files-only", "--hash", path)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


@pytest.mark.parametrize("small_files", ["batched", "rcat"])
def test_s3_upload_status_verify_download_round_trip(s3, tmp_path, rclone_bin, monkeypatch, small_files):
    if small_files == "rcat":
        monkeypatch.setenv("CS_SYNC_SMALL_FILE", "0")
    root = f"{s3.remote}{S3_BUCKET}/{SUB}"
    folder = s3.root / S3_BUCKET / SUB
    cs_root, out = _upload(tmp_path, root)
    sidecars = _sidecars(folder)
    parts = [(sc["fault"], p) for sc in sidecars for p in sc["parts"]]
    sizes = [p["size"] for _, p in parts]
    assert min(sizes) < CUTOFF <= max(sizes), sizes  # single PUTs and multipart uploads both
    n = len(parts) + 2  # and list.txt, stocktake.csv
    assert f"checks: {n} by the remote's own md5 hash of the file it stored" in out, out
    assert "SIZE" not in out.split("summary for")[1]

    # what the remote lists is the MD5 of the bytes it holds, and the sidecar recorded that
    listed = {f["Path"]: f["Hashes"].get("md5") for f in _lsjson(rclone_bin, f"{root}/{V}")}
    assert not [p for p in listed if "/incoming/" in p]  # every file was moved into place
    import hashlib

    for fault, p in parts:
        on_server = folder / V / fault / p["name"]
        md5 = hashlib.md5(on_server.read_bytes()).hexdigest()
        assert listed[f"{fault}/{p['name']}"] == md5 == p["hashes"]["md5"], p

    code, so, se = run_cs_sync("status", "--remote", root, V)
    assert code == 0 and "total: 2 faults, 8 complete" in so, so + se
    code, so, se = run_cs_sync("verify", V, "--remote", root)
    assert code == 0 and f"parts: {len(parts)} by hash ({len(parts)} md5), 0 by SIZE ONLY, 0 DIFFER" in so, so + se
    code, so, se = run_cs_sync("verify", V, "--remote", root, "--read-data", "100%")
    assert code == 0 and f"{len(parts)} part(s) streamed" in so and f"{len(parts)} match every" in so, so + se

    members = [(sc["fault"], sc["dtype"], m) for sc in sidecars for m in sc["members"]]
    ddir = tmp_path / "dl"
    code, so, se = run_download(V, "--remote", root, "--download_dir", str(ddir))
    assert code == 0 and "by SHA-256 from the sidecar" in so, so + se
    for fault, dtype, m in members:
        assert (ddir / fault / dtype / m["name"]).read_bytes() == (cs_root / m["source"]).read_bytes(), m

    # one realisation, by byte range, from a part that holds other members too
    def shares_a_part(sc):
        rel = [m for m in sc["members"] if "_REL02" in m["name"]]
        return rel and any(m["part"] == rel[0]["part"] and "_REL02" not in m["name"] for m in sc["members"])

    sc = next(sc for sc in sidecars if shares_a_part(sc))
    rel = [m for m in sc["members"] if "_REL02" in m["name"]]
    one = tmp_path / "one"
    code, so, se = run_download(V, "--remote", root, "--download_dir", str(one), "-t", sc["dtype"],
                                "--inc_fault", sc["fault"], "--rel", "2")
    assert code == 0, so + se
    got = one / sc["fault"] / sc["dtype"]
    assert sorted(p.name for p in got.iterdir()) == sorted(m["name"] for m in rel)
    assert f"fetched ({sum(m['size'] for m in rel)} B) for" in so and f"{len(rel)} member(s) read by byte range" in so, so
    for m in rel:
        assert (got / m["name"]).read_bytes() == (cs_root / m["source"]).read_bytes()

    clean = tmp_path / "clean"
    code, so, se = run_download(V, "--remote", root, "--download_dir", str(clean), "--cleanup")
    assert code == 0, so + se
    assert not list(clean.rglob("*.tar")), list(clean.rglob("*.tar"))
    for fault, dtype, m in members:
        assert (clean / fault / dtype / m["name"]).read_bytes() == (cs_root / m["source"]).read_bytes(), m


def test_s3_a_byte_changed_on_the_server_is_caught_by_verify_and_download(s3, tmp_path):
    root = f"{s3.remote}{S3_BUCKET}/{SUB}"
    folder = s3.root / S3_BUCKET / SUB
    _upload(tmp_path, root)
    bb = next(sc for sc in _sidecars(folder) if sc["fault"] == "AlpineK2T" and sc["dtype"] == "BB")
    big = next(p for p in bb["parts"] if p["size"] >= CUTOFF)  # one that went up by multipart upload
    bad = folder / V / "AlpineK2T" / big["name"]
    st = bad.stat()
    flip_byte(bad)
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same modification time

    # An S3 listing gives the hash the store recorded when the object was written (the
    # server here keeps the one it took while its modification time stays): only reading
    # the bytes tells. --read-data does, and so does every download.
    code, out, err = run_cs_sync("verify", V, "--remote", root, "--read-data", "100%")
    assert code == 8 and f"AlpineK2T/{bad.name}" in out, out + err
    for extra in ([], ["--cleanup"]):
        ddir = tmp_path / f"dl{len(extra)}"
        code, out, err = run_download(V, "--remote", root, "--download_dir", str(ddir), "-t", "BB",
                                      "--inc_fault", "AlpineK2T", *extra)
        assert code == 8 and f"AlpineK2T/{bad.name}: SHA-256 differs from the sidecar" in out, (extra, out + err)


@pytest.mark.parametrize("command", ["status", "verify", "download"])
def test_s3_a_version_not_there_is_not_found(s3, tmp_path, command):
    """S3 has no folders: listing a prefix nothing is under gives an empty list, no error. A
    mistyped version must still say so (exit 6), not report an empty version as all well."""
    root = f"{s3.remote}{S3_BUCKET}/{SUB}"
    _upload(tmp_path, root)
    if command == "download":
        code, out, err = run_download("v22p21", "--remote", root, "--download_dir", str(tmp_path / "dl"))
    else:
        code, out, err = run_cs_sync(command, *(["--remote", root, "v22p21"] if command == "status"
                                               else ["v22p21", "--remote", root]))
    assert code == 6, out + err
    assert f"version 'v22p21' not found under {root}; versions there: {V}" in err, err


@pytest.fixture
def s3_no_md5(tmp_path, rclone_bin, monkeypatch):
    """A store that offers md5 but gives none for some files, as real S3 does for an object
    uploaded in parts from a stream (its ETag is no MD5 and rclone had no MD5 to store in
    the metadata beforehand): the server's ETag is a SHA-1, so rclone's S3 client takes the
    md5 from the metadata it wrote, which only a multipart upload of a local file carries."""
    with serving(start_s3(rclone_bin, tmp_path / "s3_root", upload_cutoff=f"{CUTOFF >> 10}k",
                          extra=["--etag-hash", "sha1"]), monkeypatch) as srv:
        yield srv


def test_s3_files_given_no_md5_are_called_size_only_by_upload_and_verify_alike(s3_no_md5, tmp_path, rclone_bin):
    s3 = s3_no_md5
    root = f"{s3.remote}{S3_BUCKET}/{SUB}"
    folder = s3.root / S3_BUCKET / SUB
    _, out = _upload(tmp_path, root)
    listed = {f["Path"]: f.get("Hashes", {}).get("md5") for f in _lsjson(rclone_bin, f"{root}/{V}")
              if "_cs_sync/" not in f["Path"]}
    with_md5 = [p for p, h in listed.items() if h]
    without = [p for p, h in listed.items() if not h]
    assert with_md5 and without, listed  # the test needs both kinds
    assert (f"checks: {len(with_md5)} by the remote's own md5 hash of the file it stored; {len(without)} with "
            "SIZES ONLY (the remote gave no md5 for these files") in out, out

    # verify calls the same parts size-only, and says why
    parts_with = [p for p in with_md5 if "/" in p]
    parts_without = [p for p in without if "/" in p]
    code, so, se = run_cs_sync("verify", V, "--remote", root)
    assert code == 0, so + se
    assert f"parts: {len(parts_with)} by hash ({len(parts_with)} md5), {len(parts_without)} by SIZE ONLY" in so, so
    for p in parts_without:
        assert f"size only: {p}: the remote gave no md5 for this file" in so, so

    # a byte changed in a size-only part: only reading it tells, and reading does
    bad = folder / V / parts_without[0]
    st = bad.stat()
    flip_byte(bad)
    os.utime(bad, ns=(st.st_atime_ns, st.st_mtime_ns))
    code, so, se = run_cs_sync("verify", V, "--remote", root, "--read-data", "100%")
    assert code == 8 and parts_without[0] in so, so + se
    fault = parts_without[0].split("/")[0]
    code, so, se = run_download(V, "--remote", root, "--download_dir", str(tmp_path / "dl"), "--inc_fault", fault)
    assert code == 8 and f"{parts_without[0]}: SHA-256 differs from the sidecar" in so, so + se
