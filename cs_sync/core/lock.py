"""One run at a time: a lock per upload (version and tmp dir), per download folder, per shard.

Two runs of the same upload (or into the same download folder) would each see the
other's half-finished files and report them as corrupt. So each run first creates a
lock file that records who holds it (host, PID, start time, command, Slurm job):

* ``{tmp_dir}/{version}/upload.lock`` (``upload.shard-i-of-N.lock`` per shard),
* ``{download_dir}/cs_sync_download.lock`` (``cs_sync_download.shard-i-of-N.lock``).

A second run finds it, says who holds it and stops with :class:`LockHeld` (exit 11).
A lock left by a run that was killed (SIGKILL, a node that rebooted) is taken over
when the holder was on this host and its PID is gone (or now belongs to a process
started later); on another host nothing here can tell, so the message says how to
clear it. A whole run and a shard of the same upload exclude each other too (the
whole run tidies every fault's scratch), as do shards of different splits (i/4 and
j/2 share faults); shards of one split do not.

Why not ``flock`` alone: scratch and download folders are often on Lustre, GPFS or
NFS, where flock is missing or only node-local. Creating the lock is one atomic
``link`` of a fully written temp file (atomic on NFS too; an ``O_EXCL`` create where
hard links are not supported), so there is no check-then-create window. Taking over
a stale lock is serialised by a short ``flock`` on a guard file, which only has to
work between processes of one host (the only case a lock is taken over).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import socket
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from cs_sync.core.errors import LockHeld, from_os_error

LOCK_SUFFIX = ".lock"
UPLOAD_LOCK = "upload"
DOWNLOAD_LOCK = "cs_sync_download"
_SHARD_RE = re.compile(r"^(?P<base>.+?)(?:\.shard-(?P<i>\d+)-of-(?P<n>\d+))?\.lock$")
_ATTEMPTS = 5
LEFTOVER_AGE = 60.0  # s: a temporary file of a lock attempt older than this was left by a killed run


@dataclass(frozen=True)
class LockOwner:
    """Who holds a lock: written into the lock file as JSON."""

    host: str
    pid: int
    started: float  # time.time() when the lock was taken
    command: str
    token: str  # unique per acquisition: tells our lock from a successor's
    slurm_job: str = ""  # e.g. 812345_3 when run as a Slurm task

    @classmethod
    def current(cls) -> LockOwner:
        job = os.environ.get("SLURM_JOB_ID", "")
        if os.environ.get("SLURM_ARRAY_JOB_ID"):
            job = f"{os.environ['SLURM_ARRAY_JOB_ID']}_{os.environ.get('SLURM_ARRAY_TASK_ID', '')}"
        return cls(host=socket.gethostname(), pid=os.getpid(), started=time.time(),
                   command=" ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
                   token=uuid.uuid4().hex, slurm_job=job)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> LockOwner | None:
        try:
            d = json.loads(text)
            return cls(host=str(d["host"]), pid=int(d["pid"]), started=float(d["started"]),
                       command=str(d.get("command", "")), token=str(d["token"]),
                       slurm_job=str(d.get("slurm_job", "")))
        except (ValueError, KeyError, TypeError):
            return None

    def describe(self, now: float | None = None) -> str:
        ago = max(0.0, (now or time.time()) - self.started)
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        job = f", Slurm job {self.slurm_job}" if self.slurm_job else ""
        return f"PID {self.pid} on {self.host}{job}, started {when} ({_duration(ago)} ago)"

    def gone(self) -> bool:
        """True when this owner ran on this host and is certainly no longer running."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass  # a process of another user has that PID: compare its start time
        started = process_start(self.pid)
        # the PID was reused by a process that started after the lock was taken
        return started is not None and started > self.started + 2.0


def process_start(pid: int) -> float | None:
    """When process ``pid`` started (epoch seconds), from /proc; None where that cannot be read."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        ticks = int(stat.rsplit(")", 1)[1].split()[19])  # field 22: start time in clock ticks after boot
        btime = next(int(ln.split()[1]) for ln in Path("/proc/stat").read_text().splitlines() if ln.startswith("btime"))
        return btime + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _duration(seconds: float) -> str:
    s = int(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    if s < 2 * 86400:
        return f"{s // 3600} h {s % 3600 // 60} min"
    return f"{s // 86400} days"


def lock_name(base: str, shard: tuple[int, int] | None) -> str:
    return f"{base}.shard-{shard[0]}-of-{shard[1]}{LOCK_SUFFIX}" if shard else f"{base}{LOCK_SUFFIX}"


def conflicts(name_a: str, name_b: str) -> bool:
    """Do the runs holding lock files ``name_a`` and ``name_b`` (same folder) exclude each other?

    Same base: yes, unless both are shards of one split (same N, different i).
    """
    a, b = _SHARD_RE.match(name_a), _SHARD_RE.match(name_b)
    if not a or not b or a["base"] != b["base"]:
        return False
    if a["n"] and b["n"] and a["n"] == b["n"]:
        return a["i"] == b["i"]
    return True


class RunLock:
    """An exclusive lock file for one run; use as a context manager.

    ``what`` names the locked thing in messages ("upload of v22p12 in /scratch/tmp").
    Sibling lock files whose runs conflict with this one (see :func:`conflicts`) are
    checked after taking ours: a live holder there stops this run too.
    """

    def __init__(self, path: Path | str, what: str) -> None:
        self.path = Path(path)
        self.what = what
        self.owner: LockOwner | None = None

    # -- public ------------------------------------------------------------------

    def acquire(self) -> RunLock:
        me = LockOwner.current()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise from_os_error(exc, f"cannot create {self.path.parent}") from None
        for _ in range(_ATTEMPTS):
            if self._create(me):
                self.owner = me
                break
            holder = self._read()
            if holder is None:
                if self._unreadable_for_long():
                    raise LockHeld(f"{self.what}: lock file {self.path} cannot be read",
                                   hint=f"if no other cs-sync run is using it, remove {self.path} and re-run")
                time.sleep(0.05)  # released, or being written by an O_EXCL create: look again
                continue
            if holder.gone():
                if self._take_over(holder, me):
                    self.owner = me
                    break
                continue
            raise self._held(holder, self.path)
        else:
            raise LockHeld(f"{self.what}: could not take {self.path} (other runs kept taking it)",
                           hint="re-run when the other runs have ended")
        try:
            self._check_siblings()
        except BaseException:
            self.release()
            raise
        self._clear_leftover_temps()
        return self

    def release(self) -> None:
        """Remove the lock file if it is still ours (never a successor's)."""
        if self.owner is None:
            return
        holder = self._read()
        if holder is not None and holder.token == self.owner.token:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
        self.owner = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    # -- inside ------------------------------------------------------------------

    def _create(self, me: LockOwner) -> bool:
        """Atomically create the lock file holding ``me``; False when it exists.

        Its temporary name is its own, not core/atomic's ``.cs_sync_tmp`` scheme: it is linked,
        never renamed, into place, and it lives in the download folder, where that suffix
        means a file being extracted."""
        tmp = self.path.with_name(f".{self.path.name}.{me.token}.tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(me.to_json())
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.link(tmp, self.path)
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                if _linked(tmp):  # NFS may report an error for a link that was made
                    return True
                if exc.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.EMLINK, errno.ENOSYS):
                    raise
            return self._create_excl(me)  # no hard links on this file system
        except OSError as exc:
            raise from_os_error(exc, f"cannot create lock file {self.path}") from None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _clear_leftover_temps(self, min_age: float = LEFTOVER_AGE) -> None:
        """Remove temporary files of :meth:`_create` left by runs killed while taking this lock.

        Once we hold the lock, another run's temporary file is either in use for the
        instant of its own attempt or left by a killed run: only those older than
        ``min_age`` seconds are removed."""
        now = time.time()
        for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            with contextlib.suppress(OSError):
                if now - tmp.lstat().st_mtime > min_age:
                    tmp.unlink()

    def _create_excl(self, me: LockOwner) -> bool:
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(me.to_json())
            fh.flush()
            os.fsync(fh.fileno())
        return True

    def _read(self, path: Path | None = None) -> LockOwner | None:
        try:
            return LockOwner.from_json((path or self.path).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError):
            return None

    def _unreadable_for_long(self) -> bool:
        """A lock file that exists but has held no owner for a while (not one being written)."""
        try:
            return time.time() - self.path.stat().st_mtime > 5.0
        except OSError:
            return False  # gone: released meanwhile

    def _take_over(self, stale: LockOwner, me: LockOwner) -> bool:
        """Replace a lock whose owner is gone; False when another run changed it first."""
        guard = self.path.with_name(f".{self.path.name}.guard")
        try:
            fd = os.open(guard, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise from_os_error(exc, f"cannot create {guard}") from None
        try:
            _flock(fd)
            current = self._read()
            if current is None or current.token != stale.token:
                return False
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path)
            return self._create(me)
        finally:
            os.close(fd)  # closing releases the flock

    def _check_siblings(self) -> None:
        try:
            siblings = [p for p in self.path.parent.iterdir()
                        if p.name.endswith(LOCK_SUFFIX) and p.name != self.path.name and conflicts(self.path.name, p.name)]
        except OSError as exc:
            raise from_os_error(exc, f"cannot list {self.path.parent}") from None
        for p in sorted(siblings):
            holder = self._read(p)
            if holder is not None and not holder.gone():
                raise self._held(holder, p)

    def _held(self, holder: LockOwner, path: Path) -> LockHeld:
        cmd = f": {holder.command}" if holder.command else ""
        msg = f"another run holds the lock on the {self.what}: {holder.describe()}{cmd}"
        if holder.host == socket.gethostname():
            hint = f"wait for it to end, or stop it (kill {holder.pid}); lock file {path}"
        else:
            check = f"squeue -j {holder.slurm_job.split('_')[0]}" if holder.slurm_job else f"ssh {holder.host} ps -p {holder.pid}"
            hint = (f"it ran on another host, so this run cannot tell whether it is still going: check with "
                    f"'{check}'; if it is not running, remove {path} and re-run")
        return LockHeld(msg, hint=hint)


def _linked(tmp: Path) -> bool:
    try:
        return os.stat(tmp).st_nlink == 2
    except OSError:
        return False


def _flock(fd: int) -> None:
    """Exclusive flock, waiting; where the file system has none, go on without it (best effort)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        return
    with contextlib.suppress(OSError):
        fcntl.flock(fd, fcntl.LOCK_EX)


def upload_lock(work_dir: Path | str, version: str, tmp_dir: Path | str, shard: tuple[int, int] | None) -> RunLock:
    """The lock of one upload run (or shard) of ``version`` using ``work_dir`` = {tmp_dir}/{version}."""
    part = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    return RunLock(Path(work_dir) / lock_name(UPLOAD_LOCK, shard), f"upload of {version} with tmp dir {tmp_dir}{part}")


def download_lock(download_dir: Path | str, shard: tuple[int, int] | None) -> RunLock:
    """The lock of one download run (or shard) into ``download_dir``."""
    part = f" (shard {shard[0]}/{shard[1]})" if shard else ""
    return RunLock(Path(download_dir) / lock_name(DOWNLOAD_LOCK, shard), f"download folder {download_dir}{part}")

