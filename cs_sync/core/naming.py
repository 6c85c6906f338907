"""Names on the remote and inside TARs: one place that formats and parses them.

The layout is fixed by years of archives made by the older scripts::

    {root}/{version}/list.txt, stocktake.csv
    {root}/{version}/{fault}/{fault}_{TYPE}.tar              (one part)
    {root}/{version}/{fault}/{fault}_{TYPE}_{i}.tar ... _{n}f.tar   (split; 'f' = final)
    {root}/{version}/{fault}/{event}_BB.bin                  (SAMPLE_BB, a plain file)
    {root}/{version}/_cs_sync/{fault}_{TYPE}.json            (this tool's sidecars)

Folders whose names start with ``_`` are never data.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

SIDECAR_DIR = "_cs_sync"
DEFAULT_REMOTE = "dropbox:/QuakeCoRE/Public/Cybershake"  # the QuakeCoRE archive
REMOTE_ENV = "CS_SYNC_REMOTE"  # environment variable naming the remote root
LIST_FILE = "list.txt"
STOCKTAKE_FILE = "stocktake.csv"
MEDIAN = "median"

_REL_RE = re.compile(r"_REL(\d+)$")
# a type is letters, digits and '_' (as the config allows); an index has no leading zero
_PART_RE = re.compile(r"^(?P<type>[A-Za-z0-9][A-Za-z0-9_]*?)(?:_(?P<index>0|[1-9]\d*)(?P<final>f)?)?\.tar$")
# a type name whose last '_' piece starts with a digit or a sign, or is empty, is a
# part name gone wrong (F_BB_-1.tar, F_BB_3ff.tar, F_BB_01.tar, F_BB_.tar), not a type
_MALFORMED_RE = re.compile(r"^(?P<type>[A-Za-z0-9][A-Za-z0-9_]*?)_(?:[-+0-9].*)?\.tar$")


# Types whose files travel inside another type's TAR when the config does not say otherwise
# (the older scripts' layout, and sync_patterns.yaml's default): -t VM means the Source sets.
DEFAULT_PACKING = {"VM": "Source"}


def match_type_name(name: str, known: list[str] | tuple[str, ...]) -> str | None:
    """The data type ``name`` means among ``known``: the exact name, else the one that matches
    ignoring case (``bb`` -> ``BB``, ``source`` -> ``Source``); None when there is none.

    Every command reads ``-t`` values through this, so a name works the same everywhere.
    """
    if name in known:
        return name
    folded = [k for k in known if k.lower() == name.lower()]
    return folded[0] if len(folded) == 1 else None


def match_types(available: list[str], wanted: Iterable[str],
                packing: dict[str, str] | None = None) -> tuple[list[str], list[str]]:
    """(types selected, ``-t`` values that match nothing), names read as everywhere
    (:func:`match_type_name`: exact, else ignoring case). A type
    packed into another's TAR (``packing``, default VM -> Source) selects the host's sets
    when it has none of its own on the remote."""
    packing = DEFAULT_PACKING if packing is None else packing
    chosen: list[str] = []
    unmatched: list[str] = []
    for w in wanted:
        hit = match_type_name(w, available)
        if hit is None:
            packed = match_type_name(w, list(packing))
            hit = match_type_name(packing[packed], available) if packed else None
        if hit is None:
            unmatched.append(w)
        elif hit not in chosen:
            chosen.append(hit)
    return chosen, unmatched


def is_hidden(name: str) -> bool:
    """Folders (and files) whose name starts with '_' are not data."""
    return name.startswith("_")


def realisation_name(fault: str, rel: int) -> str:
    """``AlpineK2T_REL07`` for realisation 7 (two digits at least, as Cybershake names them)."""
    return f"{fault}_REL{rel:02d}"


def event_rel(fault: str, event: str) -> int | None:
    """Realisation number of ``event`` of ``fault``; None for the median event (``event == fault``).

    Raises ValueError when ``event`` is not an event of ``fault``.
    """
    if event == fault:
        return None
    if event.startswith(fault):
        m = _REL_RE.match(event[len(fault):])
        if m:
            return int(m.group(1))
    raise ValueError(f"{event!r} is not an event of fault {fault!r}")


def is_event_of(fault: str, name: str) -> bool:
    try:
        event_rel(fault, name)
    except ValueError:
        return False
    return True


def find_event(fault: str, relpath: str) -> str | None:
    """The event a file belongs to, from its path (relative to the type's ``where``).

    A path component or a file stem that is the fault name (median) or
    ``{fault}_RELnn`` names the event: ``F_REL01/BB/Acc/BB.bin`` -> ``F_REL01``,
    ``Srf/F_REL03.info`` -> ``F_REL03``, ``IM_calc/F.csv`` -> ``F``. Files that
    belong to no single event (``vm_params.yaml``) give None.
    """
    return EventFinder(fault)(relpath)[0]


class EventFinder:
    """:func:`find_event` and the event's realisation for many paths of one fault.

    Components repeat across a fault's files (``F_REL01``, ``BB``, ``Acc``), so
    each is classified once: a 45k-file stocktake spent 0.4 s re-matching them.
    """

    def __init__(self, fault: str) -> None:
        self.fault = fault
        self._rel: dict[str, int | None | Literal[False]] = {}  # component -> rel, None (median) or False (no event)
        self._prefix = re.compile(re.escape(fault) + r"_REL\d+(?=[_.\-])")

    def _classify(self, comp: str) -> int | None | Literal[False]:
        try:
            return self._rel[comp]
        except KeyError:
            pass
        got: int | None | Literal[False]
        try:
            got = event_rel(self.fault, comp)
        except ValueError:
            got = False
        self._rel[comp] = got
        return got

    def __call__(self, relpath: str) -> tuple[str | None, int | None]:
        """(event, realisation) of the file; (None, None) when it names no event."""
        head, sep, _ = relpath.partition("/")
        if sep:  # the usual case, without splitting it all: the first folder is the event
            rel = self._classify(head)
            if rel is not False:
                return head, rel
        parts = relpath.split("/")
        for comp in parts[:-1]:
            rel = self._classify(comp)
            if rel is not False:
                return comp, rel
        stem = parts[-1].split(".", 1)[0]  # strip every extension: F_REL01.pertb.csv -> F_REL01
        rel = self._classify(stem)
        if rel is not False:
            return stem, rel
        # files such as F_REL01_something.csv name a realisation by prefix
        m = self._prefix.match(parts[-1])
        if m is None:
            return None, None
        return m.group(0), event_rel(self.fault, m.group(0))


def member_name(fault: str, relpath: str, template: str | None = None) -> str:
    """Flat name of a file inside a TAR.

    Default: the basename, prefixed with ``{event}_`` when the basename does not
    already name its event (``F_REL01/BB/Acc/BB.bin`` -> ``F_REL01_BB.bin``), so
    files of different events never collide. A config ``member`` template
    (``{event}``, ``{name}``, ``{fault_name}``) overrides this.
    """
    name = posixpath.basename(relpath)
    event = find_event(fault, relpath)
    if template:
        return template.format(event=event or fault, name=name, fault_name=fault)
    if event and not name.startswith(event):
        return f"{event}_{name}"
    return name


def set_name(fault: str, dtype: str) -> str:
    """``{fault}_{TYPE}``: the name of a set and the stem of its parts and sidecar."""
    return f"{fault}_{dtype}"


def part_name(fault: str, dtype: str, index: int, count: int) -> str:
    """Name of part ``index`` (0-based) of a set of ``count`` parts."""
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"part {index} of {count}")
    if count == 1:
        return f"{fault}_{dtype}.tar"
    final = "f" if index == count - 1 else ""
    return f"{fault}_{dtype}_{index}{final}.tar"


def sidecar_name(fault: str, dtype: str) -> str:
    return f"{set_name(fault, dtype)}.json"


@dataclass(frozen=True)
class PartName:
    """A TAR file name parsed against the fault folder it was found in."""

    fault: str
    dtype: str
    index: int | None  # None: a single unsplit ``{fault}_{TYPE}.tar``
    final: bool

    @property
    def name(self) -> str:
        if self.index is None:
            return f"{self.fault}_{self.dtype}.tar"
        return f"{self.fault}_{self.dtype}_{self.index}{'f' if self.final else ''}.tar"


def parse_part_name(fault: str, filename: str) -> PartName | None:
    """Parse ``filename`` found in the folder of ``fault``; None if it is not a part.

    The fault name is known from the folder, so fault names with underscores parse
    unambiguously. ``_0.tar`` is part 0, ``_3f.tar`` the final part 3, and a bare
    ``{fault}_{TYPE}.tar`` a single-part set.
    """
    prefix = fault + "_"
    if not filename.startswith(prefix) or not filename.endswith(".tar"):
        return None
    m = _PART_RE.match(filename[len(prefix):])
    if not m or malformed_part_type(fault, filename) is not None:
        return None
    index = m.group("index")
    return PartName(
        fault=fault,
        dtype=m.group("type"),
        index=int(index) if index is not None else None,
        final=bool(m.group("final")) or index is None,
    )


def malformed_part_type(fault: str, filename: str) -> str | None:
    """The type a name claims when it looks like a part of it but does not parse; else None.

    ``F_BB_-1.tar``, ``F_BB_3ff.tar``, ``F_BB_01.tar`` and ``F_BB_.tar`` claim ``BB``:
    they are unexpected files of that set, never parts and never types of their own
    (a type name's last ``_`` piece never starts with a digit or sign: ``F_BB_2.tar``
    is part 2 of BB, so no type can end that way).
    """
    prefix = fault + "_"
    if not filename.startswith(prefix) or not filename.endswith(".tar"):
        return None
    stem = filename[len(prefix):]
    m = _PART_RE.match(stem)
    if m and not _bad_tail(m.group("type")):
        return None
    bad = _MALFORMED_RE.match(stem)
    if bad is None:
        return None
    dtype = bad.group("type")
    while _bad_tail(dtype):  # F_BB_3x_2.tar: the type is BB, not BB_3x
        dtype = dtype.rpartition("_")[0]
    return dtype or None


def _bad_tail(dtype: str) -> bool:
    """True when the type's last '_' piece starts with a digit or sign (or is empty)."""
    head, sep, tail = dtype.rpartition("_")
    return bool(sep) and (not tail or tail[0] in "+-0123456789")


def sample_file_name(fault: str, event: str, basename: str = "BB.bin") -> str:
    """Remote name of a sample file: ``{event}_BB.bin`` in the fault's folder."""
    return f"{event}_{basename}"


def parse_sample_name(fault: str, filename: str, suffix: str = "_BB.bin") -> str | None:
    """The event of a sample file ``{event}_BB.bin`` in the folder of ``fault``, else None."""
    if not filename.endswith(suffix):
        return None
    event = filename[: -len(suffix)]
    return event if is_event_of(fault, event) else None
