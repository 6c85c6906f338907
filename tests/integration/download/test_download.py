"""cs-sync-download end to end: real rclone, a local-folder remote and a loopback WebDAV remote.

Archives are made two ways (tests/archive_builder.py): with sidecars as this tool
writes them, and with GNU tar and no sidecar as the older scripts did.
"""

from __future__ import annotations

import os
import shutil
import tarfile

import pytest

from archive_builder import assert_tree_matches, flip_byte, write_version
from cybershake_tree import FaultSpec
from dl_helpers import (
    FAULT_NAMES,
    MAX_PART,
    assert_one_line_error,
    files_under,
    make_remote,
    make_source_tree,
    run_download,
)

V = "v22p12"


def _dl(remote, ddir, *args):
    return run_download(V, "--remote", remote.root, "--download_dir", str(ddir), *args)


# -- whole versions ----------------------------------------------------------------------


def test_sidecar_archives_round_trip_byte_exact_then_skip(remote, tree, tmp_path):
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    assert len(built.parts[("AlpineK2T", "BB")]) > 2
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir)
    assert code == 0, out + err
    assert assert_tree_matches(ddir, built) == sum(len(f) for f in built.sets.values())
    assert (ddir / "AlpineK2T" / "SAMPLE_BB" / "AlpineK2T_BB.bin").is_file()
    assert f"sets: {len(built.sets)} fetched" in out
    assert "by SHA-256 from the sidecar" in out and "SIZE ONLY" not in out
    assert f"log: {ddir / 'cs_sync_download.log'}" in out and (ddir / "cs_sync_download.log").is_file()
    assert len((ddir / "tar_ok.log").read_text().splitlines()) == sum(len(p) for p in built.parts.values())
    assert not list(ddir.rglob("*.cs_sync_partial")) and not list(ddir.rglob("*.cs_sync_tmp"))
    log = (ddir / "cs_sync_download.log").read_text()
    assert log.count("$ (started earlier) ") == 1  # the batch rclone was started with the listing
    # again: nothing to do, nothing fetched
    code, out, err = _dl(remote, ddir)
    assert code == 0 and f"0 fetched, {len(built.sets)} already done" in out and "0 B fetched" in out


def test_older_archives_without_sidecars(remote, tree, tmp_path):
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART, sidecar=False)
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir)
    assert code == 0, out + err
    assert assert_tree_matches(ddir, built) > 20
    nparts = sum(len(p) for p in built.parts.values())
    if remote.kind == "local":
        assert f"{nparts} by rclone comparing the remote's hash" in out
    else:  # WebDAV offers no hash: say so
        assert f"{nparts} by SIZE ONLY" in out


def test_selection_flags_and_names_that_match_nothing(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir, "-t", "BB", "IM", "--inc_fault", "AlpineK2T", "Hope1888", "--exc_fault", "Hope1888")
    assert code == 0, out + err
    assert sorted(p.name for p in ddir.iterdir() if p.is_dir()) == ["AlpineK2T"]
    assert sorted(p.name for p in (ddir / "AlpineK2T").iterdir() if p.is_dir()) == ["BB", "IM"]
    assert assert_tree_matches(ddir, built, keys={("AlpineK2T", "BB"), ("AlpineK2T", "IM")}) > 0
    # a fault that is not there: reported, the rest still comes down, exit 7
    code, out, err = _dl(remote, tmp_path / "dl2", "-t", "IM", "--inc_fault", "Hope1888", "Nope")
    assert code == 7
    assert "--inc_fault Nope: no such fault" in out
    assert_one_line_error(err, "matched nothing")
    assert assert_tree_matches(tmp_path / "dl2", built, keys={("Hope1888", "IM")}) > 0
    # nothing at all selected: bad input
    code, out, err = _dl(remote, tmp_path / "dl3", "-t", "XX")
    assert code == 3
    assert_one_line_error(err, "-t 'XX'", "BB, IM, SAMPLE_BB, Source")


def test_cleanup_and_no_download(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir, "--cleanup")
    assert code == 0, out + err
    assert not list(ddir.rglob("*.tar")) and not (ddir / "AlpineK2T" / "AlpineK2T_BB.bin").exists()
    assert_tree_matches(ddir, built)
    # keep the TARs, then extract again from them alone
    keep = tmp_path / "keep"
    code, out, err = _dl(remote, keep, "-t", "BB", "SAMPLE_BB")
    assert code == 0 and list(keep.rglob("*.tar"))
    for p in list(keep.iterdir()):
        if p.is_dir():
            for d in p.iterdir():
                if d.is_dir():
                    shutil.rmtree(d)
        elif p.name.startswith("tar_"):
            p.unlink()
    shutil.rmtree(remote.folder / V / "AlpineK2T")  # prove nothing is fetched: the parts are gone remotely
    (remote.folder / V / "AlpineK2T").mkdir()
    for name in built.parts[("AlpineK2T", "BB")] + built.parts[("AlpineK2T", "SAMPLE_BB")]:
        os.link(keep / "AlpineK2T" / name, remote.folder / V / "AlpineK2T" / name)
    code, out, err = _dl(remote, keep, "-t", "BB", "SAMPLE_BB", "--no_download")
    assert code == 0, out + err
    assert "0 B fetched" in out
    assert_tree_matches(keep, built, keys={(f, t) for f in FAULT_NAMES for t in ("BB", "SAMPLE_BB")})
    # --no_download in an empty folder: says what is missing, exit 7
    code, out, err = _dl(remote, tmp_path / "empty", "-t", "IM", "--no_download")
    assert code == 7 and "not in" in out and "--no_download fetches nothing" in out


def test_force_untar_extracts_again(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, ["Hope1888"], types=["IM"])
    ddir = tmp_path / "dl"
    assert _dl(remote, ddir)[0] == 0
    victim = ddir / "Hope1888" / "IM" / "Hope1888_REL01.csv"
    edited = b"x" * victim.stat().st_size  # same size: the state log says the set is done
    victim.write_bytes(edited)
    code, out, _ = _dl(remote, ddir)
    assert code == 0 and "1 already done" in out and victim.read_bytes() == edited
    code, out, _ = _dl(remote, ddir, "--force_untar")
    assert code == 0 and "1 fetched" in out
    assert_tree_matches(ddir, built)
    victim.write_bytes(b"shorter")  # a size the sidecar contradicts: fetched again without asking
    code, out, _ = _dl(remote, ddir)
    assert code == 0 and "1 fetched" in out and "fetching again" in out
    assert_tree_matches(ddir, built)


# -- bad input, one line each, good sets still come down -----------------------------------


def test_unknown_version_and_unknown_remote(tmp_path):
    remote = make_remote("local", tmp_path)
    (remote.folder / "v1").mkdir()
    (remote.folder / "v2").mkdir()
    code, out, err = run_download("v9", "--remote", remote.root, "--download_dir", str(tmp_path / "d"))
    assert code == 6
    assert_one_line_error(err, "version 'v9' not found", "versions there: v1, v2")
    assert not (tmp_path / "d").exists()  # nothing made locally: no folder, no log, no state files
    code, out, err = run_download("v1", "--remote", "nosuchremote:/x", "--download_dir", str(tmp_path / "d"))
    assert code == 6
    assert_one_line_error(err, "unknown rclone remote nosuchremote")


def test_unreachable_remote(tmp_path, webdav, tree, monkeypatch):
    write_version(tree, webdav.root, V, ["Hope1888"], types=["IM"])
    webdav.stop()
    monkeypatch.setenv("RCLONE_LOW_LEVEL_RETRIES", "1")  # retries stay on, short (tests/integration/*/test_outage.py)
    monkeypatch.setenv("CS_SYNC_RETRY_WAITS", "0.1")
    code, out, err = run_download(V, "--remote", webdav.remote, "--download_dir", str(tmp_path / "d"))
    assert code == 6
    assert_one_line_error(err, "unreachable")


def test_download_dir_that_cannot_be_written(tmp_path, tree):
    remote = make_remote("local", tmp_path)
    write_version(tree, remote.folder, V, ["Hope1888"], types=["IM"])
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, out, err = _dl(remote, blocker / "sub")
    assert code == 9
    assert_one_line_error(err, "cannot write download folder", str(blocker / "sub"))


def test_corrupted_part_with_sidecar(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    bad = remote.folder / V / "AlpineK2T" / built.parts[("AlpineK2T", "BB")][1]
    flip_byte(bad)
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir)
    assert code == 8
    assert_one_line_error(err, "1 of 8 sets failed")
    assert f"AlpineK2T/{bad.name}: SHA-256 differs from the sidecar" in out
    good = {k for k in built.sets if k != ("AlpineK2T", "BB")}
    assert assert_tree_matches(ddir, built, keys=good) > 0
    assert not (ddir / "AlpineK2T" / "BB").exists()  # never a half set that looks done
    assert not (ddir / "AlpineK2T" / bad.name).exists()  # the bad copy is not kept
    assert bad.name in (ddir / "tar_error.log").read_text()
    # repaired on the remote: the re-run fetches only what failed and finishes the set
    flip_byte(bad)
    code, out, err = _dl(remote, ddir)
    assert code == 0, out + err
    assert "1 fetched, 7 already done" in out
    assert_tree_matches(ddir, built)


def test_corrupted_local_part_without_sidecar(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, ["Hope1888"], sidecar=False, types=["IM", "Source"])
    ddir = tmp_path / "dl"
    assert _dl(remote, ddir, "-t", "IM")[0] == 0
    shutil.rmtree(ddir / "Hope1888" / "IM")
    (ddir / "tar_ok.log").unlink()
    flip_byte(ddir / "Hope1888" / "Hope1888_IM.tar", 700)
    code, out, err = _dl(remote, ddir, "--no_download")
    assert code == 7  # IM corrupted (8) and Source not downloaded (7): mixed -> 7
    assert "Hope1888/Hope1888_IM.tar: differs from the remote's copy (rclone check)" in out
    code, out, err = _dl(remote, ddir, "--no_download", "-t", "IM")
    assert code == 8
    assert not (ddir / "Hope1888" / "IM").exists()
    code, out, err = _dl(remote, ddir, "-t", "IM")  # without --no_download: fetched again, fine
    assert code == 0, out + err
    assert_tree_matches(ddir, built, keys={("Hope1888", "IM")})


def test_missing_middle_part_and_two_final_parts(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART, sidecar=False)
    fdir = remote.folder / V / "AlpineK2T"
    parts = built.parts[("AlpineK2T", "BB")]
    (fdir / parts[1]).unlink()  # a gap
    shutil.copy(fdir / "AlpineK2T_IM.tar", fdir / "AlpineK2T_IM_0f.tar")  # both single and split
    hope = remote.folder / V / "Hope1888"
    shutil.copy(hope / "Hope1888_Source.tar", hope / "Hope1888_Source_0f.tar")
    shutil.copy(hope / "Hope1888_Source.tar", hope / "Hope1888_Source_1f.tar")
    (hope / "Hope1888_Source.tar").unlink()  # two final parts
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir)
    assert code == 7
    assert_one_line_error(err, "3 of 8 sets refused")
    assert "refused AlpineK2T BB: incomplete: missing part _1" in out
    assert "refused Hope1888 Source: ambiguous: two final parts" in out
    assert "refused AlpineK2T IM: ambiguous: both AlpineK2T_IM.tar and split parts" in out
    good = {("AlpineK2T", "Source"), ("AlpineK2T", "SAMPLE_BB"), ("Hope1888", "BB"), ("Hope1888", "IM"),
            ("Hope1888", "SAMPLE_BB")}
    assert assert_tree_matches(ddir, built, keys=good) > 0
    assert not (ddir / "AlpineK2T" / "BB").exists() and not list((ddir / "AlpineK2T").glob("*_BB_*.tar"))
    # --allow-incomplete fetches what is there
    code, out, err = _dl(remote, ddir, "-t", "BB", "--inc_fault", "AlpineK2T", "--allow-incomplete")
    assert code == 0, out + err
    have = {p.name for p in (ddir / "AlpineK2T" / "BB").iterdir()}
    assert have and len(have) < len(built.sets[("AlpineK2T", "BB")])


def test_traversal_link_and_absolute_members_are_refused(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, ["Hope1888"], types=["IM"])
    outside = tmp_path / "outside_target"
    evil_dir = remote.folder / V / "Evil"
    evil_dir.mkdir()
    for name, entry in [("Evil_BB.tar", ("../../../../evil", None)), ("Evil_IM.tar", (str(outside), None)),
                        ("Evil_Source.tar", ("link", str(outside)))]:
        with tarfile.open(evil_dir / name, "w", format=tarfile.GNU_FORMAT) as tar:
            ti = tarfile.TarInfo("fine.bin")
            ti.size = 3
            tar.addfile(ti, __import__("io").BytesIO(b"abc"))
            ti = tarfile.TarInfo(entry[0])
            if entry[1]:
                ti.type, ti.linkname = tarfile.SYMTYPE, entry[1]
            else:
                ti.size = 4
            tar.addfile(ti, __import__("io").BytesIO(b"evil") if not entry[1] else None)
    ddir = tmp_path / "box" / "dl"
    code, out, err = _dl(remote, ddir)
    assert code == 8
    assert_one_line_error(err, "3 of 4 sets failed")
    assert "Evil/Evil_BB.tar: refused member '../../../../evil'" in out
    assert f"Evil/Evil_IM.tar: refused member '{outside}'" in out
    assert "Evil/Evil_Source.tar: refused member 'link': a link" in out
    assert not outside.exists() and not list(tmp_path.rglob("evil"))
    assert not (ddir / "Evil" / "BB").exists()
    assert assert_tree_matches(ddir, built) > 0


def test_shards_split_the_faults_and_a_whole_run_sees_their_state(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    ddir = tmp_path / "dl"
    got = []
    for i in range(2):
        code, out, err = _dl(remote, ddir, "--shard", f"{i}/2")
        assert code == 0, out + err
        got.append({p.name for p in ddir.iterdir() if p.is_dir()})
        assert (ddir / f"tar_ok.shard-{i}-of-2.log").is_file()
        assert (ddir / f"cs_sync_download.shard-{i}-of-2.log").is_file()
    assert got[0] and got[1] - got[0] and got[0] | got[1] == set(FAULT_NAMES)
    assert not (ddir / "tar_ok.log").exists()
    assert_tree_matches(ddir, built)
    code, out, err = _dl(remote, ddir)
    assert code == 0 and f"{len(built.sets)} already done" in out
    code, out, err = _dl(remote, ddir, "--shard", "2/2")
    assert code == 2 and "--shard '2/2'" in err


# -- selective retrieval -------------------------------------------------------------------


def test_rel_with_sidecar_reads_only_byte_ranges(tmp_path, counted_webdav):
    """Through a counting proxy in front of WebDAV: what crossed the wire, not just the output."""
    from cybershake_tree import FaultSpec

    faults = [FaultSpec("AlpineK2T", rels=5, median=True, bb_size=400_000)]
    tree = make_source_tree(tmp_path, faults)
    srv, proxy = counted_webdav
    built = write_version(tree, srv.root, V, ["AlpineK2T"], max_part=1_000_000)
    bb_parts = built.parts[("AlpineK2T", "BB")]
    full = sum((srv.root / V / "AlpineK2T" / p).stat().st_size for p in bb_parts)
    assert len(bb_parts) >= 2 and full > 2_000_000
    ddir = tmp_path / "dl"
    code, out, err = run_download(V, "--remote", "cspx:", "--download_dir", str(ddir), "-t", "BB", "--rel", "REL03")
    assert code == 0, out + err
    assert files_under(ddir / "AlpineK2T" / "BB") == ["AlpineK2T_REL03_BB.bin"]
    assert_tree_matches(ddir, built, keys={("AlpineK2T", "BB")}, members={"AlpineK2T_REL03_BB.bin"})
    assert "fetched (400000 B) for 390.6 KiB wanted" in out  # what rclone reports it transferred
    assert "1 member(s) read by byte range" in out
    assert not list(ddir.rglob("*.tar"))
    assert 400_000 <= proxy.down < 400_000 + 150_000 < full / 4  # what the server sent
    assert "(started earlier)" not in (ddir / "cs_sync_download.log").read_text()  # no batch rclone started
    # the median and a glob, both sets, in one go
    proxy.reset()
    code, out, err = run_download(V, "--remote", "cspx:", "--download_dir", str(ddir), "-t", "BB", "SAMPLE_BB",
                                  "--rel", "median")
    assert code == 0, out + err
    assert files_under(ddir / "AlpineK2T" / "BB") == ["AlpineK2T_BB.bin", "AlpineK2T_REL03_BB.bin"]
    assert files_under(ddir / "AlpineK2T" / "SAMPLE_BB") == ["AlpineK2T_BB.bin"]
    assert proxy.down < 2 * 400_000 + 150_000


def test_rel_and_member_without_sidecar_read_only_matching_members(remote, tree, tmp_path):
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART, sidecar=False)
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir, "-t", "BB", "IM", "--inc_fault", "AlpineK2T", "--rel", "AlpineK2T_REL02", "7")
    assert code == 7  # '7' matched nothing: known once the TAR headers were walked
    assert "--rel 7: matches no member" in out
    assert "walked the TAR headers of" in out  # parts holding only wanted members still come whole
    assert files_under(ddir / "AlpineK2T" / "BB") == ["AlpineK2T_REL02_BB.bin"]
    assert files_under(ddir / "AlpineK2T" / "IM") == ["AlpineK2T_REL02.csv"]
    assert_tree_matches(ddir, built, keys={("AlpineK2T", "BB"), ("AlpineK2T", "IM")},
                        members={"AlpineK2T_REL02_BB.bin", "AlpineK2T_REL02.csv"})
    code, out, err = _dl(remote, ddir, "-t", "Source", "--member", "vm_*", "*.pertb.csv")
    assert code == 0, out + err
    assert files_under(ddir / "AlpineK2T" / "Source") == [
        "AlpineK2T_REL01.pertb.csv", "AlpineK2T_REL02.pertb.csv", "AlpineK2T_REL03.pertb.csv",
        "AlpineK2T_REL04.pertb.csv", "vm_params.yaml"]
    assert files_under(ddir / "Hope1888" / "Source") == ["vm_params.yaml"]
    # a later full run of the same set is not fooled by the filtered extraction
    code, out, err = _dl(remote, ddir, "-t", "BB", "--inc_fault", "AlpineK2T")
    assert code == 0, out + err
    assert_tree_matches(ddir, built, keys={("AlpineK2T", "BB")})


def test_one_file_by_name_from_the_whole_version_says_once_which_sets_hold_none(tree, tmp_path):
    """--member NAME without -t/--inc_fault: the sets that do not hold it are summed up in one
    line (by type), not one line each (hundreds on a real version)."""
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, FAULT_NAMES, max_part=MAX_PART)
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir, "--member", "AlpineK2T_REL02_BB.bin")
    assert code == 0, out + err
    assert files_under(ddir / "AlpineK2T" / "BB") == ["AlpineK2T_REL02_BB.bin"]
    assert_tree_matches(ddir, built, keys={("AlpineK2T", "BB")}, members={"AlpineK2T_REL02_BB.bin"})
    others = len(built.sets) - 1
    lines = [ln for ln in out.splitlines() if "no member matching" in ln or "no member matches" in ln]
    assert len(lines) == 1, out
    assert lines[0].startswith(f"{others} set(s) hold no member matching --member AlpineK2T_REL02_BB.bin")
    samples = sum(1 for _, dtype in built.sets if dtype == "SAMPLE_BB")
    assert f"SAMPLE_BB: {samples}" in lines[0] and "nothing to fetch from them" in lines[0]


def test_rel_with_sidecar_then_no_download_uses_local_parts(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, ["AlpineK2T"], max_part=MAX_PART, types=["BB"])
    ddir = tmp_path / "dl"
    assert _dl(remote, ddir, "-t", "BB")[0] == 0
    shutil.rmtree(ddir / "AlpineK2T" / "BB")
    (ddir / "tar_ok.log").unlink()
    code, out, err = _dl(remote, ddir, "--rel", "1", "--no_download")
    assert code == 0, out + err
    assert files_under(ddir / "AlpineK2T" / "BB") == ["AlpineK2T_REL01_BB.bin"]
    assert_tree_matches(ddir, built, members={"AlpineK2T_REL01_BB.bin"})


def test_bad_rel_value(tmp_path):
    remote = make_remote("local", tmp_path)
    (remote.folder / V).mkdir()
    code, out, err = _dl(remote, tmp_path / "d", "--rel", "seven")
    assert code == 3
    assert_one_line_error(err, "--rel 'seven' is not a realisation")


def test_round_trip_with_library_call_reports_progress(tree, tmp_path, rclone_bin):
    """The engine reports through the Progress protocol with the kinds download and extract."""
    from cs_sync.core.progress import NullProgress
    from cs_sync.download.engine import DownloadSettings, download
    from cs_sync.remote.rclone import Rclone

    class Rec(NullProgress):
        def __init__(self):
            self.kinds = {}

        def task_started(self, key, label, total, kind=""):
            self.kinds.setdefault(kind, 0)
            self.kinds[kind] += 1

    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, ["AlpineK2T"], max_part=MAX_PART)
    rec = Rec()
    res = download(DownloadSettings(version=V, remote=remote.root, download_dir=tmp_path / "d", transfers=2),
                   Rclone(rclone_bin), rec)
    nparts = sum(len(p) for p in built.parts.values())
    assert res.exit_code() == 0 and rec.kinds == {"download": nparts, "extract": nparts}
    assert res.bytes_fetched == res.full_size == sum(
        (remote.folder / V / "AlpineK2T" / p).stat().st_size for ps in built.parts.values() for p in ps)


@pytest.mark.parametrize("transfers", ["1", "4"])
def test_no_space_left_on_a_small_filesystem(tree, tmp_path, transfers):
    """A real full disk: a 256 KiB tmpfs as the download folder (see tests/small_fs.py)."""
    from small_fs import small_fs

    remote = make_remote("local", tmp_path)
    write_version(tree, remote.folder, V, ["AlpineK2T"], types=["BB", "IM"])
    with small_fs(tmp_path / "small", 256 * 1024) as ddir:
        code, out, err = _dl(remote, ddir, "--transfers", transfers)
        assert code == 9, out + err
        assert_one_line_error(err, "no space left on device", "another --download_dir")
        assert "Traceback" not in out


# -- big parts: several streams each, by rclone's multi-thread copy ---------------------------

BIG_FAULTS = [FaultSpec("Big", rels=2, median=True, bb_size=8_700_000),  # BB: one ~25 MB part
              FaultSpec("Hope1888", rels=2, median=False, bb_size=20_000)]


def _big_version(tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(make_source_tree(tmp_path, BIG_FAULTS), remote.folder, V, ["Big", "Hope1888"])
    big = remote.folder / V / "Big" / "Big_BB.tar"
    assert big.stat().st_size > 24 * 2**20
    return remote, built, big


def _rclone_commands(ddir, verb):
    """The rclone command lines of ``verb`` the run wrote to its log."""
    lines = (ddir / "cs_sync_download.log").read_text().splitlines()
    return [ln.split("$ ", 1)[1] for ln in lines if "$ " in ln and f"rclone {verb} " in ln.split("$ ", 1)[1]]


@pytest.mark.parametrize("streams", [4, 1])
def test_big_part_comes_down_with_one_rclone_copy_byte_exact(tmp_path, streams):
    remote, built, big = _big_version(tmp_path)
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir, "--streams", str(streams))
    assert code == 0, out + err
    assert assert_tree_matches(ddir, built) == sum(len(f) for f in built.sets.values())
    want = f"in {streams} streams each" if streams > 1 else "one stream per part"
    assert any(ln.startswith("fetch: one rclone copy") and want in ln for ln in out.splitlines()), out
    assert f"verified: {sum(len(p) for p in built.parts.values())} part(s) by SHA-256 from the sidecar" in out
    copies = [c for c in _rclone_commands(ddir, "copy") if "--files-from-raw" in c]
    assert len(copies) == 1 and f"--multi-thread-streams {streams if streams > 1 else 0}" in copies[0], copies
    assert _rclone_commands(ddir, "cat") == []  # whole parts are never read by our own ranges
    assert not [p for p in ddir.rglob("*") if "partial" in p.name] and not list(ddir.rglob("*.cs_sync_tmp"))
    assert len((ddir / "tar_ok.log").read_text().splitlines()) == sum(len(p) for p in built.parts.values())


def test_streams_0_is_bad_input(tmp_path):
    remote = make_remote("local", tmp_path)
    (remote.folder / V).mkdir()
    code, out, err = _dl(remote, tmp_path / "d", "--streams", "0")
    assert code == 2 and "--streams" in err


def test_corrupted_big_part_fails_then_repaired(tmp_path):
    remote, built, big = _big_version(tmp_path)
    flip_byte(big)  # in a member's data, same size
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir)
    assert code == 8, out + err
    assert "Big/Big_BB.tar: SHA-256 differs from the sidecar" in out
    assert_one_line_error(err, "1 of 8 sets failed")
    assert not (ddir / "Big" / "BB").exists() and not (ddir / "Big" / "Big_BB.tar").exists()
    assert not [p for p in ddir.rglob("*") if p.name.endswith(".partial")]
    assert assert_tree_matches(ddir, built, keys={k for k in built.sets if k != ("Big", "BB")}) > 0
    flip_byte(big)  # repaired on the remote
    code, out, err = _dl(remote, ddir)
    assert code == 0, out + err
    assert "1 fetched, 7 already done" in out
    assert_tree_matches(ddir, built)


def test_member_of_a_corrupted_part_never_reaches_the_final_folder(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, ["AlpineK2T"], types=["BB"])
    [name] = built.parts[("AlpineK2T", "BB")]
    part = remote.folder / V / "AlpineK2T" / name
    with tarfile.open(part) as tar:
        first = tar.next()
    flip_byte(part, first.offset_data + 100)  # the first member's data: it is still at its sidecar offset
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir, "-t", "BB")
    assert code == 8 and f"AlpineK2T/{name}: SHA-256 differs from the sidecar" in out
    # another member of the same set, by byte range: the set is completed from staging
    code, out, err = _dl(remote, ddir, "-t", "BB", "--rel", "2")
    sources = {f.member: f.path for f in built.sets[("AlpineK2T", "BB")]}
    final = ddir / "AlpineK2T" / "BB"
    bad = [p.name for p in final.iterdir() if p.read_bytes() != sources[p.name].read_bytes()] if final.is_dir() else []
    assert bad == [], f"exit {code}: corrupted {bad} in {final}"
