"""The archive format on the remote: capped TAR parts written straight from the sources,
TAR parts read back safely, and the per-set sidecar that vouches for them.

May import: cs_sync.core.
"""
