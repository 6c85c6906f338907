"""Stream files to their hidden incoming names on the remote: sources -> TAR bytes -> rclone.

Nothing touches local disk: :func:`~cs_sync.archive.tar_write.stream_part` reads
the sources and writes the part's bytes into ``rclone rcat --size N``'s stdin
while hashing them. An upload that fails or is abandoned (a source changed, the
connection dropped, Ctrl-C) kills its rclone, so it never completes with bytes
other than planned; what it left under the incoming name is never checked or moved.

Small files (a few MiB: IM and Source TARs, list.txt) cost an rclone start-up
(about 0.05 s of CPU) more than their bytes: a batch of them is produced in a
private folder in memory (``/dev/shm``, a RAM-backed tmpfs, at most
``RAM_BATCH`` bytes at a time) and sent by one ``rclone copy`` that reports each
file. Without a usable ``/dev/shm`` they go one ``rcat`` each.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
from collections.abc import Sequence
from pathlib import Path

from cs_sync.archive.tar_write import StreamedPart, stream_part
from cs_sync.core import testhook
from cs_sync.core.atomic import remove_quietly
from cs_sync.core.errors import CsSyncError, SourceChanged, from_os_error
from cs_sync.core.hashes import sha256_of_chunks
from cs_sync.core.progress import Progress
from cs_sync.remote.rclone import Rclone, join, remote_name
from cs_sync.upload.checks import CheckFailed, CheckPlan
from cs_sync.upload.tracker import Job

RAM_BATCH = 64 << 20  # bytes of small files in memory at once, for one rclone copy
SHM = Path("/dev/shm")


def _is_tmpfs(path: Path) -> bool:
    """Is ``path`` a tmpfs mount (memory, not disk)?"""
    try:
        with open("/proc/mounts", encoding="utf-8") as fh:
            return any(f[1] == str(path) and f[2] == "tmpfs" for f in (ln.split() for ln in fh) if len(f) > 2)
    except OSError:
        return False


def ram_folder() -> Path | None:
    """A private folder of this process in RAM-backed ``/dev/shm`` for batches of small files
    (``cs_sync-{uid}-{pid}``: runs of the same version side by side never share one; those
    left by killed runs of this user are removed), or None when there is no usable one."""
    if not SHM.is_dir() or not os.access(SHM, os.W_OK) or not _is_tmpfs(SHM):
        return None
    uid = os.getuid()
    for old in SHM.glob(f"cs_sync-{uid}-*"):
        pid = old.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)) and not old.is_symlink() and old.stat().st_uid == uid:
            shutil.rmtree(old, ignore_errors=True)
    folder = SHM / f"cs_sync-{uid}-{os.getpid()}"
    try:
        if folder.is_symlink() or (folder.exists() and folder.stat().st_uid != uid):
            return None
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(mode=0o700)
        if stat.S_IMODE(folder.stat().st_mode) & 0o077:
            os.chmod(folder, 0o700)
    except OSError:
        return None
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class _FileSink:
    """A file the part's bytes are written to; a failed write names the file (disk full: exit 9)."""

    def __init__(self, fh, path: Path) -> None:
        self.fh, self.path = fh, path

    def write(self, data) -> None:
        try:
            self.fh.write(data)
        except OSError as exc:
            raise from_os_error(exc, f"writing {self.path}") from None


class Sender:
    def __init__(self, rclone: Rclone, incoming: str, cs_root: Path, check: CheckPlan, progress: Progress, *,
                 upload_flags: list[str], buffer_size: int, batch_flags: Sequence[str] = ()) -> None:
        self.rclone = rclone
        self.incoming = incoming
        self.cs_root = Path(cs_root)
        self.check = check
        self.progress = progress
        # rclone's own post-upload hash is skipped: the check that follows compares the remote's
        # hash with the one computed while streaming; upload_flags: settings for this remote (Dropbox)
        self.upload_flags = upload_flags
        self.batch_flags = list(batch_flags)  # for copies of many small files (Dropbox: its sync batch mode)
        self.buffer_size = buffer_size

    @property
    def local(self) -> bool:
        """The remote is a folder on this machine: parts are written into it directly (unless the
        run's rate is limited, which rclone does: then they go by rcat as to any remote)."""
        return remote_name(self.incoming) is None and not self.rclone.bwlimit

    def send(self, job: Job) -> StreamedPart:
        """Stream ``job`` to ``incoming/relpath``; returns what was sent (sizes, hashes, offsets)."""
        self.progress.task_started(job.key, job.relpath, job.size, kind="upload")
        if self.local:
            return self._write_local(job)
        dst = join(self.incoming, job.relpath)
        with self.rclone.rcat(dst, job.size, what=f"uploading {job.relpath}",
                              extra=["--ignore-checksum", *self.upload_flags]) as up:
            streamed = stream_part(job.name, job.members, self.cs_root, up, plain=job.plain,
                                   hash_types=self.check.stream_hashes, expected_size=job.size,
                                   buffer_size=self.buffer_size,
                                   on_bytes=lambda n: self.progress.task_advanced(job.key, n))
            testhook.reached("packed")  # every byte handed to rclone, its upload not yet finished
            up.finish()
        return streamed

    def _write_local(self, job: Job) -> StreamedPart:
        """A folder on this machine as the remote: the part's bytes go straight into the file
        under its incoming name. An rclone in between would only copy the same bytes once more
        through a pipe (measured: about a third of the CPU of a local upload, with its start-up)."""
        path = Path(self.incoming) / job.relpath
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            out = open(path, "wb")
        except OSError as exc:
            raise from_os_error(exc, f"writing {path}") from None
        with out:
            streamed = stream_part(job.name, job.members, self.cs_root, _FileSink(out, path), plain=job.plain,
                                   hash_types=self.check.stream_hashes, expected_size=job.size,
                                   buffer_size=self.buffer_size,
                                   on_bytes=lambda n: self.progress.task_advanced(job.key, n))
            testhook.reached("packed")
        return streamed

    def send_batch(self, jobs: list[Job], ram: Path) -> list[CsSyncError | None]:
        """Produce small ``jobs`` in ``ram`` and send them by one rclone copy; one outcome per job.

        Each job's ``streamed`` is filled in as its bytes are produced. A source that
        changed fails only its job (SourceChanged); a file rclone did not copy fails
        alone (RemoteError, sent again by the caller).
        """
        out: dict[int, CsSyncError | None] = {}
        made: list[Job] = []
        try:
            for job in jobs:
                self.progress.task_started(job.key, job.relpath, job.size, kind="upload")
                path = ram / job.relpath
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    with open(path, "wb") as fh:
                        job.streamed = stream_part(job.name, job.members, self.cs_root, fh, plain=job.plain,
                                                   hash_types=self.check.stream_hashes, expected_size=job.size,
                                                   buffer_size=min(self.buffer_size, max(job.size, 4096)),
                                                   on_bytes=functools.partial(self.progress.task_advanced, job.key))
                    made.append(job)
                    testhook.reached("packed", job.relpath)
                except SourceChanged as exc:
                    remove_quietly(path)
                    out[id(job)] = exc
                except OSError:  # no room in memory: this one goes by its own rclone rcat
                    remove_quietly(path)
                    try:
                        job.streamed = self.send(job)
                        out[id(job)] = None
                    except CsSyncError as exc:
                        out[id(job)] = exc
            if made:
                try:
                    failed = self.rclone.copy_files(str(ram), self.incoming, [j.relpath for j in made],
                                                    on_copied=lambda name: None,
                                                    what=f"uploading {len(made)} small file(s)",
                                                    extra=["--ignore-checksum", "--no-check-dest", "--transfers", "8",
                                                           *self.upload_flags, *self.batch_flags])
                except CsSyncError as exc:  # rclone failed as a whole
                    failed = {j.relpath: exc for j in made}
                for j in made:
                    why = failed.get(j.relpath)
                    out[id(j)] = type(why)(f"uploading {j.relpath}: {why.message}", hint=why.hint) if why else None
        finally:
            for job in jobs:
                remove_quietly(ram / job.relpath)
        return [out.get(id(j)) for j in jobs]

    def read_back(self, job: Job) -> None:
        """--verify download: stream the remote copy back and compare its SHA-256 with the one sent."""
        assert job.streamed is not None
        (n, got), _ = self.rclone.read_range(join(self.incoming, job.relpath), sha256_of_chunks,
                                             what=f"reading back {job.relpath}")
        if n != job.streamed.size or got != job.streamed.sha256:
            raise CheckFailed(f"{job.relpath}: read back {n} bytes with another SHA-256 than the one sent")

    def drop(self, job: Job) -> None:
        """Remove what an abandoned stream left under the incoming name (best effort)."""
        try:
            self.rclone.deletefile(join(self.incoming, job.relpath))
        except CsSyncError:  # tidying only: the file is hidden and never moved
            pass

