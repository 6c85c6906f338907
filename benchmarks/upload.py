"""Benchmark: cs-sync-upload (parts streamed from the sources) against the older way, in the same run.

The older way (the baseline), at its best: one fault at a time, copy its files to a
staging folder, ``tar cf`` each of its sets from there, one ``rclone copy`` of the
fault's TAR folder, then remove the staging copy and the TARs.

Scenarios (pairs in alternating order, from the same state; medians of the pair ratios):

* a local-folder remote, a 1.5 GB version: what the pipeline costs when the transfer
  itself is free. Target: wall <= 0.5x.
* a modelled link: ``rclone serve webdav`` behind tests/throttle_proxy.py, 40 MB/s for
  all connections together and 8 MB/s for each (one Dropbox upload stream). Link
  utilisation = bytes archived / (wall x 40 MB/s). Targets: ours >= 0.9, wall <= 0.3x.
* scratch and local I/O, measured on every run: peak bytes under the scratch folders
  (sampled every 10 ms), and the bytes the whole process tree read from and wrote to
  local disk (``getrusage`` of the reaped children: block I/O, so the source tree's
  pages are dropped from the cache before each run with posix_fadvise). Targets: our
  peak scratch <= 0.05x the older way's, the same with ``--max-size 64MiB``; bytes
  read = 1.0x the data archived; bytes written locally ~0 (over the link, where the
  remote's own writes are another process's).

    python benchmarks/upload.py [--size-gb 1.5] [--link-size-gb 1.0] [--pairs 2] [--only local|link]

About 7 minutes on 2 cores (the older way over the link is most of it).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "examples"), str(HERE.parent / "tests")]

from disk_watch import DiskWatch  # noqa: E402

from cs_sync.inputs.config import load_config  # noqa: E402
from cs_sync.inputs.faultlist import read_fault_list  # noqa: E402
from cs_sync.inputs.manifest import FileRecord, Manifest, read_manifest, write_manifest  # noqa: E402
from cs_sync.remote.rclone import find_rclone  # noqa: E402
from cs_sync.upload.engine import DEFAULT_HARD_LIMIT, DEFAULT_MAX_SIZE  # noqa: E402
from cs_sync.upload.planning import plan_upload  # noqa: E402

from cybershake_tree import FaultSpec, make_version  # noqa: E402
from servers import start_webdav  # noqa: E402
from throttle_proxy import ThrottleProxy  # noqa: E402

MB = 1_000_000
MiB = 1 << 20
RCLONE = find_rclone()
LINK, CONN = 40 * MB, 8 * MB


# -- the tree and its manifest -----------------------------------------------------------


def make_tree(root: Path, total_bytes: int, n_faults: int, events: int = 6) -> Path:
    """A version of ``n_faults`` faults whose BB files add up to about ``total_bytes``."""
    bb = max(MiB, total_bytes // (n_faults * events))
    make_version(root, [FaultSpec(f"Fault{i:02d}", rels=events - 1, median=True, perturbed=True, bb_size=bb)
                        for i in range(n_faults)])
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


def the_plan(cs_root: Path, manifest: Path, max_size: int = DEFAULT_MAX_SIZE):
    return plan_upload(read_manifest(manifest, cs_root), load_config(), max_size=max_size,
                       hard_limit=DEFAULT_HARD_LIMIT)


def evict(tree: Path) -> None:
    """Drop the tree's pages from the page cache (this tree only), so reads hit the disk."""
    os.sync()
    for base, _, files in os.walk(tree):
        for f in files:
            try:
                fd = os.open(os.path.join(base, f), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


# -- measuring ------------------------------------------------------------------------------


def _io() -> tuple[int, int, float]:
    """(bytes read from, bytes written to local disk, CPU seconds) by this process and its reaped children."""
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = s.ru_utime + s.ru_stime + c.ru_utime + c.ru_stime
    return (s.ru_inblock + c.ru_inblock) * 512, (s.ru_oublock + c.ru_oublock) * 512, cpu


class Run:
    def __init__(self, wall: float, read: int, written: int, scratch: int, cpu: float, note: str = "") -> None:
        self.wall, self.read, self.written, self.scratch, self.cpu, self.note = wall, read, written, scratch, cpu, note


def measured(fn, tree: Path, scratch_dirs: list[Path]) -> Run:
    evict(tree)
    r0, w0, c0 = _io()
    with DiskWatch(*scratch_dirs, interval=0.01) as sampler:
        t0 = time.perf_counter()
        note = fn() or ""
        wall = time.perf_counter() - t0
    r1, w1, c1 = _io()
    return Run(wall, r1 - r0, w1 - w0, sampler.peak, c1 - c0, note)


def run(cmd: list[str], env: dict | None = None) -> None:
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


# -- the two ways ---------------------------------------------------------------------------


def old_way(cs_root: Path, manifest: Path, remote: str, work: Path, env: dict) -> None:
    """One fault at a time: staging copy, tar cf of each set, rclone copy of the fault's TARs."""
    plan = the_plan(cs_root, manifest)
    version = cs_root.name
    by_fault: dict[str, list] = {}
    for sp in plan.sets:
        by_fault.setdefault(sp.fault, []).append(sp)
    stage, tars = work / "stage", work / "tars"
    for fault, sets in by_fault.items():
        out = tars / fault
        out.mkdir(parents=True, exist_ok=True)
        for sp in sets:
            if sp.sample:
                for p in sp.parts:
                    run(["cp", str(cs_root / p.members[0].source), str(out / p.name)])
                continue
            d = stage / sp.name
            d.mkdir(parents=True, exist_ok=True)
            for m in sp.members:
                shutil.copyfile(cs_root / m.source, d / m.name)
            run(["tar", "cf", str(out / f"{sp.name}.tar"), "-C", str(d), *sorted(os.listdir(d))])
            shutil.rmtree(d)
        run([RCLONE, "copy", str(out), f"{remote}/{version}/{fault}"], env)
        shutil.rmtree(out)
    run([RCLONE, "copyto", str(cs_root / "list.txt"), f"{remote}/{version}/list.txt"], env)


def our_way(cs_root: Path, manifest: Path, remote: str, work: Path, env: dict, *extra: str) -> str:
    cmd = [sys.executable, "-c", "from cs_sync.cli.upload import entry; entry()", str(cs_root), str(manifest),
           "--remote", remote, "--tmp_dir", str(work / "tmp"), *extra]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode != 0 or "remote re-read: every set" not in proc.stdout:
        raise SystemExit(f"cs-sync-upload failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return next((ln.strip() for ln in proc.stdout.splitlines() if "checks:" in ln), "")


def clear(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def clear_remote(remote: str, version: str, env: dict) -> None:
    """Delete the version on the remote through rclone (a server's directory cache sees it go)."""
    subprocess.run([RCLONE, "purge", f"{remote}/{version}"], env=env, capture_output=True)


def source_bytes(cs_root: Path, manifest: Path) -> int:
    """Bytes of the source files the plan archives, each file once (a sample repeats a BB.bin)."""
    return sum(r.size for types in read_manifest(manifest, cs_root).faults.values() for recs in types.values()
               for r in recs.values())


def pairs(label: str, tree: Path, manifest: Path, remote: str, work: Path, env: dict, n: int
          ) -> tuple[list[Run], list[Run]]:
    """``n`` pairs (old, ours) in alternating order, each from an empty remote version and scratch."""
    olds, ours = [], []
    for i in range(n):
        order = ("old", "ours") if i % 2 == 0 else ("ours", "old")
        for who in order:
            d = work / f"{label}-{who}"
            clear(d)
            clear_remote(remote, tree.name, env)
            d.mkdir(parents=True)
            if who == "old":
                r = measured(lambda d=d: old_way(tree, manifest, remote, d, env), tree, [d / "stage", d / "tars"])
                olds.append(r)
            else:
                r = measured(lambda d=d: our_way(tree, manifest, remote, d, env), tree, [d / "tmp"])
                ours.append(r)
            print(f"    {label} pair {i + 1} {who:>4}: {r.wall:6.1f} s (CPU {r.cpu:5.1f} s), peak scratch {r.scratch / MiB:8.2f} MiB, "
                  f"read {r.read / MB:7.0f} MB, written {r.written / MB:7.0f} MB {r.note}", flush=True)
            clear(d)
    clear_remote(remote, tree.name, env)
    return olds, ours


def prepare(folder: Path, size_gb: float, n_faults: int):
    """A Cybershake-like version of about ``size_gb`` under ``folder``: (tree, manifest, plan)."""
    tree = make_tree(folder / "v22p12", int(size_gb * 1e9), n_faults=n_faults)
    man = write_tree_manifest(tree)
    return tree, man, the_plan(tree, man)


def describe(plan) -> str:
    return f"{plan.size / 1e9:.2f} GB in {len(plan.sets)} sets of {len({s.fault for s in plan.sets})} faults"


def med(values) -> float:
    return statistics.median(values)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size-gb", type=float, default=1.5, help="tree for the local-remote pairs (>= 1.5)")
    ap.add_argument("--link-size-gb", type=float, default=1.0,
                    help="tree for the pairs over the modelled link (about 30 s for us at 40 MB/s)")
    ap.add_argument("--pairs", type=int, default=2, help="pairs per scenario (alternating order)")
    ap.add_argument("--workdir", type=Path, default=None, help="where to build the trees (default: a temp dir)")
    ap.add_argument("--only", choices=["local", "link"], default=None, help="run one scenario only")
    args = ap.parse_args()
    base = Path(tempfile.mkdtemp(prefix="cs_sync_bench_upload_", dir=args.workdir))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RCLONE_BWLIMIT")}
    ok = True

    def verdict(value: float, target: float, lower_is_better: bool = True) -> str:
        nonlocal ok
        good = value <= target if lower_is_better else value >= target
        ok &= good
        return f"{'PASS' if good else 'MISS'} (target {'<=' if lower_is_better else '>='} {target})"

    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; rclone {RCLONE}")
    try:
        if args.only in (None, "local"):
            # 1. local-folder remote
            tree, man, plan = prepare(base / "local", args.size_gb, 12)
            print(f"local tree: {describe(plan)} (largest part {max((p.size for s in plan.sets for p in s.parts if not s.sample), default=0) / MiB:.0f} MiB)")
            remote_dir = base / "local-remote"
            olds, ours = pairs("local", tree, man, str(remote_dir), base, env, args.pairs)
            ratio = med([o.wall / n.wall for o, n in zip(olds, ours)])
            sratio = max(n.scratch for n in ours) / min(o.scratch for o in olds)
            print(f"  local remote: older way {med(o.wall for o in olds):.1f} s, ours {med(n.wall for n in ours):.1f} s")
            print(f"  wall ratio (median of pairs) {1 / ratio:.2f}x {verdict(1 / ratio, 0.5)}")
            print(f"  peak scratch: older way {min(o.scratch for o in olds) / MiB:.0f} MiB, ours "
                  f"{max(n.scratch for n in ours) / MiB:.2f} MiB -> {sratio:.4f}x {verdict(sratio, 0.05)}")
            src = source_bytes(tree, man)
            rd = med(n.read for n in ours) / src
            print(f"  bytes read from local disk: ours {rd:.2f}x the source bytes archived "
                  f"{'PASS' if abs(rd - 1) <= 0.05 else 'MISS'} (target 1.0x), older way {med(o.read for o in olds) / src:.2f}x; "
                  f"written locally (the remote is a local folder here): ours {med(n.written for n in ours) / src:.2f}x, "
                  f"older way {med(o.written for o in olds) / src:.2f}x")
            ok &= abs(rd - 1) <= 0.05
            # --max-size does not change our scratch
            d = base / "maxsize"
            d.mkdir()
            small = measured(lambda: our_way(tree, man, str(remote_dir), d, env, "--max-size", "64MiB"), tree, [d / "tmp"])
            nparts = sum(len(s.parts) for s in the_plan(tree, man, 64 * MiB).sets)
            print(f"  --max-size 64MiB ({nparts} parts): ours {small.wall:.1f} s, peak scratch {small.scratch / MiB:.2f} MiB "
                  f"-> {small.scratch / min(o.scratch for o in olds):.4f}x of the older way's "
                  f"{verdict(small.scratch / min(o.scratch for o in olds), 0.05)}")
            clear(d)
            clear(remote_dir)
            clear(base / "local")

        if args.only in (None, "link"):
            # 2. the modelled link
            tree, man, plan = prepare(base / "link", args.link_size_gb, 24)
            size = plan.size
            print(f"link tree: {describe(plan)}; "
                  f"link {LINK / MB:.0f} MB/s, {CONN / MB:.0f} MB/s per connection (tests/throttle_proxy.py)")
            served = base / "served"
            srv = start_webdav(RCLONE, served, name="benchdav")
            try:
                with ThrottleProxy(srv.port, link_rate=LINK, conn_rate=CONN) as proxy:
                    lenv = {**env, **srv.env_via(proxy.port)}
                    olds, ours = pairs("link", tree, man, srv.remote + "bench", base, lenv, args.pairs)
            finally:
                srv.stop()
            util_ours = med(size / (n.wall * LINK) for n in ours)
            util_old = med(size / (o.wall * LINK) for o in olds)
            ratio = med([n.wall / o.wall for o, n in zip(olds, ours)])
            print(f"  over the link: older way {med(o.wall for o in olds):.1f} s (link utilisation {util_old:.2f}), ours "
                  f"{med(n.wall for n in ours):.1f} s (link utilisation {util_ours:.3f} {verdict(util_ours, 0.9, False)})")
            print(f"  wall ratio (median of pairs) {ratio:.2f}x {verdict(ratio, 0.3)}")
            wr = med(n.written for n in ours)
            src = source_bytes(tree, man)
            print(f"  bytes written to local disk by ours: {wr / MiB:.2f} MiB ({wr / src:.4f}x the data) "
                  f"{verdict(wr / src, 0.01)} (older way {med(o.written for o in olds) / src:.2f}x); "
                  f"read {med(n.read for n in ours) / src:.2f}x (older way {med(o.read for o in olds) / src:.2f}x)")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print("all targets met" if ok else "SOME TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
