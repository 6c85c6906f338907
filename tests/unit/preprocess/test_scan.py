"""cs_sync.preprocess.scan: pattern matching (pathlib glob semantics, '_' folders never entered),
one listing per folder, stats only of matched files, same answer on any thread count."""

from __future__ import annotations

import fnmatch
import os
import random
from pathlib import Path

import pytest

from cs_sync.preprocess import scan as scan_mod
from cs_sync.preprocess.scan import ScanRequest, scan, segment_matcher


def write_tree(root: Path, files: list[str]) -> Path:
    """A tree from a literal list of paths ('x/' = an empty folder)."""
    for rel in files:
        p = root / rel
        if rel.endswith("/"):
            p.mkdir(parents=True, exist_ok=True)
            continue
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(b"x" * (len(rel) % 7))
    return root


def found(root: Path, patterns: dict[str, str], threads: int = 1, adaptive: bool = True) -> dict[str, list[str]]:
    res, _ = scan([ScanRequest(str(root), tuple(patterns.items()))], threads=threads, adaptive=adaptive)
    out: dict[str, list[str]] = {k: [] for k in patterns}
    for f in res[0].found:
        out[f.key].append(f.relpath)
    return {k: sorted(v) for k, v in out.items()}


def pathlib_glob(root: Path, pattern: str) -> list[str]:
    """What the older scripts got, minus folders and anything under a '_' folder."""
    out = []
    for p in root.glob(pattern):
        rel = p.relative_to(root).as_posix()
        if p.is_dir() or any(part.startswith("_") for part in rel.split("/")[:-1]):
            continue
        out.append(rel)
    return sorted(out)


SEGMENTS = ["*", "F*", "*.csv", "F*.csv", "F_REL*.pertb.csv", "?", "F?", "[ab]*", "[!a]*", "*_*", "a*b*c",
            "F[[]1]*", "BB.bin", ".*", "*.", "[a-c]?x"]
NAMES = ["F", "F.csv", "F_REL01.csv", "F_REL01.pertb.csv", "a", "ab", "abc", "axbxc", "b.txt", ".hidden", "F[1]x",
         "F1x", "BB.bin", "bb.bin", "x.", "", "cax", "_F.csv", "F_", "Fx.csv.gz"]


@pytest.mark.parametrize("segment", SEGMENTS)
def test_segment_matcher_is_fnmatchcase(segment):
    m = segment_matcher(segment)
    for name in NAMES:
        assert m(name) == fnmatch.fnmatchcase(name, segment), (segment, name)


def test_segment_matcher_random_names():
    rng = random.Random(7)
    alphabet = "Fab._*?[]x1"
    for _ in range(300):
        seg = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6)))
        m = segment_matcher(seg)
        for _ in range(20):
            name = "".join(rng.choice("Fab._x1[]") for _ in range(rng.randint(0, 7)))
            assert m(name) == fnmatch.fnmatchcase(name, seg), (seg, name)


TREE = [
    "Runs/F/F/BB/Acc/BB.bin",
    "Runs/F/F_REL01/BB/Acc/BB.bin",
    "Runs/F/F_REL01/IM_calc/F_REL01.csv",
    "Runs/F/F_REL01/IM_calc/G_REL01.csv",
    "Runs/F/F_REL02/BB/Acc/BB.bin",
    "Runs/F/F_REL02/BB/Acc/BB.bin.bak",
    "Runs/F/F_REL02/IM_calc/F_REL02.csv",
    "Runs/F/F_REL02/LF/OutBin/F_REL02_xyts.e3d",
    "Runs/F/_trash/BB/Acc/BB.bin",  # '*' would match '_trash': never entered
    "Runs/F/F_REL03/_old/BB.bin",
    "Runs/F/.hidden/BB/Acc/BB.bin",  # pathlib's '*' matches dot-names: so does ours
    "Runs/F/F_REL04/BB/Acc/BB.bin/",  # a folder where a file is expected: not a file
    "Runs/F/notes.txt",
    "Runs/F/F_REL05/BB",  # a file where a folder is expected
    "Data/VMs/F/vm_params.yaml",
    "Data/VMs/F/F_REL01.pertb.csv",
    "Data/VMs/F/_bak/F_REL09.pertb.csv",
]


@pytest.mark.parametrize(
    "patterns,expected",
    [
        ({"bb": "Runs/F/*/BB/Acc/BB.bin"},
         {"bb": ["Runs/F/.hidden/BB/Acc/BB.bin", "Runs/F/F/BB/Acc/BB.bin", "Runs/F/F_REL01/BB/Acc/BB.bin",
                 "Runs/F/F_REL02/BB/Acc/BB.bin"]}),
        ({"im": "Runs/F/*/IM_calc/F*.csv"},
         {"im": ["Runs/F/F_REL01/IM_calc/F_REL01.csv", "Runs/F/F_REL02/IM_calc/F_REL02.csv"]}),
        ({"one": "Runs/F/*"}, {"one": ["Runs/F/notes.txt"]}),  # '*' does not cross '/'; folders are not files
        ({"lit": "Data/VMs/F/vm_params.yaml", "gone": "Data/VMs/F/nzvm.cfg"},
         {"lit": ["Data/VMs/F/vm_params.yaml"], "gone": []}),
        ({"pertb": "Data/VMs/F/F_REL*.pertb.csv"}, {"pertb": ["Data/VMs/F/F_REL01.pertb.csv"]}),
        ({"deep": "**/BB.bin"},
         {"deep": ["Runs/F/.hidden/BB/Acc/BB.bin", "Runs/F/F/BB/Acc/BB.bin", "Runs/F/F_REL01/BB/Acc/BB.bin",
                   "Runs/F/F_REL02/BB/Acc/BB.bin"]}),
        ({"q": "Runs/F/F_REL0?/BB/Acc/BB.bin*"},
         {"q": ["Runs/F/F_REL01/BB/Acc/BB.bin", "Runs/F/F_REL02/BB/Acc/BB.bin", "Runs/F/F_REL02/BB/Acc/BB.bin.bak"]}),
        ({"cls": "Runs/F/F_REL0[2-9]/*/*"}, {"cls": ["Runs/F/F_REL02/IM_calc/F_REL02.csv"]}),
        # literal and wildcard reaching the same folder: both keys, one listing
        ({"a": "Runs/F/F_REL01/BB/Acc/BB.bin", "b": "Runs/F/*/BB/Acc/BB.bin"},
         {"a": ["Runs/F/F_REL01/BB/Acc/BB.bin"],
          "b": ["Runs/F/.hidden/BB/Acc/BB.bin", "Runs/F/F/BB/Acc/BB.bin", "Runs/F/F_REL01/BB/Acc/BB.bin",
                "Runs/F/F_REL02/BB/Acc/BB.bin"]}),
        ({"none": "Nope/*/x"}, {"none": []}),
    ],
)
def test_matches_like_pathlib_glob(tmp_path, patterns, expected):
    root = write_tree(tmp_path / "v", TREE)
    assert found(root, patterns) == expected
    for key, pattern in patterns.items():
        assert expected[key] == pathlib_glob(root, pattern), key


def test_underscore_folders_are_never_entered(tmp_path):
    root = write_tree(tmp_path / "v", ["a/_x/f.csv", "a/y/f.csv", "a/y/_z/f.csv", "_top/f.csv", "a/_f.csv"])
    got = found(root, {"star": "a/*/f.csv", "deep": "**/f.csv", "file": "a/*.csv"})
    assert got == {"star": ["a/y/f.csv"], "deep": ["a/y/f.csv"], "file": ["a/_f.csv"]}  # files named '_' are data


def test_fault_name_with_glob_characters_is_escaped_by_caller(tmp_path):
    import glob

    root = write_tree(tmp_path / "v", ["F[1]/F[1]_REL01.csv", "F1/F1_REL01.csv"])
    name = glob.escape("F[1]")
    assert found(root, {"k": f"{name}/{name}*.csv"}) == {"k": ["F[1]/F[1]_REL01.csv"]}


def test_sizes_and_mtimes_are_the_files(tmp_path):
    root = write_tree(tmp_path / "v", ["d/a.bin", "d/bb.bin", "lit.txt"])
    res, stats = scan([ScanRequest(str(root), (("k", "d/*.bin"), ("l", "lit.txt")))])
    for f in res[0].found:
        st = os.stat(root / f.relpath)
        assert (f.size, f.mtime_ns) == (st.st_size, st.st_mtime_ns)
    assert stats.stats == 3 and stats.listed == 1


def _spy(monkeypatch):
    calls: dict[str, list[str]] = {"scandir": [], "stat": []}
    real_scandir, real_stat = os.scandir, os.stat

    class SpyOs:
        def __getattr__(self, name):
            return getattr(os, name)

        def scandir(self, path):
            calls["scandir"].append(path)
            return real_scandir(path)

        def stat(self, path, *a, **kw):
            calls["stat"].append(path)
            return real_stat(path, *a, **kw)

    monkeypatch.setattr(scan_mod, "os", SpyOs())
    return calls


def test_each_folder_listed_once_and_only_matched_files_stated(tmp_path, monkeypatch):
    """BB and IM share Runs/F: one walk lists Runs/F once and each IM_calc once; BB.bin
    is reached by name (no listing of the event, BB or Acc folders)."""
    files = []
    for ev in ["F", "F_REL01", "F_REL02", "F_REL03"]:
        files += [f"{ev}/BB/Acc/BB.bin", f"{ev}/IM_calc/{ev}.csv", f"{ev}/LF/OutBin/x.e3d", f"{ev}/LF/y.e3d"]
    root = write_tree(tmp_path / "F", files)
    calls = _spy(monkeypatch)
    res, stats = scan([ScanRequest(str(root), (("BB", "*/BB/Acc/BB.bin"), ("IM", "*/IM_calc/F*.csv")))])
    listed = sorted(Path(p).relative_to(root).as_posix() for p in calls["scandir"])
    assert listed == [".", "F/IM_calc", "F_REL01/IM_calc", "F_REL02/IM_calc", "F_REL03/IM_calc"]
    assert len(calls["scandir"]) == len(set(calls["scandir"]))
    assert stats.listed == 5
    assert stats.stats == 8 == len(res[0].found)  # BB.bin by os.stat, csv by DirEntry.stat
    assert all(p.endswith("BB.bin") for p in calls["stat"])


def test_missing_folder_is_not_an_error(tmp_path):
    res, _ = scan([ScanRequest(str(tmp_path / "nope"), (("k", "*/x"),)),
                   ScanRequest(str(tmp_path / "nope2"), (("k", "a/b"),))])
    assert res[0].found == [] and res[0].errors == [] and res[0].folder_missing
    assert res[1].found == [] and res[1].errors == []


def test_unlistable_folder_is_reported(tmp_path, monkeypatch):
    root = write_tree(tmp_path / "v", ["a/x.csv", "b/x.csv"])
    real = os.scandir

    class DenyOs:
        def __getattr__(self, name):
            return getattr(os, name)

        def scandir(self, path):
            if path.endswith("/b"):
                raise PermissionError(13, "Permission denied", path)
            return real(path)

    monkeypatch.setattr(scan_mod, "os", DenyOs())
    res, _ = scan([ScanRequest(str(root), (("k", "*/*.csv"),))])
    assert [f.relpath for f in res[0].found] == ["a/x.csv"]
    assert res[0].errors == [f"cannot list {root}/b: Permission denied"]


def test_symlinked_folder_followed_by_star_not_by_globstar(tmp_path):
    root = write_tree(tmp_path / "v", ["real/d/f.csv"])
    (root / "link").symlink_to(root / "real")
    (root / "real" / "loop").symlink_to(root / "real")
    got = found(root, {"star": "*/d/f.csv", "deep": "**/f.csv"})
    assert got["star"] == ["link/d/f.csv", "real/d/f.csv"]
    assert got["deep"] == ["real/d/f.csv"]


def _big_tree(root: Path, faults: int = 6, rels: int = 9) -> list[ScanRequest]:
    files = []
    for i in range(faults):
        f = f"F{i}"
        for r in range(rels + 1):
            ev = f if r == 0 else f"{f}_REL{r:02d}"
            files += [f"Runs/{f}/{ev}/BB/Acc/BB.bin", f"Runs/{f}/{ev}/IM_calc/{ev}.csv",
                      f"Src/{f}/Srf/{ev}.info", f"Src/{f}/Srf/{ev}.csv"]
    write_tree(root, files)
    reqs = []
    for i in range(faults):
        f = f"F{i}"
        reqs.append(ScanRequest(f"{root}/Runs/{f}", (("BB", "*/BB/Acc/BB.bin"), ("IM", f"*/IM_calc/{f}*.csv")), f))
        reqs.append(ScanRequest(f"{root}/Src/{f}", (("i", f"Srf/{f}*.info"), ("c", f"Srf/{f}*.csv")), f))
    return reqs


@pytest.mark.parametrize("threads,adaptive", [(1, True), (4, False), (16, False), (8, True)])
def test_same_result_on_any_thread_count(tmp_path, threads, adaptive):
    reqs = _big_tree(tmp_path / "v")
    ref, ref_stats = scan(reqs, threads=1)
    done: list[int] = []
    res, stats = scan(reqs, threads=threads, adaptive=adaptive, on_done=done.append)
    assert [r.found for r in res] == [r.found for r in ref]
    assert sum(len(r.found) for r in res) == 6 * 10 * 4
    assert sorted(done) == list(range(len(reqs)))  # each request reported finished once
    assert (stats.listed, stats.stats) == (ref_stats.listed, ref_stats.stats)
    if not adaptive:
        assert stats.threads == threads


def test_adaptive_starts_threads_when_calls_are_slow(tmp_path, monkeypatch):
    reqs = _big_tree(tmp_path / "v", faults=4, rels=20)
    real_scandir, real_stat = os.scandir, os.stat
    import time as _time

    class SlowOs:  # every listing and stat waits: a network file system
        def __getattr__(self, name):
            return getattr(os, name)

        def scandir(self, path):
            _time.sleep(0.0005)
            return real_scandir(path)

        def stat(self, path, *a, **kw):
            _time.sleep(0.0005)
            return real_stat(path, *a, **kw)

    ref, _ = scan(reqs, threads=1)
    monkeypatch.setattr(scan_mod, "os", SlowOs())
    res, stats = scan(reqs, threads=4)
    assert stats.threads == 4
    assert [r.found for r in res] == [r.found for r in ref]


def test_an_interrupted_walk_stops_every_thread(tmp_path, monkeypatch):
    """Ctrl-C in the main thread must not leave workers scanning the rest of a huge tree."""
    import threading
    import time

    reqs = _big_tree(tmp_path / "v", faults=4, rels=20)
    _, full = scan(reqs, threads=1)
    real_scandir = os.scandir
    main = threading.main_thread()
    after: list[str] = []
    interrupted = threading.Event()

    class InterruptingOs:
        def __getattr__(self, name):
            return getattr(os, name)

        def scandir(self, path):
            if threading.current_thread() is main and path.endswith("IM_calc"):
                interrupted.set()
                raise KeyboardInterrupt
            if interrupted.is_set():
                after.append(path)
            if threading.current_thread() is not main:
                time.sleep(0.002)  # workers on a slow file system: most of the walk is still ahead
            return real_scandir(path)

    monkeypatch.setattr(scan_mod, "os", InterruptingOs())
    with pytest.raises(KeyboardInterrupt):
        scan(reqs, threads=4, adaptive=False)
    for t in threading.enumerate():
        if t.name.startswith("cs-sync-scan"):
            t.join()
    assert len(after) < full.listed // 2, (len(after), full.listed)  # drained, not walked to the end


def _errors(root: Path, patterns: dict[str, str]) -> list[str]:
    res, _ = scan([ScanRequest(str(root), tuple(patterns.items()))])
    return res[0].errors


@pytest.mark.parametrize("pattern", ["*/BB/Acc/BB.bin", "REL01/BB/Acc/BB.bin", "**/BB.bin"],
                         ids=["wildcard", "literal", "globstar"])
def test_fifo_socket_and_links_to_them_are_reported_not_found(tmp_path, pattern):
    import socket

    write_tree(tmp_path, ["REL02/BB/Acc/BB.bin", "REL05/BB/Acc/real.bin"])
    for rel in ("REL01", "REL03", "REL04"):
        (tmp_path / rel / "BB" / "Acc").mkdir(parents=True)
    os.mkfifo(tmp_path / "REL01/BB/Acc/BB.bin")
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(tmp_path / "REL03/BB/Acc/BB.bin"))
    os.symlink(tmp_path / "REL01/BB/Acc/BB.bin", tmp_path / "REL04/BB/Acc/BB.bin")  # a link to the FIFO
    os.symlink(tmp_path / "REL05/BB/Acc/real.bin", tmp_path / "REL05/BB/Acc/BB.bin")  # a link to a file: fine
    try:
        got = found(tmp_path, {"bb": pattern})["bb"]
        errors = _errors(tmp_path, {"bb": pattern})
    finally:
        sock.close()
    if pattern.startswith("REL01"):
        assert got == [] and len(errors) == 1 and "REL01/BB/Acc/BB.bin is a FIFO" in errors[0]
        return
    assert got == ["REL02/BB/Acc/BB.bin", "REL05/BB/Acc/BB.bin"]
    assert sorted(e.split(" is ")[0] for e in errors) == [str(tmp_path / f"REL0{i}/BB/Acc/BB.bin") for i in (1, 3, 4)]
    assert any("is a FIFO" in e for e in errors) and any("is a socket" in e for e in errors)
    assert all("not listed" in e for e in errors)


def test_a_character_device_is_not_a_file_to_archive(tmp_path):
    (tmp_path / "x").mkdir()
    os.symlink("/dev/null", tmp_path / "x" / "BB.bin")
    assert found(tmp_path, {"bb": "*/BB.bin"})["bb"] == []
    assert "is a character device" in _errors(tmp_path, {"bb": "*/BB.bin"})[0]


def test_broken_links_are_named_where_a_pattern_reaches_them(tmp_path):
    """A link whose target is gone (another disk not mounted on this node, a purged copy) is
    named as such wherever a pattern meets it, not reported as a file that is simply missing."""
    root = write_tree(tmp_path / "v", ["ev1/d/f.csv"])
    gone = tmp_path / "unmounted"
    (root / "ev2").symlink_to(gone / "ev2")  # a folder the pattern goes through
    (root / "ev1" / "d" / "g.csv").symlink_to(gone / "g.csv")  # a listed file
    (root / "lit.yaml").symlink_to(gone / "lit.yaml")  # a literal file, found by stat
    (tmp_path / "where").symlink_to(gone / "where")  # the request's folder itself
    res, _ = scan([ScanRequest(str(root), (("k", "*/d/*.csv"), ("lit", "lit.yaml"))),
                   ScanRequest(str(tmp_path / "where"), (("k", "*.csv"),))])
    assert [f.relpath for f in res[0].found] == ["ev1/d/f.csv"]
    assert sorted(res[0].errors) == sorted(
        f"{root}/{name} is a broken symbolic link (to {gone}/{to}): not listed (mount or restore its target, "
        "or remove the link)" for name, to in [("ev2", "ev2"), ("ev1/d/g.csv", "g.csv"), ("lit.yaml", "lit.yaml")])
    assert res[1].errors == [f"{tmp_path}/where is a broken symbolic link (to {gone}/where): not listed "
                             "(mount or restore its target, or remove the link)"]
    assert not res[1].folder_missing


def test_a_file_deleted_between_listing_and_stat_is_named_as_vanished(tmp_path, monkeypatch):
    root = write_tree(tmp_path / "v", ["a/x.csv", "a/y.csv"])
    real = os.scandir

    class Racing:
        """os.scandir of 'a' as it happens when another process deletes y.csv meanwhile."""

        def __getattr__(self, name):
            return getattr(os, name)

        def scandir(self, path):
            entries = list(real(path))
            if path.endswith("/a"):
                (root / "a" / "y.csv").unlink()
            return _Entries(entries)

    class _Entries(list):
        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return None

    monkeypatch.setattr(scan_mod, "os", Racing())
    res, _ = scan([ScanRequest(str(root), (("k", "*/*.csv"),))])
    assert [f.relpath for f in res[0].found] == ["a/x.csv"]
    assert res[0].errors == [f"{root}/a/y.csv vanished during the scan (deleted or moved meanwhile?): "
                             "re-run when nothing is changing the data"]


def test_a_file_where_a_folder_of_the_patterns_should_be_is_named(tmp_path):
    """Data/VMs/F (the type's folder) or Srf/ (a literal folder of its patterns) as a file: the
    line names it, rather than only every file under it reported missing."""
    root = write_tree(tmp_path / "v", ["Sim/f.yaml"])
    (root / "Srf").write_text("not a folder")
    (tmp_path / "VMs").write_text("not a folder")
    res, _ = scan([ScanRequest(str(root), (("src", "Srf/*.info"), ("sim", "Sim/*.yaml"))),
                   ScanRequest(str(tmp_path / "VMs"), (("vm", "*.csv"),))])
    assert [f.relpath for f in res[0].found] == ["Sim/f.yaml"]
    assert res[0].errors == [f"{root}/Srf is a file where a folder is expected: nothing under it is found"]
    assert res[1].errors == [f"{tmp_path}/VMs is a file where a folder is expected: nothing under it is found"]
