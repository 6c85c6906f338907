"""Preprocess: find every listed fault's files, check the counts, write the outputs.

One call, :func:`preprocess`, takes a :class:`PreprocessSettings` and returns a
:class:`PreprocessResult`; it never prints and never exits. The outputs are
``stocktake.csv`` (written first, so its size can be listed) and
``files_to_sync.yaml`` with its ``.meta.json`` sidecar, each written atomically.

Failed checks do not raise: the outputs are still written and ``result.ok`` is
False (the CLI turns that into exit code 4). Bad input raises an
:class:`~cs_sync.core.errors.InputError` before anything is written, and so does a
listed fault with no data at all: that is almost always a misspelt name or the
wrong CS_ROOT, and an archive made from it would look complete while holding
nothing of that fault.
"""

from __future__ import annotations

import glob
import os
import posixpath
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from cs_sync.core.atomic import atomic_write_text
from cs_sync.core.errors import InputError, LocalIOError
from cs_sync.core.naming import LIST_FILE, STOCKTAKE_FILE
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.core.text import plural
from cs_sync.inputs.config import DataType, SyncConfig, load_config
from cs_sync.inputs.faultlist import FaultEntry, read_fault_list
from cs_sync.inputs.manifest import Manifest, meta_path, write_manifest
from cs_sync.preprocess.scan import ScanRequest, ScanStats, scan
from cs_sync.preprocess.stocktake import FaultCheck, Hit, Problem, check_fault, problems, stocktake_doc, stocktake_frame

if TYPE_CHECKING:
    import pandas as pd

FILES_TO_SYNC = "files_to_sync.yaml"
SAMPLE_BB = "SAMPLE_BB"
DEFAULT_THREADS = 16  # metadata calls in flight; Lustre/GPFS latency, not CPU, is the limit
_new_hit = tuple.__new__  # a Hit without the NamedTuple constructor's Python frame (45k per version)


@dataclass(frozen=True, kw_only=True)
class PreprocessSettings:
    cs_root: Path  # the version folder, e.g. .../Cybershake/v22p12
    fault_list: Path  # list.txt: 'FAULT COUNT[r] [SKIP[r]]' per line
    config: Path | None = None  # sync_patterns.yaml; None = the one shipped with cs_sync
    out_file: Path = Path(FILES_TO_SYNC)  # the manifest (and its .meta.json beside it)
    stocktake_csv: Path = Path(STOCKTAKE_FILE)
    types: tuple[str, ...] = ()  # -t: data types to take; empty = every type of the config
    threads: int = DEFAULT_THREADS  # concurrent directory listings / stats


@dataclass
class PreprocessResult:
    version: str  # CS_ROOT's folder name
    cs_root: str  # absolute
    out_file: Path
    stocktake_csv: Path
    config: SyncConfig
    types: list[str]  # data types in the outputs
    checks: list[FaultCheck]
    problems: list[Problem]
    frame: pd.DataFrame
    manifest: Manifest
    stats: ScanStats = field(default_factory=ScanStats)
    _totals: dict[str, tuple[int, int]] | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed_faults(self) -> list[str]:
        return [c.name for c in self.checks if not c.ok]

    def to_dict(self, fault_list: Path | str | None = None) -> dict:
        """The run as data (what ``--html`` draws): the stocktake per fault and pattern, the
        problems, and files and bytes selected per type."""
        return {
            "version": self.version,
            "cs_root": self.cs_root,
            "fault_list": str(fault_list) if fault_list is not None else None,
            "stocktake": stocktake_doc(self.checks, self.types, str(self.stocktake_csv)),
            "problems": [{"fault": p.fault, "type": p.dtype, "failed": p.failed, "text": p.text} for p in self.problems],
            "totals": {t: {"files": n, "bytes": b} for t, (n, b) in self.totals().items()},
            "ok": self.ok,
        }

    def totals(self) -> dict[str, tuple[int, int]]:
        """type -> (files, bytes) selected over all faults (summed once: the report asks
        several times, and the sum runs over every file)."""
        if self._totals is None:
            out = {t: (0, 0) for t in self.types}
            for c in self.checks:
                for t, tc in c.types.items():
                    n, b = out[t]
                    out[t] = (n + len(tc.files), b + tc.bytes)
            self._totals = out
        return dict(self._totals)


def select_types(config: SyncConfig, requested: tuple[str, ...] | list[str]) -> tuple[SyncConfig, list[str], list[str]]:
    """Resolve ``-t``: (config, types in the outputs, types to scan).

    A type packed into another comes with its host and the host's other packed
    types (``-t Source`` or ``-t VM`` -> Source and VM: they share a TAR). A
    sample type is scanned through the type it samples, which is not itself
    output unless asked for. SAMPLE_BB is accepted whenever the config has BB.
    """
    if SAMPLE_BB in requested and SAMPLE_BB not in config.types and "BB" in config.types:
        config = SyncConfig(
            types={**config.types, SAMPLE_BB: DataType(name=SAMPLE_BB, where=None, sample_of="BB")},
            source=config.source,
            order=tuple(config.names()) + (SAMPLE_BB,),
        )
    chosen = config.check_types(list(requested))
    wanted: set[str] = set()
    for t in chosen:
        if config.types[t].sample_of is not None:
            wanted.add(t)
        else:
            wanted.update(config.packed_with(config.host_of(t)))
    out = [n for n in config.names() if n in wanted]
    need = set(n for n in out if config.types[n].sample_of is None)
    need.update(host for n in out if (host := config.types[n].sample_of) is not None)
    scan_types = [n for n in config.names() if n in need]
    return config, out, scan_types


def _check_root(root: Path) -> None:
    if not root.exists():
        raise InputError(f"CS_ROOT {root} does not exist", hint="give the version folder, e.g. .../Cybershake/v22p12")
    if not root.is_dir():
        raise InputError(f"CS_ROOT {root} is not a folder", hint="give the version folder, e.g. .../Cybershake/v22p12")
    try:
        with os.scandir(root) as it:
            next(it, None)
    except OSError as exc:
        raise InputError(f"CS_ROOT {root} cannot be read: {exc.strerror}", hint="check its permissions") from None


def check_outputs(outputs: dict[str, Path], inputs: dict[str, Path]) -> None:
    """Refuse, before anything is written, an output that is a folder, another output, or an
    input (``--out_file list.txt`` would replace the fault list with the manifest).
    ``outputs``/``inputs``: option or argument name -> path."""
    taken: dict[str, str] = {}
    for name, path in inputs.items():
        taken.setdefault(os.path.realpath(path), name)
    for name, path in outputs.items():
        real = os.path.realpath(path)
        other = taken.get(real)
        if other in outputs:
            raise InputError(f"{other} and {name} are the same file: {path}", hint="give two different paths")
        if other is not None:
            raise InputError(f"{name} {path} is the {other}", hint=f"{name} is written over: give another path")
        if os.path.isdir(path):
            raise InputError(f"{name} {path} is a folder", hint="give the path of a file to write")
        taken[real] = name


def _check_outputs(out_file: Path, stocktake_csv: Path, inputs: dict[str, Path]) -> None:
    check_outputs({"--out_file": out_file, "--stocktake_csv": stocktake_csv,
                   "the manifest's sidecar": meta_path(out_file)}, inputs)
    for p in (out_file, stocktake_csv):
        parent = Path(os.path.abspath(p)).parent
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not os.access(parent, os.W_OK | os.X_OK):
            raise LocalIOError(f"cannot write {p}: {parent} is not writable", hint="choose another output path")


def _requests(root: str, entries: list[FaultEntry], config: SyncConfig, scan_types: list[str]) -> list[ScanRequest]:
    """One request per fault and ``where``: types sharing a folder are found in one walk."""
    requests = []
    for fi, entry in enumerate(entries):
        by_where: dict[str, list] = {}
        esc = glob.escape(entry.name)  # a '[' in a fault name is a name, not a wildcard
        for tname in scan_types:
            dt = config.types[tname]
            where = posixpath.normpath(dt.where_for(entry.name))
            for idx, p in enumerate(dt.patterns):
                by_where.setdefault(where, []).append(((tname, idx), p.glob.format(fault_name=esc)))
        for where, pats in by_where.items():
            folder = root if where == "." else os.path.join(root, where)
            requests.append(ScanRequest(folder=folder, patterns=tuple(pats), tag=(fi, where)))
    return requests


def _no_data_error(empty: list[FaultCheck], fault_list: Path, config: SyncConfig, scan_types: list[str]) -> InputError:
    first = empty[0]
    wheres = sorted({posixpath.normpath(config.types[t].where_for(first.name)) for t in scan_types})
    more = ""
    if len(empty) > 1:
        names = [c.name for c in empty[1:]]
        shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
        more = f"; also without data: {shown}"
    return InputError(
        f"{fault_list}:{first.entry.line}: fault {first.name!r} has no data at all "
        f"(nothing matched in {', '.join(wheres)}){more}",
        hint="check the fault name and CS_ROOT, or remove the line; nothing was written",
    )


def preprocess(settings: PreprocessSettings, progress: Progress = NULL_PROGRESS) -> PreprocessResult:
    """Scan, check and write ``stocktake.csv`` then ``files_to_sync.yaml``; see the module doc."""
    root_path = Path(settings.cs_root)
    _check_root(root_path)
    entries = read_fault_list(Path(settings.fault_list))
    config = load_config(settings.config)
    config, out_types, scan_types = select_types(config, settings.types)
    inputs = {"FAULT_LIST": Path(settings.fault_list)}
    if settings.config is not None:
        inputs["--config"] = Path(settings.config)
    _check_outputs(Path(settings.out_file), Path(settings.stocktake_csv), inputs)
    if settings.threads < 1:
        raise InputError(f"threads must be at least 1, got {settings.threads}")

    root = os.path.abspath(root_path)
    requests = _requests(root, entries, config, scan_types)
    left = [0] * len(entries)
    for r in requests:
        left[r.tag[0]] += 1
    lock = threading.Lock()
    done = [0]
    progress.task_started("scan", plural(len(entries), "fault"), len(entries), kind="scan")

    def _request_done(i: int) -> None:  # called from scan threads
        fi = requests[i].tag[0]
        with lock:
            left[fi] -= 1
            finished = left[fi] == 0
            if finished:
                done[0] += 1
            n = done[0]
        if finished:
            progress.task_advanced("scan", n)

    results, stats = scan(requests, threads=settings.threads, on_done=_request_done)
    progress.task_finished("scan", ok=True)

    hits: list[dict[str, dict[int, list[Hit]]]] = [
        {t: {i: [] for i in range(len(config.types[t].patterns))} for t in scan_types} for _ in entries
    ]
    errors: list[list[str]] = [[] for _ in entries]
    for res in results:
        fi, where = res.request.tag
        errors[fi].extend(res.errors)
        prefix = "" if where == "." else where + "/"
        per_type = hits[fi]
        for key, relpath, size, mtime_ns in res.found:
            per_type[key[0]][key[1]].append(_new_hit(Hit, (prefix + relpath, relpath, size, mtime_ns)))
    checks = [check_fault(e, config, out_types, hits[i], errors[i]) for i, e in enumerate(entries)]

    empty = [c for c in checks if not c.has_data and not c.errors]
    if empty:
        raise _no_data_error(empty, Path(settings.fault_list), config, scan_types)

    frame = stocktake_frame(checks, config, out_types)
    stocktake_csv = Path(settings.stocktake_csv)
    out_file = Path(settings.out_file)
    atomic_write_text(stocktake_csv, frame.to_csv())
    try:
        extra = {
            LIST_FILE: os.stat(settings.fault_list).st_size,
            STOCKTAKE_FILE: os.stat(stocktake_csv).st_size,
        }
    except OSError as exc:
        raise LocalIOError(f"cannot stat {exc.filename}: {exc.strerror}") from None
    manifest = Manifest(
        faults={c.name: {t: dict(c.types[t].files) for t in out_types} for c in checks},
        extra=extra,
        version=os.path.basename(root),
        cs_root=root,
        extra_paths={LIST_FILE: os.path.abspath(settings.fault_list), STOCKTAKE_FILE: os.path.abspath(stocktake_csv)},
    )
    write_manifest(out_file, manifest)
    return PreprocessResult(
        version=manifest.version or "",
        cs_root=root,
        out_file=out_file,
        stocktake_csv=stocktake_csv,
        config=config,
        types=out_types,
        checks=checks,
        problems=problems(checks),
        frame=frame,
        manifest=manifest,
        stats=stats,
    )
