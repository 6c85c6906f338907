"""Stage 2: plan capped parts from the manifest, stream them from the sources to the
remote, check them by the remote's own hash, write the sidecar; journals make a killed
run resumable. Pieces: planning, journal, tracker (a set's order rules), sender (one
stream), checks, sidecars, tuning (Dropbox settings), run (the scheduler), engine.

May import: cs_sync.core, cs_sync.inputs, cs_sync.archive, cs_sync.remote.
"""
