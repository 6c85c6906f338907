"""Parse and format byte sizes (``100G``, ``100GiB``, ``500M``, ``12345``)."""

from __future__ import annotations

import re

from cs_sync.core.errors import InputError

_UNITS = {
    "": 1,
    "B": 1,
    "K": 1024,
    "KB": 1000,
    "KIB": 1024,
    "M": 1024**2,
    "MB": 1000**2,
    "MIB": 1024**2,
    "G": 1024**3,
    "GB": 1000**3,
    "GIB": 1024**3,
    "T": 1024**4,
    "TB": 1000**4,
    "TIB": 1024**4,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(text: str | int, *, option: str = "size") -> int:
    """Bytes for ``text``. Bare K/M/G/T are binary (as rclone reads them); KB/MB/GB decimal.

    Raises InputError naming the option and the value when it cannot be read.
    """
    if isinstance(text, int):
        if text <= 0:
            raise InputError(f"{option}: {text!r} must be a positive number of bytes")
        return text
    m = _SIZE_RE.match(str(text))
    unit = m.group(2).upper() if m else None
    if not m or unit not in _UNITS:
        raise InputError(
            f"{option}: cannot read size {text!r}", hint="use e.g. 100G, 100GiB, 500M, 350GB or plain bytes"
        )
    value = int(float(m.group(1)) * _UNITS[unit])
    if value <= 0:
        raise InputError(f"{option}: {text!r} must be more than 0 bytes")
    return value


def format_size(n: float) -> str:
    """Human-readable binary size, e.g. ``1.5 GiB``."""
    step = 1024.0
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < step or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= step
    return f"{n:.1f} PiB"  # pragma: no cover


def parse_rate(text: str, *, option: str = "rate") -> float:
    """Bytes per second from ``20M`` (= 20 MiB/s, as rclone reads it), ``20M/s``, ``500K``, ``100MB``."""
    t = str(text).strip()
    if t.lower().endswith("/s"):
        t = t[:-2]
    return float(parse_size(t, option=option))
