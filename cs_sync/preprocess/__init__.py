"""Stage 1: scan CS_ROOT with the patterns, write files_to_sync.yaml and stocktake.csv.

May import: cs_sync.core, cs_sync.inputs (pandas only where the CSV is written).
"""
