"""Real headless Chromium for the HTML report tests: the DOM after scripts ran, screenshots.

Debian's ``chromium`` (``tests/ensure_chromium.sh``, run by ``make test``). Without it
the browser tests skip with the reason, or fail when ``CS_SYNC_REQUIRE_CHROMIUM=1``
(``.ci/run``). Each call gets a new empty profile and no network services.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import zlib
from pathlib import Path

import pytest

REQUIRE_ENV = "CS_SYNC_REQUIRE_CHROMIUM"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--disable-extensions", "--mute-audio"]


def find_chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def require_chromium() -> str:
    path = find_chromium()
    if path is None:
        why = "no chromium on PATH (make test installs Debian's chromium as root; see tests/ensure_chromium.sh)"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {why}")
        pytest.skip(why)
    return path


def _run(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    binary = require_chromium()
    with tempfile.TemporaryDirectory(prefix="cs_sync_chromium_") as profile:
        env = dict(os.environ, HOME=profile)
        proc = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              timeout=timeout, env=env)
    return proc


def dump_dom(page: Path, fragment: str = "", budget_ms: int = 5000) -> str:
    """The page's DOM after its scripts ran (``--dump-dom`` with a virtual time budget)."""
    url = Path(page).resolve().as_uri() + (f"#{fragment}" if fragment else "")
    proc = _run([f"--virtual-time-budget={budget_ms}", "--dump-dom", url])
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    return proc.stdout.decode()


def screenshot(page: Path, png: Path, width: int = 1400, height: int = 900) -> Path:
    url = Path(page).resolve().as_uri()
    proc = _run([f"--screenshot={png}", f"--window-size={width},{height}", "--virtual-time-budget=3000", url])
    assert proc.returncode == 0 and png.is_file(), proc.stderr.decode(errors="replace")[-2000:]
    return png


def read_png(path: Path) -> tuple[int, int, list[bytes]]:
    """A small PNG decoder (8-bit RGB/RGBA, not interlaced: what Chromium writes):
    (width, height, rows of raw pixel bytes). Enough to tell a blank screenshot."""
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 3 if ctype == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, rows


def colours(path: Path, step: int = 3) -> dict[tuple[int, ...], int]:
    """Distinct pixel colours (every ``step``-th pixel of every ``step``-th row) and their counts."""
    width, height, rows = read_png(path)
    bpp = len(rows[0]) // width
    out: dict[tuple[int, ...], int] = {}
    for row in rows[::step]:
        for x in range(0, width, step):
            px = tuple(row[x * bpp:x * bpp + 3])
            out[px] = out.get(px, 0) + 1
    return out
