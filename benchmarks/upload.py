"""Benchmark: cs-sync-upload against the older way of uploading, in the same run.

The older way (the baseline): copy every file of the version to a staging folder,
``tar cf`` each fault/type from it, ``tar --compare`` each TAR, remove the staging
copy, one ``rclone copy`` per fault, then one ``rclone check`` of everything.

Measured, both to a local directory remote:

* wall time and peak scratch space (sampled from the scratch folders while they run);
* the same again with ``RCLONE_BWLIMIT_FILE=8M`` set for both (rclone's per-file
  bandwidth limit: a model of Dropbox's per-connection throughput), on a smaller
  tree so the benchmark stays within a few minutes;
* packing throughput: our part writer (which also computes every member's and every
  part's SHA-256) against ``tar cf`` of the same files.

Targets: wall <= 0.5x (local) and <= 0.3x (per-file limit); peak scratch <= 0.5x;
packing >= 0.8x of ``tar cf``. Exit status 1 when a target is missed.

    python benchmarks/upload.py [--size-gb 1.6] [--limited-size-gb 0.5] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "examples"))

from cs_sync.archive.tar_write import PartWriter  # noqa: E402
from cs_sync.inputs.config import load_config  # noqa: E402
from cs_sync.inputs.faultlist import read_fault_list  # noqa: E402
from cs_sync.inputs.manifest import FileRecord, Manifest, write_manifest  # noqa: E402
from cs_sync.remote.rclone import find_rclone  # noqa: E402
from cs_sync.upload.engine import DEFAULT_HARD_LIMIT, DEFAULT_MAX_SIZE  # noqa: E402
from cs_sync.upload.planning import plan_upload  # noqa: E402

from cybershake_tree import FaultSpec, make_version  # noqa: E402

MiB = 1 << 20
RCLONE = find_rclone()


# -- the tree and its manifest -----------------------------------------------------------


def make_tree(root: Path, total_bytes: int, n_faults: int = 12, events: int = 6) -> Path:
    """A version of ``n_faults`` faults whose BB files add up to about ``total_bytes``."""
    bb = max(MiB, total_bytes // (n_faults * events))
    specs = [FaultSpec(f"Fault{i:02d}", rels=events - 1, median=True, perturbed=True, bb_size=bb)
             for i in range(n_faults)]
    make_version(root, specs)
    return root


def write_tree_manifest(cs_root: Path) -> Path:
    """What preprocess would write: each fault's files per type, with sizes and mtimes."""
    config = load_config()
    m = Manifest(version=cs_root.name, cs_root=str(cs_root))
    for entry in read_fault_list(cs_root / "list.txt"):
        types = {}
        for dt in config.scanned_types():
            recs = {}
            for pat in dt.patterns:
                for p in sorted((cs_root / dt.where_for(entry.name)).glob(pat.for_fault(entry.name))):
                    rel = p.relative_to(cs_root).as_posix()
                    if p.is_file() and not any(c.startswith("_") for c in rel.split("/")):
                        st = p.stat()
                        recs[rel] = FileRecord(rel, st.st_size, st.st_mtime_ns)
            if recs:
                types[dt.name] = recs
        m.faults[entry.name] = types
    m.extra["list.txt"] = (cs_root / "list.txt").stat().st_size
    m.extra_paths["list.txt"] = str(cs_root / "list.txt")
    stocktake = cs_root.parent / "stocktake.csv"
    stocktake.write_text("fault\n" + "\n".join(m.faults) + "\n")
    m.extra_paths["stocktake.csv"] = str(stocktake)
    out = cs_root.parent / "files_to_sync.yaml"
    write_manifest(out, m)
    return out


def the_plan(cs_root: Path, manifest: Path):
    from cs_sync.inputs.manifest import read_manifest

    return plan_upload(read_manifest(manifest, cs_root), load_config(), max_size=DEFAULT_MAX_SIZE,
                       hard_limit=DEFAULT_HARD_LIMIT)


# -- measuring ------------------------------------------------------------------------------


class ScratchSampler:
    """Peak bytes of files under some folders, sampled every few milliseconds."""

    def __init__(self, *dirs: Path, interval: float = 0.01) -> None:
        self.dirs = dirs
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _size(self) -> int:
        total = 0
        for d in self.dirs:
            for base, _, files in os.walk(d):
                for f in files:
                    try:
                        total += os.lstat(os.path.join(base, f)).st_size
                    except OSError:
                        pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._size())
            time.sleep(self.interval)

    def __enter__(self) -> ScratchSampler:
        self._t.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, self._size())


def run(cmd: list[str], env: dict | None = None) -> None:
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def rclone(args: list[str], env: dict) -> None:
    run([RCLONE, *args], env)


# -- the two ways ---------------------------------------------------------------------------


def old_way(cs_root: Path, manifest: Path, remote: Path, work: Path, env: dict) -> None:
    """Staging copy, tar cf, tar --compare, rclone copy per fault, rclone check."""
    plan = the_plan(cs_root, manifest)
    stage, tars = work / "stage", work / "tars"
    version = cs_root.name
    for sp in plan.sets:  # 1. copy the files to a staging folder
        if sp.sample:
            continue
        d = stage / sp.fault / sp.name
        d.mkdir(parents=True, exist_ok=True)
        for m in sp.members:
            shutil.copyfile(cs_root / m.source, d / m.name)
    for sp in plan.sets:  # 2. tar each fault/type, 3. compare it with the staging copy
        (tars / sp.fault).mkdir(parents=True, exist_ok=True)
        if sp.sample:
            for p in sp.parts:
                shutil.copyfile(cs_root / p.members[0].source, tars / sp.fault / p.name)
            continue
        d = stage / sp.fault / sp.name
        tar = tars / sp.fault / f"{sp.name}.tar"
        run(["tar", "cf", str(tar), "-C", str(d), *sorted(os.listdir(d))])
        run(["tar", "--compare", "-f", str(tar), "-C", str(d)])
    shutil.rmtree(stage)
    for fault in sorted({sp.fault for sp in plan.sets}):  # 4. one rclone copy per fault
        rclone(["copy", str(tars / fault), str(remote / version / fault)], env)
    rclone(["copyto", str(cs_root / "list.txt"), str(remote / version / "list.txt")], env)
    rclone(["check", str(tars), str(remote / version), "--one-way"], env)  # 5. check everything
    shutil.rmtree(tars)


def our_way(cs_root: Path, manifest: Path, remote: Path, work: Path, env: dict) -> str:
    cmd = [sys.executable, "-c", "from cs_sync.cli.upload import entry; entry()", str(cs_root), str(manifest),
           "--remote", str(remote), "--tmp_dir", str(work / "tmp")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"cs-sync-upload failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def compare(label: str, cs_root: Path, manifest: Path, work: Path, env: dict) -> tuple[float, float, int, int]:
    """(old wall, our wall, old peak scratch, our peak scratch)."""
    results = {}
    os.sync()
    for name, fn in (("old", old_way), ("ours", our_way)):
        d = work / f"{label}-{name}"
        d.mkdir(parents=True)
        remote = d / "remote"
        with ScratchSampler(d / "stage", d / "tars", d / "tmp") as sampler:
            t0 = time.perf_counter()
            out = fn(cs_root, manifest, remote, d, env)
            wall = time.perf_counter() - t0
        results[name] = (wall, sampler.peak)
        if name == "ours":
            line = next((ln for ln in out.splitlines() if "checks:" in ln), "")
            print(f"    ours: {line.strip()}")
        shutil.rmtree(d)
    (ow, op), (nw, np_) = results["old"], results["ours"]
    return ow, nw, op, np_


def packing(cs_root: Path, manifest: Path, work: Path, rounds: int = 4) -> tuple[float, float, int]:
    """Best-of-``rounds`` seconds for ``tar cf`` and for our writer over every TAR set, and the bytes.

    The two alternate and take turns going first; the first round warms both up and is not counted.
    """
    plan = the_plan(cs_root, manifest)
    sets = [sp for sp in plan.sets if not sp.sample]
    total = sum(p.size for sp in sets for p in sp.parts)
    out = work / "pack"
    out.mkdir(parents=True)
    os.sync()  # the freshly generated tree is not being written back while we measure

    def with_tar() -> float:
        t0 = time.perf_counter()
        for sp in sets:
            listing = work / "files.txt"
            listing.write_text("\n".join(m.source for m in sp.members) + "\n")
            run(["tar", "cf", str(out / f"{sp.name}.tar"), "-C", str(cs_root), "-T", str(listing)])
        return time.perf_counter() - t0

    def with_ours() -> float:
        t0 = time.perf_counter()
        with PartWriter() as w:
            for sp in sets:
                for p in sp.parts:
                    w.write(p.name, [m.as_source() for m in p.members], cs_root, out, expected_size=p.size)
        return time.perf_counter() - t0

    times: dict = {with_tar: [], with_ours: []}
    for i in range(rounds):
        for fn in ((with_tar, with_ours) if i % 2 else (with_ours, with_tar)):
            t = fn()
            if i:
                times[fn].append(t)
            shutil.rmtree(out)
            out.mkdir()
            os.sync()
    shutil.rmtree(out)
    return min(times[with_tar]), min(times[with_ours]), total


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.6, help="tree size for the local-remote runs (>= 1.5)")
    ap.add_argument("--limited-size-gb", type=float, default=0.5,
                    help="tree size for the RCLONE_BWLIMIT_FILE=8M runs (smaller: they run at 8 MiB/s per file)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to build the trees (default: a temp dir)")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cs_sync_bench_upload_", dir=args.workdir))
    env = dict(os.environ)
    env.pop("RCLONE_BWLIMIT_FILE", None)
    ok = True

    def verdict(ratio: float, target: float, lower_is_better: bool = True) -> str:
        nonlocal ok
        good = ratio <= target if lower_is_better else ratio >= target
        ok &= good
        return f"{'PASS' if good else 'MISS'} (target {'<=' if lower_is_better else '>='} {target}x)"

    try:
        big = make_tree(base / "big" / "v22p12", int(args.size_gb * 1e9))
        man = write_tree_manifest(big)
        plan = the_plan(big, man)
        print(f"tree: {plan.size / 1e9:.2f} GB in {len(plan.sets)} sets of {len({s.fault for s in plan.sets})} faults "
              f"(largest part {plan.largest_part / MiB:.0f} MiB); rclone {RCLONE}")

        t_tar, t_ours, nbytes = packing(big, man, base)
        r = (nbytes / t_ours) / (nbytes / t_tar)
        print(f"packing: tar cf {nbytes / t_tar / MiB:.0f} MiB/s, ours with SHA-256 {nbytes / t_ours / MiB:.0f} MiB/s "
              f"-> {r:.2f}x {verdict(r, 0.8, lower_is_better=False)}")

        ow, nw, op, np_ = compare("local", big, man, base, env)
        print(f"local remote: old way {ow:.1f} s, peak scratch {op / MiB:.0f} MiB; "
              f"cs-sync-upload {nw:.1f} s, peak scratch {np_ / MiB:.0f} MiB")
        print(f"  wall {nw / ow:.2f}x {verdict(nw / ow, 0.5)}; peak scratch {np_ / op:.2f}x {verdict(np_ / op, 0.5)}")
        shutil.rmtree(base / "big")

        small = make_tree(base / "small" / "v22p12", int(args.limited_size_gb * 1e9), n_faults=8)
        man = write_tree_manifest(small)
        size = the_plan(small, man).size
        limited = {**env, "RCLONE_BWLIMIT_FILE": "8M"}
        ow, nw, op, np_ = compare("limited", small, man, base, limited)
        print(f"RCLONE_BWLIMIT_FILE=8M (smaller tree: {size / 1e9:.2f} GB, to keep the run short): "
              f"old way {ow:.1f} s, cs-sync-upload {nw:.1f} s")
        print(f"  wall {nw / ow:.2f}x {verdict(nw / ow, 0.3)}; peak scratch {np_ / op:.2f}x {verdict(np_ / op, 0.5)}")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
