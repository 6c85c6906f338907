"""Read what a remote version folder holds: one recursive listing plus the sidecars.

Shared by upload (skip finished sets), download (refuse broken ones) and status.
The listing is one ``rclone lsjson -R`` call; sidecars are fetched in one
``rclone copy`` of ``_cs_sync/`` so hundreds of faults cost two calls, not hundreds.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cs_sync.archive.sidecar import SetSidecar
from cs_sync.core import testhook
from cs_sync.core.errors import (
    CsSyncError,
    LocalDiskFull,
    ObjectNotFound,
    RemoteError,
    SidecarInvalid,
    VersionNotFound,
    from_os_error,
)
from cs_sync.core.naming import SIDECAR_DIR, sidecar_name
from cs_sync.remote.rclone import Rclone, join
from cs_sync.remote.sets import RemoteFile, VersionListing, classify_listing, group_listing

SCRATCH_PREFIX = ".cs_sync_sidecars"  # {prefix}.{host}.{pid}.{n}: whose it is, so a later run can clear it
_FOREIGN_AGE_S = 7 * 86400  # another host's leftover is cleared only when surely dead (shared folders)
_seq = itertools.count()


def read_version(
    rclone: Rclone, root: str, version: str, *, hash_types: tuple[str, ...] = (), missing_ok: bool = False,
    scratch: Path | None = None,
) -> VersionListing:
    """List ``{root}/{version}`` once, read its sidecars, classify every set.

    The sidecar folder is copied while the listing runs (two rclone start-ups
    overlap instead of following each other); what the copy brought is used only
    for the sidecars the listing shows. Raises RemoteError naming the version when
    it does not exist (unless ``missing_ok``, used by upload, which then starts
    from an empty listing).

    The sidecars land in a folder under ``scratch`` (the run's own download or
    tmp folder; the system temp folder when not given), removed afterwards;
    one left by a killed run is removed by the next run that uses ``scratch``.
    """
    vpath = join(root, version)
    tmp = _scratch_folder(Path(scratch) if scratch is not None else Path(tempfile.gettempdir()))
    try:
        return _read_version(rclone, root, version, vpath, str(tmp), hash_types=hash_types, missing_ok=missing_ok)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _read_version(rclone: Rclone, root: str, version: str, vpath: str, tmp: str, *,
                  hash_types: tuple[str, ...], missing_ok: bool) -> VersionListing:
    with ThreadPoolExecutor(1) as pool:
        # upload (missing_ok) may meet a version that does not exist yet: its sidecars are copied
        # after the listing, only when it shows some, so a first upload logs no "directory not
        # found" retries; the others overlap the two calls
        early = None if missing_ok else pool.submit(_copy_sidecars, rclone, vpath, tmp)
        try:
            files = rclone.lsjson(vpath, recursive=True, hash_types=hash_types, what=f"listing {vpath}")
        except ObjectNotFound:
            if missing_ok:
                files = []
            else:
                raise _not_found(rclone, root, version) from None
        if not files and not missing_ok:
            # a bucket store (S3) has no folders: a prefix nothing is under lists empty, no error
            there = _versions_there(rclone, root)
            if not isinstance(there, list) or version not in there:
                raise _not_found(rclone, root, version, there)
        listing = group_listing(version, files)
        copy_error: BaseException | None
        if early is None:  # upload: copied now, only when the listing shows sidecars
            copy_error = None
            if listing.sidecar_files:
                try:
                    _copy_sidecars(rclone, vpath, tmp)
                except CsSyncError as exc:
                    copy_error = exc
        else:
            copy_error = early.exception()
            if listing.sidecar_files and (isinstance(copy_error, ObjectNotFound) or (copy_error is None and any(
                    not (Path(tmp) / name).exists() for name in listing.sidecar_files))):
                # another process (a shard, an upload) wrote sidecars after the copy looked and
                # before the listing did: copy them again, once, now that the listing shows them
                try:
                    _copy_sidecars(rclone, vpath, tmp)
                    copy_error = None
                except CsSyncError as exc:
                    copy_error = exc
        if listing.sidecar_files and copy_error is not None:
            need = sum(f.size for f in listing.sidecar_files.values())
            if shutil.disk_usage(tmp).free < need + (1 << 20):  # the local side is full: a disk error, exit 9
                raise LocalDiskFull(f"no space left on device: copying {len(listing.sidecar_files)} sidecar(s) "
                                    f"({need} bytes) into {tmp}",
                                    hint="free space there, then re-run the same command") from None
            raise copy_error
        testhook.reached("sidecars_copied")
        sidecars, damaged = read_sidecars(Path(tmp), listing.sidecar_files)
    return classify_listing(listing, sidecars, damaged)


def _scratch_folder(base: Path) -> Path:
    """A fresh folder for this read under ``base``, after clearing those of dead runs.

    Leftovers are named by host and process: one of this host whose process is
    gone is removed; another host's (a shared folder) only when a week old, since
    its process cannot be asked. Several shards may share ``base`` at once.
    """
    host = socket.gethostname().replace(".", "_")
    try:
        for old in base.glob(f"{SCRATCH_PREFIX}.*"):
            bits = old.name.split(".")  # '', 'cs_sync_sidecars', host, pid, n
            if len(bits) != 5 or not bits[3].isdigit():
                continue
            mine = bits[2] == host
            if (mine and not _alive(int(bits[3]))) or (
                    not mine and time.time() - old.stat().st_mtime > _FOREIGN_AGE_S):
                shutil.rmtree(old, ignore_errors=True)
        tmp = base / f"{SCRATCH_PREFIX}.{host}.{os.getpid()}.{next(_seq)}"
        shutil.rmtree(tmp, ignore_errors=True)  # a reused pid's leftover
        tmp.mkdir(parents=True)
    except OSError as exc:
        raise from_os_error(exc, f"creating a folder for the sidecars in {base}") from None
    return tmp


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def _versions_there(rclone: Rclone, root: str) -> list[str] | RemoteError:
    """The version folders under ``root`` (one listing of its folders, not the recursive
    one of cs-sync status), or why the root could not be listed."""
    try:
        items = rclone.lsjson(root, recursive=False, files_only=False, dirs_only=True, what=f"listing {root}")
    except RemoteError as exc:  # the root itself is missing or unreadable
        return exc
    return sorted(it.path for it in items if not it.path.startswith("_"))


def _not_found(rclone: Rclone, root: str, version: str,
               there: list[str] | RemoteError | None = None) -> VersionNotFound:
    """The error for a missing version, naming the versions the root does hold."""
    if there is None:
        there = _versions_there(rclone, root)
    if isinstance(there, RemoteError):
        return VersionNotFound(f"version {version!r} not found: {there.message}",
                               hint="check --remote (or $CS_SYNC_REMOTE) and the version name")
    if not there:
        return VersionNotFound(f"version {version!r} not found under {root}: it holds no versions",
                               hint="check --remote (or $CS_SYNC_REMOTE)")
    return VersionNotFound(f"version {version!r} not found under {root}; versions there: {', '.join(there)}",
                           hint="check the name, or --remote")


def _copy_sidecars(rclone: Rclone, vpath: str, tmp: str) -> None:
    # a glob on purpose (every sidecar), so not built with include_args; retried like the listing
    rclone.copy(join(vpath, SIDECAR_DIR), tmp, what=f"reading sidecars of {vpath}",
                extra=["--include", "/*.json", "--max-depth", "1"], retry=True)


def read_sidecars(folder: Path, sidecar_files: dict[str, RemoteFile]
                  ) -> tuple[dict[tuple[str, str], SetSidecar], dict[str, SidecarInvalid]]:
    """Parse the listed sidecars copied into ``folder``.

    Returns the valid ones by (fault, type) and, by file name, why each other one
    was refused: a sidecar that exists but does not parse, validate or match its
    own file name makes its set DAMAGED, never silently unverified.
    """
    out: dict[tuple[str, str], SetSidecar] = {}
    damaged: dict[str, SidecarInvalid] = {}
    for name in sidecar_files:
        where = f"{SIDECAR_DIR}/{name}"
        try:
            sc = SetSidecar.from_json((folder / name).read_text(), where=where)
            if sidecar_name(sc.fault, sc.dtype) != name:
                raise SidecarInvalid(f"sidecar invalid: {where}: fault/dtype: it describes {sc.fault} {sc.dtype}",
                                     hint="the set is not vouched for; re-upload it with --overwrite")
        except SidecarInvalid as exc:
            damaged[name] = exc
            continue
        except (OSError, UnicodeDecodeError) as exc:
            damaged[name] = SidecarInvalid(f"sidecar unreadable: {where}: {exc}")
            continue
        out[(sc.fault, sc.dtype)] = sc
    return out, damaged
