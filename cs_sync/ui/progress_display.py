"""Progress implementations chosen by the CLI: live rich bars on a terminal, plain
periodic one-line status in screen logs and Slurm output, and a log file always."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from cs_sync.core.errors import LocalIOError, from_os_error
from cs_sync.core.sizes import format_size
from cs_sync.remote.redact import redact


@dataclass
class _Task:
    label: str
    total: int | None
    kind: str
    done: int = 0
    speed: float | None = None
    eta: float | None = None
    finished: bool = False
    ok: bool = True


class _Counting:
    """Shared counting; subclasses only draw."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.tasks: dict[str, _Task] = {}
        self.notes: list[str] = []

    def task_started(self, key: str, label: str, total: int | None, kind: str = "") -> None:
        with self._lock:
            self.tasks[key] = _Task(label, total, kind)
        self._changed(key, "start")

    def task_advanced(self, key: str, done: int) -> None:
        with self._lock:
            t = self.tasks.get(key)
            if t:
                t.done = done
        self._changed(key, "advance")

    def task_rate(self, key: str, speed: float | None, eta: float | None) -> None:
        with self._lock:
            t = self.tasks.get(key)
            if t:
                t.speed, t.eta = speed, eta

    def task_finished(self, key: str, ok: bool = True, note: str = "") -> None:
        note = redact(note)  # what is shown never holds a remote's credentials
        with self._lock:
            t = self.tasks.get(key)
            if t:
                t.finished, t.ok = True, ok
                if ok and t.total:
                    t.done = t.total
        self._changed(key, "finish", note)

    def note(self, message: str) -> None:
        message = redact(message)
        with self._lock:
            self.notes.append(message)
        self._emit_note(message)

    def _changed(self, key: str, event: str, note: str = "") -> None:
        pass

    def _emit_note(self, message: str) -> None:
        pass

    def totals(self) -> dict[str, tuple[int, int, int, int]]:
        """kind -> (done bytes, total bytes, finished tasks, all tasks)."""
        out: dict[str, list[int]] = {}
        with self._lock:
            for t in self.tasks.values():
                agg = out.setdefault(t.kind or "work", [0, 0, 0, 0])
                agg[0] += t.done
                agg[1] += t.total or 0
                agg[2] += 1 if t.finished else 0
                agg[3] += 1
        return {k: tuple(v) for k, v in out.items()}  # type: ignore[misc]


class PlainProgress(_Counting):
    """One status line every ``interval`` seconds, plus a line per finished task and note.

    For screen logs and Slurm output files, where redrawing bars fills the log with junk.
    """

    def __init__(self, stream: IO[str] | None = None, interval: float = 30.0) -> None:
        super().__init__()
        self.stream = stream or sys.stdout
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()

    def __enter__(self) -> PlainProgress:
        self._thread = threading.Thread(target=self._tick, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()

    def _tick(self) -> None:
        while not self._stop.wait(self.interval):
            self._print(self.status_line())

    def status_line(self) -> str:
        parts = []
        for kind, (done, total, nfin, nall) in sorted(self.totals().items()):
            size = f" {format_size(done)}/{format_size(total)}" if total else ""
            parts.append(f"{kind} {nfin}/{nall}{size}")
        elapsed = time.monotonic() - self._t0
        return f"[{time.strftime('%H:%M:%S')} +{elapsed:.0f}s] " + ("; ".join(parts) or "working")

    def _print(self, line: str) -> None:
        with self._lock:
            print(line, file=self.stream, flush=True)

    def _changed(self, key: str, event: str, note: str = "") -> None:
        if event != "finish":
            return
        t = self.tasks[key]
        status = "done" if t.ok else "FAILED"
        size = f" ({format_size(t.total)})" if t.total else ""
        self._print(f"{t.kind + ': ' if t.kind else ''}{t.label}{size} {status}{': ' + note if note else ''}")

    def _emit_note(self, message: str) -> None:
        self._print(message)


class RichProgress(_Counting):
    """Live rich bars: one per kind of work (bytes), one per running transfer."""

    def __init__(self, console=None) -> None:
        super().__init__()
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self.console = console or Console(stderr=False)
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._ids: dict[str, int] = {}
        self._kind_ids: dict[str, int] = {}

    def __enter__(self) -> RichProgress:
        self._bars.start()
        return self

    def __exit__(self, *exc) -> None:
        self._bars.stop()

    def _kind_bar(self, kind: str) -> int:
        if kind not in self._kind_ids:
            self._kind_ids[kind] = self._bars.add_task(f"[bold]{kind or 'total'}", total=0)
        return self._kind_ids[kind]

    def _changed(self, key: str, event: str, note: str = "") -> None:
        with self._lock:
            t = self.tasks[key]
            kid = self._kind_bar(t.kind)
            if event == "start":
                self._ids[key] = self._bars.add_task(f"  {t.label}", total=t.total or None)
            tid = self._ids.get(key)
            if tid is None:
                return
            if event == "finish":
                self._bars.remove_task(tid)
                del self._ids[key]
                if not t.ok:
                    self.console.print(f"[red]FAILED[/red] {t.label}: {note}")
            else:
                self._bars.update(tid, completed=t.done)
            done = sum(x.done for x in self.tasks.values() if x.kind == t.kind)
            total = sum(x.total or 0 for x in self.tasks.values() if x.kind == t.kind)
            self._bars.update(kid, completed=done, total=total or None)

    def _emit_note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


def make_progress(stream: IO[str] | None = None, interval: float = 30.0, force_plain: bool = False):
    """Rich live bars when ``stream`` is a terminal, plain periodic lines otherwise."""
    stream = stream or sys.stdout
    if not force_plain and hasattr(stream, "isatty") and stream.isatty():
        return RichProgress()
    return PlainProgress(stream, interval)


class TeeLog:
    """A callable log sink writing timestamped lines to a file (for ``tail -f``), credentials redacted.

    A write that fails (a full disk) is never raised into the caller, which may be
    a thread reading rclone's output: the first failure is kept as ``error`` (one
    line naming the log file, exit 9), later lines are dropped, and :meth:`check`
    raises it for the command to report once its run is over.
    """

    def __init__(self, path) -> None:
        self.path = path
        self._fh = open(path, "a", buffering=1, encoding="utf-8")
        self._lock = threading.Lock()
        self.error: LocalIOError | None = None

    def __call__(self, line: str) -> None:
        with self._lock:
            if self.error is not None:
                return
            try:
                self._fh.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {redact(line)}\n")
            except OSError as exc:
                self.error = from_os_error(exc, f"writing {self.path}")

    def check(self) -> None:
        """Raise the first write failure, if any (a log that lost lines is not a clean run)."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError as exc:
            self.error = self.error or from_os_error(exc, f"writing {self.path}")


LogSink = Callable[[str], None]
