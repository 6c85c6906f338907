"""What the user gives the tool: sync_patterns.yaml (config), list.txt (fault list) and
files_to_sync.yaml (the manifest preprocess writes and upload reads); stocktake.csv read back
for the report.

May import: cs_sync.core, pyyaml.
"""
