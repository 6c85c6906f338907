"""Benchmark: peak local disk of a ``--cleanup`` download, streamed against the way before, in one run.

Streamed (now): each part of a set with a sidecar is extracted as it arrives from
``rclone cat``; no TAR is written. The way before (``stream_cleanup=False``): one
rclone copy brings every part to the download folder, each is extracted and then
deleted. Both from the same remote (a local folder, or with ``--link`` loopback WebDAV behind
tests/throttle_proxy.py at 40 MB/s, 8 MB/s per connection), in alternating order,
each from an empty download folder; the folder's size is sampled every 5 ms.

Target: peak disk <= the extracted data plus one part (not the data plus every part).

    python benchmarks/download_cleanup.py [--scale 1.0] [--pairs 2] [--link]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "tests")]

from disk_watch import DiskWatch  # noqa: E402

from cs_sync.download.engine import DownloadSettings, download  # noqa: E402
from cs_sync.remote.rclone import Rclone  # noqa: E402

from archive_builder import assert_tree_matches, write_version  # noqa: E402
from cybershake_tree import FaultSpec, make_version  # noqa: E402
from servers import start_webdav  # noqa: E402
from throttle_proxy import ThrottleProxy  # noqa: E402

MB = 1_000_000
V = "v_bench"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scale", type=float, default=1.0, help="version size: about 560 MB x scale")
    ap.add_argument("--pairs", type=int, default=2)
    ap.add_argument("--link", action="store_true", help="through a 40 MB/s link, 8 MB/s per connection")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cs_sync_bench_cleanup_"))
    try:
        faults = [FaultSpec(f"Fault{i}", rels=5, median=True, bb_size=int(20 * MB * args.scale)) for i in range(4)]
        make_version(work / "tree", faults)
        built = write_version(work / "tree", work / "remote", V, [f.name for f in faults], max_part=int(50 * MB * args.scale))
        parts = [p for p in (work / "remote" / V).rglob("*") if p.is_file() and "_cs_sync" not in p.parts]
        biggest, total = max(p.stat().st_size for p in parts), sum(p.stat().st_size for p in parts)
        print(f"version: {len(faults)} faults, {len(parts)} parts, {total / MB:.0f} MB (largest part {biggest / MB:.0f} MB); "
              f"machine load {os.getloadavg()[0]:.1f}")
        remote = str(work / "remote")
        srv = proxy = None
        if args.link:
            srv = start_webdav(shutil.which("rclone") or "rclone", work / "remote", name="benchdav")
            proxy = ThrottleProxy(srv.port, link_rate=40 * MB, conn_rate=8 * MB)
            os.environ.update(srv.env_via(proxy.port))
            remote = srv.remote
        peaks: dict[str, list[float]] = {"streamed": [], "before": []}
        walls: dict[str, list[float]] = {"streamed": [], "before": []}
        data = 0
        for i in range(args.pairs):
            for how in (("streamed", "before") if i % 2 == 0 else ("before", "streamed")):
                ddir = work / "dl"
                shutil.rmtree(ddir, ignore_errors=True)
                s = DownloadSettings(version=V, remote=remote, download_dir=ddir, cleanup=True,
                                     stream_cleanup=how == "streamed")
                with DiskWatch(ddir) as peak:
                    t0 = time.perf_counter()
                    res = download(s, Rclone())
                    wall = time.perf_counter() - t0
                assert res.fatal is None and res.parts_streamed == (len(parts) if how == "streamed" else 0), res
                assert_tree_matches(ddir, built)
                data = sum(p.stat().st_size for p in ddir.rglob("*") if p.is_file())
                peaks[how].append(peak.peak)
                walls[how].append(wall)
                print(f"  pair {i + 1} {how:>8}: {wall:5.1f} s, peak disk {peak.peak / MB:6.0f} MB "
                      f"(extracted data {data / MB:.0f} MB)")
        ok = True
        for how in ("streamed", "before"):
            p = statistics.median(peaks[how])
            over = p - data
            print(f"{how:>8}: peak disk {p / MB:.0f} MB = data + {over / MB:.0f} MB "
                  f"({over / biggest:.2f} parts); wall {statistics.median(walls[how]):.1f} s")
        if proxy is not None:
            proxy.close()
            srv.stop()
        streamed_over = statistics.median(peaks["streamed"]) - data
        ok = streamed_over <= biggest
        print(f"streamed: data + {streamed_over / MB:.0f} MB {'PASS' if ok else 'MISS'} (target <= data + one part)")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
