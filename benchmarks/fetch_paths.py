"""Whole-part downloads: our byte-range machinery against rclone's own multi-thread copy.

Both ways over a modelled link: ``rclone serve webdav`` and ``rclone serve sftp`` of
a local folder on 127.0.0.1, behind ``tests/throttle_proxy.py`` (40 MB/s for all
connections together, 8 MB/s for each one, as a Dropbox stream). The version on
it is made by this tool: ``examples/cybershake_tree.py``, ``cs-sync-preprocess``,
``cs-sync-upload --max-size 80M`` to a local folder (BB parts of 24-72 MB).

The two ways (each a whole ``cs-sync-download`` of every set: fetched, verified by
the sidecar's SHA-256, extracted):
- ranges: ``cs-sync-download`` as it is (``--streams 4``): one batch ``rclone copy``
  that, when its first stats show one connection is slow, is stopped and the rest
  fetched as ``rclone cat --offset --count`` byte ranges written with pwrite.
- rclone-mt: ``cs-sync-download --streams 1`` (only the batch ``rclone copy``, no
  ranges) with ``RCLONE_MULTI_THREAD_STREAMS=4``, ``RCLONE_MULTI_THREAD_CUTOFF``
  and ``RCLONE_MULTI_THREAD_CHUNK_SIZE`` in its environment, so rclone itself
  splits each part above the cutoff into ranged streams.
Pairs run in alternating order, each from an empty download folder. For
information, once per remote: the plain ``rclone copy`` with the same settings alone
(the transfer without our verify/extract), and ``cs-sync-download --no_download``
on what it fetched (our verify + extract without the transfer).

Printed: every run, medians, spread (min-max), link utilisation = data bytes /
(wall x link rate), the bytes that crossed the proxy (what a ranged read wastes
shows there), and the ratio rclone-mt / ranges (median of the pair ratios).

Run: ``python benchmarks/fetch_paths.py [--pairs 3] [--chunk 16Mi] [--remotes webdav sftp]
[--mt-env KEY=VALUE ...] [--keep DIR]`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "tests")]

from cybershake_tree import FaultSpec, make_version  # noqa: E402
from servers import start_sftp, start_webdav  # noqa: E402
from throttle_proxy import ThrottleProxy  # noqa: E402

MB = 1_000_000
V = "v_fetch"
LINK = 40 * MB
CONN = 8 * MB


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


RCLONE = _bin("rclone")


def run(cmd: list[str], env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc.stdout


def build(work: Path) -> tuple[Path, int]:
    """The version, uploaded by this tool to the local folder ``work/remote``: (remote root, data bytes)."""
    tree = work / V
    # median + 7 realisations per fault: BB sets of 24, 64 and 96 MB -> parts 24, 64, 72 + 24 MB
    make_version(tree, [FaultSpec("Fault0", rels=7, bb_size=3 * MB), FaultSpec("Fault1", rels=7, bb_size=8 * MB),
                        FaultSpec("Fault2", rels=7, bb_size=12 * MB)])
    run([_bin("cs-sync-preprocess"), str(tree), str(tree / "list.txt"), "--out_file", str(work / "files_to_sync.yaml"),
         "--stocktake_csv", str(work / "stocktake.csv")])
    remote = work / "remote"
    run([_bin("cs-sync-upload"), str(tree), str(work / "files_to_sync.yaml"), "--remote", str(remote),
         "--tmp_dir", str(work / "tmp"), "--max-size", "80M"])
    shutil.rmtree(tree)  # the page cache is for the served copy
    data = [p for p in (remote / V).glob("*/*") if p.is_file() and not p.parent.name.startswith("_")]
    sizes = sorted(p.stat().st_size for p in data if p.suffix == ".tar" and p.stat().st_size > MB)
    print(f"version: {len(data)} data files, {sum(p.stat().st_size for p in data) / MB:.0f} MB; "
          f"parts above 1 MB: {', '.join(f'{s / MB:.0f}' for s in sizes)} MB")
    return remote, sum(p.stat().st_size for p in data)


def digest(folder: Path) -> dict[str, tuple[int, str]]:
    """{relative path: (size, sha256)} of the extracted data (the TARs and logs left out)."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix not in (".tar", ".log") and len(p.relative_to(folder).parts) > 2:
            h = hashlib.sha256()
            with open(p, "rb") as fh:
                while block := fh.read(1 << 20):
                    h.update(block)
            out[str(p.relative_to(folder))] = (p.stat().st_size, h.hexdigest())
    return out


class Run:
    """One timed command through the proxy: wall seconds, bytes down the wire, CPU of the command's processes."""

    def __init__(self, proxy: ThrottleProxy, cmd: list[str], env: dict[str, str]) -> None:
        proxy.reset()
        c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.monotonic()
        self.out = run(cmd, env)
        self.wall = time.monotonic() - t0
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (c1.ru_utime - c0.ru_utime) + (c1.ru_stime - c0.ru_stime)
        self.wire = proxy.counts()[0]


def mt_env(streams: int, cutoff: str, chunk: str) -> dict[str, str]:
    return {"RCLONE_MULTI_THREAD_STREAMS": str(streams), "RCLONE_MULTI_THREAD_CUTOFF": cutoff,
            "RCLONE_MULTI_THREAD_CHUNK_SIZE": chunk}


def bench_remote(kind: str, work: Path, served: Path, args) -> dict:
    srv = (start_webdav if kind == "webdav" else start_sftp)(RCLONE, served, name=f"bench{kind}")
    proxy = ThrottleProxy(srv.port, link_rate=LINK, conn_rate=CONN)
    env = srv.env_via(proxy.port)
    remote = srv.remote
    dl = work / f"dl_{kind}"
    more = dict(kv.split("=", 1) for kv in args.mt_env)  # e.g. a backend's tuning, for rclone-mt only
    mt = {**mt_env(args.streams, args.cutoff, args.chunk), **more}
    cmds = {
        "ranges": ([_bin("cs-sync-download"), V, "--remote", remote, "--download_dir", str(dl),
                    "--streams", str(args.streams)], env),
        "rclone-mt": ([_bin("cs-sync-download"), V, "--remote", remote, "--download_dir", str(dl), "--streams", "1"],
                      {**env, **mt}),
    }
    try:
        # untimed: bytecode, the server's host keys, page cache; its output is the reference
        run(cmds["ranges"][0], cmds["ranges"][1])
        ref = digest(dl)
        shutil.rmtree(dl)
        times: dict[str, list[Run]] = {"ranges": [], "rclone-mt": []}
        for i in range(args.pairs):
            for way in (("ranges", "rclone-mt") if i % 2 == 0 else ("rclone-mt", "ranges")):
                r = Run(proxy, *cmds[way])
                got = digest(dl)
                if got != ref:
                    raise SystemExit(f"{kind} {way}: the extracted files differ from the reference run's")
                r.plan = next((ln.strip() for ln in r.out.splitlines() if ln.strip().startswith("fetch:")), "")
                times[way].append(r)
                shutil.rmtree(dl)
        # for information: the transfer alone, then our verify + extract alone
        fetch = Run(proxy, [RCLONE, "copy", f"{remote}{V}", str(dl), "--exclude", "/_*/**", "--include", "/*/*",
                            "--transfers", "4", "--no-check-dest", "--ignore-checksum",
                            "--multi-thread-streams", str(args.streams), "--multi-thread-cutoff", args.cutoff,
                            "--multi-thread-chunk-size", args.chunk], {**env, **more})
        extract = Run(proxy, [_bin("cs-sync-download"), V, "--remote", remote, "--download_dir", str(dl),
                              "--no_download"], env)
        if digest(dl) != ref:
            raise SystemExit(f"{kind}: rclone copy + --no_download gave other files than the reference run")
        shutil.rmtree(dl)
    finally:
        proxy.close()
        srv.stop()
    return {"times": times, "fetch": fetch, "extract": extract, "mt": mt}


def report(kind: str, res: dict, data_bytes: int) -> float:
    times = res["times"]
    print(f"\n{kind} ({LINK / MB:.0f} MB/s link, {CONN / MB:.0f} MB/s per connection, "
          f"{data_bytes / MB:.0f} MB of data):")
    print(f"  {'way':<10} {'median s':>8} {'spread s':>12} {'util':>5} {'wire MB':>8} {'cpu s':>6}  every run")
    for way, runs in times.items():
        walls = [r.wall for r in runs]
        med = statistics.median(walls)
        print(f"  {way:<10} {med:>8.2f} {min(walls):>5.2f}-{max(walls):<5.2f} {data_bytes / (med * LINK):>5.2f} "
              f"{statistics.median(r.wire for r in runs) / MB:>8.0f} {statistics.median(r.cpu for r in runs):>6.1f}  "
              f"{' '.join(f'{w:.2f}' for w in walls)}")
    print(f"  rclone-mt: {' '.join(f'{k}={v}' for k, v in res['mt'].items())}")
    ratios = [b.wall / a.wall for a, b in zip(times["ranges"], times["rclone-mt"])]
    ratio = statistics.median(ratios)
    print(f"  ratio rclone-mt / ranges: {ratio:.2f} (pairs: {' '.join(f'{r:.2f}' for r in ratios)}): "
          + (f"rclone-mt faster by {1 - ratio:.0%}" if ratio < 1 else f"ranges faster by {1 - 1 / ratio:.0%}"))
    print(f"  ranges' plan: {times['ranges'][-1].plan}")
    f, x = res["fetch"], res["extract"]
    print(f"  info: plain rclone copy (mt flags) {f.wall:.2f} s, util {data_bytes / (f.wall * LINK):.2f}, "
          f"wire {f.wire / MB:.0f} MB; cs-sync-download --no_download on it {x.wall:.2f} s; "
          f"sum {f.wall + x.wall:.2f} s")
    return ratio


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3, help="pairs of runs per remote (default 3)")
    ap.add_argument("--streams", type=int, default=4, help="streams per part, both ways (default 4, our default)")
    ap.add_argument("--cutoff", default="16Mi", help="rclone --multi-thread-cutoff (default 16Mi: what we split)")
    ap.add_argument("--chunk", default="16Mi", help="rclone --multi-thread-chunk-size (default 16Mi)")
    ap.add_argument("--mt-env", nargs="+", default=[], metavar="KEY=VALUE",
                    help="more environment for the rclone-mt way only, e.g. RCLONE_SFTP_CONCURRENCY=8")
    ap.add_argument("--remotes", nargs="+", default=["webdav", "sftp"], choices=["webdav", "sftp"])
    ap.add_argument("--keep", type=Path, default=None, help="work in this folder and keep it")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cs_sync_bench_fetch_"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for k in [k for k in os.environ if k.startswith("RCLONE_MULTI_THREAD_")]:
        del os.environ[k]  # "ranges" runs with rclone's defaults
    t0 = time.monotonic()
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())} ({os.cpu_count()} cores)")
    try:
        remote, data_bytes = build(work)
        for kind in args.remotes:
            report(kind, bench_remote(kind, work, remote, args), data_bytes)
        print(f"\nbenchmark wall: {time.monotonic() - t0:.0f} s; load average at the end: "
              f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
