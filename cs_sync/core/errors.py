"""One error family for the whole tool, and the one table that maps it to exit codes.

Every failure a user can cause or meet (bad input, missing rclone, an unreachable
remote, a set that failed to verify) is raised as a subclass of :class:`CsSyncError`.
The CLI edge catches the family, prints one line and exits with ``exit_code``; the
engine never calls ``sys.exit``.
"""

from __future__ import annotations

import copy
import os
from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes (README, "Exit codes"). Never renumber: scripts test them."""

    OK = 0
    INTERNAL = 1  # a bug: an unexpected exception (traceback with --debug)
    USAGE = 2  # bad command line (argparse uses 2 too)
    BAD_INPUT = 3  # a config, list.txt, manifest or option value is wrong
    STOCKTAKE_FAILED = 4  # preprocess finished and wrote its files, but checks failed
    RCLONE = 5  # rclone is missing or failed in a way not covered below
    REMOTE = 6  # unknown, unreachable or unusable remote / version not found
    INCOMPLETE = 7  # some sets failed, are incomplete, ambiguous or stale; others went through
    VERIFY = 8  # a checksum or size did not match
    LOCAL_IO = 9  # local disk: no space, permission denied, unwritable directory
    SLURM = 10  # sbatch/squeue/scontrol missing or failed
    LOCKED = 11  # another run holds the lock (same version and tmp dir, or same download dir)
    INTERRUPTED = 130  # Ctrl-C / SIGTERM; re-run the same command to continue


class CsSyncError(Exception):
    """Base of every error the tool reports to the user as one line."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.one_line()

    def one_line(self) -> str:
        """The single stderr line shown to users: what went wrong and what to do."""
        return f"{self.message} ({self.hint})" if self.hint else self.message

    def about(self, what: str) -> CsSyncError:
        """The same error (same type, same hint) with ``what: `` put before its message."""
        new = copy.copy(self)
        new.message = f"{what}: {self.message}"
        new.args = (new.message,)
        return new


class UsageError(CsSyncError):
    exit_code = ExitCode.USAGE


class InputError(CsSyncError):
    """A file or value the user gave is malformed or inconsistent."""

    exit_code = ExitCode.BAD_INPUT


class ConfigError(InputError):
    """sync_patterns.yaml is missing, malformed or refers to unknown things."""


class FaultListError(InputError):
    """list.txt is missing or has a bad line."""


class ManifestError(InputError):
    """files_to_sync.yaml is missing, malformed or belongs to another version."""


class PlanError(InputError):
    """The upload plan cannot be carried out as asked (name clash, part above hard limit)."""


class StocktakeFailed(CsSyncError):
    """Preprocess wrote its outputs, but some expected files were not found."""

    exit_code = ExitCode.STOCKTAKE_FAILED


class RcloneError(CsSyncError):
    """rclone failed in a way none of the types below covers (the generic rclone failure)."""

    exit_code = ExitCode.RCLONE


class RcloneNotFound(RcloneError):
    """No rclone binary to run."""


class Interrupted(CsSyncError):
    """The run was stopped by Ctrl-C or SIGTERM; re-running the same command continues it."""

    exit_code = ExitCode.INTERRUPTED


class RcloneInterrupted(Interrupted):
    """An rclone stopped by a signal (ours: the run is stopping, or Ctrl-C / SIGTERM reached it)."""


class RemoteError(CsSyncError):
    """The remote is unknown, unreachable, or does not hold what was asked for."""

    exit_code = ExitCode.REMOTE


class RemoteNotFound(RemoteError):
    """The remote name is not configured, or its configuration cannot be used."""


class RemoteUnreachable(RemoteError):
    """The remote did not answer or failed temporarily (network, outage, throttling),
    after rclone's own retries and ours."""


class ObjectNotFound(RemoteError):
    """A folder or file asked for is not on the remote."""


class RemoteDenied(RemoteError):
    """The remote refused the request (credentials, permissions, a suspended account)."""


class RemoteLoginFailed(RemoteDenied):
    """The remote refuses this login (a token that expired or was revoked, a password that
    changed): every other request would meet it too, so the run stops."""


class RemoteFull(RemoteError):
    """The remote has no room left (its disk, or the account's quota): every other write would
    meet it too, so the run stops."""


class IncompleteError(CsSyncError):
    """The run finished, but some sets failed or were refused; the rest went through."""

    exit_code = ExitCode.INCOMPLETE


class SourceChanged(CsSyncError):
    """A source file vanished or changed since preprocess: that set stops, others go on."""

    exit_code = ExitCode.INCOMPLETE


class VerifyError(CsSyncError):
    exit_code = ExitCode.VERIFY


class UnsafeNameError(VerifyError):
    """A name from the remote (sidecar, TAR member, listing) would leave the target folder."""


class SidecarInvalid(CsSyncError):
    """A sidecar exists but does not parse or validate: its set is not vouched for."""

    exit_code = ExitCode.INCOMPLETE


class SidecarUnsafe(SidecarInvalid):
    """A sidecar names a member or part that would leave the download folder (forged)."""

    exit_code = ExitCode.VERIFY


class LocalIOError(CsSyncError):
    """The local disk failed us: no space, no permission, an unwritable folder."""

    exit_code = ExitCode.LOCAL_IO


class LocalDiskFull(LocalIOError):
    """No space left (or quota exceeded) on a local file system."""


class LocalPermissionDenied(LocalIOError):
    """A local file or folder cannot be read or written (permissions, read-only file system)."""


class SlurmError(CsSyncError):
    exit_code = ExitCode.SLURM


class UnknownJob(SlurmError):
    """The controller does not know the job (never existed, or finished past MinJobAge)."""


class LockHeld(CsSyncError):
    """Another run holds the lock on this upload (version and tmp dir) or download folder."""

    exit_code = ExitCode.LOCKED


class VersionNotFound(ObjectNotFound):
    """The remote root answers but holds no folder of the version asked for."""


def from_os_error(exc: OSError, what: str, *, hint: str | None = None) -> LocalIOError:
    """Turn an OSError into one readable line naming the path and the remedy.

    ``what`` says what was being done, path included ("writing /x/y"); the file
    name the OS gives is added when ``what`` does not show it. ``hint`` replaces the
    remedy for a full disk (the caller knows which option puts the files elsewhere).
    """
    import errno

    path = os.fsdecode(exc.filename) if exc.filename else ""
    where = what if not path or path in what else f"{what} ({path})"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        head = "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
        return LocalDiskFull(f"{head}: {where}", hint=hint or "free space there, then re-run the same command")
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return LocalPermissionDenied(f"permission denied: {where}", hint="check ownership and permissions")
    return LocalIOError(f"{where}: {exc.strerror or exc}")


# Errors after which going on cannot help: every other set would meet them too. (A remote
# that refuses one file, or does not hold it, is that set's problem: RemoteDenied and
# ObjectNotFound are not here.)
FATAL = (RcloneNotFound, LocalIOError, RemoteNotFound, RemoteUnreachable, RemoteFull, RemoteLoginFailed,
         Interrupted)


def is_fatal(exc: BaseException) -> bool:
    """Does ``exc`` stop the whole run rather than one set? Decided by type alone."""
    return isinstance(exc, FATAL)
