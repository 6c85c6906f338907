"""A cs-sync-upload stopped by bad input (a manifest that does not parse, an unknown remote, a
refused plan...) writes nothing in the tmp dir: no folder, no lock, no log. A real run's log is
still complete from its first line (kept in memory until the inputs are checked)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cs_sync.cli.upload import main

from cybershake_tree import FaultSpec
from manifests import write_tree_manifest

FAULTS = [FaultSpec("AlpineK2T", rels=2, bb_size=3_000), FaultSpec("Hope1888", rels=1, median=False, bb_size=3_000)]


def snapshot(folder: Path) -> dict[str, bytes | None]:
    out: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames:
            out[str((Path(dirpath) / name).relative_to(folder))] = None
        for name in filenames:
            p = Path(dirpath) / name
            out[str(p.relative_to(folder))] = p.read_bytes()
    return out


@pytest.fixture
def version(make_tree):
    root, _ = make_tree(FAULTS)
    return root, write_tree_manifest(root)


def bad_manifest(tmp_path: Path, root: Path, man: Path) -> list:
    p = tmp_path / "edited.yaml"
    p.write_text(".:\n  list.txt: abc\n")
    return [root, p]


def other_version(tmp_path: Path, root: Path, man: Path) -> list:
    other = tmp_path / "v99p1"
    other.mkdir()
    return [other, man]


BAD = {  # case: (arguments before the common ones, exit code)
    "manifest that does not parse": (bad_manifest, [], 3),
    "manifest of another version": (other_version, [], 3),
    "unknown remote": (lambda t, r, m: [r, m], ["--remote", "no_such_remote_cs:archive"], 6),
    "refused plan": (lambda t, r, m: [r, m], ["--hard-limit", "1K"], 3),
    "--inc_fault typo": (lambda t, r, m: [r, m], ["--inc_fault", "AlpineK2"], 2),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_creates_no_tmp_dir_and_no_log(version, tmp_path, capsys, case, monkeypatch):
    root, man = version
    monkeypatch.setenv("RCLONE_CONFIG", str(tmp_path / "rclone.conf"))  # no remote is configured
    (tmp_path / "rclone.conf").write_text("")
    build, extra, code = BAD[case]
    scratch = tmp_path / "new" / "scratch"
    args = [*build(tmp_path, root, man), "--remote", str(tmp_path / "remote"), "--tmp_dir", scratch, *extra]
    assert main([str(a) for a in args]) == code, capsys.readouterr()
    out = capsys.readouterr()
    assert not (tmp_path / "new").exists(), sorted(snapshot(tmp_path / "new"))
    assert "log:" not in out.out  # no log is named that was never written
    assert len(out.err.strip().splitlines()) == 1, out.err


def test_bad_input_does_not_touch_an_earlier_runs_log(version, tmp_path, capsys, monkeypatch):
    """The tmp dir of a real run, then every bad input with it: the folder is unchanged, byte for byte."""
    root, man = version
    monkeypatch.setenv("RCLONE_CONFIG", str(tmp_path / "rclone.conf"))
    (tmp_path / "rclone.conf").write_text("")
    scratch = tmp_path / "scratch"
    common = ["--remote", str(tmp_path / "remote"), "--tmp_dir", str(scratch)]
    assert main([str(root), str(man), *common]) == 0, capsys.readouterr()
    capsys.readouterr()
    log = (scratch / root.name / "upload.log").read_text().splitlines()
    # complete from the first line: the command, the rclone calls that listed the remote, each
    # set's decision (all before the inputs were known to be good), ..., the summary
    text = [ln.split(" ", 2)[2] for ln in log]
    assert text[0].startswith("cs-sync-upload ") and "rclone mkdir" in text[1]
    assert text.index("AlpineK2T_BB: upload (not on the remote)") < next(i for i, t in enumerate(text) if t.startswith("checks: "))
    assert any("summary for" in ln for ln in log) and "  log: " in log[-1]
    before = snapshot(scratch)
    for case, (build, extra, code) in BAD.items():
        args = [*build(tmp_path, root, man), *common, *extra]
        assert main([str(a) for a in args]) == code, (case, capsys.readouterr())
        capsys.readouterr()
        assert snapshot(scratch) == before, case
