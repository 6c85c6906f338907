"""`cs-sync slurm upload|download --dry-run` and its errors: no Slurm needed."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest

from cs_sync.cli.main import main
from cs_sync.manifest import FileRecord, Manifest, read_manifest, write_manifest
from cs_sync.sharding import assign_shards
from cs_sync.slurm_submit import upload_weights
from conftest import FaultSpec


def manifest_of(cs_root: Path, out: Path) -> Path:
    """files_to_sync.yaml for the BB and IM files of a generated tree."""
    m = Manifest(version=cs_root.name, cs_root=str(cs_root))
    for p in sorted((cs_root / "Runs").rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(cs_root).as_posix()
        fault = rel.split("/")[1]
        dtype = "BB" if p.name == "BB.bin" else "IM" if "IM_calc" in rel else None
        if dtype:
            m.faults.setdefault(fault, {}).setdefault(dtype, {})[rel] = FileRecord(rel, p.stat().st_size)
    write_manifest(out, m)
    return out


@pytest.fixture
def version(make_tree, tmp_path):
    root, _ = make_tree([FaultSpec("AlpineK2T", 3, bb_size=40_000), FaultSpec("Hope", 2, bb_size=20_000),
                         FaultSpec("Wairau", 1, bb_size=5_000), FaultSpec("Fiord", 1, bb_size=1_000)])
    return root, manifest_of(root, tmp_path / "files_to_sync.yaml")


def settings_value(script: str, name: str) -> str:
    for line in script.splitlines():
        if line.startswith(f"{name}="):
            return shlex.split(line[len(name) + 1:])[0]
    raise AssertionError(f"{name} not set")


def test_dry_run_renders_plan_and_scripts_and_submits_nothing(version, tmp_path, capsys):
    root, fts = version
    run = tmp_path / "run"
    code = main(["slurm", "upload", str(root), str(fts), "--tasks", "3", "--account", "nesi00123",
                 "--time", "00:00:01", "--rate", "1K", "--run-dir", str(run), "--dry-run",
                 "--remote", "dst:Cyber", "--tmp_dir", "/scratch/t", "--max-size", "1G", "-t", "BB"])
    out, err = capsys.readouterr()
    assert code == 0, err
    weights = upload_weights(read_manifest(fts, root), ["BB"])
    shards = assign_shards(weights, 3)
    for i, keys in enumerate(shards):
        line = next(ln for ln in out.splitlines() if ln.startswith(f"  shard {i}/3:"))
        assert all(k in line for k in keys)
    assert "warning: the largest shard" in err  # 1K/s cannot move tens of KB in one second
    assert f"run folder: {run.resolve()}" in out
    assert "nothing submitted" in out
    script = (run / "upload_array.sl").read_text()
    assert "#SBATCH --array=0-2" in script and "#SBATCH --account=nesi00123" in script
    assert "#SBATCH --partition" not in script
    assert shlex.split(settings_value(script, "CS_UPLOAD_OPTS")) == [
        "--tmp_dir", "/scratch/t", "--max-size", "1G", "-t", "BB", "--remote", "dst:Cyber"]
    assert settings_value(script, "CS_ROOT") == str(root.resolve())
    summary = (run / "summary.sl").read_text()
    assert settings_value(summary, "CS_REMOTE") == "dst:Cyber"
    assert settings_value(summary, "CS_KIND") == "upload"
    assert "#SBATCH --dependency" not in summary  # given on the sbatch command line
    doc = json.loads((run / "run.json").read_text())
    assert doc["array_job"] is None and [s["faults"] for s in doc["shards"]] == shards
    assert (run / "plan.txt").read_text().startswith("3 shard(s)")
    assert script in out  # --dry-run prints the scripts


def test_options_before_and_after_positionals(version, tmp_path, capsys):
    root, fts = version
    run = tmp_path / "run"
    assert main(["slurm", "upload", "--tasks", "2", str(root), str(fts), "--dry-run", "--run-dir", str(run),
                 "--transfers", "8", "--mem", "2G"]) == 0
    script = (run / "upload_array.sl").read_text()
    assert "#SBATCH --mem=2G" in script
    assert shlex.split(settings_value(script, "CS_UPLOAD_OPTS")) == ["--transfers", "8"]


@pytest.mark.parametrize("extra,message", [
    ([], "--tasks N is required"),
    (["--tasks", "0"], "need at least 1"),
    (["--tasks", "2", "--shard", "0/2"], "--shard is set by"),
    (["--tasks", "2", "--time", "soon"], "is not a Slurm time"),
    (["--tasks", "2", "--rate", "fast"], "cannot read size"),
])
def test_bad_options_one_line_and_exit_code(version, tmp_path, capsys, extra, message):
    root, fts = version
    code = main(["slurm", "upload", str(root), str(fts), "--dry-run", "--run-dir", str(tmp_path / "r"), *extra])
    err = capsys.readouterr().err
    assert code in (2, 3)
    assert message in err and len(err.strip().splitlines()) == 1


def test_cs_root_not_a_folder(tmp_path, capsys):
    code = main(["slurm", "upload", str(tmp_path / "nope"), str(tmp_path / "f.yaml"), "--tasks", "2", "--dry-run"])
    assert code == 2
    assert "is not a folder" in capsys.readouterr().err


def test_run_dir_with_earlier_task_files_is_refused(version, tmp_path, capsys):
    root, fts = version
    run = tmp_path / "run"
    (run / "tasks").mkdir(parents=True)
    (run / "tasks" / "upload_0.exit").write_text("0\n")
    code = main(["slurm", "upload", str(root), str(fts), "--tasks", "2", "--dry-run", "--run-dir", str(run)])
    assert code == 3
    assert "already holds task files" in capsys.readouterr().err


def test_without_slurm_submission_fails_with_exit_10(version, tmp_path, capsys, monkeypatch):
    root, fts = version
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code = main(["slurm", "upload", str(root), str(fts), "--tasks", "2", "--run-dir", str(tmp_path / "run")])
    assert code == 10
    assert "sbatch not found" in capsys.readouterr().err
    # the plan and scripts were written before sbatch was tried
    assert (tmp_path / "run" / "upload_array.sl").exists()
