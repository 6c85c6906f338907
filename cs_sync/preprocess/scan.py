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
* overlaps metadata calls on a bounded thread pool when they are slow.

Threads and the GIL: a ``stat`` served from the local page cache takes a few
microseconds, less than handing the GIL between threads, so on a local disk
threads make a scan slower. The walk therefore starts on one thread, times its
first metadata calls, and starts the other threads only when calls are slow
(network file systems: hundreds of microseconds each), where overlapping them is
what makes the scan fast.

Glob semantics follow ``pathlib``'s (what the older scripts used): ``*``, ``?``
and ``[...]`` never cross ``/``; ``**`` is zero or more folders; matching is
case-sensitive and names starting with ``.`` are not special. One rule is
added: a folder whose name starts with ``_`` is never entered, so nothing under
it is ever found. Only regular files are found (symbolic links to them too, as
before): a folder matching a pattern's last segment is not a file to archive, and
a FIFO, socket or device there is reported in the result's ``errors`` (naming the
path and the kind), never listed: reading a FIFO would block upload for ever.
So is a file this user may not read (``stat`` works on it; upload would fail),
a symbolic link to nothing where a pattern reaches it (a disk not mounted on this
node), a file listed but gone before its ``stat``, and a file where a folder the
patterns name should be.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat as stat_mod
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any, NamedTuple

WILDCARDS = frozenset("*?[")
GLOBSTAR = "**"
PROBE_CALLS = 256  # metadata calls timed before deciding whether to start more threads
SLOW_CALL_S = 25e-6  # mean wall time per call above which threads pay off


def has_wildcard(segment: str) -> bool:
    return any(c in WILDCARDS for c in segment)


def split_glob(pattern: str) -> list[str]:
    """Path segments of a glob (empty and ``.`` segments dropped, as pathlib does)."""
    return [s for s in pattern.split("/") if s not in ("", ".")]


def _always(name: str) -> bool:
    return True


def segment_matcher(segment: str) -> Callable[[str], bool]:
    """A predicate equal to ``fnmatch.fnmatchcase(name, segment)``.

    ``*`` and ``prefix*suffix`` (the common Cybershake forms, with the fault name
    in the prefix) avoid compiling a regex per fault; anything else is compiled.
    """
    if segment == "*":
        return _always
    if "?" not in segment and "[" not in segment and segment.count("*") == 1:
        a, b = segment.split("*")
        n = len(a) + len(b)
        return lambda s: len(s) >= n and s.startswith(a) and s.endswith(b)
    match = re.compile(fnmatch.translate(segment)).match
    return lambda s: match(s) is not None


class _Node:
    """One position in the merged patterns: what may follow, and which patterns end here."""

    __slots__ = ("literal", "wild", "star", "keys", "is_star", "_closure")

    def __init__(self, is_star: bool = False) -> None:
        self.literal: dict[str, _Node] = {}
        self.wild: list[tuple[str, Callable[[str], bool], _Node]] = []  # (segment, matcher, child)
        self.star: _Node | None = None  # the node reached through a '**' segment
        self.keys: list[Hashable] = []  # patterns that end at this node
        self.is_star = is_star  # reached through '**': may also consume any number of folders
        self._closure: tuple[_Node, ...] | None = None

    def child(self, segment: str) -> _Node:
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
        self.wild.append((segment, segment_matcher(segment), node))
        return node

    def closure(self) -> tuple[_Node, ...]:
        """This node plus the '**' nodes reachable without consuming a folder."""
        if self._closure is None:
            out = [self]
            n = self
            while n.star is not None:
                n = n.star
                out.append(n)
            self._closure = tuple(out)
        return self._closure


def build_trie(patterns: Iterable[tuple[Hashable, str]]) -> _Node:
    """Merge ``(key, glob)`` pairs into one trie; identical segments share a node."""
    root = _Node()
    for key, pattern in patterns:
        node = root
        for seg in split_glob(pattern):
            node = node.child(seg)
        node.keys.append(key)
    return root


class _Target:
    """Where a name leads, given the trie nodes it matched: patterns that end there
    (``keys``) and, for a folder, the step to take inside it (None: nothing below)."""

    __slots__ = ("keys", "step")

    def __init__(self, keys: tuple, step: _Step | None) -> None:
        self.keys = keys
        self.step = step


class _Step:
    """What to do in a folder reached with a given set of trie nodes (cached per set)."""

    __slots__ = ("listing", "direct", "literal", "wild", "stars", "one_wild")

    def __init__(self, nodes: tuple[_Node, ...], plans: _Plans) -> None:
        self.stars = tuple(n for n in nodes if n.is_star)
        self.listing = bool(self.stars) or any(n.wild for n in nodes)
        literal: dict[str, list[_Node]] = {}
        for n in nodes:
            for name, c in n.literal.items():
                literal.setdefault(name, []).append(c)
        self.literal = {name: tuple(cs) for name, cs in literal.items()}
        self.wild = tuple((m, c) for n in nodes for _, m, c in n.wild)
        # the usual case (one wildcard segment, no literal names): matched without a loop
        self.one_wild = self.wild[0] if len(self.wild) == 1 and not self.literal else None
        # without a listing: (name, target) for each literal child; a chain of literal folders
        # that end no pattern (BB/Acc/ of BB/Acc/BB.bin) is joined into one name, so the
        # file at its end is found with one stat and no walk through the folders between
        self.direct = () if self.listing else tuple(_joined(self.literal, plans))


def _joined(literal: dict[str, tuple[_Node, ...]], plans: _Plans, prefix: str = "") -> list[tuple[str, _Target, bool]]:
    """(name, target, may be entered: its last folder's name does not start with '_')."""
    out: list[tuple[str, _Target, bool]] = []
    for name, cs in literal.items():
        target = plans.target(cs)
        inner = target.step
        if not target.keys and inner is not None and not inner.listing:
            if name[0] != "_":  # a '_' folder is never entered: nothing below it is found
                out += _joined(inner.literal, plans, f"{prefix}{name}/")
            continue
        out.append((prefix + name, target, name[0] != "_"))
    return out


class _Plans:
    """Caches of steps and targets, keyed by node tuples (dict access is thread-safe)."""

    def __init__(self) -> None:
        self.steps: dict[tuple[_Node, ...], _Step] = {}
        self.targets: dict[tuple[_Node, ...], _Target] = {}

    def step(self, nodes: tuple[_Node, ...]) -> _Step:
        st = self.steps.get(nodes)
        if st is None:
            st = self.steps[nodes] = _Step(nodes, self)
        return st

    def target(self, matched: tuple[_Node, ...]) -> _Target:
        t = self.targets.get(matched)
        if t is None:
            expanded: dict[int, _Node] = {}
            for n in matched:
                for m in n.closure():
                    expanded.setdefault(id(m), m)
            nodes = tuple(expanded.values())
            keys = tuple(k for n in nodes for k in n.keys)
            deeper = any(n.literal or n.wild or n.star is not None or n.is_star for n in nodes)
            t = self.targets[matched] = _Target(keys, self.step(nodes) if deeper else None)
        return t


@dataclass(frozen=True)
class ScanRequest:
    """Patterns ``(key, glob relative to folder)`` to find under one absolute ``folder``."""

    folder: str
    patterns: tuple[tuple[Hashable, str], ...]
    tag: Any = None  # the caller's label, echoed in the result


class FoundFile(NamedTuple):
    key: Any  # the pattern that matched (the caller's key)
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
    threads: int = 1  # threads that took part

    @property
    def calls(self) -> int:
        return self.listed + self.stats


# An item of work: (request index, folder path, path relative to the request folder, step)
_Item = tuple[int, str, str, _Step]
# read permission for everyone: the usual data file, known readable from its stat alone; any other
# mode is asked of the kernel (os.access also honours ACLs and root), one call for those files only
_READ_ALL = stat_mod.S_IRUSR | stat_mod.S_IRGRP | stat_mod.S_IROTH
_by_path = attrgetter("relpath")
_new_found = tuple.__new__  # FoundFile without the NamedTuple constructor's Python frame


class _Walker:
    def __init__(self, requests: Sequence[ScanRequest], threads: int, adaptive: bool,
                 on_done: Callable[[int], None] | None):
        self.results = [ScanResult(r) for r in requests]
        self.max_threads = max(1, threads)
        self.adaptive = adaptive
        self.on_done = on_done
        self.plans = _Plans()
        self.stack: list[_Item] = []
        self.cond = threading.Condition()
        self.outstanding = 0
        self.active = 1  # threads walking; more start when metadata calls are slow
        self.pending = [1] * len(requests)
        for i, req in enumerate(requests):
            root = build_trie(req.patterns)
            self.stack.append((i, req.folder.rstrip("/") or "/", "", self.plans.step(root.closure())))
        self.outstanding = len(self.stack)
        self.stack.reverse()  # first request first
        self.pool: ThreadPoolExecutor | None = None
        self.futures: list = []
        self.t0 = 0.0
        self.probing = adaptive and self.max_threads > 1
        self.stopped = False  # set when the walk is abandoned (Ctrl-C, a bug): threads drain and return
        self.next_probe = PROBE_CALLS

    # -- scheduling -------------------------------------------------------------------
    def run(self) -> ScanStats:
        self.t0 = time.perf_counter()
        if self.max_threads > 1 and not self.adaptive:
            self._start_threads()
        try:
            parts = [self._work()]
        except BaseException:
            self._stop()
            raise
        if self.pool is not None:
            try:
                parts += [f.result() for f in self.futures]
            except BaseException:
                self._stop()
                raise
            self.pool.shutdown()
        stats = ScanStats(threads=self.active)
        for listed, stated in parts:
            stats.listed += listed
            stats.stats += stated
        for res in self.results:
            res.found.sort(key=_by_path)
        stats.seconds = time.perf_counter() - self.t0
        return stats

    def _stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.stack.clear()
            self.cond.notify_all()
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)

    def _start_threads(self) -> None:
        with self.cond:
            self.active = self.max_threads
        self.pool = ThreadPoolExecutor(max_workers=self.max_threads - 1, thread_name_prefix="cs-sync-scan")
        self.futures = [self.pool.submit(self._work) for _ in range(self.max_threads - 1)]

    def _work(self) -> tuple[int, int]:
        counters = [0, 0]  # listings, stats
        while True:
            with self.cond:
                while not self.stack:
                    if self.outstanding == 0 or self.stopped:
                        return counters[0], counters[1]
                    self.cond.wait()
                item = self.stack.pop()
            pushed: list[_Item] = []
            try:
                self._visit(item, pushed, counters)
            finally:
                req = item[0]
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
            if self.probing and counters[0] + counters[1] >= self.next_probe:
                self._probe(counters[0] + counters[1])

    def _probe(self, calls: int) -> None:
        """While one thread walks alone: start the others once metadata calls prove slow."""
        per_call = (time.perf_counter() - self.t0) / calls
        if per_call >= SLOW_CALL_S:
            self.probing = False
            self._start_threads()
        else:
            self.next_probe = calls * 2  # keep checking, less and less often (a slow folder later on)

    def _descend(self, item: _Item, pushed: list[_Item], counters: list[int]) -> None:
        """Hand a folder to the shared stack while other threads may be idle; else walk it here."""
        if self.stopped:
            return
        if self.probing and counters[0] + counters[1] >= self.next_probe:
            self._probe(counters[0] + counters[1])
        if self.max_threads > 1 and len(self.stack) < 2 * self.active:
            pushed.append(item)
        else:
            self._visit(item, pushed, counters)

    # -- one folder ---------------------------------------------------------------------
    def _visit(self, item: _Item, pushed: list[_Item], counters: list[int]) -> None:
        req, path, rel, step = item
        if step.listing:
            self._list(req, path, rel, step, pushed, counters)
            return
        found = self.results[req].found
        for name, target, enterable in step.direct:
            cpath = f"{path}/{name}"
            crel = f"{rel}/{name}" if rel else name
            if target.keys:
                counters[1] += 1
                try:
                    st = os.stat(cpath)
                except FileNotFoundError:
                    if os.path.islink(cpath):  # an lstat, only for a file that is not there
                        self.results[req].errors.append(broken_link(cpath))
                    continue
                except NotADirectoryError:
                    continue
                except OSError as exc:
                    self.results[req].errors.append(f"cannot stat {cpath}: {exc.strerror}")
                    continue
                if stat_mod.S_ISDIR(st.st_mode):
                    if target.step is not None and enterable:
                        self._descend((req, cpath, crel, target.step), pushed, counters)
                    continue
                if not stat_mod.S_ISREG(st.st_mode):
                    self.results[req].errors.append(not_regular(cpath, st.st_mode))
                    continue
                if st.st_mode & _READ_ALL != _READ_ALL and not os.access(cpath, os.R_OK):
                    self.results[req].errors.append(unreadable(cpath))
                    continue
                for k in target.keys:
                    found.append(_new_found(FoundFile, (k, crel, st.st_size, st.st_mtime_ns)))
            elif target.step is not None and enterable:
                # no stat: the listing or stats below fail quietly when it is not there
                self._descend((req, cpath, crel, target.step), pushed, counters)

    def _list(self, req: int, path: str, rel: str, step: _Step, pushed, counters) -> None:
        counters[0] += 1
        try:
            it = os.scandir(path)
        except NotADirectoryError:  # only a folder the patterns name is listed without being seen as one
            self.results[req].errors.append(f"{path} is a file where a folder is expected: nothing under it is found")
            return
        except FileNotFoundError:
            if os.path.islink(path):  # e.g. a disk not mounted on this node
                self.results[req].errors.append(broken_link(path))
            elif not rel:
                self.results[req].folder_missing = True
            return
        except OSError as exc:
            self.results[req].errors.append(f"cannot list {path}: {exc.strerror}")
            return
        literal, wild, stars, one_wild = step.literal, step.wild, step.stars, step.one_wild
        if one_wild is not None:
            one_match, one_node = one_wild
            one_matched: tuple[_Node, ...] = (one_node,)
            every = one_match is _always  # '*': every name matches, no call needed
        targets, target_of = self.plans.targets, self.plans.target
        found = self.results[req].found
        append = found.append
        prefix = f"{rel}/" if rel else ""
        later: list[_Item] = []
        with it:
            for entry in it:
                name = entry.name
                matched: tuple[_Node, ...]
                if one_wild is not None:
                    matched = one_matched if every or one_match(name) else ()
                else:
                    lit = literal.get(name)
                    if wild:
                        matched = tuple([c for m, c in wild if m(name)])
                        if lit:
                            matched = lit + matched
                    elif lit:
                        matched = lit
                    else:
                        matched = ()
                if not matched and not stars:
                    continue
                try:
                    is_dir = entry.is_dir()
                except OSError:
                    is_dir = False
                if is_dir:
                    if name[0] == "_":
                        continue
                    if stars and not entry.is_symlink():  # '**' does not follow links (no loops)
                        matched = matched + stars
                    if not matched:
                        continue
                    target = targets.get(matched) or target_of(matched)
                    if target.step is not None:
                        later.append((req, entry.path, prefix + name, target.step))
                    continue
                if not matched:
                    continue
                target = targets.get(matched) or target_of(matched)
                keys = target.keys
                if not keys:
                    # a folder the pattern goes through, as a link to nothing (is_symlink: no call)
                    if target.step is not None and entry.is_symlink() and not os.path.exists(entry.path):
                        self.results[req].errors.append(broken_link(entry.path))
                    continue
                counters[1] += 1
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    self.results[req].errors.append(
                        broken_link(entry.path) if entry.is_symlink() else vanished(entry.path))
                    continue
                except OSError as exc:
                    self.results[req].errors.append(f"cannot stat {entry.path}: {exc.strerror}")
                    continue
                if not stat_mod.S_ISREG(st.st_mode):  # entry.is_dir() said no: a FIFO, socket or device
                    self.results[req].errors.append(not_regular(entry.path, st.st_mode))
                    continue
                if st.st_mode & _READ_ALL != _READ_ALL and not os.access(entry.path, os.R_OK):
                    self.results[req].errors.append(unreadable(entry.path))
                    continue
                crel = prefix + name
                for k in keys:
                    append(_new_found(FoundFile, (k, crel, st.st_size, st.st_mtime_ns)))
        for item in later:  # after the listing is closed: one open directory per thread
            self._descend(item, pushed, counters)


def broken_link(path: str) -> str:
    """The problem line for a matched path that is a symbolic link to nothing."""
    try:
        to = os.readlink(path)
    except OSError:
        to = "?"
    return f"{path} is a broken symbolic link (to {to}): not listed (mount or restore its target, or remove the link)"


def vanished(path: str) -> str:
    """The problem line for a file listed, then gone before its stat."""
    return f"{path} vanished during the scan (deleted or moved meanwhile?): re-run when nothing is changing the data"


def unreadable(path: str) -> str:
    """The problem line for a matched file this user may not read (upload would fail on it)."""
    return f"{path} cannot be read (permission denied): not listed (upload could not archive it; fix its permissions)"


def not_regular(path: str, mode: int) -> str:
    """The problem line for a matched path that is not a regular file."""
    kind = ("a FIFO" if stat_mod.S_ISFIFO(mode) else "a socket" if stat_mod.S_ISSOCK(mode)
            else "a character device" if stat_mod.S_ISCHR(mode) else "a block device" if stat_mod.S_ISBLK(mode)
            else "not a regular file")
    return f"{path} is {kind}, not a regular file: not listed (replace it with the file it stands for)"


def scan(
    requests: Sequence[ScanRequest],
    *,
    threads: int = 16,
    adaptive: bool = True,
    on_done: Callable[[int], None] | None = None,
) -> tuple[list[ScanResult], ScanStats]:
    """Find every pattern's files under every request's folder.

    Returns one :class:`ScanResult` per request (same order, files sorted by path)
    and call counts. At most ``threads`` threads walk; with ``adaptive`` the walk
    starts on one and starts the rest only when metadata calls prove slow (see the
    module doc); without it all start at once. ``on_done(i)`` is called (from a
    walking thread) when request ``i`` is finished. Folders that do not exist give
    no files and no error; folders that cannot be listed, files that cannot be
    stat'd or read and links to nothing are reported in ``errors``.
    """
    walker = _Walker(requests, threads, adaptive, on_done)
    stats = walker.run()
    return walker.results, stats
