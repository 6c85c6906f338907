"""Progress implementations chosen by the CLI: live rich bars on a terminal, plain
periodic one-line status in screen logs and Slurm output, and a log file always.

Both count the same way (:class:`_Counting`): per kind of work ("pack", "upload",
"download", "extract") the bytes done, the run's total (the plan's, when the engine
declared it with ``kind_total``, else the sum of the tasks started so far), tasks
finished, the rate and the time left. Sizes are binary (MiB) and so are rates (MiB/s).
"""

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

LogSink = Callable[[str], None]
RATE_WINDOW = 30.0  # seconds of history the rate (and so the ETA) of a plain status line is taken over


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


@dataclass(frozen=True)
class KindTotals:
    """One kind of work, summed over its tasks."""

    kind: str
    done: int  # bytes done
    total: int  # bytes the run will do (declared by the plan, or the tasks started so far)
    finished: int  # tasks finished
    count: int  # tasks the run will do (declared, or started so far)
    running: int  # tasks started and not finished


def format_rate(bytes_per_s: float | None) -> str:
    """``12.3 MiB/s``: the same binary units as sizes."""
    return "-" if bytes_per_s is None else f"{format_size(bytes_per_s)}/s"


def format_eta(seconds: float | None) -> str:
    """``45 s``, ``12 min``, ``3 h 05 min``, ``2 d 04 h``; ``-`` when unknown."""
    if seconds is None or seconds != seconds or seconds == float("inf"):
        return "-"
    s = int(round(max(0.0, seconds)))
    if s < 90:
        return f"{s} s"
    if s < 3600:
        return f"{round(s / 60)} min"
    if s < 86400:
        return f"{s // 3600} h {s % 3600 // 60:02d} min"
    return f"{s // 86400} d {s % 86400 // 3600:02d} h"


class _Counting:
    """Shared counting; subclasses only draw."""

    def __init__(self, log: LogSink | None = None) -> None:
        self._lock = threading.RLock()
        self.tasks: dict[str, _Task] = {}
        self.notes: list[str] = []
        self.declared: dict[str, tuple[int, int | None]] = {}  # kind -> (total bytes, tasks)
        self._log = log

    # -- the Progress protocol ---------------------------------------------------

    def task_started(self, key: str, label: str, total: int | None, kind: str = "") -> None:
        with self._lock:
            self.tasks[key] = _Task(label, total, kind)  # a key started again replaces its old row
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

    def kind_total(self, kind: str, total: int, count: int | None = None) -> None:
        with self._lock:
            self.declared[kind] = (int(total), count)
        self._changed("", "declare")

    def note(self, message: str) -> None:
        message = redact(message)
        with self._lock:
            self.notes.append(message)
        self._emit_note(message)
        if self._log is not None:
            self._log(message)

    # -- for subclasses ----------------------------------------------------------

    def _changed(self, key: str, event: str, note: str = "") -> None:
        pass

    def _emit_note(self, message: str) -> None:
        pass

    def kinds(self) -> list[KindTotals]:
        """Per kind (in the order first seen): bytes done and to do, tasks finished and to do."""
        agg: dict[str, list[int]] = {}
        with self._lock:
            for kind in self.declared:
                agg.setdefault(kind, [0, 0, 0, 0, 0])
            for t in self.tasks.values():
                a = agg.setdefault(t.kind or "work", [0, 0, 0, 0, 0])
                a[0] += t.done
                a[1] += t.total or 0
                a[2] += 1 if t.finished else 0
                a[3] += 1
                a[4] += 0 if t.finished else 1
            out = []
            for kind, (done, total, fin, n, running) in agg.items():
                d_total, d_count = self.declared.get(kind, (0, None))
                out.append(KindTotals(kind, done, max(total, d_total), fin, max(n, d_count or 0), running))
        return out

    def totals(self) -> dict[str, tuple[int, int, int, int]]:
        """kind -> (done bytes, total bytes, finished tasks, all tasks). Kept for older callers."""
        return {k.kind: (k.done, k.total, k.finished, k.count) for k in self.kinds()}


class _Rates:
    """Rate of each kind over the last :data:`RATE_WINDOW` seconds, from samples of bytes done."""

    def __init__(self, start: float, window: float = RATE_WINDOW) -> None:
        self.start = start
        self.window = window
        self._samples: dict[str, list[tuple[float, int]]] = {}

    def rate(self, kind: str, now: float, done: int) -> float | None:
        s = self._samples.setdefault(kind, [(self.start, 0)])  # every kind starts at 0 bytes
        s.append((now, done))
        while len(s) > 2 and now - s[1][0] >= self.window:
            s.pop(0)
        t0, d0 = s[0]
        if now - t0 <= 0:
            return None
        return max(0.0, (done - d0) / (now - t0))


def status_parts(kinds: list[KindTotals], rates: dict[str, float | None]) -> list[str]:
    """``upload 3/12 parts, 1.2 GiB/4.0 GiB (30%), 35.2 MiB/s, 1 min left`` for each kind."""
    out = []
    for k in kinds:
        bits = [f"{k.kind} {k.finished}/{k.count}"]
        if k.total:
            pct = 100.0 * k.done / k.total if k.total else 0.0
            bits.append(f"{format_size(k.done)}/{format_size(k.total)} ({pct:.0f}%)")
            rate = rates.get(k.kind)
            if k.done >= k.total:
                bits.append("done")
            elif rate:
                bits.append(f"{format_rate(rate)}, {format_eta((k.total - k.done) / rate)} left")
            elif k.running:
                bits.append("0 B/s so far")
        out.append(", ".join(bits))
    return out


class PlainProgress(_Counting):
    """One status line every ``interval`` seconds, plus a line per finished task and note.

    For screen logs and Slurm output files, where redrawing bars fills the log with junk.
    The same lines go to ``log`` when given (the log file users follow with ``tail -f``).
    """

    def __init__(self, stream: IO[str] | None = None, interval: float = 30.0, log: LogSink | None = None) -> None:
        super().__init__(log)
        self.stream = stream or sys.stdout
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0 = time.monotonic()
        self._rates = _Rates(self._t0, max(RATE_WINDOW, 2 * interval))

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
            line = self.status_line()
            self._print(line)
            if self._log is not None:
                self._log(line)

    def status_line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        kinds = self.kinds()
        rates = {k.kind: self._rates.rate(k.kind, now, k.done) for k in kinds}
        elapsed = now - self._t0
        return f"[{time.strftime('%H:%M:%S')} +{format_eta(elapsed)}] " + ("; ".join(status_parts(kinds, rates)) or "working")

    def _print(self, line: str) -> None:
        with self._lock:
            print(line, file=self.stream, flush=True)

    def _changed(self, key: str, event: str, note: str = "") -> None:
        if event != "finish":
            return
        t = self.tasks[key]
        status = "done" if t.ok else "FAILED"
        size = f" ({format_size(t.total)})" if t.total else ""
        line = f"{t.kind + ': ' if t.kind else ''}{t.label}{size} {status}{': ' + note if note else ''}"
        self._print(line)
        if self._log is not None:
            self._log(line)

    def _emit_note(self, message: str) -> None:
        self._print(message)


class RichProgress(_Counting):
    """Live rich bars: one per kind of work (bytes, of the plan's total), one per running transfer.

    With ``log``, a plain status line goes there every ``interval`` seconds, as in
    :class:`PlainProgress`, so the log file says the same whether or not a terminal is attached.
    """

    def __init__(self, console=None, log: LogSink | None = None, interval: float = 30.0) -> None:
        super().__init__(log)
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

        self.console = console or Console(stderr=False)
        self._bars = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(binary_units=True),
            _binary_speed_column(),
            TimeRemainingColumn(),
            console=self.console,
            transient=False,
        )
        self._ids: dict[str, int] = {}
        self._kind_ids: dict[str, int] = {}
        self._plain = PlainProgress(_Discard(), interval) if log is not None else None
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RichProgress:
        self._bars.start()
        if self._plain is not None:
            self._thread = threading.Thread(target=self._tick, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self._bars.stop()

    def _tick(self) -> None:
        assert self._plain is not None and self._log is not None
        while not self._stop.wait(self.interval):
            with self._lock:
                self._plain.tasks, self._plain.declared = dict(self.tasks), dict(self.declared)
            self._log(self._plain.status_line())

    def _kind_bar(self, kind: str) -> int:
        if kind not in self._kind_ids:
            self._kind_ids[kind] = self._bars.add_task(f"[bold]{kind}", total=0)
        return self._kind_ids[kind]

    def _update_kinds(self) -> None:
        for k in self.kinds():
            self._bars.update(self._kind_bar(k.kind), completed=k.done, total=k.total or None)

    def _changed(self, key: str, event: str, note: str = "") -> None:
        with self._lock:
            if event == "declare":
                self._update_kinds()
                return
            t = self.tasks.get(key)
            if t is None:
                return
            self._kind_bar(t.kind or "work")
            if event == "start":
                old = self._ids.pop(key, None)
                if old is not None:  # started again (a stream sent again): one row, not a frozen one
                    self._bars.remove_task(old)
                self._ids[key] = self._bars.add_task(f"  {t.label}", total=t.total or None)
            tid = self._ids.get(key)
            if tid is not None:
                if event == "finish":
                    self._bars.remove_task(tid)
                    del self._ids[key]
                    if not t.ok:
                        self.console.print(f"[red]FAILED[/red] {t.label}: {note}")
                else:
                    self._bars.update(tid, completed=t.done)
            if event == "finish" and self._log is not None:
                self._log(f"{t.kind + ': ' if t.kind else ''}{t.label} {'done' if t.ok else 'FAILED'}"
                          f"{': ' + note if note else ''}")
        with self._lock:
            self._update_kinds()

    def _emit_note(self, message: str) -> None:
        self.console.print(message, markup=False, highlight=False)


class _Discard:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass


def _binary_speed_column():
    """rich's TransferSpeedColumn shows decimal MB/s beside binary MiB sizes: this one shows MiB/s."""
    from rich.progress import ProgressColumn
    from rich.text import Text

    class BinarySpeedColumn(ProgressColumn):
        def render(self, task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("?" if speed is None else format_rate(speed), style="progress.data.speed")

    return BinarySpeedColumn()


def make_progress(stream: IO[str] | None = None, interval: float = 30.0, force_plain: bool = False,
                  log: LogSink | None = None):
    """Rich live bars when ``stream`` is a terminal, plain periodic lines otherwise.

    ``log`` (e.g. a :class:`TeeLog`) also gets the plain status lines, finished tasks and notes.
    """
    stream = stream or sys.stdout
    if not force_plain and hasattr(stream, "isatty") and stream.isatty():
        return RichProgress(log=log, interval=interval)
    return PlainProgress(stream, interval, log=log)


class TeeLog:
    """A callable log sink writing timestamped lines to a file (for ``tail -f``), credentials redacted.

    A write that fails (a full disk) is never raised into the caller, which may be
    a thread reading rclone's output: the first failure is kept as ``error`` (one
    line naming the log file, exit 9), later lines are dropped, and :meth:`check`
    raises it for the command to report once its run is over.

    With ``deferred``, lines are kept in memory until :meth:`open` (called once the run
    knows it will write in that folder); closed without it, nothing is written anywhere.
    """

    def __init__(self, path, *, deferred: bool = False) -> None:
        self.path = path
        self._lock = threading.Lock()
        self.error: LocalIOError | None = None
        self._fh: IO[str] | None = None
        self._pending: list[str] | None = [] if deferred else None
        if not deferred:
            self._fh = open(path, "a", buffering=1, encoding="utf-8")

    def open(self) -> None:
        """Create the file and write what was kept (no-op when already open); raises OSError."""
        with self._lock:
            if self._fh is not None:
                return
            self._fh = open(self.path, "a", buffering=1, encoding="utf-8")
            pending, self._pending = self._pending or [], None
            for text in pending:
                self._write(text)

    def _write(self, text: str) -> None:
        if self.error is not None or self._fh is None:
            return
        try:
            self._fh.write(text)
        except OSError as exc:
            self.error = from_os_error(exc, f"writing {self.path}")

    def __call__(self, line: str) -> None:
        text = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {redact(line)}\n"
        with self._lock:
            if self._fh is not None:
                self._write(text)
            elif self._pending is not None:
                self._pending.append(text)

    def check(self) -> None:
        """Raise the first write failure, if any (a log that lost lines is not a clean run)."""
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                try:
                    self._fh.close()
                except OSError as exc:
                    self.error = self.error or from_os_error(exc, f"writing {self.path}")
                self._fh = None
            self._pending = None
