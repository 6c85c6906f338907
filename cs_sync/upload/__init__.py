"""Stage 2: plan capped parts from the manifest, pack them, send them, check them,
write the sidecar; journals make a killed run resumable.

May import: cs_sync.core, cs_sync.inputs, cs_sync.archive, cs_sync.remote.
"""
