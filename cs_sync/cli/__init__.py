"""Thin command-line entry points: parse arguments, build settings, make one call."""
