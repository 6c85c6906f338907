"""One process against a 4-task Slurm array: the same version, the same per-transfer limit.

Generates a version tree, preprocesses it, then uploads it to two local-directory
remotes under ``RCLONE_BWLIMIT_FILE=8M`` (rclone's per-file limit, which models
Dropbox's per-connection throughput): once with one ``cs-sync-upload`` process,
once with ``cs-sync slurm upload --tasks 4`` on the single-node test cluster
(``slurm/cluster.sh``), timed from submission until the summary job has finished.
Prints both wall times and their ratio, and checks that both remotes hold the same
files and that the summary reported the version complete.

    python benchmarks/slurm.py [--faults 8] [--mb-per-fault 64] [--max-size 32M] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "examples"))

from cs_sync.slurm.client import Slurm  # noqa: E402

from cybershake_tree import FaultSpec, make_version  # noqa: E402

BIN = Path(sys.executable).parent


def run(cmd: list[str], env: dict[str, str], **kw) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        sys.exit(f"benchmark: {' '.join(cmd[:3])} ... exited {proc.returncode}:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def cluster_env() -> dict[str, str]:
    subprocess.run(["bash", str(ROOT / "slurm" / "cluster.sh"), "ensure"], check=True)
    out = subprocess.run(["bash", str(ROOT / "slurm" / "cluster.sh"), "env"], capture_output=True, text=True).stdout
    m = re.search(r"SLURM_CONF=(\S+)", out)
    if not m:
        sys.exit("benchmark: no Slurm cluster (slurm/cluster.sh ensure could not start one)")
    return {"SLURM_CONF": m.group(1).strip("'\"")}


def listing(remote: Path) -> dict[str, int]:
    return {p.relative_to(remote).as_posix(): p.stat().st_size for p in remote.rglob("*") if p.is_file()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faults", type=int, default=8)
    ap.add_argument("--mb-per-fault", type=float, default=64.0)
    ap.add_argument("--max-size", default="32M", help="part cap for both runs")
    ap.add_argument("--tasks", type=int, default=4)
    ap.add_argument("--bwlimit", default="8M", help="RCLONE_BWLIMIT_FILE for both runs")
    ap.add_argument("--keep", type=Path, help="work here and keep it (default: a temporary folder, removed)")
    args = ap.parse_args()

    work = args.keep or Path(tempfile.mkdtemp(prefix="cs_sync_bench_slurm_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        rels = 4
        bb = int(args.mb_per_fault * 1024 * 1024 / (rels + 1))
        # uneven faults, as in real versions: the shards are balanced by bytes
        specs = [FaultSpec(f"Fault{i:02d}", rels, bb_size=int(bb * (0.5 + (i % 4) / 3))) for i in range(args.faults)]
        cs_root = work / "vbench"
        if cs_root.exists():
            shutil.rmtree(cs_root)
        lst = make_version(cs_root, specs)
        env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **cluster_env()}
        fts = work / "files_to_sync.yaml"
        run([str(BIN / "cs-sync-preprocess"), str(cs_root), str(lst), "--out_file", str(fts),
             "--stocktake_csv", str(work / "stocktake.csv")], env)
        total = sum(p.stat().st_size for p in cs_root.rglob("*") if p.is_file())
        limited = {**env, "RCLONE_BWLIMIT_FILE": args.bwlimit}
        common = ["--max-size", args.max_size]
        for d in ("remote_one", "remote_array", "tmp_one", "tmp_array", "run"):
            shutil.rmtree(work / d, ignore_errors=True)

        t0 = time.monotonic()
        run([str(BIN / "cs-sync-upload"), str(cs_root), str(fts), "--remote", str(work / "remote_one"),
             "--tmp_dir", str(work / "tmp_one"), *common], limited)
        one = time.monotonic() - t0

        t0 = time.monotonic()
        out = run([str(BIN / "cs-sync"), "slurm", "upload", str(cs_root), str(fts), "--tasks", str(args.tasks),
                   "--time", "00:30:00", "--run-dir", str(work / "run"), "--remote", str(work / "remote_array"),
                   "--tmp_dir", str(work / "tmp_array"), *common], limited).stdout
        array_id = re.search(r"array job:\s+(\d+)", out).group(1)  # type: ignore[union-attr]
        summary_id = re.search(r"summary job:\s+(\d+)", out).group(1)  # type: ignore[union-attr]
        states = Slurm(env=cluster_env()).wait([array_id, summary_id], timeout=1800, poll=0.2)
        array = time.monotonic() - t0

        report = (work / "run" / "report.txt").read_text()
        same = listing(work / "remote_one" / "vbench") == listing(work / "remote_array" / "vbench")
        ok = states[summary_id][0].exit_code == 0 and "result: complete" in report and same
        print(f"slurm benchmark: {total / 2**20:.0f} MiB in {args.faults} faults, RCLONE_BWLIMIT_FILE={args.bwlimit}, "
              f"parts <= {args.max_size}")
        print(f"  one cs-sync-upload process:        {one:7.1f} s")
        print(f"  {args.tasks}-task array + summary job:     {array:7.1f} s (submission to summary end)")
        print(f"  ratio array/one:                   {array / one:7.2f}x")
        print(f"  remotes identical: {same}; summary: {'complete' if ok else 'NOT complete'}")
        if not ok:
            print(report)
            return 1
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
