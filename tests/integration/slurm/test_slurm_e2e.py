"""`cs-sync slurm upload|download` end to end on the real single-node cluster.

The real commands run in the jobs (cs-sync-upload, cs-sync-download, cs-sync
status) against a local-directory remote; archives are extracted with GNU tar
and compared byte for byte with the sources. Skipped with the reason when no
cluster is up; with CS_SYNC_REQUIRE_SLURM=1 they fail instead.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import FaultSpec

from cs_sync.cli.main import main as cs_sync_main
from cs_sync.inputs.manifest import read_manifest
from cs_sync.slurm.client import Slurm

from slurm_helpers import need_slurm

pytestmark = pytest.mark.slurm
ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
WAIT = 300  # seconds: a generous bound for jobs that take seconds; not a timing assertion


@pytest.fixture
def slurm() -> Slurm:
    return Slurm(env=need_slurm())


@pytest.fixture
def version(make_tree, tmp_path):
    """Four faults of different sizes, preprocessed."""
    from cs_sync.cli.preprocess import main as preprocess_main

    root, lst = make_tree([FaultSpec("AlpineK2T", 4, bb_size=60_000), FaultSpec("Hope", 3, bb_size=50_000, perturbed=True),
                           FaultSpec("Wairau", 2, bb_size=40_000, median=False), FaultSpec("Fiord", 2, bb_size=30_000)])
    fts = tmp_path / "files_to_sync.yaml"
    assert preprocess_main([str(root), str(lst), "--out_file", str(fts),
                            "--stocktake_csv", str(tmp_path / "stocktake.csv")]) == 0
    return root, fts


def submit(capsys, argv: list[str]) -> tuple[str, str, str]:
    """Run `cs-sync slurm ...`; returns (array job, summary job, stdout)."""
    code = cs_sync_main(argv)
    out, err = capsys.readouterr()
    assert code == 0, err
    array = re.search(r"^array job:\s+(\d+)", out, re.M)
    summary = re.search(r"^summary job:\s+(\d+)", out, re.M)
    assert array and summary, out
    assert "squeue -u $USER" in out and "tail -f" in out
    return array.group(1), summary.group(1), out


def extract_and_compare(remote_version: Path, cs_root: Path, fts: Path, work: Path) -> int:
    """Every manifest file is a member of an uploaded set whose bytes (GNU tar) equal the source."""
    manifest = read_manifest(fts, cs_root)
    wanted = {r.path for f in manifest.faults.values() for recs in f.values() for r in recs.values()}
    seen: set[str] = set()
    for sc_path in sorted((remote_version / "_cs_sync").glob("*.json")):
        sc = json.loads(sc_path.read_text())
        fault_dir = remote_version / sc["fault"]
        out = work / sc["fault"] / sc["dtype"]
        out.mkdir(parents=True, exist_ok=True)
        for part in sc["parts"]:
            if part["name"].endswith(".tar"):
                subprocess.run(["tar", "-xf", str(fault_dir / part["name"]), "-C", str(out)], check=True)
        for m in sc["members"]:
            data = (out / m["name"]) if m["part"].endswith(".tar") else fault_dir / m["part"]
            assert data.read_bytes() == (cs_root / m["source"]).read_bytes(), m
            seen.add(m["source"])
    assert wanted <= seen, sorted(wanted - seen)[:5]
    assert (remote_version / "list.txt").exists() and (remote_version / "stocktake.csv").exists()
    return len(seen)


def test_upload_array_gives_complete_byte_exact_archive_and_summary_says_so(version, tmp_path, slurm, capsys):
    root, fts = version
    remote, run = tmp_path / "remote", tmp_path / "run"
    array_id, summary_id, out = submit(capsys, [
        "slurm", "upload", str(root), str(fts), "--tasks", "3", "--time", "00:10:00", "--mem", "500M",
        "--rate", "10M", "--run-dir", str(run), "--remote", str(remote), "--tmp_dir", str(tmp_path / "scratch"),
        "--max-size", "100K"])
    assert re.search(r"^  shard 2/3:", out, re.M)
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    assert [t.exit_code for t in sorted(states[array_id], key=lambda t: t.array_task)] == [0, 0, 0], \
        [(run / "logs" / f"upload_{array_id}_{i}.out").read_text()[-2000:] for i in range(3)]
    assert states[summary_id][0].exit_code == 0, (run / "report.txt").read_text()
    report = (run / "report.txt").read_text()
    assert "3 of 3 shard(s) finished cleanly" in report
    assert "the version is complete on the remote" in report and "result: complete" in report
    status = json.loads((run / "status.json").read_text())
    assert status["version"] == root.name and status["has_list"] and status["has_stocktake"]
    assert {c["state"] for c in status["cells"]} <= {"complete", "absent"}
    assert "complete" in (run / "status.txt").read_text()
    page = (run / "report.html").read_text()  # the version's page, drawn from status.json
    assert "3 of 3 shard(s) finished cleanly" in page
    assert page.count('<td class="c s-complete" data-state="complete"') == len(status["cells"])
    # each shard uploaded only its own faults (its log names them), and list.txt went up once
    shards = json.loads((run / "run.json").read_text())["shards"]
    assert sorted(f for s in shards for f in s["faults"]) == sorted(["AlpineK2T", "Hope", "Wairau", "Fiord"])
    assert extract_and_compare(remote / root.name, root, fts, tmp_path / "extracted") > 20


def test_cancelled_array_is_continued_by_resubmitting_the_same_command(version, tmp_path, slurm, capsys, monkeypatch):
    root, fts = version
    remote = tmp_path / "remote"
    argv = ["slurm", "upload", str(root), str(fts), "--tasks", "3", "--time", "00:10:00",
            "--remote", str(remote), "--tmp_dir", str(tmp_path / "scratch"), "--max-size", "100K"]
    # slow transfers (inherited by the jobs) so the tasks are mid-way when cancelled
    monkeypatch.setenv("RCLONE_BWLIMIT_FILE", "40K")
    array_id, summary_id, _ = submit(capsys, [*argv, "--run-dir", str(tmp_path / "run1")])
    deadline = time.monotonic() + WAIT
    while not any((remote / root.name).glob("*/*.tar")):
        assert time.monotonic() < deadline, "no part reached the remote"
        time.sleep(0.2)
    slurm.cancel(array_id)
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    assert {t.state for t in states[array_id]} & {"CANCELLED"}
    report = (tmp_path / "run1" / "report.txt").read_text()
    assert states[summary_id][0].exit_code == 7, report
    assert "result: INCOMPLETE; failed shard(s):" in report
    # each cancelled task got SIGTERM: cs-sync-upload stopped (130, or 7 when its rclone children were
    # stopped first) and recorded its code; Slurm's own word for it is in the report too
    assert "[Slurm: CANCELLED]" in report
    assert "killed before it could record" not in report and "never started" not in report
    assert "remote status: NOT complete" in report
    assert "incomplete or missing sets" in report

    # the same command again (full speed) completes the version
    monkeypatch.delenv("RCLONE_BWLIMIT_FILE")
    array_id, summary_id, _ = submit(capsys, [*argv, "--run-dir", str(tmp_path / "run2")])
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    report = (tmp_path / "run2" / "report.txt").read_text()
    assert states[summary_id][0].exit_code == 0, report
    assert "result: complete" in report
    extract_and_compare(remote / root.name, root, fts, tmp_path / "extracted")


def test_a_failed_shard_is_named_with_its_log_and_the_command_that_reruns_only_it(version, tmp_path, slurm, capsys):
    """One task fails (exit 7: a file vanished after preprocess). The report names the shard, its
    exit code and log, and the command re-running only it; that command, as printed, finishes
    the version. Paths with spaces throughout (run folder, remote, tmp dir)."""
    import shlex

    root, fts = version
    base = tmp_path / "my work"
    remote, run = base / "the remote", base / "my runs" / "r1"
    victim = root / next(iter(read_manifest(fts, root).faults["Fiord"]["BB"].values())).path
    hidden = tmp_path / "hidden.bin"
    victim.rename(hidden)
    array_id, summary_id, _ = submit(capsys, [
        "slurm", "upload", str(root), str(fts), "--tasks", "3", "--time", "00:10:00", "--run-dir", str(run),
        "--remote", str(remote), "--tmp_dir", str(base / "scratch dir"), "--max-size", "100K"])
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    shard = next(s["index"] for s in json.loads((run / "run.json").read_text())["shards"] if "Fiord" in s["faults"])
    codes = {t.array_task: t.exit_code for t in states[array_id]}
    assert codes == {i: 7 if i == shard else 0 for i in range(3)}, codes
    report = (run / "report.txt").read_text()
    assert states[summary_id][0].exit_code == 7, report
    log = run / "logs" / f"upload_{array_id}_{shard}.out"
    assert (f"  shard {shard}/3: exit 7: some sets failed or are incomplete [Slurm: FAILED] (log: {log})"
            in report.splitlines()), report
    assert "vanished since preprocess" in log.read_text()
    rerun = next(ln for ln in report.splitlines() if ln.startswith("re-run only the failed shard(s): "))
    then = next(ln for ln in report.splitlines() if ln.startswith("  then a new report: "))
    assert f"result: INCOMPLETE; failed shard(s): {shard}" in report

    # the cause fixed, the printed commands as they are (new array ID filled in) finish the version
    hidden.rename(victim)
    env = {**os.environ, **need_slurm()}

    def run_printed(line: str, new_id: str = "") -> str:
        argv = shlex.split(line.split(": ", 1)[1].replace("NEW_ARRAY_ID", new_id))
        p = subprocess.run([argv[0], "--parsable", *argv[1:]], env=env, capture_output=True, text=True, cwd=tmp_path)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip().split(";")[0]

    again = run_printed(rerun)
    summary2 = run_printed(then, again)
    states = slurm.wait([again, summary2], timeout=WAIT)
    assert [(t.array_task, t.exit_code) for t in states[again]] == [(shard, 0)]
    report = (run / "report.txt").read_text()
    assert states[summary2][0].exit_code == 0, report
    assert "3 of 3 shard(s) finished cleanly" in report and "result: complete" in report
    extract_and_compare(remote / root.name, root, fts, tmp_path / "extracted")


def upload_serially(root: Path, fts: Path, remote: Path, tmp: Path) -> None:
    proc = subprocess.run([str(BIN / "cs-sync-upload"), str(root), str(fts), "--remote", str(remote),
                           "--tmp_dir", str(tmp), "--max-size", "100K"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_download_array_brings_back_the_selection(version, tmp_path, slurm, capsys):
    root, fts = version
    remote, dest, run = tmp_path / "remote", tmp_path / "down", tmp_path / "run"
    upload_serially(root, fts, remote, tmp_path / "scratch")
    array_id, summary_id, out = submit(capsys, [
        "slurm", "download", root.name, "--tasks", "2", "--time", "00:10:00", "--run-dir", str(run),
        "--remote", str(remote), "--download_dir", str(dest), "-t", "BB", "IM", "--exc_fault", "Fiord"])
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    assert [t.exit_code for t in states[array_id]] == [0, 0], \
        [(run / "logs" / f"download_{array_id}_{i}.out").read_text()[-2000:] for i in range(2)]
    assert states[summary_id][0].exit_code == 0
    assert "result: complete" in (run / "report.txt").read_text()
    manifest = read_manifest(fts, root)
    compared = 0
    for fault, types in manifest.faults.items():
        for dtype in ("BB", "IM"):
            folder = dest / fault / dtype
            if fault == "Fiord":
                assert not folder.exists()
                continue
            got = {p.name: p.read_bytes() for p in folder.iterdir()}
            for rec in types[dtype].values():
                from cs_sync.core.naming import member_name

                assert got[member_name(fault, rec.path.split(f"{fault}/", 1)[1])] == (root / rec.path).read_bytes()
                compared += 1
    assert compared > 10


def test_rendered_scripts_submitted_by_hand(version, tmp_path, slurm, capsys):
    """`--dry-run` renders the scripts; a user submits them with plain sbatch (summary with --export)."""
    root, fts = version
    remote, run = tmp_path / "remote", tmp_path / "run"
    assert cs_sync_main(["slurm", "upload", str(root), str(fts), "--tasks", "2", "--dry-run", "--run-dir", str(run),
                         "--remote", str(remote), "--tmp_dir", str(tmp_path / "scratch"), "--max-size", "100K"]) == 0
    capsys.readouterr()
    env = {**os.environ, **need_slurm()}

    def sbatch(*args: str) -> str:
        p = subprocess.run(["sbatch", "--parsable", *args], cwd=tmp_path, env=env, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return p.stdout.strip().split(";")[0]

    array_id = sbatch(str(run / "upload_array.sl"))
    # the shipped summary template, not the rendered one, with its variables exported
    summary_id = sbatch(f"--dependency=afterany:{array_id}",
                        f"--export=ALL,CS_KIND=upload,CS_VER={root.name},CS_SHARDS=2,CS_RUN_DIR={run},"
                        f"CS_REMOTE={remote},FILES_TO_SYNC={fts},CS_SYNC_BIN={BIN}",
                        str(ROOT / "slurm" / "summary.sl"))
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    assert [t.exit_code for t in states[array_id]] == [0, 0]
    assert states[summary_id][0].exit_code == 0, (run / "report.txt").read_text()
    assert (tmp_path / f"cs-sync-summary_{summary_id}.out").exists()  # the template's own --output
    extract_and_compare(remote / root.name, root, fts, tmp_path / "extracted")


def test_index_array_indexes_an_older_version_and_a_resubmission_has_nothing_left(tmp_path, slurm, capsys):
    """Sets made the older scripts' way (GNU tar, no sidecar): every one indexed by a 2-task array."""
    from cs_sync.archive.sidecar import parse_sidecar

    from archive_builder import write_version
    from cybershake_tree import FaultSpec as Spec
    from cybershake_tree import make_version

    tree = tmp_path / "tree"
    faults = [Spec("AlpineK2T", 4, bb_size=60_000), Spec("Hope", 3, bb_size=50_000), Spec("Fiord", 2, bb_size=30_000)]
    make_version(tree, faults)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, "v18p6", [f.name for f in faults], sidecar=False, max_part=100_000)
    run = tmp_path / "run"
    array_id, summary_id, out = submit(capsys, [
        "slurm", "index", "v18p6", "--tasks", "2", "--time", "00:10:00", "--run-dir", str(run),
        "--remote", str(remote)])
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    assert [t.exit_code for t in states[array_id]] == [0, 0], \
        [(run / "logs" / f"index_{array_id}_{i}.out").read_text()[-2000:] for i in range(2)]
    assert states[summary_id][0].exit_code == 0 and "result: complete" in (run / "report.txt").read_text()
    sets = [k for k in built.parts if k[1] != "SAMPLE_BB"]
    for fault, dtype in sets:
        sc = parse_sidecar((remote / "v18p6" / "_cs_sync" / f"{fault}_{dtype}.json").read_text())
        assert sc.is_index and [p.name for p in sc.parts] == built.parts[(fault, dtype)]
    logs = "".join((run / "logs" / f"index_{array_id}_{i}.out").read_text() for i in range(2))
    assert sum(int(n) for n in re.findall(r"sets: (\d+) indexed", logs)) == len(sets)
    # the same command again: every set has its sidecar, nothing is read
    run2 = tmp_path / "run2"
    array_id, summary_id, out = submit(capsys, [
        "slurm", "index", "v18p6", "--tasks", "2", "--time", "00:10:00", "--run-dir", str(run2),
        "--remote", str(remote)])
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    assert [t.exit_code for t in states[array_id]] == [0, 0]
    logs = "".join((run2 / "logs" / f"index_{array_id}_{i}.out").read_text() for i in range(2))
    assert re.findall(r"sets: (\d+) indexed", logs) == ["0", "0"] and "0 walked" in logs


def test_the_preprocess_script_runs_as_a_job_and_passes_the_exit_code_on(slurm, make_tree, tmp_path):
    """slurm/preprocess.sl as the README submits it by hand (sbatch --export=ALL,...): the
    outputs it is told to write, and exit 4 (missing files) reaching Slurm as the job's code."""
    root, lst = make_tree([FaultSpec("AlpineK2T", 2, bb_size=20_000), FaultSpec("Hope", 2, bb_size=20_000)])
    fts, csv = tmp_path / "out" / "files_to_sync.yaml", tmp_path / "out" / "stocktake.csv"
    fts.parent.mkdir()
    export = {"CS_ROOT": str(root), "FAULT_LIST": str(lst), "CS_SYNC_BIN": str(BIN),
              "CS_PREPROCESS_OPTS": f"--out_file {fts} --stocktake_csv {csv}"}
    log = tmp_path / "pre_%j.out"
    job = slurm.submit(ROOT / "slurm" / "preprocess.sl", export=export, extra=["--output", str(log)])
    [state] = slurm.wait([job], timeout=WAIT)[job]
    out = Path(str(log).replace("%j", job)).read_text()
    assert state.state == "COMPLETED" and state.exit_code == 0, out
    assert read_manifest(fts, root).faults.keys() == {"AlpineK2T", "Hope"} and csv.stat().st_size > 0
    assert "cs-sync-preprocess exited with 0" in out
    (root / "Runs/Hope/Hope_REL02/BB/Acc/BB.bin").unlink()  # a missing file: the stocktake says 4
    job = slurm.submit(ROOT / "slurm" / "preprocess.sl", export=export, extra=["--output", str(log)])
    [state] = slurm.wait([job], timeout=WAIT)[job]
    out = Path(str(log).replace("%j", job)).read_text()
    assert state.state == "FAILED" and state.exit_code == 4, out
    assert "cs-sync-preprocess exited with 4" in out


def test_a_run_folder_with_percent_signs_gets_its_logs_where_the_report_says(version, tmp_path, slurm, capsys):
    """sbatch reads --output as a filename pattern (%j, %A, %a, %x, %%...): a run folder named
    with them must be taken literally, so the logs are in RUN/logs/ as the report names them."""
    root, fts = version
    run = tmp_path / "runs" / "r%j_%A-%a_%x_100%%"
    victim = root / next(iter(read_manifest(fts, root).faults["Fiord"]["BB"].values())).path
    victim.rename(tmp_path / "hidden.bin")  # Fiord's shard fails, so the report names its log
    array_id, summary_id, _ = submit(capsys, [
        "slurm", "upload", str(root), str(fts), "--tasks", "2", "--time", "00:10:00", "--run-dir", str(run),
        "--remote", str(tmp_path / "remote"), "--tmp_dir", str(tmp_path / "scratch"), "--max-size", "100K"])
    states = slurm.wait([array_id, summary_id], timeout=WAIT)
    shard = next(s["index"] for s in json.loads((run / "run.json").read_text())["shards"] if "Fiord" in s["faults"])
    assert {t.array_task: t.exit_code for t in states[array_id]} == {i: 7 if i == shard else 0 for i in range(2)}
    report = (run / "report.txt").read_text()
    log = run / "logs" / f"upload_{array_id}_{shard}.out"
    assert f"(log: {log})" in report, report
    assert "vanished since preprocess" in log.read_text()
    assert (run / "logs" / f"upload_{array_id}_{1 - shard}.out").exists()
    assert (run / "logs" / f"summary_{summary_id}.out").exists()
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == [run.name]  # no expanded twin folder
