"""The hashes a remote may keep of a file, computed locally from the same bytes.

Upload streams each part once; while it does, it computes the part's SHA-256 (the
sidecar's hash, read by download) and, when the remote keeps another kind of hash,
that one too, so the check after the upload compares the remote's own hash of the
file it stored with ours and reads no data back.

``hashlib`` computes md5, sha1 and sha256; ``zlib`` crc32. Dropbox's content hash is
SHA-256 over the concatenated SHA-256 digests of the file's 4 MiB blocks
(https://www.dropbox.com/developers/reference/content-hash); it is built here from
hashlib. Names are rclone's (``rclone hashsum`` lists them).
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

DROPBOX_BLOCK = 4 << 20
FILE_CHUNK = 1 << 20  # file_sha256 reads this much at a time

# Hashes we can compute, strongest first: the check uses the first one the remote offers.
PREFERRED = ("sha256", "dropbox", "sha1", "md5", "crc32")


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...

    def hexdigest(self) -> str: ...


class DropboxHash:
    """Dropbox's content hash: SHA-256 of the concatenated SHA-256s of 4 MiB blocks."""

    name = "dropbox"

    def __init__(self) -> None:
        self._overall = hashlib.sha256()
        self._block = hashlib.sha256()
        self._in_block = 0

    def update(self, data: bytes | memoryview, /) -> None:
        view = memoryview(data)
        if view.format != "B":
            view = view.cast("B")
        while len(view):
            take = min(len(view), DROPBOX_BLOCK - self._in_block)
            self._block.update(view[:take])
            self._in_block += take
            view = view[take:]
            if self._in_block == DROPBOX_BLOCK:
                self._overall.update(self._block.digest())
                self._block = hashlib.sha256()
                self._in_block = 0

    def hexdigest(self) -> str:
        overall = self._overall.copy()
        if self._in_block:
            overall.update(self._block.digest())
        return overall.hexdigest()


class Crc32Hash:
    """CRC-32 (IEEE), printed as rclone prints it: 8 hex digits, big-endian."""

    name = "crc32"

    def __init__(self) -> None:
        self._crc = 0

    def update(self, data: bytes | memoryview, /) -> None:
        self._crc = zlib.crc32(data, self._crc)

    def hexdigest(self) -> str:
        return f"{self._crc:08x}"


def new_hasher(name: str) -> Hasher:
    """A fresh hasher for the rclone hash type ``name`` (ValueError if we cannot compute it)."""
    if name == "dropbox":
        return DropboxHash()
    if name == "crc32":
        return Crc32Hash()
    if name in ("md5", "sha1", "sha256"):
        return hashlib.new(name)
    raise ValueError(f"cannot compute hash type {name!r} locally")


def pick_remote_hash(offered: Iterable[str]) -> str | None:
    """The hash to check uploads by: the strongest one the remote keeps that we can compute."""
    have = {h.lower() for h in offered}
    for name in PREFERRED:
        if name in have:
            return name
    return None


def sha256_of_chunks(chunks: Iterable[bytes | memoryview]) -> tuple[int, str]:
    """(bytes, SHA-256 hex) of a whole file arriving as ``chunks``: the one whole-file SHA-256
    (a local file, or a remote one read back); walkers that hash as they parse keep their own."""
    h = hashlib.sha256()
    n = 0
    for chunk in chunks:
        h.update(chunk)
        n += len(chunk)
    return n, h.hexdigest()


def file_sha256(path: Path | str) -> str:
    """SHA-256 of a local file, read in 1 MiB chunks."""
    with open(path, "rb") as fh:
        return sha256_of_chunks(iter(lambda: fh.read(FILE_CHUNK), b""))[1]
