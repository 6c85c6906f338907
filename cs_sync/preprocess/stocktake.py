"""The stocktake: how many files each pattern should find for a fault, and what was found.

Pure: takes the fault list entry, the config and the files a scan found, returns
checks, problems and the ``stocktake.csv`` table. No file system access.

Rules (README, "cs-sync-preprocess"):

* A pattern expects ``Pattern.expected(n_rels, has_median)`` files; ``has_median``
  is true when any scanned type of the fault has a file of the median event
  (named after the fault itself, e.g. ``Runs/F/F/``).
* Only files of realisations in the list's range are selected and counted;
  files of other realisations are reported, never selected.
* An optional (``$``) pattern passes with zero files; with any file it must find
  the full count. Any other pattern must find exactly the expected count, and a
  per-event pattern a file of every expected event (a file of no event, or a second
  copy of one realisation, never stands in for a missing one).
* Selected files of 0 bytes are a note (what a job writing to a full disk leaves).
* A sample type (SAMPLE_BB) takes the files of one event of the sampled type:
  the median's when there is one, else the lowest listed realisation's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from cs_sync.core.naming import EventFinder, event_rel, realisation_name
from cs_sync.core.text import plural
from cs_sync.inputs.config import EXPECT_EVENTS, EXPECT_RELS, Pattern, SyncConfig
from cs_sync.inputs.faultlist import FaultEntry
from cs_sync.inputs.manifest import FileRecord

if TYPE_CHECKING:
    import pandas as pd

MAX_LISTED_EVENTS = 6  # in one-line messages; the rest is counted
MAX_LISTED_STRAYS = 3  # paths are long: fewer of them


class Hit(NamedTuple):
    """A file a pattern matched (a tuple: 45k of them are made per version, cheaply)."""

    path: str  # relative to CS_ROOT ('/'-separated): what goes in files_to_sync.yaml
    relpath: str  # relative to the data type's ``where``: names the event
    size: int
    mtime_ns: int | None = None


@dataclass(frozen=True)
class PatternCheck:
    pattern: Pattern
    found: int
    expected: int
    missing: tuple[str, ...] = ()  # events expected but without a file (when the pattern is per event)
    twice: tuple[tuple[str, ...], ...] = ()  # one realisation under several names (F_REL1 and F_REL01)
    strays: tuple[str, ...] = ()  # files of a per-event pattern that name no event (F_REL02_old/...)

    @property
    def ok(self) -> bool:
        if self.pattern.optional and self.found == 0:
            return True
        # the count, and every expected event has its file: a stray or a second copy of one
        # realisation must not stand in for another that is missing. When no file names an
        # event (a config whose names EventFinder cannot read, x_F_REL01.b), the count decides.
        return self.found == self.expected and not (self.missing and self.found > len(self.strays))

    @property
    def label(self) -> str:
        return self.pattern.label


@dataclass
class TypeCheck:
    name: str
    patterns: list[PatternCheck] = field(default_factory=list)
    files: dict[str, FileRecord] = field(default_factory=dict)  # selected, by path
    sample_of: str | None = None
    sample_event: str | None = None  # the event a sample type took its files from

    @property
    def ok(self) -> bool:
        if self.sample_of is not None:
            return bool(self.files)
        return all(p.ok for p in self.patterns)

    @property
    def bytes(self) -> int:
        return sum(r.size for r in self.files.values())


@dataclass(frozen=True)
class Unlisted:
    """A file of a realisation outside the list's range: reported, not selected."""

    dtype: str
    path: str
    event: str


@dataclass
class FaultCheck:
    entry: FaultEntry
    has_median: bool
    types: dict[str, TypeCheck]
    unlisted: list[Unlisted] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # folders that could not be read
    files_seen: int = 0  # every file any pattern matched, selected or not
    empty: list[str] = field(default_factory=list)  # selected files of 0 bytes (a job's write to a full disk)

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def ok(self) -> bool:
        return not self.errors and all(t.ok for t in self.types.values())

    @property
    def has_data(self) -> bool:
        return self.files_seen > 0


@dataclass(frozen=True)
class Problem:
    fault: str
    dtype: str | None
    failed: bool  # False: a note (e.g. unlisted realisations), not a failed check
    text: str


def short_event(fault: str, event: str) -> str:
    """``median`` for the fault's median event, ``REL03`` for ``F_REL03``."""
    if event == fault:
        return "median"
    return event[len(fault) + 1:] if event.startswith(fault + "_") else event


def list_events(fault: str, events: Sequence[str], limit: int = MAX_LISTED_EVENTS) -> str:
    names = [short_event(fault, e) for e in events]
    if len(names) > limit:
        return ", ".join(names[:limit]) + f" and {len(names) - limit} more"
    return ", ".join(names)


def _event_order(fault: str, event: str) -> tuple[int, str]:
    rel = event_rel(fault, event)
    return (-1 if rel is None else rel, event)


def check_fault(
    entry: FaultEntry,
    config: SyncConfig,
    out_types: Sequence[str],
    hits: Mapping[str, Mapping[int, Sequence[Hit]]],
    errors: Sequence[str] = (),
) -> FaultCheck:
    """Check one fault.

    ``hits[type][pattern index]`` = files that pattern matched, for every scanned
    type (``out_types`` plus types only scanned to be sampled). ``out_types`` are
    the types whose checks and files go into the outputs.
    """
    fault = entry.name
    first, last = entry.first, entry.last
    # event of every hit; which are selected (in range) and which are not
    selected: dict[str, dict[int, list[tuple[Hit, str | None, int | None]]]] = {}
    unlisted: dict[str, Unlisted] = {}
    has_median = False
    seen = 0
    events = EventFinder(fault)
    for tname, per_pattern in hits.items():
        selected[tname] = sel = {}
        listed = tname in out_types
        for idx, found in per_pattern.items():
            keep: list[tuple[Hit, str | None, int | None]] = []
            add = keep.append
            seen += len(found)
            for h in found:
                event, rel = events(h[1])
                if rel is None:
                    if event == fault:
                        has_median = True
                elif not first <= rel <= last:
                    if listed:
                        unlisted.setdefault(h[0], Unlisted(tname, h[0], event))  # type: ignore[arg-type]
                    continue
                add((h, event, rel))
            sel[idx] = keep

    types: dict[str, TypeCheck] = {}
    empty: list[str] = []
    wanted: dict[str, list[tuple[int | None, str]]] = {}  # per kind of expectation: (rel, event), once per fault
    for tname in out_types:
        dtype = config.types[tname]
        if dtype.sample_of is not None:
            types[tname] = _sample(entry, tname, dtype.sample_of, selected.get(dtype.sample_of, {}))
            continue
        tc = TypeCheck(tname)
        files = tc.files
        per_type = selected.get(tname, {})
        for idx, pattern in enumerate(dtype.patterns):
            keep = per_type.get(idx, [])
            expected = pattern.expected(entry.n_rels, has_median)
            missing: tuple[str, ...] = ()
            twice: tuple[tuple[str, ...], ...] = ()
            strays: tuple[str, ...] = ()
            if pattern.expect in (EXPECT_RELS, EXPECT_EVENTS):
                want = wanted.get(pattern.expect)
                if want is None:
                    want = list(zip(range(first, last + 1), entry.realisations()))
                    if pattern.expect == EXPECT_EVENTS and has_median:
                        want = [(None, fault)] + want
                    wanted[pattern.expect] = want
                # by realisation number, as selected: F_REL1, F_REL01 and F_REL001 are all REL01
                got: dict[int | None, set[str]] = {}
                stray: list[str] = []
                for h, ev, rel in keep:
                    if ev is not None:
                        got.setdefault(rel, set()).add(ev)
                    else:
                        stray.append(h[1])
                strays = tuple(stray)
                missing = tuple(e for r, e in want if r not in got)
                twice = tuple(tuple(sorted(got[r])) for r, _ in want if len(got.get(r, ())) > 1)
            tc.patterns.append(PatternCheck(pattern, len(keep), expected, missing, twice, strays))
            for h, _, _ in keep:
                path = h[0]
                if path not in files:
                    files[path] = FileRecord(path, h[2], h[3])
                    if not h[2]:
                        empty.append(path)
        types[tname] = tc
    return FaultCheck(
        entry=entry,
        has_median=has_median,
        types=types,
        unlisted=sorted(unlisted.values(), key=lambda u: u.path),
        errors=list(errors),
        files_seen=seen,
        empty=sorted(empty),
    )


def _sample(entry: FaultEntry, tname: str, host: str,
            host_sel: Mapping[int, list[tuple[Hit, str | None, int | None]]]) -> TypeCheck:
    by_event: dict[str, list[Hit]] = {}
    for keep in host_sel.values():
        for h, ev, _ in keep:
            if ev is not None:
                by_event.setdefault(ev, []).append(h)
    tc = TypeCheck(tname, sample_of=host)
    if not by_event:
        return tc
    fault = entry.name
    event = fault if fault in by_event else min(by_event, key=lambda e: _event_order(fault, e))
    tc.sample_event = event
    for h in sorted(by_event[event], key=lambda h: h.path):
        tc.files.setdefault(h.path, FileRecord(h.path, h.size, h.mtime_ns))
    return tc


def _short(label: str) -> str:
    """The last segment of a pattern label: enough to tell patterns apart in a cell."""
    return label.rsplit("/", 1)[-1]


def pattern_text(fault: str, pc: PatternCheck) -> str:
    """What is wrong with one failed pattern, in a few words."""
    name = _short(pc.label)
    if pc.found > pc.expected:
        return f"{name}: {pc.found} found, {pc.expected} expected"
    if pc.missing:
        return f"{name}: missing {list_events(fault, pc.missing)}"
    if pc.expected == 1:
        return f"{name}: missing"
    return f"{name}: {pc.found} of {pc.expected}"


def cell_text(fault: str, tc: TypeCheck) -> str:
    """A type's cell in the report: ``OK`` or what is missing."""
    if tc.sample_of is not None:
        if tc.ok:
            return f"OK ({short_event(fault, tc.sample_event or '')})"
        return f"no {tc.sample_of} to sample"
    if tc.ok:
        return "OK"
    return "; ".join(pattern_text(fault, p) for p in tc.patterns if not p.ok)


def problems(checks: Sequence[FaultCheck]) -> list[Problem]:
    """Every failed check and every note, one line each, faults in list order."""
    out: list[Problem] = []
    for fc in checks:
        f = fc.name
        for err in fc.errors:
            out.append(Problem(f, None, True, f"{f}: {err}"))
        for tname, tc in fc.types.items():
            if tc.sample_of is not None:
                if not tc.ok:
                    out.append(Problem(f, tname, True,
                                       f"{f} {tname}: no {tc.sample_of} file of the median or a listed realisation to sample"))
                continue
            for pc in tc.patterns:
                if pc.ok:
                    continue
                text = f"{f} {tname}: {pc.label}: found {pc.found}, expected {pc.expected}"
                if pc.missing:
                    text += f"; missing {list_events(f, pc.missing)}"
                if pc.found > pc.expected:
                    text += f"; {pc.found - pc.expected} more than expected"
                for names in pc.twice:
                    times = "twice" if len(names) == 2 else f"{len(names)} times"
                    text += f"; {short_event(f, realisation_name(f, event_rel(f, names[0]) or 0))} {times} ({', '.join(names)})"
                if pc.strays:
                    shown = ", ".join(pc.strays[:MAX_LISTED_STRAYS])
                    more = f" and {len(pc.strays) - MAX_LISTED_STRAYS} more" if len(pc.strays) > MAX_LISTED_STRAYS else ""
                    text += f"; of no event: {shown}{more}"
                out.append(Problem(f, tname, True, text))
        if fc.unlisted:
            events = sorted({u.event for u in fc.unlisted}, key=lambda e: _event_order(f, e))
            text = (
                f"{f}: {len(fc.unlisted)} files of realisations outside the list "
                f"(REL{fc.entry.first:02d}..REL{fc.entry.last:02d}) not selected: {list_events(f, events)}"
            )
            out.append(Problem(f, None, False, text))
        if fc.empty:
            shown = ", ".join(fc.empty[:MAX_LISTED_STRAYS])
            more = f" and {len(fc.empty) - MAX_LISTED_STRAYS} more" if len(fc.empty) > MAX_LISTED_STRAYS else ""
            out.append(Problem(f, None, False, f"{f}: {plural(len(fc.empty), 'empty file')} (0 bytes), selected: "
                                                f"{shown}{more}"))
    return out


def column_names(config: SyncConfig, out_types: Sequence[str]) -> list[str]:
    cols = ["rel_nums", "rel_start"]
    for tname in out_types:
        dtype = config.types[tname]
        cols.append(f"{tname}_ok")
        if dtype.sample_of is not None:
            cols += [f"num({tname})", f"OK({tname})"]
            continue
        for p in dtype.patterns:
            cols += [f"num({tname}_{p.label})", f"OK({tname}_{p.label})"]
    return cols + ["median", "unlisted_files"]


def stocktake_frame(checks: Sequence[FaultCheck], config: SyncConfig, out_types: Sequence[str]) -> pd.DataFrame:
    """``stocktake.csv`` as a DataFrame: index = fault name, the older scripts' columns
    (``rel_nums``, ``rel_start``, ``num(TYPE_pattern)``, ``OK(TYPE_pattern)``) plus
    ``TYPE_ok`` per type and, last, ``median`` and ``unlisted_files``."""
    import pandas as pd  # here: a bad-input error should not wait for pandas to load

    rows = []
    for fc in checks:
        row: list = [fc.entry.n_rels, fc.entry.first]
        for tname in out_types:
            tc = fc.types[tname]
            row.append(tc.ok)
            if tc.sample_of is not None:
                row += [len(tc.files), tc.ok]
                continue
            for pc in tc.patterns:
                row += [pc.found, pc.ok]
        row += [fc.has_median, len(fc.unlisted)]
        rows.append(row)
    return pd.DataFrame(rows, index=[fc.name for fc in checks], columns=column_names(config, out_types))


# -- the stocktake as data for a page (the report) ----------------------------------------------
# One shape, whether made from the checks of a preprocess run or read back from a stocktake.csv
# (ours or the older scripts'): {"source", "types", "patterns": [{"type", "pattern"}], "rows":
# [{"fault", "rels", "rel_start", "median", "unlisted", "ok", "types": {T: {"ok", "files",
# "bytes"}}, "cells": [{"found", "expected", "ok", "missing"}] (one per pattern)}],
# "failed_faults"}. Values a CSV does not hold (sizes, an older file's median) are None.


def stocktake_doc(checks: Sequence[FaultCheck], out_types: Sequence[str], source: str) -> dict:
    """The stocktake of a preprocess run (pure)."""
    columns: list[tuple[str, str]] = []
    for fc in checks[:1]:
        for tname in out_types:
            tc = fc.types[tname]
            if tc.sample_of is not None:
                columns.append((tname, tname))
            columns += [(tname, pc.label) for pc in tc.patterns]
    rows = []
    for fc in checks:
        cells = []
        for tname in out_types:
            tc = fc.types[tname]
            if tc.sample_of is not None:
                cells.append({"found": len(tc.files), "expected": None, "ok": tc.ok,
                              "missing": "" if tc.ok else f"no {tc.sample_of} to sample"})
            for pc in tc.patterns:
                cells.append({"found": pc.found, "expected": pc.expected, "ok": pc.ok,
                              "missing": list_events(fc.name, pc.missing) if pc.missing else ""})
        rows.append({
            "fault": fc.name, "rels": fc.entry.n_rels, "rel_start": fc.entry.first, "median": fc.has_median,
            "unlisted": len(fc.unlisted), "ok": fc.ok,
            "types": {t: {"ok": fc.types[t].ok, "files": len(fc.types[t].files), "bytes": fc.types[t].bytes}
                      for t in out_types},
            "cells": cells,
        })
    return {"source": source, "types": list(out_types),
            "patterns": [{"type": t, "pattern": p} for t, p in columns], "rows": rows,
            "failed_faults": sum(1 for r in rows if not r["ok"])}
