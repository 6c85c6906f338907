"""Stage 3: choose what to fetch from a remote version, fetch parts or byte ranges,
verify and extract them safely; state files make a killed run resumable.

May import: cs_sync.core, cs_sync.inputs, cs_sync.archive, cs_sync.remote, cs_sync.index (the header
walk of sets made by the older scripts, for on-the-fly ranged reads).
"""
