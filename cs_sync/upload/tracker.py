"""Per-set bookkeeping: which parts are still to check, when the final part and the sidecar may go.

The order rules that keep the remote honest live here and nowhere else:

* a split set's final ``f`` part is sent only after every other part is checked and
  under its name, so the remote never shows a set as complete by its names while a
  part is missing or unchecked;
* the sidecar is written only after every part is checked;
* a set that failed sends nothing more (its final part and sidecar never go).

No threads are started here; the methods are called from the sender and checker
threads and take the set's own lock.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from cs_sync.archive.tar_write import MemberSource, StreamedPart
from cs_sync.upload.journal import Journal
from cs_sync.upload.planning import Decision, PartPlan, SetPlan
from cs_sync.upload.results import CheckMode, SetOutcome


@dataclass(eq=False)
class Job:
    """One file to stream to the remote: a TAR part, a sample, or a root file."""

    relpath: str  # path under the version folder: F/F_BB_0.tar, list.txt
    size: int
    members: tuple[MemberSource, ...]
    plain: bool  # the file's bytes as they are (sample, root file), not a TAR
    tracker: SetTracker | None = None  # None for the root files
    part: PartPlan | None = None
    attempts: int = 0  # streams tried so far
    outages: int = 0  # times its attempts were used up while the remote was down (then given new ones)
    failed_at: float = 0.0  # time.monotonic() when its last attempt failed
    streamed: StreamedPart | None = None  # filled in when its stream ran to the end
    checked_by: CheckMode | None = None  # how its remote copy passed the check
    handed_on: bool = False  # given to the checker (which settles it from then on)
    settled: bool = False  # reached its end (counted once by the run)

    @property
    def name(self) -> str:
        return self.relpath.rsplit("/", 1)[-1]

    @property
    def key(self) -> str:
        return f"upload:{self.relpath}"


def part_job(tracker: SetTracker, part: PartPlan) -> Job:
    sp = tracker.plan
    return Job(relpath=f"{sp.fault}/{part.name}", size=part.size, members=tuple(m.as_source() for m in part.members),
               plain=sp.sample, tracker=tracker, part=part)


@dataclass(eq=False)
class SetTracker:
    plan: SetPlan
    decision: Decision
    journal: Journal
    outcome: SetOutcome
    remaining: set[str] = field(default_factory=set)  # parts to do, not yet checked
    failed: str | None = None
    prepared: bool = False  # old sidecar / parts the decision removes are gone
    held: PartPlan | None = None  # the final part, waiting for the others
    settled: bool = False  # its sidecar's turn ended (counted once by the run)
    lock: threading.Lock = field(default_factory=threading.Lock)
    prepare_lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        if not self.remaining:
            self.remaining = set(self.decision.todo)

    @property
    def name(self) -> str:
        return self.plan.name

    def first_jobs(self) -> list[Job]:
        """The parts that may go now; a split set's final part is held until the others are checked."""
        todo = [p for p in self.plan.parts if p.name in self.remaining]
        ready = []
        with self.lock:
            for p in todo:
                if self._gated(p) and self.remaining - {p.name}:
                    self.held = p
                else:
                    ready.append(part_job(self, p))
        return ready

    def _gated(self, p: PartPlan) -> bool:
        return p.final and not self.plan.sample and len(self.plan.parts) > 1

    @property
    def sidecar_due(self) -> bool:
        """Every part is checked (nothing left to send) and the set did not fail."""
        with self.lock:
            return not self.remaining and self.failed is None

    def checked(self, name: str) -> tuple[Job | None, bool]:
        """Part ``name`` passed its check and is under its name.

        Returns the final part's job when it may go now, and whether the set's sidecar may.
        """
        with self.lock:
            self.remaining.discard(name)
            release = None
            if self.failed is None and self.held is not None and self.remaining == {self.held.name}:
                release, self.held = self.held, None
            return (part_job(self, release) if release else None), (not self.remaining and self.failed is None)

    def fail(self, message: str) -> bool:
        """Mark the set failed; True the first time (the caller reports it once)."""
        with self.lock:
            if self.failed is not None:
                return False
            self.failed = message
            self.held = None
            return True
