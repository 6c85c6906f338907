"""rclone settings for a Dropbox remote that rclone's Dropbox documentation recommends
for large uploads, added unless the user set them (pure: data in, flags out).

* ``--dropbox-chunk-size``: rclone sends a large file in chunks, each buffered in
  memory (one per upload) so it can be retried; the documentation notes bigger chunks
  are faster ("at most 10% for 128 MiB in tests") and caps them below 150 MiB. We use
  148 MiB, the largest multiple of Dropbox's 4 MiB block below the cap: with TB of
  100 GiB parts, fewer round trips per part; the price is 148 MiB of memory per transfer.
* ``--dropbox-batch-mode sync``: the mode rclone documents as "ensures full data
  integrity" while committing many small files together (sidecars go in batches);
  ``async`` would return before Dropbox confirms, and the check that follows could
  find nothing yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DROPBOX_CHUNK = "148Mi"
DROPBOX_CHUNK_BYTES = 148 << 20
BATCH_TRANSFERS = "32"  # sync batch mode: the documentation says 32 or 64 transfers work fine


@dataclass(frozen=True)
class RemoteTuning:
    rcat: list[str] = field(default_factory=list)  # flags for each streamed upload
    batch: list[str] = field(default_factory=list)  # flags for copies of many small files (sidecars)
    added: list[str] = field(default_factory=list)  # what was added, for the log
    memory_per_transfer: int = 0  # bytes rclone buffers per upload because of these settings


def _set_by_user(option: str, name: str | None, config_keys: set[str], env: Mapping[str, str], params: str) -> bool:
    if option in config_keys:
        return True
    if f"RCLONE_DROPBOX_{option.upper()}" in env:
        return True
    if name and not name.startswith(":") and f"RCLONE_CONFIG_{name.upper()}_{option.upper()}" in env:
        return True
    return any(p.split("=", 1)[0].strip().replace("-", "_") == option for p in params.split(",")[1:])


def tuning_for(remote_type: str | None, name: str | None, config_keys: set[str], env: Mapping[str, str]) -> RemoteTuning:
    """Flags to add for a remote of ``remote_type`` named ``name`` (``:dropbox,...`` for a
    connection string), given the option names in its config section and the environment."""
    if remote_type != "dropbox":
        return RemoteTuning()
    params = name if name and name.startswith(":") else ""
    rcat: list[str] = []
    batch: list[str] = []
    added: list[str] = []
    memory = 0
    if not _set_by_user("chunk_size", name, config_keys, env, params):
        rcat += ["--dropbox-chunk-size", DROPBOX_CHUNK]
        added.append(f"--dropbox-chunk-size {DROPBOX_CHUNK} (uploads; {DROPBOX_CHUNK} of memory per transfer)")
        memory = DROPBOX_CHUNK_BYTES
    if not _set_by_user("batch_mode", name, config_keys, env, params):
        batch += ["--dropbox-batch-mode", "sync", "--transfers", BATCH_TRANSFERS]
        added.append(f"--dropbox-batch-mode sync --transfers {BATCH_TRANSFERS} (sidecar batches)")
    return RemoteTuning(rcat, batch, added, memory)
