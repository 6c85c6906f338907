"""Read a ``stocktake.csv`` back (this tool's or the older scripts'): found vs expected per fault and pattern.

The report shows it beside what the remote holds. The shape is the one
``preprocess.stocktake.stocktake_doc`` makes from a run's checks: {"source",
"types", "patterns": [{"type", "pattern"}], "rows": [{"fault", "rels", "rel_start",
"median", "unlisted", "ok", "types": {T: {"ok", "files", "bytes"}}, "cells":
[{"found", "expected", "ok", "missing"}] (one per pattern)}], "failed_faults"}.
Values a CSV does not hold (sizes, an older file's median) are None. Pure: text in,
data out; the csv module, not pandas (a report should not wait for pandas to load).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from cs_sync.core.errors import InputError
from cs_sync.inputs.config import EXPECT_EVENTS, SyncConfig


def _split_column(name: str, types: Sequence[str]) -> tuple[str, str]:
    """``BB_*/BB/Acc/BB.bin`` -> (``BB``, ``*/BB/Acc/BB.bin``); ``SAMPLE_BB`` -> (SAMPLE_BB, SAMPLE_BB)."""
    if name in types:
        return name, name
    for t in sorted(types, key=len, reverse=True):
        if name.startswith(t + "_"):
            return t, name[len(t) + 1:]
    head, _, rest = name.partition("_")
    return head, rest or head


def _bool(text: str) -> bool | None:
    t = text.strip().lower()
    if t in ("true", "1", "yes"):
        return True
    if t in ("false", "0", "no"):
        return False
    return None


def _at(rec: list[str], i: int | None) -> str | None:
    return rec[i] if i is not None and i < len(rec) else None


def _number(source: str, lineno: int, name: str, text: str | None) -> int | None:
    if text is None or text.strip() == "":
        return None
    try:
        return int(float(text))
    except (ValueError, OverflowError):  # 'x', 'nan' / 'inf', '1e999'
        raise InputError(f"{source}: line {lineno}: {name} is {text!r}, not a number",
                         hint="give a stocktake.csv written by cs-sync-preprocess") from None


def parse_stocktake_csv(text: str, config: SyncConfig, source: str) -> dict:
    """Read a ``stocktake.csv`` (this tool's or the older scripts') into the page's shape.

    Found counts and verdicts come from the file; the expected count is worked out
    from ``rel_nums``, ``median`` and the config's pattern where they are known (an
    older file without ``median`` leaves it unknown for patterns counting events).
    Raises InputError naming the line and value when a count is not a number.
    """
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise InputError(f"{source}: empty stocktake", hint="give a stocktake.csv written by cs-sync-preprocess") from None
    col = {name: i for i, name in enumerate(header)}
    names = config.names()
    columns: list[tuple[str, str, int, int | None]] = []  # (type, pattern, num index, OK index)
    for i, name in enumerate(header):
        if name.startswith("num(") and name.endswith(")"):
            inner = name[4:-1]
            t, p = _split_column(inner, names)
            columns.append((t, p, i, col.get(f"OK({inner})")))
    if not columns:
        raise InputError(f"{source}: line 1: no num(...) columns: not a stocktake",
                         hint="give a stocktake.csv written by cs-sync-preprocess or the older scripts")
    patterns = {(t, p.label): p for t, dt in config.types.items() for p in dt.patterns}
    types = list(dict.fromkeys(t for t, _, _, _ in columns))
    rows = []
    for lineno, rec in enumerate(reader, start=2):
        if not rec or not any(v.strip() for v in rec):
            continue
        rels = _number(source, lineno, "rel_nums", _at(rec, col.get("rel_nums")))
        median_text = _at(rec, col.get("median"))
        median = _bool(median_text) if median_text is not None else None
        cells = []
        for t, p, ni, oi in columns:
            found = _number(source, lineno, header[ni], _at(rec, ni)) or 0
            ok_text = _at(rec, oi)
            pat = patterns.get((t, p))
            expected = None
            if pat is not None and rels is not None and (median is not None or pat.expect != EXPECT_EVENTS):
                expected = pat.expected(rels, bool(median))
            ok = _bool(ok_text) if ok_text is not None else None
            if ok is None:
                ok = expected is None or found == expected
            cells.append({"found": found, "expected": expected, "ok": ok, "missing": ""})
        type_ok = {}
        for t in types:
            v = _at(rec, col.get(f"{t}_ok"))
            verdict = _bool(v) if v is not None else None
            if verdict is None:
                verdict = all(c["ok"] for c, (ct, _, _, _) in zip(cells, columns) if ct == t)
            type_ok[t] = {"ok": verdict, "files": None, "bytes": None}
        rows.append({
            "fault": rec[0], "rels": rels, "median": median,
            "rel_start": _number(source, lineno, "rel_start", _at(rec, col.get("rel_start"))),
            "unlisted": _number(source, lineno, "unlisted_files", _at(rec, col.get("unlisted_files"))),
            "ok": all(v["ok"] for v in type_ok.values()), "types": type_ok, "cells": cells,
        })
    return {"source": source, "types": types, "patterns": [{"type": t, "pattern": p} for t, p, _, _ in columns],
            "rows": rows, "failed_faults": sum(1 for r in rows if not r["ok"])}
