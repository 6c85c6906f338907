"""What preprocess shows: a table of faults x data types (OK, or what is missing),
totals of files and bytes per type, and the list of problems.

A rich table on a terminal; plain aligned text otherwise (screen logs, Slurm
output, pipes), so logs stay readable and greppable.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import IO

from cs_sync.core.sizes import format_size
from cs_sync.core.text import plural
from cs_sync.preprocess.engine import PreprocessResult
from cs_sync.preprocess.stocktake import cell_text


def _rels(result: PreprocessResult) -> list[tuple[str, str, str, list[tuple[str, bool]]]]:
    """Rows: (fault, realisations, median, [(cell, ok) per type])."""
    rows = []
    for c in result.checks:
        rels = f"{c.entry.first}-{c.entry.last}"
        cells = [(cell_text(c.name, c.types[t]), c.types[t].ok) for t in result.types]
        rows.append((c.name, rels, "yes" if c.has_median else "no", cells))
    return rows


def _summary_lines(result: PreprocessResult) -> list[str]:
    nfail = len(result.failed_faults)
    n = len(result.checks)
    files = sum(f for f, _ in result.totals().values())
    size = sum(b for _, b in result.totals().values())
    head = f"{plural(n, 'fault')}: {n - nfail} OK" + (f", {nfail} with failed checks" if nfail else "")
    st = result.stats
    return [
        head,
        f"scanned in {st.seconds:.1f} s ({st.listed} listings, {st.stats} stats, "
        f"{st.threads} thread{'' if st.threads == 1 else 's'})",
        f"wrote {result.stocktake_csv} and {result.out_file} ({files} files, {format_size(size)})",
    ]


def plain_report(result: PreprocessResult) -> str:
    """The report as plain text (what a log file gets)."""
    header = ["fault", "rels", "median"] + list(result.types)
    body = [[f, r, m] + [cell for cell, _ in cells] for f, r, m, cells in _rels(result)]
    widths = [max(len(row[i]) for row in [header] + body) for i in range(len(header))]
    lines = [f"stocktake of {result.version} ({result.cs_root})"]
    for row in [header] + body:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
    lines.append("")
    totals = result.totals()
    tw = max([len("type"), len("total")] + [len(t) for t in totals])
    lines.append(f"{'type'.ljust(tw)}  {'files':>8}  {'bytes':>10}")
    for t, (n, b) in totals.items():
        lines.append(f"{t.ljust(tw)}  {n:>8}  {format_size(b):>10}")
    lines.append(
        f"{'total'.ljust(tw)}  {sum(n for n, _ in totals.values()):>8}  "
        f"{format_size(sum(b for _, b in totals.values())):>10}"
    )
    lines.append("")
    if result.problems:
        lines.append(f"problems ({len(result.problems)}):")
        for p in result.problems:
            lines.append(f"  {'FAIL' if p.failed else 'note'}  {p.text}")
    else:
        lines.append("problems: none")
    lines.append("")
    lines.extend(_summary_lines(result))
    return "\n".join(lines) + "\n"


def rich_report(result: PreprocessResult, console) -> None:
    """The report as rich tables on ``console``."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"stocktake of {escape(result.version)}", title_justify="left")
    table.add_column("fault", style="bold")
    table.add_column("rels", justify="right")
    table.add_column("median")
    for t in result.types:
        table.add_column(t)
    for f, r, m, cells in _rels(result):
        table.add_row(escape(f), r, m, *[f"[green]{escape(c)}" if ok else f"[red]{escape(c)}" for c, ok in cells])
    console.print(table)

    totals = Table(title="selected", title_justify="left")
    totals.add_column("type")
    totals.add_column("files", justify="right")
    totals.add_column("bytes", justify="right")
    for t, (n, b) in result.totals().items():
        totals.add_row(t, str(n), format_size(b))
    totals.add_row(
        "[bold]total",
        f"[bold]{sum(n for n, _ in result.totals().values())}",
        f"[bold]{format_size(sum(b for _, b in result.totals().values()))}",
    )
    console.print(totals)
    if result.problems:
        console.print(f"[bold]problems ({len(result.problems)}):", highlight=False)
        for p in result.problems:
            tag = "[red]FAIL[/red]" if p.failed else "[yellow]note[/yellow]"
            console.print(f"  {tag}  {escape(p.text)}", highlight=False)
    else:
        console.print("problems: none")
    lines = _summary_lines(result)
    style = "green" if result.ok else "red"
    console.print(f"[{style}]{escape(lines[0])}", highlight=False)
    for line in lines[1:]:
        console.print(escape(line), highlight=False)


def print_report(result: PreprocessResult, stream: IO[str] | None = None, *, console=None) -> None:
    """Rich when ``console`` is given or ``stream`` is a terminal, plain text otherwise."""
    stream = stream or sys.stdout
    if console is None and hasattr(stream, "isatty") and stream.isatty():
        from rich.console import Console

        console = Console(file=stream)
    if console is not None:
        rich_report(result, console)
    else:
        stream.write(plain_report(result))
        stream.flush()


class ScanDisplay:
    """Progress of the scan: a transient rich bar on a terminal; on a log, a line at
    the start and one every ``interval`` seconds (a big scan on Lustre takes a while)."""

    def __init__(self, stream: IO[str] | None = None, interval: float = 30.0) -> None:
        self.stream = stream or sys.stdout
        self.interval = interval
        self._lock = threading.Lock()
        self._bar = None
        self._task = None
        self._total: int | None = None
        self._last = 0.0
        self._t0 = time.monotonic()

    def __enter__(self) -> ScanDisplay:
        if hasattr(self.stream, "isatty") and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._bar = Progress(
                TextColumn("scanning"), BarColumn(), MofNCompleteColumn(), TextColumn("faults"),
                TimeElapsedColumn(), console=Console(file=self.stream), transient=True,
            )
            self._bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()

    def _print(self, line: str) -> None:
        print(line, file=self.stream, flush=True)

    def task_started(self, key: str, label: str, total: int | None, kind: str = "") -> None:
        with self._lock:
            self._total = total
            self._t0 = self._last = time.monotonic()
            if self._bar is not None:
                self._task = self._bar.add_task(label, total=total)
            else:
                self._print(f"scanning {label} ...")

    def task_advanced(self, key: str, done: int) -> None:
        with self._lock:
            if self._bar is not None and self._task is not None:
                self._bar.update(self._task, completed=done)
                return
            now = time.monotonic()
            if now - self._last >= self.interval:
                self._last = now
                self._print(f"scanned {done}/{self._total} faults (+{now - self._t0:.0f}s)")

    def task_rate(self, key: str, speed: float | None, eta: float | None) -> None:
        pass

    def task_finished(self, key: str, ok: bool = True, note: str = "") -> None:
        pass

    def note(self, message: str) -> None:
        with self._lock:
            self._print(message)
