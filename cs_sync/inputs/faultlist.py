"""Parse ``list.txt``: one fault a line with its realisation count and optional skip.

``AlpineK2T 31r``, ``AlpineK2T 31`` and ``AlpineK2T 50 10r`` (skip the first 10:
REL11..REL50 expected). Blank lines and ``#`` comments are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cs_sync.core.errors import FaultListError
from cs_sync.core.naming import realisation_name
from cs_sync.inputs.text_file import read_text_input

_COUNT_RE = re.compile(r"^(-?\d+)r?$")
# Far above any version (Cybershake faults have tens of realisations): a count beyond it is a
# typo, and taken as written it would make preprocess expect (and list) that many events.
MAX_COUNT = 9999


@dataclass(frozen=True)
class FaultEntry:
    """A fault and the realisations of it that are expected (``first``..``last``)."""

    name: str
    count: int  # the second column: highest realisation number
    skip: int = 0  # the third column: the first ``skip`` realisations are not expected
    line: int = field(default=0, compare=False)  # line number in list.txt, for messages

    @property
    def first(self) -> int:
        return self.skip + 1

    @property
    def last(self) -> int:
        return self.count

    @property
    def n_rels(self) -> int:
        """How many realisations are expected (``rel_nums`` in stocktake.csv)."""
        return self.count - self.skip

    def rel_in_range(self, rel: int) -> bool:
        return self.first <= rel <= self.last

    def realisations(self) -> list[str]:
        return [realisation_name(self.name, r) for r in range(self.first, self.last + 1)]


def _count(token: str, path: Path | str, lineno: int, line: str, what: str) -> int:
    m = _COUNT_RE.match(token)
    if not m:
        raise FaultListError(
            f"{path}:{lineno}: {what} {token!r} is not a number in {line!r}",
            hint="write e.g. 'AlpineK2T 31r' or 'AlpineK2T 50 10r'",
        )
    value = int(m.group(1))
    if value < 0:
        raise FaultListError(f"{path}:{lineno}: {what} {token!r} is negative in {line!r}")
    if value > MAX_COUNT:
        raise FaultListError(f"{path}:{lineno}: {what} {token!r} is more than {MAX_COUNT} in {line!r}",
                             hint="a typo? write e.g. 'AlpineK2T 31r'")
    return value


def parse_fault_list(text: str, path: Path | str = "list.txt") -> list[FaultEntry]:
    """Entries in file order. Raises FaultListError naming file, line number and line."""
    entries: list[FaultEntry] = []
    seen: dict[str, int] = {}
    text = text.removeprefix("\ufeff")  # a byte-order mark (Windows editors) is not part of the first name
    for lineno, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        cols = line.split()
        if len(cols) not in (2, 3):
            raise FaultListError(
                f"{path}:{lineno}: expected 'FAULT COUNT [SKIP]' but got {raw.strip()!r}",
                hint="one fault a line, e.g. 'AlpineK2T 31r'",
            )
        name = cols[0]
        if "/" in name or name.startswith("_") or name in (".", ".."):
            raise FaultListError(f"{path}:{lineno}: {name!r} is not a usable fault name in {raw.strip()!r}")
        count = _count(cols[1], path, lineno, raw.strip(), "realisation count")
        skip = _count(cols[2], path, lineno, raw.strip(), "skip count") if len(cols) == 3 else 0
        if count == 0:
            raise FaultListError(f"{path}:{lineno}: realisation count is 0 in {raw.strip()!r}")
        if skip >= count:
            raise FaultListError(
                f"{path}:{lineno}: skip {skip} must be less than the count {count} in {raw.strip()!r}"
            )
        if name in seen:
            raise FaultListError(
                f"{path}:{lineno}: fault {name!r} is listed twice (first on line {seen[name]})",
                hint="keep one line per fault",
            )
        seen[name] = lineno
        entries.append(FaultEntry(name, count, skip, line=lineno))
    if not entries:
        raise FaultListError(f"{path}: no faults listed", hint="add lines such as 'AlpineK2T 31r'")
    return entries


def read_fault_list(path: Path) -> list[FaultEntry]:
    text = read_text_input(Path(path), "fault list", FaultListError, "give the path to list.txt")
    return parse_fault_list(text, path)
