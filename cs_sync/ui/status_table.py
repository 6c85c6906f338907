"""Draw ``cs-sync status``: a rich table on a terminal, aligned plain text otherwise, JSON for scripts."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import IO

from cs_sync.core.sizes import format_size
from cs_sync.core.text import plural
from cs_sync.status import INDEXED, INDEXED_HASHED, NO_SIDECAR, Cell, CellState, VersionStatus, VersionSummary

CELL_WIDTH = 60  # a plain-text cell longer than this shows its state and size; its why goes below the table

_STYLE = {
    CellState.COMPLETE: "green",
    CellState.INCOMPLETE: "bold red",
    CellState.AMBIGUOUS: "bold magenta",
    CellState.MISMATCH: "bold red",
    CellState.DAMAGED: "bold red",
    CellState.ABSENT: "dim",
    CellState.STALE: "yellow",
    CellState.NOT_UPLOADED: "yellow",
}


def cell_text(c: Cell, *, detail: bool = True) -> str:
    """``ok 3 parts, 1.2 GiB`` / ``INCOMPLETE: missing part _1`` / ``-`` for absent.

    A complete set no sidecar vouches for (the older scripts') reads ``unverified ... (no
    sidecar)``, one vouched for by an index ``ok ... (indexed)``: never like a verified one.
    """
    if c.state == CellState.ABSENT:
        return "-"
    size = f"{c.parts} part{'s' if c.parts != 1 else ''}, {format_size(c.size)}"
    if c.state == CellState.COMPLETE:
        if c.check == NO_SIDECAR:
            return f"unverified {size} (no sidecar)"
        return f"ok {size}" + (" (indexed)" if c.check in (INDEXED, INDEXED_HASHED) else "")
    head = c.state.value.upper()
    why = "; ".join(c.problems) if detail and c.problems else ""
    if c.state == CellState.NOT_UPLOADED:
        return head + (f": {why}" if why else "")
    return f"{head} {size}" + (f": {why}" if why else "")


def totals_lines(st: VersionStatus) -> list[str]:
    t = st.totals()
    counts = ", ".join(f"{n} {state}" + (_complete_by(st) if state == CellState.COMPLETE.value else "")
                       for state, n in t["sets"].items() if n)
    by_type = ", ".join(f"{k} {format_size(v)}" for k, v in t["bytes_by_type"].items() if v)
    return [
        f"total: {plural(t['faults'], 'fault')}, {counts or 'no sets'}; {plural(t['parts'], 'file')}, {format_size(t['bytes'])}"
        + (f" ({by_type})" if by_type else ""),
        f"list.txt: {_list_text(st)}; stocktake.csv: {'yes' if st.has_stocktake else 'MISSING'}",
        *_unlisted_lines(st.unlisted),
        *_other_files_lines(st.other_files),
    ]


def _list_text(st: VersionStatus) -> str:
    if not st.has_list:
        return "MISSING"
    if st.list_error:
        return f"yes, but unreadable ({st.list_error})"
    if st.list_faults is None:
        return "yes"
    missing = len(st.list_missing)
    return f"yes ({plural(st.list_faults, 'fault')}" + (f", {missing} with nothing on the remote)" if missing else ")")


def _unlisted_lines(unlisted: list[str], shown: int = 10) -> list[str]:
    """Faults on the remote that list.txt does not name (not a problem: said so they are seen)."""
    if not unlisted:
        return []
    names = ", ".join(unlisted[:shown]) + (f" (+{len(unlisted) - shown} more)" if len(unlisted) > shown else "")
    return [f"on the remote, not in list.txt: {names}"]


def _complete_by(st: VersionStatus) -> str:
    """`` (3 without a sidecar, 2 indexed)``: how many complete sets no sidecar of this tool vouches for."""
    done = [c for c in st.cells.values() if c.state == CellState.COMPLETE]
    bare = sum(1 for c in done if c.check == NO_SIDECAR)
    indexed = sum(1 for c in done if c.check in (INDEXED, INDEXED_HASHED))
    bits = [f"{bare} without a sidecar"] * bool(bare) + [f"{indexed} indexed"] * bool(indexed)
    return f" ({', '.join(bits)})" if bits else ""


def _other_files_lines(other: list[str], shown: int = 5) -> list[str]:
    """Files that are no set's parts (left alone by upload and download), so a stray is seen."""
    if not other:
        return []
    names = ", ".join(sorted(other)[:shown]) + (f" (+{len(other) - shown} more)" if len(other) > shown else "")
    return [f"other files (not parts of any set, left alone): {names}"]


def render_version(st: VersionStatus, stream: IO[str], *, rich: bool) -> None:
    title = f"{st.root.rstrip('/')}/{st.version}" + (f"  (compared with {st.manifest})" if st.manifest else "")
    if rich:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, show_lines=False)
        table.add_column("fault", style="bold")
        for t in st.types:
            table.add_column(t, overflow="fold")
        for f in st.faults:
            row = []
            for t in st.types:
                c = st.cell(f, t)
                style = "cyan" if c.state == CellState.COMPLETE and c.check == NO_SIDECAR else _STYLE[c.state]
                row.append(f"[{style}]{_escape(cell_text(c))}[/]")
            table.add_row(f, *row)
        console = Console(file=stream)
        console.print(table)
        for line in totals_lines(st):
            console.print(line, highlight=False)
        return
    print(title, file=stream)
    header = ["fault", *st.types]
    rows, details = [], []
    for f in st.faults:
        row = [f]
        for t in st.types:
            c = st.cell(f, t)
            text = cell_text(c)
            if len(text) > CELL_WIDTH:  # the why goes below the table: every row stays one aligned line
                text = cell_text(c, detail=False) + " (*)"
                details.append(f"  {f} {t}: {'; '.join(c.problems)}")
            row.append(text)
        rows.append(row)
    for line in plain_table([header, *rows]):
        print(line, file=stream)
    if details:
        print("(*) details:", file=stream)
        for line in details:
            print(line, file=stream)
    for line in totals_lines(st):
        print(line, file=stream)


def plain_table(rows: list[list[str]]) -> list[str]:
    """Aligned text lines, one per row; no column is ever cut (fault names can be long)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip() for r in rows]


def render_versions(root: str, versions: list[VersionSummary], stream: IO[str], *, rich: bool) -> None:
    header = ["version", "faults", "sets", "size", "problems"]
    rows = [[v.name, str(v.faults), str(v.sets), format_size(v.size), str(v.problem_sets) if v.problem_sets else "-"]
            for v in versions]
    total = sum(v.size for v in versions)
    foot = f"{len(versions)} version(s) under {root}, {format_size(total)}"
    if rich:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"versions under {root}")
        for h in header:
            table.add_column(h, justify="left" if h == "version" else "right")
        for r in rows:
            table.add_row(*r)
        console = Console(file=stream)
        console.print(table)
        console.print(foot, highlight=False)
        return
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, *rows]:
        print("  ".join(v.ljust(w) if i == 0 else v.rjust(w) for i, (v, w) in enumerate(zip(r, widths))), file=stream)
    print(foot, file=stream)


def versions_json(root: str, versions: list[VersionSummary]) -> str:
    return json.dumps({"root": root, "versions": [asdict(v) for v in versions]}, indent=1)


def version_json(st: VersionStatus) -> str:
    return json.dumps(st.to_dict(), indent=1)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
