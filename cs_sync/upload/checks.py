"""How a streamed file is checked on the remote, and the check of a batch of them.

The check never reads data back (unless ``--verify download``): one ``rclone
lsjson --hash-type H`` of the files that just arrived gives the remote's own hash
of each (Dropbox computes its content hash from the bytes it stored; an SFTP server
runs md5sum/sha1sum on its file; a local folder hashes the file it wrote), which is
compared with the same hash computed while streaming. A remote that keeps no hash
we can compute (plain WebDAV) gets sizes compared, and the summary says SIZES ONLY.
A part is never called checked by content unless a hash of the bytes the remote
holds was compared.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cs_sync.core.errors import VerifyError
from cs_sync.core.hashes import pick_remote_hash
from cs_sync.remote.rclone import Rclone
from cs_sync.remote.sets import RemoteFile
from cs_sync.upload.results import CheckMode
from cs_sync.upload.tracker import Job


class CheckFailed(VerifyError):
    """The remote copy of one file differs from what was streamed (or is not there): send it again."""


@dataclass(frozen=True)
class CheckPlan:
    mode: CheckMode  # HASH, SIZES_ONLY or SIZE (--no_checksum)
    hash_type: str | None = None  # with HASH: the remote's hash type compared
    read_back: bool = False  # --verify download: stream each file back and compare SHA-256 too

    @property
    def stream_hashes(self) -> tuple[str, ...]:
        """Hashes the stream computes besides SHA-256 (which it always computes)."""
        if self.mode == CheckMode.HASH and self.hash_type and self.hash_type != "sha256":
            return (self.hash_type,)
        return ()

    def describe(self) -> str:
        if self.mode == CheckMode.HASH:
            return f"the remote's own {self.hash_type} hash of each file, compared with the one computed while streaming"
        if self.mode == CheckMode.SIZE:
            return "sizes only (--no_checksum)"
        return "SIZES ONLY: the remote keeps no hash cs-sync can compute (use --verify download to compare SHA-256)"


def choose_check(offered: Iterable[str], *, checksum: bool, read_back: bool) -> CheckPlan:
    """The check for a remote offering ``offered`` hash types (``rclone backend features``)."""
    if not checksum:
        return CheckPlan(CheckMode.SIZE, None, read_back)
    h = pick_remote_hash(offered)
    return CheckPlan(CheckMode.HASH, h, read_back) if h else CheckPlan(CheckMode.SIZES_ONLY, None, read_back)


def compare(job: Job, listed: RemoteFile | None, plan: CheckPlan) -> tuple[CheckMode, CheckFailed | None]:
    """How ``job``'s remote copy was checked, and why it failed (None: passed). Pure."""
    assert job.streamed is not None
    if listed is None:
        return plan.mode, CheckFailed(f"{job.relpath}: not on the remote after its upload")
    if listed.size != job.streamed.size:
        return plan.mode, CheckFailed(f"{job.relpath}: the remote copy is {listed.size} bytes, {job.streamed.size} were sent")
    if plan.mode != CheckMode.HASH:
        return plan.mode, None
    assert plan.hash_type is not None
    theirs = listed.hashes.get(plan.hash_type)
    if not theirs:  # the remote gave no hash for this one file: say so, do not pretend
        return CheckMode.SIZES_ONLY, None
    if theirs.lower() != job.streamed.hashes[plan.hash_type]:
        return plan.mode, CheckFailed(f"{job.relpath}: the remote's {plan.hash_type} hash differs from the one computed "
                                      "while streaming (the remote copy is not what was sent)")
    return plan.mode, None


def check_batch(rclone: Rclone, incoming: str, jobs: list[Job], plan: CheckPlan
                ) -> list[tuple[CheckMode, CheckFailed | None]]:
    """One rclone looks up each of ``jobs`` where it landed (under ``incoming``, by name: a folder
    listing that lags behind cannot hide one); one outcome per job."""
    files = rclone.lsjson_files(incoming, [j.relpath for j in jobs],
                                hash_types=[plan.hash_type] if plan.mode == CheckMode.HASH and plan.hash_type else [],
                                what=f"checking {len(jobs)} file(s) in {incoming}")
    listed = {f.path: f for f in files}
    return [compare(j, listed.get(j.relpath), plan) for j in jobs]
