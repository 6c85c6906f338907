"""The report's view-model: what the HTML page shows, made from the data ``cs-sync status --json`` prints.

Pure: dicts in (a version's status document, the versions list, a preprocess
stocktake), dicts out (header totals, grid rows, chart geometry, problems with the
command that fixes each). The template (ui/templates/) only lays them out, so
everything here is testable without a browser. State words are the ones
``cs-sync status`` uses.
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence

from cs_sync.core.sizes import format_size
from cs_sync.status import BAD_STATES

# worst first: the order of the "state" sort and of the legend
STATE_ORDER = ["incomplete", "mismatch", "damaged sidecar", "ambiguous", "stale", "not uploaded", "complete", "absent"]
PROBLEM_STATES = {s.value for s in BAD_STATES}  # the states that make `cs-sync status` exit 7
CHECK_WORDS = {  # in a cell's tooltip, and (with the longer text) in the header
    "content": ("checked by content", "checked by content at upload (a hash of the bytes the remote holds)"),
    "size": ("checked by size only", "checked by size only at upload"),
    "unrecorded": ("check not recorded", "with a sidecar that does not record how they were checked"),
    "indexed with SHA-256": ("older scripts: indexed with SHA-256s", "from the older scripts, indexed with "
                             "--hash-members (every part's and member's SHA-256 recorded)"),
    "indexed": ("older scripts: indexed", "from the older scripts, indexed by cs-sync index (member places and "
                "sizes, the remote's hash; not the content)"),
    "no sidecar": ("older scripts: no sidecar", "from the older scripts, without a sidecar or index "
                                                 "(complete by part names only)"),
}
# the upload option that fixes a set in each state (planning.decide_set): a plain re-run
# repairs incomplete and mismatched sets and uploads missing ones; stale sets need --update;
# an ambiguous set is refused unless --overwrite
FIX_FLAGS = {"incomplete": (), "mismatch": (), "not uploaded": (), "stale": ("--update",),
             "ambiguous": ("--overwrite",), "damaged sidecar": ("--overwrite",)}
FIX_WHY = {"incomplete": "uploads the missing parts", "mismatch": "re-uploads the parts that differ",
           "not uploaded": "uploads the set", "stale": "re-uploads it from the changed sources",
           "ambiguous": "replaces the remote set (its extra parts are deleted)",
           "damaged sidecar": "rebuilds the set and a valid sidecar (the damaged one is not trusted)"}
CHART_W, CHART_H, CHART_PAD_L, CHART_PAD_B = 1200, 240, 70, 18
MAX_SLOT = 60  # a few faults get bars of this width, not the whole chart
LABELS_UP_TO = 40  # fault names under the chart's bars when there are at most this many


def state_class(state: str) -> str:
    return "s-" + state.replace(" ", "-")


def state_word(state: str) -> str:
    """As in the terminal table: ``ok`` for complete, the state's name otherwise."""
    return "ok" if state == "complete" else state


def when(iso: str | None) -> str | None:
    """``2024-05-01T10:20:30+00:00`` -> ``2024-05-01 10:20:30 UTC`` (sidecar times are UTC)."""
    if not iso:
        return iso
    text = iso.replace("T", " ", 1)
    for suffix in ("+00:00", "Z"):
        if text.endswith(suffix):
            return text[: -len(suffix)] + " UTC"
    return text


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _rank(state: str) -> int:
    return STATE_ORDER.index(state) if state in STATE_ORDER else 0


# -- one version ------------------------------------------------------------------------------------

def cell_view(fault: str, dtype: str, cell: dict | None) -> dict:
    """One grid cell: state, short text, and a tooltip with parts, size, evidence and problems."""
    if cell is None:
        return {"state": "absent", "cls": state_class("absent"), "word": "-", "detail": "", "size": 0,
                "title": f"{fault} {dtype}: absent (nothing on the remote)"}
    state = cell["state"]
    size, parts = int(cell.get("size") or 0), int(cell.get("parts") or 0)
    detail = "" if state == "not uploaded" else f"{parts} · {format_size(size)}"
    lines = [f"{fault} {dtype}: {state}"]
    if state != "not uploaded":
        lines.append(f"{plural(parts, 'part')}, {format_size(size)} ({size:,} bytes)")
    if cell.get("check"):
        lines.append(CHECK_WORDS.get(cell["check"], (cell["check"], ""))[0])
    if cell.get("uploaded"):
        lines.append(f"uploaded {when(cell['uploaded'])}")
    lines += list(cell.get("problems") or [])
    cls = state_class(state) + (" legacy" if cell.get("check") == "no sidecar" else "")
    return {"state": state, "cls": cls, "word": state_word(state), "detail": detail, "size": size,
            "title": "\n".join(lines)}


def grid_rows(faults: Sequence[str], types: Sequence[str], cells: dict[tuple[str, str], dict]) -> list[dict]:
    rows = []
    for f in faults:
        cs = [cell_view(f, t, cells.get((f, t))) for t in types]
        rank = min((_rank(c["state"]) for c in cs), default=_rank("absent"))
        rows.append({"fault": f, "cells": cs, "size": sum(c["size"] for c in cs), "rank": rank,
                     "problem": any(c["state"] in PROBLEM_STATES for c in cs)})
    return rows


def state_counts(doc: dict) -> list[dict]:
    """Sets per state, absent included (faults x types minus the sets there are), worst first."""
    sets = dict(doc.get("totals", {}).get("sets", {}))
    present = sum(sets.values())
    sets["absent"] = max(0, len(doc.get("faults", [])) * len(doc.get("types", [])) - present)
    return [{"state": s, "cls": state_class(s), "n": int(sets.get(s, 0))} for s in STATE_ORDER]


def _q(text: str) -> str:
    return shlex.quote(str(text))


def upload_command(doc: dict, types: Sequence[str] | str | None, faults: Iterable[str],
                   flags: Sequence[str] = ()) -> str:
    """The cs-sync-upload line that fixes sets (CS_ROOT and FILES_TO_SYNC from the manifest when
    known, else those words), every value shell-quoted: fault names come from the remote."""
    parts = ["cs-sync-upload", _q(doc.get("cs_root") or "CS_ROOT"), _q(doc.get("manifest") or "FILES_TO_SYNC"),
             "--remote", _q(doc["root"])]
    if isinstance(types, str):
        types = [types]
    if types:
        parts += ["-t", *(_q(t) for t in types)]
    parts += list(flags)
    names = list(faults)
    if names:
        parts += ["--inc_fault", *(_q(f) for f in names)]
    return " ".join(parts)


def problems(doc: dict) -> list[dict]:
    """Every set that is not complete, and a missing list.txt / stocktake.csv, each with its fix."""
    out = []
    for c in doc.get("cells", []):
        state = c.get("state")
        if state not in PROBLEM_STATES:
            continue
        out.append({"fault": c["fault"], "type": c["type"], "state": state, "cls": state_class(state),
                    "why": "; ".join(c.get("problems") or []) or state,
                    "command": upload_command(doc, c["type"], [c["fault"]], FIX_FLAGS[state]),
                    "effect": FIX_WHY[state]})
    out.sort(key=lambda p: (_rank(p["state"]), p["fault"], p["type"]))
    for name, present in (("list.txt", doc.get("has_list")), ("stocktake.csv", doc.get("has_stocktake"))):
        if present is False:
            out.append({"fault": "", "type": "", "state": "missing", "cls": state_class("incomplete"),
                        "why": f"{name} is not on the remote", "command": upload_command(doc, None, []),
                        "effect": f"uploads {name} with the version's root files (complete sets are skipped)"})
    return out


def fix_all(doc: dict) -> list[dict]:
    """Few commands that fix every problem set: one per state and group of faults needing the
    same data types (a fault missing altogether takes one line, not one per type)."""
    need: dict[tuple[str, str], list[str]] = {}
    for c in doc.get("cells", []):
        if c.get("state") in PROBLEM_STATES:
            need.setdefault((c["state"], c["fault"]), []).append(c["type"])
    order = {t: i for i, t in enumerate(doc.get("types", []))}
    groups: dict[tuple[str, tuple[str, ...]], list[str]] = {}
    for (state, fault), types in need.items():
        key = (state, tuple(sorted(types, key=lambda t: (order.get(t, len(order)), t))))
        groups.setdefault(key, []).append(fault)
    out = []
    for (state, types), faults in sorted(groups.items(), key=lambda kv: (_rank(kv[0][0]), kv[0][1])):
        out.append({"state": state, "cls": state_class(state), "types": " ".join(types), "n": len(faults),
                    "command": upload_command(doc, list(types), sorted(faults), FIX_FLAGS[state])})
    return out


_STEPS = sorted(m * 10.0 ** e for e in range(-2, 5) for m in (1, 2, 5))
_UNITS = [(1 << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB"), (1, "B")]


def ticks(top: int) -> list[tuple[int, str]]:
    """Axis ticks from 0 past ``top``: round steps (1, 2 or 5 x 10^k) of one binary unit."""
    if top <= 0:
        return [(0, "0 B")]
    unit, name = next((u, n) for u, n in _UNITS if top >= u)
    span = top / unit
    step = min(s for s in _STEPS if span / s <= 5)
    out, k = [], 0
    while True:
        v = k * step
        out.append((int(round(v * unit)), f"{v:g} {name}" if v else "0"))
        if v >= span:
            return out
        k += 1


def chart(faults: Sequence[str], types: Sequence[str], size_of) -> dict:
    """A column per fault (largest first), stacked by type; ``size_of(fault, type)`` gives bytes.

    Geometry only (SVG user units); the template draws it, each rectangle with a tooltip.
    """
    totals = {f: sum(size_of(f, t) for t in types) for f in faults}
    order = sorted(faults, key=lambda f: (-totals[f], f))
    top = max(totals.values(), default=0)
    axis = ticks(top)
    scale_top = max(axis[-1][0], 1)
    plot_w = CHART_W - CHART_PAD_L - 10
    plot_h = CHART_H - CHART_PAD_B - 10
    n = max(len(order), 1)
    slot = min(plot_w / n, MAX_SLOT)
    gap = min(slot * 0.15, 2.0)
    labels = len(order) <= LABELS_UP_TO
    bars = []
    for i, f in enumerate(order):
        x = CHART_PAD_L + i * slot
        y = 10 + plot_h
        rects = []
        for ti, t in enumerate(types):
            b = size_of(f, t)
            if b <= 0:
                continue
            h = b / scale_top * plot_h
            y -= h
            rects.append({"y": round(y, 2), "h": round(max(h, 0.5), 2), "cls": f"t{ti % 6}"})
        title = f"{f}: {format_size(totals[f])}" + "".join(
            f"\n{t} {format_size(size_of(f, t))}" for t in types if size_of(f, t) > 0)
        bars.append({"x": round(x + gap / 2, 2), "w": round(max(slot - gap, 0.5), 2), "rects": rects,
                     "fault": f, "title": title, "label_x": round(x + slot / 2, 2)})
    return {"width": CHART_W, "height": CHART_H + (55 if labels else 0), "base": 10 + plot_h,
            "left": CHART_PAD_L, "right": CHART_W - 10, "labels": labels,
            "ticks": [{"y": round(10 + plot_h - v / scale_top * plot_h, 2), "text": text} for v, text in axis],
            "bars": bars, "types": [{"name": t, "cls": f"t{i % 6}"} for i, t in enumerate(types)]}


def stocktake_view(st: dict | None) -> dict | None:
    """The stocktake per fault and pattern: found/expected, failures marked; None when there is none."""
    if not st:
        return None
    if st.get("error"):
        return {"source": st.get("source", ""), "error": st["error"], "rows": [], "groups": [], "patterns": []}
    pats = st.get("patterns", [])
    groups: list[dict] = []
    for p in pats:
        if groups and groups[-1]["type"] == p["type"]:
            groups[-1]["span"] += 1
        else:
            groups.append({"type": p["type"], "span": 1})
    rows = []
    for r in st.get("rows", []):
        cells = []
        for p, c in zip(pats, r.get("cells", [])):
            exp = c.get("expected")
            text = f"{c['found']}/{exp}" if exp is not None else str(c["found"])
            ok = bool(c.get("ok"))
            title = "" if ok else f"{r['fault']} {p['type']} {p['pattern']}: found {c['found']}" + (
                f", expected {exp}" if exp is not None else "") + (f"; missing {c['missing']}" if c.get("missing") else "")
            cells.append({"text": text, "ok": ok, "title": title})  # a tooltip for failures only: size
        rels = r.get("rels")
        first = r.get("rel_start")
        rows.append({"fault": r["fault"], "ok": bool(r.get("ok")), "cells": cells,
                     "rels": "" if rels is None else (f"{rels} (REL{first:02d}–REL{first + rels - 1:02d})"
                                                      if first not in (None, 1) and rels else str(rels)),
                     "median": {True: "yes", False: "no"}.get(r.get("median"), "?"),
                     "unlisted": r.get("unlisted") or 0})
    return {"source": st.get("source", ""), "error": None, "groups": groups, "patterns": pats, "rows": rows,
            "failed": int(st.get("failed_faults", sum(1 for r in rows if not r["ok"]))), "total": len(rows)}


def list_text(doc: dict) -> str:
    """``yes (10 faults, 2 with nothing on the remote; on the remote, not in it: Extra)``, as the
    terminal table says it; ``yes`` for a document saved before list.txt was read."""
    if not doc.get("has_list"):
        return "MISSING"
    if doc.get("list_error"):
        return f"yes, but unreadable ({doc['list_error']})"
    if doc.get("list_faults") is None:
        return "yes"
    missing, unlisted = doc.get("list_missing") or [], doc.get("unlisted") or []
    text = f"yes ({plural(int(doc['list_faults']), 'fault')}" + (
        f", {len(missing)} with nothing on the remote" if missing else "")
    if unlisted:
        more = f" (+{len(unlisted) - 10} more)" if len(unlisted) > 10 else ""
        text += f"; on the remote, not in it: {', '.join(unlisted[:10])}{more}"
    return text + ")"


def version_view(doc: dict, *, made: str, run: dict | None = None) -> dict:
    """Everything the page of one version shows. ``doc``: ``cs-sync status CS_VER --json``."""
    faults, types = list(doc.get("faults", [])), list(doc.get("types", []))
    cells = {(c["fault"], c["type"]): c for c in doc.get("cells", [])}
    totals = doc.get("totals", {})
    checks = totals.get("checks") or {}
    uploaded = totals.get("uploaded") or {}
    return {
        "kind": "version",
        "title": f"{doc['version']}: cs-sync report",
        "version": doc["version"], "root": doc["root"], "manifest": doc.get("manifest"), "made": made,
        "faults": len(faults), "types": types,
        "states": state_counts(doc),
        "bytes": format_size(int(totals.get("bytes", 0))), "bytes_exact": int(totals.get("bytes", 0)),
        "parts": int(totals.get("parts", 0)),
        "by_type": [{"type": t, "bytes": format_size(int(b)), "cls": f"t{i % 6}"}
                    for i, (t, b) in enumerate((t, totals.get("bytes_by_type", {}).get(t, 0)) for t in types)],
        "checks": [{"key": k, "n": int(checks.get(k, 0)), "text": CHECK_WORDS[k][1]} for k in CHECK_WORDS],
        "oldest": when(uploaded.get("oldest")), "newest": when(uploaded.get("newest")),
        "has_list": doc.get("has_list"), "has_stocktake": doc.get("has_stocktake"), "list_text": list_text(doc),
        "exit_code": doc.get("exit_code"),
        "rows": grid_rows(faults, types, cells),
        "chart": chart(faults, types, lambda f, t: int((cells.get((f, t)) or {}).get("size") or 0)),
        "stocktake": stocktake_view(doc.get("stocktake")),
        "problems": problems(doc), "fix_all": fix_all(doc),
        "other_files": list(doc.get("other_files", [])),
        "run": run,
        "data": doc,
    }


def run_view(kind: str, version: str | None, lines: list[str], ok: bool, *, made: str) -> dict:
    """A Slurm run with no version document (a download): the shards' report only."""
    return {"kind": "run", "title": f"{version or kind}: cs-sync slurm {kind}", "version": version or "",
            "made": made, "run": {"kind": kind, "lines": lines, "ok": ok}, "data": None}


# -- every version under a root ---------------------------------------------------------------------

def versions_view(doc: dict, *, made: str, links: dict[str, str] | None = None) -> dict:
    """The overview page. ``doc``: ``cs-sync status --json`` without CS_VER; ``links``: version -> page."""
    links = links or {}
    rows = []
    for v in doc.get("versions", []):
        sets, bad = int(v.get("sets", 0)), int(v.get("problem_sets", 0))
        pct = 100.0 * (sets - bad) / sets if sets else 0.0
        rows.append({"name": v["name"], "faults": int(v.get("faults", 0)), "sets": sets, "problems": bad,
                     "size": format_size(int(v.get("size", 0))), "bytes": int(v.get("size", 0)),
                     "complete_pct": round(pct, 1), "href": links.get(v["name"]),
                     "cls": state_class("complete" if not bad else "incomplete")})
    total = sum(r["bytes"] for r in rows)
    return {"kind": "versions", "title": f"cs-sync report: versions under {doc['root']}", "root": doc["root"],
            "made": made, "rows": rows, "total": format_size(total), "data": doc}


# -- a preprocess run (before anything is uploaded) -------------------------------------------------

def stocktake_page_view(pdoc: dict, *, made: str) -> dict:
    """The page ``cs-sync-preprocess --html`` writes. ``pdoc``: see cli/preprocess.py (``stocktake_doc``
    of the run plus version, CS_ROOT, list and problems)."""
    st = pdoc["stocktake"]
    types = list(st.get("types", []))
    by_fault = {r["fault"]: r for r in st.get("rows", [])}
    faults = [r["fault"] for r in st.get("rows", [])]
    rows = []
    for f in faults:
        r = by_fault[f]
        cs = []
        for t in types:
            tv = r["types"].get(t, {})
            ok = bool(tv.get("ok"))
            size = int(tv.get("bytes") or 0)
            cs.append({"state": "OK" if ok else "failed", "cls": state_class("complete" if ok else "incomplete"),
                       "word": "OK" if ok else "FAILED", "size": size,
                       "detail": f"{int(tv.get('files') or 0)} · {format_size(size)}",
                       "title": f"{f} {t}: {'OK' if ok else 'failed'}, {plural(int(tv.get('files') or 0), 'file')}, "
                                f"{format_size(size)}"})
        rows.append({"fault": f, "cells": cs, "size": sum(c["size"] for c in cs), "rank": 1 if r["ok"] else 0,
                     "problem": not r["ok"]})
    rerun = " ".join(["cs-sync-preprocess", _q(pdoc["cs_root"]), _q(pdoc["fault_list"])])
    probs = [{"fault": p["fault"], "type": p.get("type") or "", "state": "failed" if p["failed"] else "note",
              "cls": state_class("incomplete" if p["failed"] else "stale"), "why": p["text"],
              "command": rerun if p["failed"] else "", "effect": "after fixing the data or list.txt" if p["failed"] else ""}
             for p in pdoc.get("problems", [])]
    totals = pdoc.get("totals", {})
    n_bad = st.get("failed_faults", 0)
    return {
        "kind": "stocktake", "title": f"{pdoc['version']}: cs-sync stocktake", "version": pdoc["version"],
        "cs_root": pdoc["cs_root"], "made": made, "types": types, "faults": len(faults),
        "ok_faults": len(faults) - n_bad, "failed_faults": n_bad,
        "by_type": [{"type": t, "cls": f"t{i % 6}", "files": int(totals.get(t, {}).get("files", 0)),
                     "bytes": format_size(int(totals.get(t, {}).get("bytes", 0)))} for i, t in enumerate(types)],
        "bytes": format_size(sum(int(v.get("bytes", 0)) for v in totals.values())),
        "rows": rows,
        "chart": chart(faults, types, lambda f, t: int(by_fault[f]["types"].get(t, {}).get("bytes") or 0)),
        "stocktake": stocktake_view(st), "problems": probs, "fix_all": [],
        "data": pdoc,
    }
