"""Entry points whose stage is not built yet: say so and exit non-zero."""

from __future__ import annotations

import sys


def _pending(prog: str) -> None:
    print(f"{prog}: not available yet in this version of cs_sync", file=sys.stderr)
    sys.exit(2)


def upload() -> None:
    _pending("cs-sync-upload")


def download() -> None:
    _pending("cs-sync-download")
