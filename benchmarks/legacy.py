"""Benchmark the older scripts' archives (no sidecar): index, selective retrieval, verify.

Every remote is real rclone on 127.0.0.1. The link model is ``tests/throttle_proxy.py``
(20 MB/s for all connections together, 8 MB/s for each), in front of ``rclone serve
webdav``; it also counts the bytes that crossed it. Archives are made the older
scripts' way (GNU ``tar cf``, member paths from the version's root, no sidecar).

1. One legacy part of 31 BB.bin members: its headers walked (a) through the reader
   alone (one long-lived rclone, opened before timing) and (b) as the whole
   ``cs-sync index`` command; on a local folder, loopback WebDAV, WebDAV behind the
   link and loopback SFTP. Target: the part indexed in <= 1 s over loopback.
2. One realisation's BB.bin out of a 200 MB legacy BB set (4 parts of 5 x 10 MB),
   behind the link: the older scripts' way (copy the set's parts, ``tar -x`` the
   member) against ``cs-sync-download --rel 7`` without an index (headers walked on the
   fly) and ``cs-sync index`` + ``cs-sync-download --rel 7`` (the index step
   included). Pairs in alternating order, each run's output deleted first; medians.
   Target: < 3 s and < 10% of the set on the wire, index step included.
3. Indexing a legacy version (BB, IM, Source sets of 4 faults) behind the link: the
   share of its bytes read. Target: <= 1%.
4. ``cs-sync verify`` of that version without ``--read-data``: bytes on the wire, to
   compare with the smallest part. Target: no part data.
5. The 31-member part again, every request to the server delayed 100 ms (a round
   trip to cloud storage; ``ThrottleProxy(delay=...)``): headers one at a time
   against guessed headers asked ahead in parallel (the default).

Run: ``python benchmarks/legacy.py [--pairs 3] [--keep DIR]`` (about 2 minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "examples"), str(ROOT / "tests")]

from cs_sync.index.walk import walk_remote_part  # noqa: E402
from cs_sync.remote.rclone import Rclone, join  # noqa: E402

from archive_builder import assert_tree_matches, write_version  # noqa: E402
from cybershake_tree import FaultSpec, make_version  # noqa: E402
from servers import start_sftp, start_webdav  # noqa: E402
from throttle_proxy import ThrottleProxy  # noqa: E402

MB = 1_000_000
V = "v_legacy"
LINK, CONN = 20 * MB, 8 * MB


def _bin(name: str) -> str:
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else (shutil.which(name) or name)


RCLONE = _bin("rclone")
CS_SYNC = _bin("cs-sync")
DOWNLOAD = _bin("cs-sync-download")


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **env})
    took = time.monotonic() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return took, proc.stdout


@contextlib.contextmanager
def remotes(folder: Path, kinds: tuple[str, ...]):
    """name -> (remote root, env, proxy or None) for each kind: local, webdav, linked (WebDAV behind the link), sftp."""
    out: dict[str, tuple[str, dict[str, str], ThrottleProxy | None]] = {}
    with contextlib.ExitStack() as stack:
        if "local" in kinds:
            out["local"] = (str(folder), {}, None)
        if {"webdav", "linked"} & set(kinds):
            # no directory cache: the benchmark removes sidecars behind the server's back
            dav = start_webdav(RCLONE, folder, name="benchdav", extra=["--dir-cache-time", "0s"])
            stack.callback(dav.stop)
            if "webdav" in kinds:
                px = stack.enter_context(ThrottleProxy(dav.port))  # counts only
                out["webdav"] = (dav.remote, dav.env_via(px.port), px)
            if "linked" in kinds:
                px = stack.enter_context(ThrottleProxy(dav.port, link_rate=LINK, conn_rate=CONN))
                out["linked"] = (dav.remote, dav.env_via(px.port), px)
        if "sftp" in kinds:
            sftp = start_sftp(RCLONE, folder, name="benchsftp", extra=["--dir-cache-time", "0s"])
            stack.callback(sftp.stop)
            px = stack.enter_context(ThrottleProxy(sftp.port))
            out["sftp"] = (sftp.remote, sftp.env_via(px.port), px)
        yield out


def drop_sidecars(folder: Path) -> None:
    shutil.rmtree(folder / V / "_cs_sync", ignore_errors=True)


def med(xs: list[float]) -> float:
    return statistics.median(xs)


# -- 1. one part of 31 members -------------------------------------------------------------------


def one_part(work: Path, repeats: int) -> list[str]:
    tree = work / "p31_tree"
    make_version(tree, [FaultSpec("Part31", rels=30, median=True, bb_size=3 * MB)])
    folder = work / "p31"
    built = write_version(tree, folder, V, ["Part31"], sidecar=False, types=["BB"], member_paths=True)
    [name] = built.parts[("Part31", "BB")]
    size = (folder / V / "Part31" / name).stat().st_size
    lines = [f"1. one legacy part of 31 BB.bin members ({size / MB:.0f} MB), medians of {repeats}"]
    lines.append("   remote                 walk alone  requests  bytes read  on the wire   whole `cs-sync index`")
    with remotes(folder, ("local", "webdav", "linked", "sftp")) as rs:
        for kind, (remote, env, px) in rs.items():
            walks, reqs, got, whole = [], 0, 0, []
            with Rclone(RCLONE, env=env).range_reader(join(remote, V), small_reads=True) as r:
                r.warm_up()
                time.sleep(0.2)
                if px is not None:
                    px.reset()
                for _ in range(repeats):
                    before_req, before_bytes = r.requests, r.bytes
                    t0 = time.monotonic()
                    res = walk_remote_part(r, "Part31", name, size)
                    walks.append(time.monotonic() - t0)
                    assert len(res.walk.members) == 31
                    reqs, got = r.requests - before_req, r.bytes - before_bytes
                time.sleep(0.2)
                wire = f"{px.down / repeats / 1024:7.0f} KiB" if px is not None else "      (disk)"
            for _ in range(repeats):
                drop_sidecars(folder)
                took, out = run([CS_SYNC, "index", V, "--remote", remote], env)
                assert "sets: 1 indexed" in out, out
                whole.append(took)
            lines.append(f"   {kind:<22} {med(walks):6.3f} s  {reqs:8d}  {got / 1024:6.0f} KiB  {wire}   {med(whole):6.2f} s")
    return lines


# -- 2. one realisation out of a 200 MB legacy set, and 3./4. a legacy version -------------------


def baseline_one(remote: str, env: dict[str, str], dest: Path, member: str) -> float:
    """The older scripts' way: copy the set's parts, then extract the one member."""
    t0 = time.monotonic()
    run([RCLONE, "copy", join(remote, V, "Big"), str(dest), "--include", "/Big_BB*.tar", "--transfers", "4"], env)
    for part in sorted(dest.glob("*.tar")):
        proc = subprocess.run(["tar", "-xf", str(part), "-C", str(dest), member], capture_output=True)
        if proc.returncode == 0:
            break
    return time.monotonic() - t0


def selective(work: Path, pairs: int) -> list[str]:
    tree = work / "sel_tree"
    make_version(tree, [FaultSpec("Big", rels=19, median=True, bb_size=10 * MB),
                        FaultSpec("Small", rels=4, median=True, perturbed=True, bb_size=2 * MB)])
    folder = work / "sel"
    built = write_version(tree, folder, V, ["Big", "Small"], sidecar=False, max_part=51 * MB, member_paths=True)
    big = sum((folder / V / "Big" / p).stat().st_size for p in built.parts[("Big", "BB")])
    version_bytes = sum(p.stat().st_size for p in (folder / V).rglob("*") if p.is_file())
    member = "Runs/Big/Big_REL07/BB/Acc/BB.bin"
    lines = [f"2. one realisation's BB.bin (10 MB) out of a {big / MB:.0f} MB legacy BB set in "
             f"{len(built.parts[('Big', 'BB')])} parts, link {LINK / MB:.0f} MB/s, {CONN / MB:.0f} MB/s per connection; "
             f"{pairs} rounds, order alternating, medians"]
    res: dict[str, list[tuple[float, int]]] = {"older scripts' way": [], "no index (walk on the fly)": [],
                                               "index + download": [], "download (indexed)": []}
    with remotes(folder, ("linked",)) as rs:
        remote, env, px = rs["linked"]
        assert px is not None

        def measure(label: str, fn) -> None:
            out = work / "out"
            shutil.rmtree(out, ignore_errors=True)
            px.reset()
            took = fn(out)
            res[label].append((took, px.down))

        def ours_unindexed(out: Path) -> float:
            drop_sidecars(folder)
            took, text = run([DOWNLOAD, V, "--remote", remote, "--download_dir", str(out), "-t", "BB",
                              "--inc_fault", "Big", "--rel", "7"], env)
            assert "walked the TAR headers" in text, text
            assert_tree_matches(out, built, keys={("Big", "BB")}, members={member})
            return took

        def ours_index_then(out: Path) -> float:
            drop_sidecars(folder)
            t_idx, text = run([CS_SYNC, "index", V, "--remote", remote, "-t", "BB", "--inc_fault", "Big"], env)
            px_after_index = px.down
            t_dl, text = run([DOWNLOAD, V, "--remote", remote, "--download_dir", str(out), "-t", "BB",
                              "--inc_fault", "Big", "--rel", "7"], env)
            assert "walked the TAR headers" not in text, text
            assert_tree_matches(out, built, keys={("Big", "BB")}, members={member})
            res["download (indexed)"].append((t_dl, px.down - px_after_index))
            return t_idx + t_dl

        runs = [("older scripts' way", lambda out: baseline_one(remote, env, out, member)),
                ("no index (walk on the fly)", ours_unindexed), ("index + download", ours_index_then)]
        for i in range(pairs):
            for label, fn in (runs if i % 2 == 0 else runs[::-1]):
                measure(label, fn)
        lines.append("   way                          time     on the wire   share of the set")
        for label, xs in res.items():
            t = med([x[0] for x in xs])
            b = med([x[1] for x in xs])
            lines.append(f"   {label:<28} {t:5.2f} s  {b / MB:8.1f} MB   {100 * b / big:6.1f}%")
        # 3. index the whole legacy version behind the link; 4. verify it
        drop_sidecars(folder)
        px.reset()
        took, text = run([CS_SYNC, "index", V, "--remote", remote], env)
        read = px.down
        lines.append(f"3. `cs-sync index` of the legacy version ({version_bytes / MB:.0f} MB, "
                     f"{sum(len(p) for p in built.parts.values())} files) behind the link: {took:.2f} s, "
                     f"{read / 1024:.0f} KiB on the wire = {100 * read / version_bytes:.2f}% of its bytes")
        smallest = min(p.stat().st_size for p in (folder / V).rglob("*.tar"))
        px.reset()
        took, text = run([CS_SYNC, "verify", V, "--remote", remote], env)
        lines.append(f"4. `cs-sync verify` (no --read-data): {took:.2f} s, {px.down / 1024:.0f} KiB on the wire "
                     f"(listing and sidecars; the smallest part is {smallest / 1024:.0f} KiB, the version "
                     f"{version_bytes / MB:.0f} MB)")
    return lines


def delayed_part(work: Path) -> list[str]:
    from cs_sync.archive.tar_index import walk_part

    folder = work / "p31"
    [tar] = sorted((folder / V / "Part31").glob("*.tar"))
    size = tar.stat().st_size
    dav = start_webdav(RCLONE, folder, name="benchslow")
    proxy = ThrottleProxy(dav.port, delay=0.1)
    lines = ["5. the same part, every request to the server delayed 100 ms (WebDAV: two requests per range)"]
    try:
        with Rclone(RCLONE, env=dav.env_via(proxy.port)).range_reader(join(dav.remote, V), small_reads=True) as r:
            r.warm_up()
            path = f"Part31/{tar.name}"
            for label, submit in (("one header at a time", None), ("guessed headers ahead", r.submit)):
                before = r.requests
                t0 = time.monotonic()
                w = walk_part(lambda o, n: r.read(path, o, n), size, label=path, submit=submit)
                took = time.monotonic() - t0
                assert len(w.members) == 31
                lines.append(f"   {label:<24} {took:5.2f} s, {r.requests - before} requests")
    finally:
        proxy.close()
        dav.stop()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=3, help="rounds of the selective comparison (default 3)")
    ap.add_argument("--repeats", type=int, default=5, help="runs per remote of the 31-member part (default 5)")
    ap.add_argument("--keep", type=Path, default=None, help="work folder to keep (default: a temporary one)")
    args = ap.parse_args()
    work = args.keep or Path(tempfile.mkdtemp(prefix="cs_sync_bench_legacy_"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        print(f"load average before: {os.getloadavg()[0]:.1f} (2-core machine shared with other work)")
        for part in (lambda: one_part(work, args.repeats), lambda: selective(work, args.pairs),
                     lambda: delayed_part(work)):
            for line in part():
                print(line, flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
