"""`cs-sync slurm upload|download --dry-run` and its errors: no Slurm needed."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
from conftest import FaultSpec

from cs_sync.cli.main import main
from cs_sync.core.sharding import assign_shards
from cs_sync.core.sizes import parse_size
from cs_sync.inputs.manifest import read_manifest
from cs_sync.slurm.submit import upload_weights
from cs_sync.upload.engine import UploadSettings


def preprocess(cs_root: Path, lst: Path, out: Path) -> Path:
    from cs_sync.cli.preprocess import main as preprocess_main

    code = preprocess_main([str(cs_root), str(lst), "--out_file", str(out), "--stocktake_csv",
                            str(out.with_name("stocktake.csv"))])
    assert code == 0
    return out


@pytest.fixture
def version(make_tree, tmp_path):
    root, lst = make_tree([FaultSpec("AlpineK2T", 3, bb_size=40_000), FaultSpec("Hope", 2, bb_size=20_000),
                           FaultSpec("Wairau", 1, bb_size=5_000), FaultSpec("Fiord", 1, bb_size=1_000)])
    return root, preprocess(root, lst, tmp_path / "files_to_sync.yaml")


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
    settings = UploadSettings(cs_root=root, manifest=fts, tmp_dir=tmp_path / "t", types=("BB",),
                              max_size=parse_size("1G"))
    weights = upload_weights(read_manifest(fts, root), settings)
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


def test_options_before_and_after_positionals(version, tmp_path, capsys, monkeypatch):
    from cs_sync.cli.upload import DEFAULT_REMOTE

    monkeypatch.delenv("CS_SYNC_REMOTE", raising=False)
    root, fts = version
    run = tmp_path / "run"
    assert main(["slurm", "upload", "--tasks", "2", str(root), str(fts), "--dry-run", "--run-dir", str(run),
                 "--transfers", "8", "--mem", "2G"]) == 0
    script = (run / "upload_array.sl").read_text()
    assert "#SBATCH --mem=2G" in script
    # the remote root resolved at submission goes to every task (and to the summary)
    assert shlex.split(settings_value(script, "CS_UPLOAD_OPTS")) == ["--transfers", "8", "--remote", DEFAULT_REMOTE]
    assert settings_value((run / "summary.sl").read_text(), "CS_REMOTE") == DEFAULT_REMOTE


@pytest.mark.parametrize("extra,message", [
    ([], "--tasks N is required"),
    (["--tasks", "0"], "need at least 1"),
    (["--tasks", "2", "--shard", "0/2"], "--shard is set by"),
    (["--tasks", "2", "--time", "soon"], "is not a Slurm time"),
    (["--tasks", "2", "--rate", "fast"], "cannot read size"),
    (["--tasks", "2", "--no-such-option"], "option for cs-sync-upload: unrecognized arguments: --no-such-option"),
    (["--tasks", "2", "--max-size", "lots"], "--max-size: cannot read size"),
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


def test_shards_are_the_ones_each_upload_task_takes(version, tmp_path):
    """The plan printed before submitting = what `cs-sync-upload --shard i/N` will do."""
    from cs_sync.inputs.config import load_config
    from cs_sync.upload.engine import _shard_faults
    from cs_sync.upload.planning import plan_upload

    root, fts = version
    manifest = read_manifest(fts, root)
    for types, max_size in ((("BB",), "100G"), ((), "30K")):
        settings = UploadSettings(cs_root=root, manifest=fts, tmp_dir=tmp_path, types=types,
                                  max_size=parse_size(max_size))
        plan = plan_upload(manifest, load_config(), types=list(types) or None, max_size=settings.max_size,
                           hard_limit=settings.hard_limit)
        for n in (1, 2, 3, 5):
            mine = assign_shards(upload_weights(manifest, settings), n)
            assert [sorted(s) for s in mine] == [sorted(_shard_faults(plan, (i, n))) for i in range(n)]


def test_slurm_report_writes_report_html_beside_report_txt(tmp_path, capsys):
    """What summary.sl runs: the shards' report, and for an upload the version's page drawn
    from the status JSON it saved (no second listing)."""
    from html_checks import Tags, assert_self_contained
    from report_helpers import big_status_doc

    run_dir = tmp_path / "run"
    (run_dir / "tasks").mkdir(parents=True)
    for i, code in enumerate(["0", "7"]):
        (run_dir / "tasks" / f"upload_{i}.started").write_text("")
        (run_dir / "tasks" / f"upload_{i}.exit").write_text(code)
    doc = big_status_doc(5)
    (run_dir / "status.json").write_text(json.dumps(doc))
    code = main(["slurm", "report", str(run_dir), "--kind", "upload", "--tasks", "2", "--cs_ver", "v24p1",
                 "--status_exit", "7", "--status_json", str(run_dir / "status.json")])
    assert code == 7
    html = (run_dir / "report.html").read_text()
    assert_self_contained(html)
    tags = Tags(html)
    assert json.loads(tags.data) == doc
    assert "shard 1/2: exit 7: some sets failed or are incomplete" in html and "INCOMPLETE" in html
    assert len([a for t, a in tags.tags if t == "td" and "data-state" in a]) == 5 * 4
    # a download has no status JSON: the page is the shards' report alone
    for i in range(2):
        (run_dir / "tasks" / f"download_{i}.exit").write_text("0")
    assert main(["slurm", "report", str(run_dir), "--kind", "download", "--tasks", "2", "--cs_ver", "v24p1"]) == 0
    html = (run_dir / "report.html").read_text()
    assert_self_contained(html)
    assert "2 of 2 shard(s) finished cleanly" in html and 'id="grid"' not in html
    capsys.readouterr()


def test_index_dry_run_plans_the_shards_the_tasks_will_use(tmp_path, capsys):
    import sys as _sys

    from cs_sync.index.plan import plan_index, shard_plan
    from cs_sync.remote.rclone import Rclone
    from cs_sync.remote.state import read_version

    from archive_builder import write_version
    from cybershake_tree import FaultSpec as Spec
    from cybershake_tree import make_version

    tree = tmp_path / "tree"
    faults = [Spec("AlpineK2T", 4, bb_size=60_000), Spec("Hope", 3, bb_size=50_000), Spec("Fiord", 2, bb_size=30_000)]
    make_version(tree, faults)
    remote = tmp_path / "remote"
    write_version(tree, remote, "v18p6", [f.name for f in faults], sidecar=False)
    run = tmp_path / "run"
    code = main(["slurm", "index", "v18p6", "--tasks", "2", "--run-dir", str(run), "--dry-run", "--remote", str(remote),
                 "-t", "BB", "--hash-members"])
    out, err = capsys.readouterr()
    assert code == 0, err
    script = (run / "index_array.sl").read_text()
    assert settings_value(script, "CS_INDEX_OPTS") == f"-t BB --hash-members --remote {remote}"
    assert settings_value(script, "CS_SYNC_BIN") == str(Path(_sys.executable).parent)
    assert '"${bin}cs-sync" index "$CS_VER" --shard "$task/$CS_SHARDS"' in script
    plan = plan_index(read_version(Rclone(), str(remote), "v18p6"), types=["BB"])
    for i in range(2):
        faults_i = {t.rs.fault for t in shard_plan(plan, i, 2).tasks}
        line = next(ln for ln in out.splitlines() if ln.startswith(f"  shard {i}/2:"))
        assert all(f in line for f in faults_i)
    assert "CS_KIND=index" in (run / "summary.sl").read_text()
    assert not (remote / "v18p6" / "_cs_sync").exists()  # nothing indexed by a dry run
    code = main(["slurm", "index", "v18p6", "--tasks", "2", "--remote", str(remote), "--shard", "0/2", "--dry-run"])
    assert code == 2 and "--shard is set by cs-sync slurm" in capsys.readouterr().err


def test_two_submissions_in_the_same_second_get_their_own_run_folders(version, tmp_path, capsys, monkeypatch):
    """The default folder's name has a one-second stamp: a second submission of the same version
    in that second (a script, a double Enter) must not write its scripts over the first's, nor
    share its tasks/ exit files."""
    import cs_sync.slurm.submit as submit

    root, fts = version
    monkeypatch.chdir(tmp_path)
    stamp = Path("cs_sync_runs") / f"{root.name}_upload_20240501-101500"
    monkeypatch.setattr(submit, "default_run_dir", lambda version, kind, now=None: stamp)  # the same second
    folders = []
    for tasks in ("2", "3"):
        assert main(["slurm", "upload", str(root), str(fts), "--tasks", tasks, "--dry-run"]) == 0
        out = capsys.readouterr().out
        folders.append(Path(next(ln for ln in out.splitlines() if ln.startswith("run folder: "))[12:]))
    assert folders == [(tmp_path / stamp).resolve(), (tmp_path / f"{stamp}-2").resolve()]
    assert json.loads((folders[0] / "run.json").read_text())["tasks"] == 2
    assert json.loads((folders[1] / "run.json").read_text())["tasks"] == 3


def test_run_dir_of_a_submitted_array_is_refused(version, tmp_path, capsys):
    """An array queued for hours has written no task file yet; a second submission into its run
    folder would overwrite its scripts and run.json and share its exit files."""
    root, fts = version
    run = tmp_path / "run"
    assert main(["slurm", "upload", str(root), str(fts), "--tasks", "2", "--dry-run", "--run-dir", str(run)]) == 0
    doc = json.loads((run / "run.json").read_text())
    doc["array_job"] = "812345"  # what a submission records (its tasks still pending)
    (run / "run.json").write_text(json.dumps(doc))
    script = (run / "upload_array.sl").read_text()
    capsys.readouterr()
    code = main(["slurm", "upload", str(root), str(fts), "--tasks", "3", "--dry-run", "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 3
    assert "belongs to array job 812345" in err and len(err.strip().splitlines()) == 1
    assert (run / "upload_array.sl").read_text() == script
    # a dry run (or a refused sbatch) records no array: its folder may be used for the submission
    doc["array_job"] = None
    (run / "run.json").write_text(json.dumps(doc))
    assert main(["slurm", "upload", str(root), str(fts), "--tasks", "3", "--dry-run", "--run-dir", str(run)]) == 0


def test_printed_commands_quote_paths_with_spaces(version, tmp_path, capsys):
    """The commands printed to copy and paste work in a folder whose path has a space."""
    root, fts = version
    run = tmp_path / "my runs" / "r1"
    assert main(["slurm", "upload", str(root), str(fts), "--tasks", "2", "--dry-run", "--run-dir", str(run)]) == 0
    out = capsys.readouterr().out
    line = next(ln for ln in out.splitlines() if ln.startswith("(dry run: nothing submitted"))
    first, then = line.split("to submit these scripts: ", 1)[1].rstrip(")").split(", then ")
    assert shlex.split(first) == ["sbatch", str(run / "upload_array.sl")]
    assert shlex.split(then) == ["sbatch", "--dependency=afterany:ARRAY_ID", str(run / "summary.sl")]
    from cs_sync.slurm.submit import SubmitResult

    result = SubmitResult("upload", "v", "r", run, None, run / "upload_array.sl", run / "summary.sl")  # type: ignore[arg-type]
    tail, report = result.watch_lines()[1:]
    assert shlex.split(tail.split(": ", 1)[1]) == ["tail", "-f", f"{run}/logs/upload_*.out"]
    assert shlex.split(report.split(":", 1)[1])[0] == str(run / "report.txt")


def test_slurm_report_of_a_mistyped_run_folder_is_one_line_and_creates_nothing(tmp_path, capsys):
    """Not 'every shard never started' (exit 7) with a new folder holding that report."""
    missing = tmp_path / "cs_sync_runs" / "v22p12_upload_2024O501"
    code = main(["slurm", "report", str(missing), "--kind", "upload", "--tasks", "2"])
    out, err = capsys.readouterr()
    assert code == 3 and out == ""
    assert "is not a folder" in err and len(err.strip().splitlines()) == 1
    assert not missing.exists()


def test_percent_signs_of_the_run_folder_are_literal_in_the_log_paths(version, tmp_path, capsys):
    """sbatch expands %j, %A, %a, %x... in --output; the run folder's own % are doubled."""
    root, fts = version
    run = tmp_path / "r%j_%4A_100%"
    assert main(["slurm", "upload", str(root), str(fts), "--tasks", "2", "--dry-run", "--run-dir", str(run)]) == 0
    capsys.readouterr()
    folder = str(run.resolve() / "logs").replace("%", "%%")
    assert f"#SBATCH --output={folder}/upload_%A_%a.out" in (run / "upload_array.sl").read_text()
    assert f"#SBATCH --output={folder}/summary_%j.out" in (run / "summary.sl").read_text()
