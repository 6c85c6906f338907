"""Read a file the user gave (list.txt, sync_patterns.yaml, files_to_sync.yaml) as text, or say
in one line why not: every reader names the file the same way."""

from __future__ import annotations

from pathlib import Path

from cs_sync.core.errors import InputError


def read_text_input(path: Path, what: str, error: type[InputError], missing_hint: str) -> str:
    """The text of an input file, or one line naming it: not found, not readable, or not UTF-8
    text (a leading byte-order mark, as Windows editors write, is dropped)."""
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{path}: {what} not found", hint=missing_hint) from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: cannot read {what}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
                    f"{exc.start})", hint="save it as plain UTF-8 text") from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
