"""What a download run did, as data: per-set outcomes, bytes, checks, and the exit code.

The engine (download.py) fills a :class:`DownloadResult`; the CLI prints
:func:`summary_lines` and, when :meth:`DownloadResult.exit_code` is not 0, the one
line of :meth:`DownloadResult.error`. The exit-code precedence is documented in
the README ("cs-sync-download", Exit codes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path

from cs_sync.core.errors import CsSyncError
from cs_sync.core.outcome import run_error, set_counts, sets_exit_code
from cs_sync.core.sizes import format_size


class SetStatus(str, Enum):
    FETCHED = "fetched"  # everything wanted came down and is in place
    SKIPPED = "skipped"  # already done by an earlier run
    INCOMPLETE = "incomplete"  # refused: incomplete, ambiguous or mismatched on the remote
    FAILED = "failed"  # a part failed to fetch, verify or extract; staging kept, re-run retries
    NOT_ATTEMPTED = "not attempted"  # the run stopped early (local disk error)


@dataclass
class SetOutcome:
    fault: str
    dtype: str
    status: SetStatus
    problems: list[str] = field(default_factory=list)
    codes: set[int] = field(default_factory=set)  # exit codes of the failures
    full_size: int = 0  # the set's size on the remote
    wanted_size: int = 0  # bytes this run wanted of it
    fetched: int = 0  # bytes rclone transferred for it this run
    target: str = ""  # where it landed


@dataclass
class DownloadResult:
    version: str
    remote: str
    download_dir: Path
    sets: list[SetOutcome] = field(default_factory=list)
    unmatched: list[str] = field(default_factory=list)
    bytes_fetched: int = 0
    full_size: int = 0  # full size of the selected sets
    wanted_size: int = 0  # bytes wanted (smaller than full_size with --rel/--member)
    elapsed: float = 0.0
    parts_sha256: int = 0  # parts verified against the sidecar's SHA-256
    parts_hash_checked: int = 0  # parts verified by rclone check with a hash
    parts_size_only: int = 0  # parts rclone check could compare by size only
    members_ranged: int = 0  # members fetched by byte range
    members_size_only: int = 0  # of those, members of an index without SHA-256s: size and TAR header checked only
    walked_sets: int = 0  # sets without any index whose TAR headers were walked this run
    walked_parts: int = 0
    walk_bytes: int = 0  # bytes those walks read (counted in bytes_fetched too)
    parts_streamed: int = 0  # --cleanup: parts extracted as they arrived, never written whole
    fetch_plan: str = ""  # how whole parts were fetched
    selective: bool = False
    fatal: CsSyncError | None = None  # what stopped the run early
    state_files: tuple[str, str] = ("", "")

    def count(self, status: SetStatus) -> int:
        return sum(1 for s in self.sets if s.status == status)

    def exit_code(self) -> int:
        """0 when everything asked for came down verified. Otherwise, in this order:

        a local disk error that stopped the run -> 9; every selected set failed for
        one and the same reason (e.g. the remote became unreachable) -> that code;
        only corrupted data (checksum/size/unsafe member) -> 8; anything else
        refused, failed or matching nothing -> 7.
        """
        if self.fatal is not None:
            return int(self.fatal.exit_code)
        return sets_exit_code([s.codes for s in self.sets if s.status in (SetStatus.FAILED, SetStatus.NOT_ATTEMPTED)],
                              refused=self.count(SetStatus.INCOMPLETE),
                              good=self.count(SetStatus.FETCHED) + self.count(SetStatus.SKIPPED),
                              unmatched=len(self.unmatched))

    def error(self, log_path: str | None = None) -> CsSyncError | None:
        """The one line the CLI prints on stderr when the exit code is not 0."""
        code = self.exit_code()
        if code == 0:
            return None
        if self.fatal is not None:
            return self.fatal
        bits = set_counts(((self.count(SetStatus.FAILED), "failed"),
                           (self.count(SetStatus.INCOMPLETE), "refused (incomplete or ambiguous on the remote)"),
                           (self.count(SetStatus.NOT_ATTEMPTED), "not attempted")), len(self.sets))
        where = f"; details above and in {log_path}" if log_path else "; details above"
        return run_error(code, bits, unmatched=len(self.unmatched), tail=where,
                         hint="re-run the same command to retry what failed")


def summary_lines(result: DownloadResult) -> list[str]:
    """The final summary, as lines (the CLI prints them; tests read them)."""
    r = result
    lines = [
        f"sets: {r.count(SetStatus.FETCHED)} fetched, {r.count(SetStatus.SKIPPED)} already done, "
        f"{r.count(SetStatus.INCOMPLETE)} incomplete (refused), {r.count(SetStatus.FAILED)} failed"
        + (f", {r.count(SetStatus.NOT_ATTEMPTED)} not attempted" if r.count(SetStatus.NOT_ATTEMPTED) else ""),
    ]
    if r.selective:
        lines.append(f"bytes: {format_size(r.bytes_fetched)} fetched ({r.bytes_fetched} B) for "
                     f"{format_size(r.wanted_size)} wanted, of {format_size(r.full_size)} in the selected sets' parts; "
                     f"{r.members_ranged} member(s) read by byte range")
    else:
        lines.append(f"bytes: {format_size(r.bytes_fetched)} fetched ({r.bytes_fetched} B), "
                     f"{format_size(r.full_size)} in the selected sets")
    checks = []
    if r.parts_sha256:
        checks.append(f"{r.parts_sha256} part(s) by SHA-256 from the sidecar")
    if r.parts_hash_checked:
        checks.append(f"{r.parts_hash_checked} by rclone comparing the remote's hash")
    if r.parts_size_only:
        checks.append(f"{r.parts_size_only} by SIZE ONLY (the remote offers no hash rclone can compare)")
    hashed = r.members_ranged - r.members_size_only
    if hashed and r.members_ranged:
        checks.append(f"{hashed} member(s) read by range by their own SHA-256")
    if r.members_size_only:
        checks.append(f"{r.members_size_only} member(s) read by range by SIZE AND TAR HEADER ONLY (an index without "
                      "SHA-256s: their content cannot be checked; cs-sync index --hash-members records them)")
    if checks:
        lines.append("verified: " + ", ".join(checks))
    if r.walked_parts:
        lines.append(f"index: walked the TAR headers of {r.walked_parts} part(s) of sets without an index on the fly "
                     f"({format_size(r.walk_bytes)} read); cs-sync index saves this step next time")
    if r.fetch_plan:
        lines.append(f"fetch: {r.fetch_plan}")
    if r.parts_streamed:
        lines.append(f"fetch: {r.parts_streamed} part(s) extracted as they arrived (--cleanup: no TAR written to disk)")
    lines.append(f"time: {r.elapsed:.1f} s")
    for s in r.sets:
        if s.status in (SetStatus.FAILED, SetStatus.INCOMPLETE, SetStatus.NOT_ATTEMPTED):
            lines.append(f"  {s.status.value}: {s.fault} {s.dtype}: {'; '.join(s.problems)}")
    for u in r.unmatched:
        lines.append(f"  matched nothing: {u}")
    return lines


