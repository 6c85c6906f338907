"""The progress protocol the engine reports through.

The engine only *counts*; drawing is chosen at the CLI edge (rich live bars on a
terminal, plain periodic lines in screen logs and Slurm output). Engines take a
``Progress`` argument defaulting to :data:`NULL_PROGRESS` and never import rich or
tqdm. Every method may be called from several threads at once; implementations
must be thread-safe and cheap.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def task_started(self, key: str, label: str, total: int | None, kind: str = "") -> None:
        """A unit of work began. ``total`` in bytes (or items), None when unknown.

        ``kind`` groups tasks for display: e.g. "scan", "pack", "upload", "download",
        "extract".
        """

    def task_advanced(self, key: str, done: int) -> None:
        """Absolute amount done so far for ``key`` (not an increment)."""

    def task_rate(self, key: str, speed: float | None, eta: float | None) -> None:
        """Speed (units/s) and ETA (s) when the source knows them (rclone stats)."""

    def task_finished(self, key: str, ok: bool = True, note: str = "") -> None:
        """The unit of work ended; ``note`` says why when not ok."""

    def note(self, message: str) -> None:
        """A line worth showing the user now (warnings, skipped sets)."""

    def kind_total(self, kind: str, total: int, count: int | None = None) -> None:
        """The whole run will do ``total`` bytes (in ``count`` tasks) of this ``kind``: known
        from the plan before the tasks start, so totals and ETA are the run's, not the
        sum of the tasks started so far."""


class NullProgress:
    """Progress that does nothing: the default for library calls and tests."""

    def task_started(self, key: str, label: str, total: int | None, kind: str = "") -> None:
        pass

    def task_advanced(self, key: str, done: int) -> None:
        pass

    def task_rate(self, key: str, speed: float | None, eta: float | None) -> None:
        pass

    def task_finished(self, key: str, ok: bool = True, note: str = "") -> None:
        pass

    def note(self, message: str) -> None:
        pass

    def kind_total(self, kind: str, total: int, count: int | None = None) -> None:
        pass


NULL_PROGRESS: Progress = NullProgress()


def declare_total(progress: Progress, kind: str, total: int, count: int | None = None) -> None:
    """``progress.kind_total(...)``, also for implementations written before it existed."""
    fn = getattr(progress, "kind_total", None)
    if fn is not None:
        fn(kind, total, count)
