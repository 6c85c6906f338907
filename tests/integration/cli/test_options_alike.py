"""Options that behave the same in every command, and the messages users meet first: -t, type
names, a manifest of another CS_ROOT, --max-size, --bwlimit, the cs-sync aliases, --help text,
plurals, the --verify download summary, an unknown version. Real commands, real rclone."""

from __future__ import annotations

import os
import re
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from cs_sync.inputs.manifest import read_manifest

from cybershake_tree import FaultSpec
from dl_helpers import assert_one_line_error, files_under, script
from manifests import write_tree_manifest

FAULTS = [FaultSpec("AlpineK2T", rels=3, median=True, perturbed=True, bb_size=20_000),
          FaultSpec("Hope1888", rels=2, median=False, bb_size=10_000)]
KNOWN = "BB, IM, Source, VM, SAMPLE_BB"


def run(cmd: str, *args, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("CS_SYNC_REMOTE", None)
    full.update(env or {})
    return subprocess.run([script(cmd), *map(str, args)], capture_output=True, text=True, env=full, cwd=cwd,
                          timeout=300)


@pytest.fixture
def version(make_tree):
    root, lst = make_tree(FAULTS)
    return root, lst, write_tree_manifest(root)


@pytest.fixture
def remote(version, tmp_path):
    """The version uploaded to a local folder by cs-sync-upload itself."""
    root, _, man = version
    p = run("cs-sync-upload", root, man, "--remote", tmp_path / "remote", "--tmp_dir", tmp_path / "scratch")
    assert p.returncode == 0, p.stdout + p.stderr
    return tmp_path / "remote"


# -- -t: several values, any case, the known names when one is wrong ---------------------------


def test_t_takes_several_values_and_any_case_in_preprocess(version, tmp_path):
    root, lst, _ = version
    p = run("cs-sync-preprocess", root, lst, "-t", "bb", "IM", "--out_file", tmp_path / "m.yaml",
            "--stocktake_csv", tmp_path / "s.csv")
    assert p.returncode == 0, p.stdout + p.stderr
    cols = [c for c in pd.read_csv(tmp_path / "s.csv", index_col=0).columns if c.endswith("_ok")]
    assert cols == ["BB_ok", "IM_ok"]
    p = run("cs-sync-preprocess", root, lst, "-t", "BB", "-t", "source", "--out_file", tmp_path / "m2.yaml",
            "--stocktake_csv", tmp_path / "s2.csv")
    assert p.returncode == 0, p.stderr
    cols = [c for c in pd.read_csv(tmp_path / "s2.csv", index_col=0).columns if c.endswith("_ok")]
    assert cols == ["BB_ok", "Source_ok", "VM_ok"]  # VM travels with Source


def test_t_in_upload_any_case_and_vm_selects_source(version, tmp_path):
    root, _, man = version
    p = run("cs-sync-upload", root, man, "--remote", tmp_path / "r", "--dry-run", "-t", "bb", "vm")
    assert p.returncode == 0, p.stdout + p.stderr
    planned = re.findall(r"^  (\S+_(?:BB|IM|Source|SAMPLE_BB))\s", p.stdout, re.M)
    assert sorted(planned) == ["AlpineK2T_BB", "AlpineK2T_Source", "Hope1888_BB", "Hope1888_Source"]


def test_t_in_download_any_case_and_vm_fetches_source(version, remote, tmp_path):
    p = run("cs-sync-download", "v22p12", "--remote", remote, "--download_dir", tmp_path / "dl", "-t", "im", "VM")
    assert p.returncode == 0, p.stdout + p.stderr
    got = {Path(f).parts[1] for f in files_under(tmp_path / "dl") if len(Path(f).parts) > 2}
    assert got == {"IM", "Source"}
    assert "vm_params.yaml" in os.listdir(tmp_path / "dl" / "AlpineK2T" / "Source")


@pytest.mark.parametrize("cmd", ["cs-sync-preprocess", "cs-sync-upload", "cs-sync-download"])
def test_wrong_type_name_lists_the_known_ones(cmd, version, remote, tmp_path):
    root, lst, man = version
    args = {"cs-sync-preprocess": [root, lst, "--out_file", tmp_path / "m.yaml", "--stocktake_csv", tmp_path / "s.csv"],
            "cs-sync-upload": [root, man, "--remote", remote, "--dry-run"],
            "cs-sync-download": ["v22p12", "--remote", remote, "--download_dir", tmp_path / "dl"]}[cmd]
    p = run(cmd, *args, "-t", "BB", "LF")
    assert p.returncode == 3, p.stdout + p.stderr
    known = "BB, IM, SAMPLE_BB, Source" if cmd == "cs-sync-download" else KNOWN
    assert_one_line_error(p.stderr, "-t 'LF' is not a data type of", known)


# -- the manifest of another tree with the same folder name -------------------------------------


def test_manifest_of_another_cs_root_with_the_same_name_is_named_as_such(version, tmp_path, make_tree):
    root, _, man = version
    other = tmp_path / "elsewhere" / "v22p12"
    other.parent.mkdir()
    os.rename(root, other)  # the same version name, another place: not what preprocess scanned
    p = run("cs-sync-upload", other, man, "--remote", tmp_path / "r", "--tmp_dir", tmp_path / "scratch")
    assert p.returncode == 3, p.stdout + p.stderr
    assert_one_line_error(p.stderr, f"{man} was made for {root.resolve()}, not {other.resolve()}", "cs-sync-preprocess")
    assert "modified" not in p.stdout + p.stderr and not (tmp_path / "r").exists()


# -- --max-size ---------------------------------------------------------------------------------


def test_max_size_below_1_mib_is_refused_with_the_reason(version, tmp_path):
    root, _, man = version
    env = {"CS_SYNC_TEST_MIN_PART_SIZE": ""}  # the real floor, as users have it
    for value in ("100", "600K"):
        p = run("cs-sync-upload", root, man, "--remote", tmp_path / "r", "--max-size", value, "--dry-run", env=env)
        assert p.returncode == 3, p.stdout + p.stderr
        assert_one_line_error(p.stderr, f"--max-size {value}:", "below 1 MiB", "nearly every file would get a TAR part",
                              "e.g. 100G")
    assert run("cs-sync-upload", root, man, "--remote", tmp_path / "r", "--max-size", "1M", "--dry-run",
               env=env).returncode == 0


def test_cap_so_small_most_files_get_their_own_part_gives_one_summary_warning(version, tmp_path):
    root, _, man = version
    p = run("cs-sync-upload", root, man, "--remote", tmp_path / "r", "--max-size", "2K", "--dry-run")
    assert p.returncode == 0, p.stderr
    warnings = [ln for ln in p.stdout.splitlines() if "warning:" in ln]
    bb = sum(1 for ln in warnings if "larger than the part cap" in ln)
    assert bb == 1, warnings  # one line, not one per file
    m = read_manifest(man, root)
    packed = sum(len(m.files(f, t)) for f in m.fault_names() for t in ("BB", "IM", "Source", "VM"))
    assert (f"warning: {packed} files are larger than the part cap 2.0 KiB and get a part of their own "
            "(in 6 sets: AlpineK2T_BB, AlpineK2T_IM, AlpineK2T_Source ...); --max-size is the size of one TAR part"
            ) in p.stdout, p.stdout



def test_a_few_files_above_the_cap_are_named_one_by_one(make_tree, tmp_path):
    root, _ = make_tree([FaultSpec("Hope1888", rels=2, median=False, bb_size=20_000)], name="v1")
    man = write_tree_manifest(root)
    p = run("cs-sync-upload", root, man, "--remote", tmp_path / "r", "--max-size", "25K", "--dry-run", "-t", "BB")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("is larger than the part cap 25.0 KiB: it gets a part of its own") == 2, p.stdout
    assert "Runs/Hope1888/Hope1888_REL02/BB/Acc/BB.bin" in p.stdout


# -- --bwlimit: the run's total --------------------------------------------------------------------


def _bwlimits(log: Path, verb: str) -> list[str]:
    cmds = [ln.split("$ ", 1)[1] for ln in log.read_text().splitlines() if "$ " in ln]
    return [c.split("--bwlimit ", 1)[1].split()[0] for c in cmds if f"rclone {verb} " in c]


def test_bwlimit_is_the_total_of_an_upload_shared_among_its_rclone_processes(make_tree, tmp_path):
    root, _ = make_tree([FaultSpec(f"F{i}", rels=2, median=True, bb_size=700_000) for i in range(4)])
    man = write_tree_manifest(root)
    t0 = time.monotonic()
    p = run("cs-sync-upload", root, man, "--remote", tmp_path / "r", "--tmp_dir", tmp_path / "s", "--transfers", "3",
            "--bwlimit", "4M", "-t", "BB")
    wall = time.monotonic() - t0
    assert p.returncode == 0, p.stdout + p.stderr
    log = tmp_path / "s" / "v22p12" / "upload.log"
    share = f"{4 * 1024**2 // 5}B"  # 3 streams in flight + the two lanes of small files
    assert set(_bwlimits(log, "rcat") + _bwlimits(log, "copy")) == {share}, log.read_text()
    sent = sum(f.stat().st_size for f in (tmp_path / "r" / "v22p12").rglob("*.tar"))
    assert sent > 8 * 1024**2 and sent / wall <= 4 * 1024**2 * 1.1, (sent, wall)


def test_bwlimit_of_a_download(version, remote, tmp_path):
    ddir = tmp_path / "dl"
    p = run("cs-sync-download", "v22p12", "--remote", remote, "--download_dir", ddir, "--bwlimit", "500K")
    assert p.returncode == 0, p.stdout + p.stderr
    assert set(_bwlimits(ddir / "cs_sync_download.log", "copy")) == {"512000B"}  # one batch copy: all of it
    sel = tmp_path / "dl2"
    p = run("cs-sync-download", "v22p12", "--remote", remote, "--download_dir", sel, "--rel", "1",
            "--transfers", "3", "--bwlimit", "400K")
    assert p.returncode == 0, p.stdout + p.stderr
    assert set(_bwlimits(sel / "cs_sync_download.log", "cat")) == {f"{400 * 1024 // 4}B"}  # 3 ranges + a copy
    bad = run("cs-sync-download", "v22p12", "--remote", remote, "--bwlimit", "fast")
    assert bad.returncode == 2 and "--bwlimit: cannot read rate 'fast'" in bad.stderr


# -- the umbrella command, --help --------------------------------------------------------------


def test_cs_sync_upload_download_preprocess_are_the_commands(version, tmp_path):
    root, lst, man = version
    p = run("cs-sync", "preprocess", root, lst, "--out_file", tmp_path / "m.yaml", "--stocktake_csv", tmp_path / "s.csv")
    assert p.returncode == 0 and (tmp_path / "m.yaml").exists(), p.stderr
    p = run("cs-sync", "upload", root, tmp_path / "m.yaml", "--remote", tmp_path / "r", "--tmp_dir", tmp_path / "t")
    assert p.returncode == 0, p.stdout + p.stderr
    p = run("cs-sync", "download", "v22p12", "--remote", tmp_path / "r", "--download_dir", tmp_path / "d", "-t", "IM")
    assert p.returncode == 0 and (tmp_path / "d" / "Hope1888" / "IM" / "Hope1888_REL01.csv").exists(), p.stderr
    p = run("cs-sync", "upload", root, tmp_path / "m.yaml", "--transfers", "0")
    assert p.returncode == 2 and p.stderr.startswith("usage: cs-sync upload "), p.stderr
    assert "cs-sync upload: error: argument --transfers" in p.stderr
    for name in ("preprocess", "upload", "download"):
        h = run("cs-sync", name, "--help")
        assert h.returncode == 0 and h.stdout.startswith(f"usage: cs-sync {name} "), h.stdout
    top = run("cs-sync", "--help").stdout
    assert all(f"    {n}" in top for n in ("preprocess", "upload", "download", "status", "slurm"))


HELPS = [["cs-sync"], ["cs-sync", "status"], ["cs-sync", "report"], ["cs-sync", "slurm"], ["cs-sync", "slurm", "upload"],
         ["cs-sync", "slurm", "download"], ["cs-sync", "slurm", "report"], ["cs-sync-preprocess"], ["cs-sync-upload"],
         ["cs-sync-download"]]


@pytest.mark.parametrize("cmd", HELPS, ids=" ".join)
def test_help_has_no_rst_markup(cmd):
    p = run(cmd[0], *cmd[1:], "--help")
    assert p.returncode == 0, p.stderr
    assert "`" not in p.stdout and ":class:" not in p.stdout and ":func:" not in p.stdout, p.stdout


def test_tasks_shows_as_required():
    for kind in ("upload", "download"):
        usage = run("cs-sync", "slurm", kind, "--help").stdout.split("\n\n")[0]
        assert " --tasks N " in usage and "[--tasks N]" not in usage, usage
        assert "--account A" in usage


# -- words and summaries ----------------------------------------------------------------------------


def test_one_fault_is_one_fault(make_tree, tmp_path):
    root, lst = make_tree([FaultSpec("Hope1888", rels=1, median=False, bb_size=1000)])
    said = []
    p = run("cs-sync-preprocess", root, lst, cwd=tmp_path)
    said.append(p.stdout + p.stderr)
    assert p.returncode == 0, said[-1]
    p = run("cs-sync-upload", root, tmp_path / "files_to_sync.yaml", "--remote", tmp_path / "r", "--dry-run",
            "-t", "BB")
    said.append(p.stdout + p.stderr)
    assert "would upload 1 set (1 part," in said[-1]
    p = run("cs-sync-upload", root, tmp_path / "files_to_sync.yaml", "--remote", tmp_path / "r", "--tmp_dir",
            tmp_path / "t", "-t", "BB")
    said.append(p.stdout + p.stderr)
    p = run("cs-sync", "status", "v22p12", "--remote", tmp_path / "r")
    said.append(p.stdout + p.stderr)
    text = "\n".join(said)
    assert "1 fault:" in text and "total: 1 fault," in text and "1 file," in text, text
    assert not re.search(r"\b1 (faults|sets|parts|files|realisations)\b", text), text


def test_after_verify_download_the_summary_does_not_advise_it(version, webdav, tmp_path):
    root, _, man = version
    args = [root, man, "--remote", webdav.remote + "archive", "--tmp_dir", tmp_path / "s", "-t", "IM"]
    plain = run("cs-sync-upload", *args, env=webdav.env)
    assert plain.returncode == 0, plain.stderr
    assert "SIZES ONLY" in plain.stdout and "use --verify download" in plain.stdout
    again = run("cs-sync-upload", *args, "--verify", "download", "--overwrite", env=webdav.env)
    assert again.returncode == 0, again.stderr
    assert "read back and SHA-256 compared (--verify download)" in again.stdout
    assert "use --verify download" not in again.stdout, again.stdout


# -- an unknown version ------------------------------------------------------------------------------


def test_unknown_version_lists_the_versions_and_creates_nothing(remote, tmp_path):
    (remote / "v24p1").mkdir()
    os.chdir(tmp_path)
    ddir = tmp_path / "new_dl"
    before = sorted(os.listdir(tmp_path))
    for cmd in (["cs-sync-download", "v2212"], ["cs-sync", "download", "v2212"]):
        p = run(*cmd, "--remote", remote, "--download_dir", ddir, cwd=tmp_path)
        assert p.returncode == 6, p.stdout + p.stderr
        assert_one_line_error(p.stderr, "version 'v2212' not found", "versions there: v22p12, v24p1")
        p = run(*cmd, "--remote", remote, cwd=tmp_path)  # the default download folder: '.'
        assert p.returncode == 6
    assert sorted(os.listdir(tmp_path)) == before  # no folder, no log, no state files
