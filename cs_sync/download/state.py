"""What a download has finished, kept in the download folder so a re-run continues.

``tar_ok.log`` gets one line per part extracted (or member fetched by byte range),
``tar_error.log`` one line per failure. Each line is written whole with one
``write`` and then ``fsync``'d, so a SIGKILL leaves at worst a torn last line,
which is ignored on reading. Shards of a Slurm array write their own files
(``tar_ok.shard-2-of-4.log``) so concurrent jobs never append to the same file;
every shard's file is read back, so a later run without ``--shard`` sees it all.

Line format (tab-separated)::

    ok  VERSION  FAULT/PART[#MEMBER]  SIZE  SHA256|-  FILTER  TIME
    error  VERSION  FAULT/PART  TIME  MESSAGE
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cs_sync.core.errors import from_os_error
from cs_sync.remote.redact import redact

OK_LOG = "tar_ok.log"
ERROR_LOG = "tar_error.log"
ALL = "*"


@dataclass(frozen=True)
class Unit:
    """A piece of work the log can vouch for: a whole part, or one member of it."""

    fault: str
    part: str
    size: int
    sha256: str | None = None
    member: str | None = None

    @property
    def path(self) -> str:
        return f"{self.fault}/{self.part}" + (f"#{self.member}" if self.member else "")


def _shard_suffix(shard: tuple[int, int] | None) -> str:
    return f".shard-{shard[0]}-of-{shard[1]}" if shard else ""


def log_names(shard: tuple[int, int] | None) -> tuple[str, str]:
    sfx = _shard_suffix(shard)
    return OK_LOG.replace(".log", f"{sfx}.log"), ERROR_LOG.replace(".log", f"{sfx}.log")


class DownloadState:
    """Read every ``tar_ok*.log`` in ``folder``; append to this run's own files."""

    def __init__(self, folder: Path, version: str, shard: tuple[int, int] | None = None, *, ignore_old: bool = False):
        self.folder = Path(folder)
        self.version = version
        ok_name, err_name = log_names(shard)
        self.ok_path = self.folder / ok_name
        self.error_path = self.folder / err_name
        self._lock = threading.Lock()
        self._done: set[tuple[str, int, str, str]] = set()  # (path, size, sha, filter)
        if not ignore_old:
            for p in sorted(self.folder.glob("tar_ok*.log")):
                self._read(p)

    def _read(self, path: Path) -> None:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise from_os_error(exc, f"reading {path}") from None
        for raw in data.split(b"\n")[:-1]:  # the last piece has no newline: torn or empty
            fields = raw.decode("utf-8", errors="replace").split("\t")
            if len(fields) < 6 or fields[0] != "ok" or fields[1] != self.version:
                continue  # another version, an older script's line, or junk
            try:
                size = int(fields[3])
            except ValueError:
                continue
            self._done.add((fields[2], size, fields[4], fields[5]))

    def is_done(self, unit: Unit, filter_sig: str) -> bool:
        sha = unit.sha256 or "-"
        with self._lock:
            return (unit.path, unit.size, sha, ALL) in self._done or (unit.path, unit.size, sha, filter_sig) in self._done

    def record_ok(self, unit: Unit, filter_sig: str) -> None:
        sha = unit.sha256 or "-"
        line = "\t".join(["ok", self.version, unit.path, str(unit.size), sha, filter_sig, _now()]) + "\n"
        with self._lock:
            self._append(self.ok_path, line)
            self._done.add((unit.path, unit.size, sha, filter_sig))

    def record_error(self, unit: Unit, message: str) -> None:
        msg = " ".join(redact(message).split())
        line = "\t".join(["error", self.version, unit.path, _now(), msg]) + "\n"
        with self._lock:
            self._append(self.error_path, line)

    @staticmethod
    def _append(path: Path, line: str) -> None:
        """One write of the whole line, then fsync: survives SIGKILL at any moment.

        A torn last line (no newline) left by a killed run is closed first, so the
        new line never merges with it.
        """
        try:
            fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                end = os.lseek(fd, 0, os.SEEK_END)
                if end and os.pread(fd, 1, end - 1) != b"\n":
                    line = "\n" + line
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise from_os_error(exc, f"writing {path}") from None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S")
