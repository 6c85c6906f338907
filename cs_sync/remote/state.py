"""Read what a remote version folder holds: one recursive listing plus the sidecars.

Shared by upload (skip finished sets), download (refuse broken ones) and status.
The listing is one ``rclone lsjson -R`` call; sidecars are fetched in one
``rclone copy`` of ``_cs_sync/`` so hundreds of faults cost two calls, not hundreds.
"""

from __future__ import annotations

import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cs_sync.archive.sidecar import SetSidecar
from cs_sync.core.errors import RemoteError, SidecarInvalid
from cs_sync.core.naming import SIDECAR_DIR, sidecar_name
from cs_sync.remote.rclone import Rclone, join
from cs_sync.remote.sets import RemoteFile, VersionListing, classify_listing, group_listing


def read_version(
    rclone: Rclone, root: str, version: str, *, hash_types: tuple[str, ...] = (), missing_ok: bool = False
) -> VersionListing:
    """List ``{root}/{version}`` once, read its sidecars, classify every set.

    The sidecar folder is copied while the listing runs (two rclone start-ups
    overlap instead of following each other); what the copy brought is used only
    for the sidecars the listing shows. Raises RemoteError naming the version when
    it does not exist (unless ``missing_ok``, used by upload, which then starts
    from an empty listing).
    """
    vpath = join(root, version)
    with tempfile.TemporaryDirectory(prefix="cs_sync_sidecars_") as tmp, ThreadPoolExecutor(1) as pool:
        early = pool.submit(_copy_sidecars, rclone, vpath, tmp)
        try:
            files = rclone.lsjson(vpath, recursive=True, hash_types=hash_types, what=f"listing {vpath}")
        except RemoteError as exc:
            if "not found" not in exc.message:
                raise
            if missing_ok:
                files = []
            else:
                raise RemoteError(
                    f"version {version!r} not found under {root}",
                    hint="run 'cs-sync status --remote ROOT' to list the versions there",
                ) from None
        listing = group_listing(version, files)
        copy_error = early.exception()
        if listing.sidecar_files and copy_error is not None:
            raise copy_error
        sidecars, damaged = read_sidecars(Path(tmp), listing.sidecar_files)
    return classify_listing(listing, sidecars, damaged)


def _copy_sidecars(rclone: Rclone, vpath: str, tmp: str) -> None:
    rclone.copy(join(vpath, SIDECAR_DIR), tmp, what=f"reading sidecars of {vpath}",
                extra=["--include", "/*.json", "--max-depth", "1"])


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
