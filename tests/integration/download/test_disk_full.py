"""Download on a real full disk (a small tmpfs): one line naming the path and saying what
to do (free space or another --download_dir, never --tmp_dir), the run stops, exit 9,
nothing that looks complete is left, and the same command finishes once there is room."""

from __future__ import annotations

import subprocess

import pytest

from archive_builder import assert_tree_matches, write_version
from cybershake_tree import FaultSpec
from dl_helpers import assert_one_line_error, make_source_tree, run_download
from small_fs import fill, small_fs

V = "v22p12"
BIG = [FaultSpec("AlpineK2T", rels=4, median=True, bb_size=100_000)]  # BB: one ~500 KiB part, five members


def _check_failed_run(code, out, err, ddir, *needles):
    assert code == 9, out + err
    assert_one_line_error(err, "no space left on device", "another --download_dir", *needles)
    assert not [ln for ln in out.splitlines() if ln.startswith("FAILED")], out  # the run's one error says it
    for text in (out, err):
        assert "Traceback" not in text and "Errno" not in text and "writing writing" not in text
        assert "--tmp_dir" not in text
    assert not (ddir / "AlpineK2T" / "BB").exists()  # nothing that looks complete
    assert not list(ddir.rglob("*.cs_sync_tmp"))
    ok = ddir / "tar_ok.log"
    assert not ok.exists() or "AlpineK2T_BB" not in ok.read_text()


def _grow(fs, size):
    subprocess.run(["mount", "-o", f"remount,size={size}", str(fs)], check=True)


@pytest.mark.parametrize("where", ["fetch", "extract", "--cleanup stream"])
def test_full_download_on_a_full_disk(tmp_path, where):
    tree = make_source_tree(tmp_path, BIG)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, ["AlpineK2T"], types=["BB"])
    part = remote / V / "AlpineK2T" / built.parts[("AlpineK2T", "BB")][0]
    size = part.stat().st_size + (150_000 if where == "extract" else -200_000)  # the part fits, or it does not
    opts = ["--cleanup"] if where == "--cleanup stream" else []
    with small_fs(tmp_path / "small", size) as fs:
        ddir = fs / "dl"
        code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(ddir), *opts)
        if where == "fetch":
            _check_failed_run(code, out, err, ddir, "AlpineK2T_BB.tar")
        else:  # the members, written into the set's staging folder
            _check_failed_run(code, out, err, ddir, str(ddir / "AlpineK2T" / ".BB.cs_sync_partial"))
        _grow(fs, 4 * size)
        code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(ddir), *opts)
        assert code == 0, out + err
        assert assert_tree_matches(ddir, built) == 5  # five BB.bin
        assert not list(ddir.rglob("*.cs_sync_partial"))


def test_rel_download_by_byte_range_on_a_full_disk(tmp_path):
    tree = make_source_tree(tmp_path, BIG)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, ["AlpineK2T"], types=["BB"])
    with small_fs(tmp_path / "small", 1 << 20) as fs:
        ddir = fs / "dl"
        ddir.mkdir()
        filler = fill(fs, 40_000)  # a member is 100 kB
        code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(ddir), "-t", "BB", "--rel", "2")
        _check_failed_run(code, out, err, ddir, str(ddir / "AlpineK2T" / ".BB.cs_sync_partial" / "AlpineK2T_REL02_BB.bin"))
        filler.unlink()
        code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(ddir), "-t", "BB", "--rel", "2")
        assert code == 0, out + err
        assert assert_tree_matches(ddir, built, members={"AlpineK2T_REL02_BB.bin"}) == 1


def test_the_run_stops_at_the_first_full_disk(tmp_path):
    faults = [FaultSpec("AlpineK2T", rels=4, median=True, bb_size=100_000),
              FaultSpec("Hope1888", rels=3, median=False, bb_size=100_000)]
    tree = make_source_tree(tmp_path, faults)
    remote = tmp_path / "remote"
    write_version(tree, remote, V, ["AlpineK2T", "Hope1888"], types=["BB"])
    with small_fs(tmp_path / "small", 600_000) as fs:
        ddir = fs / "dl"
        code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(ddir), "-t", "BB",
                                      "--transfers", "1")
        assert code == 9, out + err
        assert_one_line_error(err, "no space left on device", "another --download_dir")
        assert "not attempted" in out or out.count("FAILED") >= 1
        assert not (ddir / "AlpineK2T" / "BB").exists() or not (ddir / "Hope1888" / "BB").exists()


def test_a_disk_full_before_the_sidecars_are_read(tmp_path):
    """The first local write of a run is the copy of the sidecars: still exit 9 naming where."""
    tree = make_source_tree(tmp_path, BIG)
    remote = tmp_path / "remote"
    write_version(tree, remote, V, ["AlpineK2T"], types=["BB"])
    with small_fs(tmp_path / "small", 256 * 1024) as fs:
        ddir = fs / "dl"
        ddir.mkdir()
        fill(ddir, 0)
        code, out, err = run_download(V, "--remote", str(remote), "--download_dir", str(ddir))
        assert code == 9, out + err
        assert_one_line_error(err, "no space left on device: copying 1 sidecar(s)", str(ddir))
        assert "Traceback" not in err
        assert not list(ddir.glob(".cs_sync_sidecars*"))
