"""Progress for library callers (a notebook, a script): one tqdm bar per kind of work.

The command line draws with rich or plain lines; someone calling the engine from
Python gets nothing unless they pass a Progress. ``TqdmProgress`` is that, with
``tqdm.auto`` so a Jupyter notebook shows widgets and a terminal shows text bars::

    from cs_sync.ui.notebook import TqdmProgress
    with TqdmProgress() as progress:
        result = download(settings, rclone, progress)
"""

from __future__ import annotations

from typing import IO

from tqdm.auto import tqdm

from cs_sync.ui.progress_display import _Counting

UNIT = {"scan": "fault"}  # other kinds count bytes


class TqdmProgress(_Counting):
    """A bar per kind ("pack", "upload", "download", "extract", ...) summing its tasks."""

    def __init__(self, file: IO[str] | None = None, leave: bool = True) -> None:
        super().__init__()
        self._file = file
        self._leave = leave
        self._bars: dict[str, tqdm] = {}

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for bar in self._bars.values():
            bar.close()

    def _bar(self, kind: str) -> tqdm:
        bar = self._bars.get(kind)
        if bar is None:
            unit = UNIT.get(kind, "B")
            bar = tqdm(total=0, desc=kind, unit=unit, unit_scale=unit == "B", unit_divisor=1024,
                       file=self._file, leave=self._leave, dynamic_ncols=True)
            self._bars[kind] = bar
        return bar

    def _changed(self, key: str, event: str, note: str = "") -> None:
        kind = self.tasks[key].kind or "work" if key in self.tasks else "work"
        done, total, finished, count = self.totals().get(kind, (0, 0, 0, 0))
        with self._lock:
            bar = self._bar(kind)
            bar.total = max(total, done)
            bar.n = done
            bar.set_postfix_str(f"{finished}/{count} done", refresh=False)
            bar.refresh()
        if event == "finish" and note:
            self._emit_note(f"{self.tasks[key].label}: {note}")

    def _emit_note(self, message: str) -> None:
        tqdm.write(message, file=self._file)
