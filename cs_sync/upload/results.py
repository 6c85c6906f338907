"""What an upload run reports: per-set outcomes with an enum of statuses, typed counters.

Pure data; the engine fills it in, the CLI prints it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from cs_sync.upload.planning import Decision, Plan


class SetStatus(str, Enum):
    PLANNED = "planned"  # dry run: would be (re)done
    PENDING = "pending"  # being (re)done
    UPLOADED = "uploaded"  # every part checked, sidecar written
    SKIPPED = "skipped"  # complete on the remote already
    UNVERIFIED = "unverified"  # complete by its part names, made by the older scripts
    STALE = "stale"  # sources changed since upload (redone with --update)
    FAILED = "failed"
    REFUSED = "refused"


class CheckMode(str, Enum):
    """How a part's remote copy was checked."""

    HASH = "hash"  # the remote's own hash of the file it stored, compared with ours
    SIZES_ONLY = "sizes-only"  # the remote keeps no hash we can compute: sizes compared
    SIZE = "size"  # --no_checksum: sizes compared
    DOWNLOAD = "download"  # --verify download: read back, SHA-256 compared (besides the above)


@dataclass
class SetOutcome:
    fault: str
    dtype: str
    action: str  # planning.UPLOAD / SKIP / STALE / ...
    status: SetStatus
    size: int = 0
    parts: int = 0
    reason: str = ""

    @property
    def name(self) -> str:
        return f"{self.fault}_{self.dtype}"


@dataclass
class UploadResult:
    version: str
    remote: str  # {remote}/{version}
    dry_run: bool = False
    outcomes: list[SetOutcome] = field(default_factory=list)
    plan: Plan | None = None
    decisions: dict[str, Decision] = field(default_factory=dict)
    extras: list[str] = field(default_factory=list)  # root files uploaded (list.txt, stocktake.csv)
    extras_failed: list[str] = field(default_factory=list)
    parts_streamed: int = 0  # streams that ran to the end (re-sends included)
    bytes_streamed: int = 0
    parts_uploaded: int = 0  # parts checked and moved into place by this run
    bytes_uploaded: int = 0
    parts_resent: int = 0  # streams repeated after a cut connection or a failed check
    parts_on_remote: int = 0  # checked by an interrupted run: not redone
    parts_to_send: int = 0  # what this run set out to send (the plan's parts minus those)
    bytes_to_send: int = 0
    wall: float = 0.0
    hash_type: str | None = None  # the remote's hash the checks compared (None: sizes only)
    checks: dict[CheckMode, int] = field(default_factory=dict)  # parts per way of checking
    remote_flags: list[str] = field(default_factory=list)  # rclone flags added for this remote (Dropbox)
    final_problems: list[str] = field(default_factory=list)
    final_checked: int = 0
    incoming_removed: int = 0  # files stopped runs left in _cs_sync/incoming for this run's sets, removed
    incoming_removed_bytes: int = 0
    incoming_left: int = 0  # such files this run could not remove (named in the log)

    def with_status(self, status: SetStatus) -> list[SetOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def failed(self) -> list[SetOutcome]:
        return self.with_status(SetStatus.FAILED) + self.with_status(SetStatus.REFUSED)

    @property
    def ok(self) -> bool:
        return not (self.failed or self.with_status(SetStatus.STALE) or self.extras_failed or self.final_problems)
