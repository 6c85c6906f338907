"""Small helpers for the words of messages."""

from __future__ import annotations


def plural(n: int, word: str, many: str | None = None) -> str:
    """``1 fault``, ``3 faults`` (``many`` for irregular plurals)."""
    return f"{n} {word if n == 1 else (many or word + 's')}"
