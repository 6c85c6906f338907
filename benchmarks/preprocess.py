"""Benchmark: preprocess's scan against the older scripts' per-pattern pathlib glob.

Builds (once, cached in the temp folder) a 200-fault x 40-realisation version tree
of tiny files (~55k files), then times in the same run, several repetitions each:

* naive  - what the older scripts did: for each fault, type and pattern,
           ``where.glob(pattern)`` then ``.stat()`` of each hit;
* scan   - cs_sync.preprocess.scan: one trie per fault and folder, each directory listed at
           most once, only matched files stat'd, a bounded thread pool;
* full   - the whole ``preprocess()`` call (scan, stocktake, writing both outputs).

Prints files/s and the ratio scan/naive (target >= 5x). The page cache cannot be
dropped here, so every run is warm: this measures the syscalls and Python work
saved on a local disk, where a cached ``stat`` costs microseconds.

A second part repeats naive vs scan on a smaller tree with every directory listing
and ``stat`` delayed by ``--latency`` (default 0.2 ms, a modest Lustre/GPFS
metadata round trip; the GIL is released while waiting, as in a real call). That
is the case the scan's fewer calls and thread pool are built for.

Usage: python benchmarks/preprocess.py [--faults 200] [--rels 40] [--repeat 3] [--tree DIR]
                                       [--latency 0.0002] [--latency-faults 20]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "examples"))
sys.path.insert(0, str(ROOT))

from cs_sync.inputs.config import load_config  # noqa: E402
from cs_sync.inputs.faultlist import read_fault_list  # noqa: E402
from cs_sync.preprocess.engine import PreprocessSettings, _requests, preprocess, select_types  # noqa: E402
from cs_sync.preprocess.scan import scan  # noqa: E402

from cybershake_tree import FaultSpec, make_version  # noqa: E402

TREE_FORMAT = 1  # bump when the tree's shape changes, so a stale cache is rebuilt


def fault_specs(n_faults: int, n_rels: int) -> list[FaultSpec]:
    return [
        FaultSpec(f"Fault{i:03d}", rels=n_rels, median=i % 5 != 0, perturbed=i % 2 == 0, bb_size=16)
        for i in range(n_faults)
    ]


def build_tree(base: Path, n_faults: int, n_rels: int) -> tuple[Path, Path]:
    root = base / f"v{TREE_FORMAT}_{n_faults}x{n_rels}" / "v22p12"
    marker = root.parent / "complete"
    lst = root / "list.txt"
    if marker.exists():
        return root, lst
    shutil.rmtree(root.parent, ignore_errors=True)
    t0 = time.perf_counter()
    make_version(root, fault_specs(n_faults, n_rels))
    marker.write_text("ok\n")
    print(f"built {root} in {time.perf_counter() - t0:.1f} s")
    return root, lst


def naive_scan(root: Path, lst: Path) -> int:
    """The older scripts' way: glob the tree once per fault, type and pattern; stat each hit."""
    config = load_config(None)
    n = 0
    for entry in read_fault_list(lst):
        for dt in config.scanned_types():
            where = root / dt.where_for(entry.name)
            for p in dt.patterns:
                pat = p.for_fault(entry.name)
                if p.has_wildcard:
                    hits = list(where.glob(pat))
                else:
                    hits = [where / pat] if (where / pat).exists() else []
                for h in hits:
                    _ = h.stat().st_size
                    # '_' folders are not data (the tree has one where a '*' matches): same count as ours
                    n += not any(part.startswith("_") for part in h.relative_to(where).parts)
    return n


def our_scan(root: Path, lst: Path, threads: int) -> int:
    config, _, scan_types = select_types(load_config(None), ())
    entries = read_fault_list(lst)
    results, _ = scan(_requests(os.path.abspath(root), entries, config, scan_types), threads=threads)
    return sum(len(r.found) for r in results)


def full_preprocess(root: Path, lst: Path, out: Path, threads: int) -> int:
    res = preprocess(
        PreprocessSettings(cs_root=root, fault_list=lst, out_file=out / "files_to_sync.yaml",
                           stocktake_csv=out / "stocktake.csv", threads=threads)
    )
    return sum(n for t, (n, _) in res.totals().items() if res.config.types[t].sample_of is None)


class _SlowEntry:
    """A DirEntry whose stat() pays the latency (is_dir() comes with the listing: free)."""

    __slots__ = ("_e", "name", "path", "_os")

    def __init__(self, entry, slow_os: _SlowOs) -> None:
        self._e, self.name, self.path, self._os = entry, entry.name, entry.path, slow_os

    def is_dir(self, *, follow_symlinks: bool = True) -> bool:
        return self._e.is_dir(follow_symlinks=follow_symlinks)

    def is_file(self, *, follow_symlinks: bool = True) -> bool:
        return self._e.is_file(follow_symlinks=follow_symlinks)

    def is_symlink(self) -> bool:
        return self._e.is_symlink()

    def stat(self, *, follow_symlinks: bool = True):
        self._os.calls += 1
        time.sleep(self._os.latency)
        return self._e.stat(follow_symlinks=follow_symlinks)


class _SlowOs:
    """Stands in for the ``os`` module: listings and stats each wait ``latency`` first."""

    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.calls = 0

    def __getattr__(self, name):
        return getattr(os, name)

    def stat(self, path, *args, **kwargs):
        self.calls += 1
        time.sleep(self.latency)
        return os.stat(path, *args, **kwargs)

    def scandir(self, path="."):
        self.calls += 1
        time.sleep(self.latency)
        return _SlowScandir(os.scandir(path), self)


class _SlowScandir:
    def __init__(self, it, slow_os: _SlowOs) -> None:
        self._it, self._os = it, slow_os

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._it.close()

    def close(self) -> None:
        self._it.close()

    def __iter__(self):
        return (_SlowEntry(e, self._os) for e in self._it)


@contextlib.contextmanager
def slow_metadata(latency: float):
    """Make pathlib (the naive scan) and cs_sync.preprocess.scan pay ``latency`` per listing/stat."""
    import cs_sync.preprocess.scan as scan_mod

    slow = _SlowOs(latency)
    saved = (pathlib.os, scan_mod.os)
    pathlib.os = scan_mod.os = slow
    try:
        yield slow
    finally:
        pathlib.os, scan_mod.os = saved


def timed(fn, *args) -> tuple[float, int]:
    t0 = time.perf_counter()
    n = fn(*args)
    return time.perf_counter() - t0, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faults", type=int, default=200)
    ap.add_argument("--rels", type=int, default=40)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--threads", type=int, default=16)
    ap.add_argument("--tree", type=Path, default=Path(tempfile.gettempdir()) / "cs_sync_bench_preprocess")
    ap.add_argument("--latency", type=float, default=0.0002, help="seconds per listing/stat in part 2 (0: skip)")
    ap.add_argument("--latency-faults", type=int, default=20)
    ap.add_argument("--pairs", type=int, default=5, help="alternating pairs for the whole-command comparison")
    args = ap.parse_args()

    root, lst = build_tree(args.tree, args.faults, args.rels)
    nfiles = sum(len(fs) for _, _, fs in os.walk(root))
    print(f"tree: {root} ({args.faults} faults x {args.rels} realisations, {nfiles} files)")
    print("all runs warm (the page cache cannot be dropped here): this counts syscalls and Python work saved")
    out = Path(tempfile.mkdtemp(prefix="cs_sync_bench_out_"))
    runs: dict[str, list[float]] = {"naive": [], "scan": [], "scan-1thread": [], "full": []}
    found: dict[str, int] = {}
    try:
        for _ in range(args.repeat):  # interleaved, so drift hits all equally
            for name, fn, fargs in (
                ("naive", naive_scan, (root, lst)),
                ("scan", our_scan, (root, lst, args.threads)),
                ("scan-1thread", our_scan, (root, lst, 1)),
                ("full", full_preprocess, (root, lst, out, args.threads)),
            ):
                secs, n = timed(fn, *fargs)
                runs[name].append(secs)
                found[name] = n
    finally:
        shutil.rmtree(out, ignore_errors=True)
    if len(set(found.values())) != 1:
        raise SystemExit(f"the scans disagree on the files found: {found}")
    n = found["naive"]
    print(f"files matched by the patterns: {n}; {args.repeat} repetitions, best and median shown")
    best = {k: min(v) for k, v in runs.items()}
    for name, times in runs.items():
        label = f"{name} ({args.threads} threads)" if name in ("scan", "full") else name
        print(f"  {label:<22} best {best[name]:6.2f} s  {n / best[name]:>9,.0f} files/s   "
              f"median {statistics.median(times):6.2f} s")
    print(f"ratio scan/naive: {best['naive'] / best['scan']:.1f}x  (target >= 5x); "
          f"1 thread: {best['naive'] / best['scan-1thread']:.1f}x; "
          f"whole preprocess vs naive scan alone: {best['naive'] / best['full']:.1f}x")
    whole_command(root, lst, args.pairs)
    if args.latency > 0:
        latency_part(args)


def whole_command(root: Path, lst: Path, pairs: int) -> None:
    """The issue's measure: the whole cs-sync-preprocess process against the older script's,
    in alternating order, median of the pair ratios (target <= 0.2x)."""
    import subprocess

    py = sys.executable
    ours = [str(Path(py).with_name("cs-sync-preprocess")), str(root), str(lst)]
    print()
    print(f"whole command, {pairs} alternating pairs (process start to exit, outputs written):")
    for label, extra in (("older script as written (yaml.dump)", []), ("older script, libyaml dumper", ["--c-dumper"])):
        older = [py, str(ROOT / "benchmarks" / "older_preprocess.py"), str(root), str(lst)]
        ratios, t_ours, t_old = [], [], []
        with tempfile.TemporaryDirectory() as d:
            older += [d + "/old", *extra]
            for i in range(pairs):
                order = [("ours", ours), ("older", older)] if i % 2 == 0 else [("older", older), ("ours", ours)]
                got = {}
                for name, cmd in order:
                    t0 = time.perf_counter()
                    subprocess.run(cmd, cwd=d, check=name == "older", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                    got[name] = time.perf_counter() - t0
                t_ours.append(got["ours"])
                t_old.append(got["older"])
                ratios.append(got["ours"] / got["older"])
        print(f"  vs {label:<38} ours {statistics.median(t_ours):5.2f} s, older {statistics.median(t_old):5.2f} s, "
              f"ratio {statistics.median(ratios):.2f} (pairs {min(ratios):.2f}-{max(ratios):.2f}; target <= 0.2)")


def latency_part(args) -> None:
    root, lst = build_tree(args.tree, args.latency_faults, args.rels)
    print()
    print(f"with {args.latency * 1e3:.2f} ms per listing and stat (simulated network file system), "
          f"{args.latency_faults} faults x {args.rels} realisations:")
    rows = {}
    for name, fn, fargs in (
        ("naive", naive_scan, (root, lst)),
        ("scan", our_scan, (root, lst, args.threads)),
        ("scan-1thread", our_scan, (root, lst, 1)),
    ):
        with slow_metadata(args.latency) as slow:
            secs, n = timed(fn, *fargs)
        rows[name] = (secs, n, slow.calls)
    if len({n for _, n, _ in rows.values()}) != 1:
        raise SystemExit(f"the scans disagree on the files found: {rows}")
    for name, (secs, n, calls) in rows.items():
        label = f"{name} ({args.threads} threads)" if name == "scan" else name
        print(f"  {label:<22} {secs:6.2f} s  {n / secs:>9,.0f} files/s   {calls:>7} listings+stats")
    print(f"ratio scan/naive: {rows['naive'][0] / rows['scan'][0]:.1f}x; "
          f"1 thread: {rows['naive'][0] / rows['scan-1thread'][0]:.1f}x")


if __name__ == "__main__":
    main()
