"""Thin command-line entry points: parse arguments into one settings object, make one call,
map the error family to exit codes.

May import: anything in cs_sync. Nothing imports cli.
"""
