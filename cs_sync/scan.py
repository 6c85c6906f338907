"""Find the files of many glob patterns under many folders, listing each directory once.

On Lustre and GPFS every directory listing and every ``stat`` is a round trip to a
metadata server, so the older approach (one ``pathlib.glob`` per fault, type and
pattern, then a ``stat`` per hit) pays for the same directories many times over.
Here all patterns that share a folder (BB and IM both live under ``Runs/{fault}``)
are merged into one trie of path segments, and the walk:

* lists a directory (one ``os.scandir``) only when some pattern has a wildcard
  segment there; literal segments are followed by name without listing siblings,
  and a literal file is found with the one ``stat`` it needs anyway;
* descends only into children that can still match a pattern segment;
* takes file-or-folder from the directory entry (no ``stat``) and ``stat``s only
  files that matched (size and mtime);
* runs directories of all folders at once on a bounded thread pool, so the
  latency of many metadata calls overlaps.

Glob semantics follow ``pathlib``'s (what the older scripts used): ``*``, ``?``
and ``[...]`` never cross ``/``; ``**`` is zero or more folders; matching is
case-sensitive and names starting with ``.`` are not special. One rule is
added: a folder whose name starts with ``_`` is never entered, so nothing under
it is ever found. Only files are found (a folder matching a pattern's last
segment is not a file to archive).
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat as stat_mod
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Hashable, Iterable, Sequence

WILDCARDS = frozenset("*?[")
GLOBSTAR = "**"


def has_wildcard(segment: str) -> bool:
    return any(c in WILDCARDS for c in segment)


def split_glob(pattern: str) -> list[str]:
    """Path segments of a glob (empty and ``.`` segments dropped, as pathlib does)."""
    return [s for s in pattern.split("/") if s not in ("", ".")]


class _Node:
    """One position in the merged patterns: what may follow, and which patterns end here."""

    __slots__ = ("literal", "wild", "star", "keys", "is_star", "_closure")

    def __init__(self, is_star: bool = False) -> None:
        self.literal: dict[str, _Node] = {}
        self.wild: list[tuple[str, Callable, _Node]] = []  # (segment, compiled match, child)
        self.star: _Node | None = None  # the node reached through a '**' segment
        self.keys: list[Hashable] = []  # patterns that end at this node
        self.is_star = is_star
        self._closure: tuple[_Node, ...] | None = None

    def child(self, segment: str) -> "_Node":
        if segment == GLOBSTAR:
            if self.star is None:
                self.star = _Node(is_star=True)
            return self.star
        if not has_wildcard(segment):
            return self.literal.setdefault(segment, _Node())
        for seg, _, node in self.wild:
            if seg == segment:
                return node
        node = _Node()
        self.wild.append((segment, re.compile(fnmatch.translate(segment)).match, node))
        return node

    def closure(self) -> tuple["_Node", ...]:
        """This node plus the '**' nodes reachable without consuming a folder."""
        if self._closure is None:
            out = [self]
            n = self
            while n.star is not None:
                n = n.star
                out.append(n)
            self._closure = tuple(out)
        return self._closure

    @property
    def goes_deeper(self) -> bool:
        return bool(self.literal or self.wild or self.star is not None or self.is_star)


def build_trie(patterns: Iterable[tuple[Hashable, str]]) -> _Node:
    """Merge ``(key, glob)`` pairs into one trie; identical segments share a node."""
    root = _Node()
    for key, pattern in patterns:
        node = root
        for seg in split_glob(pattern):
            node = node.child(seg)
        node.keys.append(key)
    return root


def _expand(nodes: Iterable[_Node]) -> tuple[_Node, ...]:
    out: dict[int, _Node] = {}
    for n in nodes:
        for m in n.closure():
            out.setdefault(id(m), m)
    return tuple(out.values())


@dataclass(frozen=True)
class ScanRequest:
    """Patterns ``(key, glob relative to folder)`` to find under one absolute ``folder``."""

    folder: str
    patterns: tuple[tuple[Hashable, str], ...]
    tag: Hashable = None  # the caller's label, echoed in the result


@dataclass(frozen=True)
class FoundFile:
    key: Hashable  # the pattern that matched
    relpath: str  # relative to the request's folder, '/'-separated
    size: int
    mtime_ns: int


@dataclass
class ScanResult:
    request: ScanRequest
    found: list[FoundFile] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # folders that could not be listed, files not stat'd
    folder_missing: bool = False


@dataclass
class ScanStats:
    listed: int = 0  # os.scandir calls
    stats: int = 0  # os.stat / DirEntry.stat calls
    seconds: float = 0.0
    threads: int = 1

    @property
    def calls(self) -> int:
        return self.listed + self.stats


# An item of work: (request index, folder path, path relative to the request folder, nodes)
_Item = tuple[int, str, str, tuple[_Node, ...]]
_GONE = (FileNotFoundError, NotADirectoryError)


class _Walker:
    def __init__(self, requests: Sequence[ScanRequest], threads: int, on_done: Callable[[int], None] | None):
        self.requests = requests
        self.results = [ScanResult(r) for r in requests]
        self.threads = max(1, threads)
        self.on_done = on_done
        self.stack: list[_Item] = []
        self.cond = threading.Condition()
        self.outstanding = 0
        self.pending = [0] * len(requests)
        for i, req in enumerate(requests):
            root = build_trie(req.patterns)
            self.stack.append((i, req.folder, "", root.closure()))
            self.pending[i] = 1
            self.outstanding += 1
        self.stack.reverse()  # first request first

    # -- scheduling -------------------------------------------------------------------
    def run(self) -> ScanStats:
        t0 = time.perf_counter()
        stats = ScanStats(threads=self.threads)
        if self.threads == 1 or len(self.stack) == 0:
            parts = [self._work()]
        else:
            with ThreadPoolExecutor(max_workers=self.threads, thread_name_prefix="cs-sync-scan") as pool:
                futures = [pool.submit(self._work) for _ in range(self.threads)]
                parts = [f.result() for f in futures]
        for listed, stated in parts:
            stats.listed += listed
            stats.stats += stated
        for res in self.results:
            res.found.sort(key=lambda f: (f.relpath, str(f.key)))
        stats.seconds = time.perf_counter() - t0
        return stats

    def _work(self) -> tuple[int, int]:
        counters = [0, 0]  # listings, stats
        while True:
            with self.cond:
                while not self.stack:
                    if self.outstanding == 0:
                        return counters[0], counters[1]
                    self.cond.wait()
                item = self.stack.pop()
            pushed: list[_Item] = []
            try:
                self._visit(item, pushed, counters)
            finally:
                req = item[0]
                done = False
                with self.cond:
                    self.stack.extend(pushed)
                    self.outstanding += len(pushed) - 1
                    for p in pushed:
                        self.pending[p[0]] += 1
                    self.pending[req] -= 1
                    done = self.pending[req] == 0
                    if pushed or self.outstanding == 0:
                        self.cond.notify_all()
                if done and self.on_done is not None:
                    self.on_done(req)

    def _hungry(self) -> bool:
        """Hand folders to other threads only while they may be idle; else walk inline."""
        return self.threads > 1 and len(self.stack) < 2 * self.threads

    # -- one folder ---------------------------------------------------------------------
    def _visit(self, item: _Item, pushed: list[_Item], counters: list[int]) -> None:
        req, path, rel, nodes = item
        if any(n.wild or n.is_star for n in nodes):
            self._list(req, path, rel, nodes, pushed, counters)
        else:
            self._direct(req, path, rel, nodes, pushed, counters)

    def _descend(self, item: _Item, pushed: list[_Item], counters: list[int]) -> None:
        if self._hungry():
            pushed.append(item)
        else:
            self._visit(item, pushed, counters)

    def _direct(self, req: int, path: str, rel: str, nodes: tuple[_Node, ...], pushed, counters) -> None:
        """Only literal names can follow: reach them by name, no listing."""
        children: dict[str, list[_Node]] = {}
        for n in nodes:
            for name, c in n.literal.items():
                children.setdefault(name, []).append(c)
        for name, cnodes in children.items():
            nxt = _expand(cnodes)
            keys = [k for c in nxt for k in c.keys]
            deeper = any(c.goes_deeper for c in nxt)
            cpath = f"{path}/{name}"
            crel = f"{rel}/{name}" if rel else name
            if keys:
                counters[1] += 1
                try:
                    st = os.stat(cpath)
                except _GONE:
                    continue
                except OSError as exc:
                    self.results[req].errors.append(f"cannot stat {cpath}: {exc.strerror}")
                    continue
                if stat_mod.S_ISDIR(st.st_mode):
                    if deeper and not name.startswith("_"):
                        self._descend((req, cpath, crel, nxt), pushed, counters)
                    continue
                found = self.results[req].found
                for k in keys:
                    found.append(FoundFile(k, crel, st.st_size, st.st_mtime_ns))
            elif deeper and not name.startswith("_"):
                # no stat: the listing or stats below fail quietly when it is not there
                self._descend((req, cpath, crel, nxt), pushed, counters)

    def _list(self, req: int, path: str, rel: str, nodes: tuple[_Node, ...], pushed, counters) -> None:
        counters[0] += 1
        try:
            it = os.scandir(path)
        except _GONE:
            if not rel:
                self.results[req].folder_missing = True
            return
        except OSError as exc:
            self.results[req].errors.append(f"cannot list {path}: {exc.strerror}")
            return
        stars = tuple(n for n in nodes if n.is_star)
        plain = tuple(n for n in nodes if n.literal or n.wild)
        found = self.results[req].found
        later: list[_Item] = []
        with it:
            for entry in it:
                name = entry.name
                matched: list[_Node] = []
                for n in plain:
                    c = n.literal.get(name)
                    if c is not None:
                        matched.append(c)
                    for _, match, c in n.wild:
                        if match(name):
                            matched.append(c)
                if not matched and not stars:
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if name.startswith("_"):
                        continue
                    nxt = list(matched)
                    if stars and not entry.is_symlink():  # '**' does not follow links (no loops)
                        nxt.extend(stars)
                    if not nxt:
                        continue
                    nxt_t = _expand(nxt)
                    if any(c.goes_deeper for c in nxt_t):
                        later.append((req, entry.path, f"{rel}/{name}" if rel else name, nxt_t))
                    continue
                if not matched:
                    continue
                keys = [k for c in _expand(matched) for k in c.keys]
                if not keys:
                    continue
                counters[1] += 1
                try:
                    st = entry.stat()
                except OSError as exc:
                    self.results[req].errors.append(f"cannot stat {entry.path}: {exc.strerror}")
                    continue
                crel = f"{rel}/{name}" if rel else name
                for k in keys:
                    found.append(FoundFile(k, crel, st.st_size, st.st_mtime_ns))
        for item in later:  # after the listing is closed: one open directory per thread
            self._descend(item, pushed, counters)


def scan(
    requests: Sequence[ScanRequest],
    *,
    threads: int = 8,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[ScanResult], ScanStats]:
    """Find every pattern's files under every request's folder.

    Returns one :class:`ScanResult` per request (same order, files sorted by path)
    and call counts. ``on_done(i)`` is called (from a worker thread) when request
    ``i`` is finished. Folders that do not exist give no files and no error;
    folders that cannot be listed and files that cannot be stat'd are reported in
    ``errors``.
    """
    walker = _Walker(requests, threads, on_done)
    stats = walker.run()
    return walker.results, stats
