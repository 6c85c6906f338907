"""Index the sets the older scripts made (no sidecar): walk each TAR part's headers by
byte range through one long-lived rclone and write an index sidecar, so download can
read one member by range and verify can compare the remote's hashes. Data files are
never modified, moved or deleted; only ``{version}/_cs_sync/`` is written.

May import: cs_sync.core, cs_sync.inputs, cs_sync.archive, cs_sync.remote.
"""
