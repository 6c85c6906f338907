"""Read what a remote version folder holds: one recursive listing plus the sidecars.

Shared by upload (skip finished sets), download (refuse broken ones) and status.
The listing is one ``rclone lsjson -R`` call; sidecars are fetched in one
``rclone copy`` of ``_cs_sync/`` so hundreds of faults cost two calls, not hundreds.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from .errors import RemoteError
from .naming import SIDECAR_DIR
from .rclone import Rclone, join
from .remote_sets import RemoteFile, VersionListing, classify_listing, group_listing
from .sidecar import SetSidecar


def list_versions(rclone: Rclone, root: str) -> list[str]:
    """Version folders under the remote root (folders starting with '_' excluded)."""
    items = rclone.lsjson(root, recursive=False, files_only=False, dirs_only=True, what=f"listing remote root {root}")
    return sorted(it.path for it in items if not it.path.startswith("_"))


def read_version(
    rclone: Rclone, root: str, version: str, *, hash_types: tuple[str, ...] = (), missing_ok: bool = False
) -> VersionListing:
    """List ``{root}/{version}`` once, read its sidecars, classify every set.

    Raises RemoteError naming the version when it does not exist (unless
    ``missing_ok``, used by upload, which then starts from an empty listing).
    """
    vpath = join(root, version)
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
    sidecars = fetch_sidecars(rclone, vpath, listing.sidecar_files)
    return classify_listing(listing, sidecars)


def fetch_sidecars(rclone: Rclone, vpath: str, sidecar_files: dict[str, RemoteFile]) -> dict[tuple[str, str], SetSidecar]:
    """Copy ``_cs_sync/*.json`` down in one call and parse them; unreadable ones are skipped
    (their sets then count as unverified, never as verified)."""
    if not sidecar_files:
        return {}
    out: dict[tuple[str, str], SetSidecar] = {}
    with tempfile.TemporaryDirectory(prefix="cs_sync_sidecars_") as tmp:
        rclone.copy(join(vpath, SIDECAR_DIR), tmp, what=f"reading sidecars of {vpath}",
                    extra=["--include", "/*.json", "--max-depth", "1"])
        for name in sidecar_files:
            p = Path(tmp) / name
            try:
                sc = SetSidecar.from_json(p.read_text())
            except (OSError, ValueError, TypeError):
                continue
            out[(sc.fault, sc.dtype)] = sc
    return out
