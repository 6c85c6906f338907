"""Check what sits on the remote without downloading it: every part's hash in one listing
against what its sidecar recorded (or, with --read-data, a slice of the parts streamed and
hashed, never written to disk).

May import: cs_sync.core, cs_sync.inputs, cs_sync.archive, cs_sync.remote, cs_sync.index
(the set selection, the remote-hash choice and the streamed hashing of a part).
"""
