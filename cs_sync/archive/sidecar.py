"""The per-set metadata sidecar: ``{root}/{version}/_cs_sync/{fault}_{TYPE}.json``.

Written only after every part of a set is uploaded and checked, so its presence
means the set is complete. It records each part's size and SHA-256 and each
member's byte offset inside its part, so download can verify parts and fetch a
single member with a ranged read.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cs_sync.core.errors import SidecarInvalid, SidecarUnsafe
from cs_sync.core.safe_names import is_flat_name

SIDECAR_FORMAT = 1
CHECK_CONTENT = "content"
CHECK_SIZE = "size"


@dataclass(frozen=True)
class PartInfo:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class MemberInfo:
    name: str  # flat name inside the TAR
    part: str  # part file name
    offset: int  # byte offset of the member's data inside the part
    size: int
    mtime: float  # seconds since the epoch (source file's mtime)
    sha256: str
    source: str  # path relative to CS_ROOT
    mtime_ns: int | None = None


@dataclass
class SetSidecar:
    fault: str
    dtype: str
    version: str
    parts: list[PartInfo] = field(default_factory=list)
    members: list[MemberInfo] = field(default_factory=list)
    created: str = ""
    tool: str = ""
    max_size: int | None = None
    format: int = SIDECAR_FORMAT
    # how the upload checked the remote copies of the parts: CHECK_CONTENT (a hash of the bytes
    # the remote holds was compared), CHECK_SIZE (sizes only), "" (not recorded: older sidecars,
    # or parts checked by an earlier run before this was recorded). Readers ignore unknown
    # top-level keys, so older cs_sync versions still read sidecars that have it.
    check: str = ""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str, *, where: str = "sidecar") -> SetSidecar:
        """Parse and validate a sidecar strictly; see :func:`parse_sidecar`."""
        return parse_sidecar(text, where=where)

    def part_sizes(self) -> dict[str, int]:
        return {p.name: p.size for p in self.parts}


_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_TIME_S = 2**40  # about 35,000 years: beyond it os.utime overflows, so it is damage, not a time


class _Check:
    """Typed field access that names the sidecar and the field when a value is wrong."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field_: str, why: str) -> SidecarInvalid:
        return SidecarInvalid(f"sidecar invalid: {self.where}: {field_}: {why}",
                              hint="the set is not vouched for; re-upload it with --overwrite")

    def unsafe(self, field_: str, name: object) -> SidecarUnsafe:
        return SidecarUnsafe(f"sidecar unsafe: {self.where}: {field_} {name!r} is not a plain file name "
                             "(it would write outside the download folder)",
                             hint="the sidecar is forged or damaged; the set was refused")

    def get(self, d: dict, key: str, types: tuple[type, ...], field_: str, *, required: bool = True) -> Any:
        if key not in d:
            if required:
                raise self.fail(field_, "missing")
            return None
        v = d[key]
        if v is None and not required:
            return None
        if isinstance(v, bool) or not isinstance(v, types):
            want = " or ".join("a number" if t is float else {int: "an integer", str: "a string", list: "a list",
                                                                dict: "an object"}[t] for t in types)
            raise self.fail(field_, f"expected {want}, got {type(v).__name__}")
        if isinstance(v, int) and v < 0:
            raise self.fail(field_, f"negative ({v})")
        return v

    def sha(self, d: dict, field_: str) -> str:
        v = self.get(d, "sha256", (str,), field_ + ".sha256")
        if not _HEX64.fullmatch(v):
            raise self.fail(field_ + ".sha256", f"not a SHA-256 ({v[:20]!r})")
        return v

    def record(self, d: object, allowed: set[str], field_: str) -> dict:
        """``d`` as an object holding only ``allowed`` keys."""
        if not isinstance(d, dict):
            raise self.fail(field_, f"expected an object, got {type(d).__name__}")
        extra = sorted(set(d) - allowed)
        if extra:
            raise self.fail(field_, f"unknown key(s) {', '.join(extra)}")
        return d

    def flat_name(self, d: dict, key: str, field_: str) -> str:
        """A name that will become a local file name: refused as unsafe unless plain."""
        v = self.get(d, key, (str,), field_)
        if not is_flat_name(v):
            raise self.unsafe(field_, v)
        return v


_PART_KEYS = {f.name for f in fields(PartInfo)}
_MEMBER_KEYS = {f.name for f in fields(MemberInfo)}


def parse_sidecar(text: str, *, where: str = "sidecar") -> SetSidecar:
    """Parse a sidecar, refusing anything this tool would not have written.

    Every field is type-checked and every part and member name must be a plain
    file name (this tool writes flat members), so a forged sidecar can never
    steer download outside its folder. Unknown top-level keys are allowed (a
    newer writer may add some); unknown part or member keys are not.
    Raises SidecarUnsafe for names that would leave the target, SidecarInvalid
    for anything else, each naming ``where`` and the field.
    """
    c = _Check(where)
    try:
        d = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise c.fail("file", f"not JSON ({exc})") from None
    if not isinstance(d, dict):
        raise c.fail("file", f"expected an object, got {type(d).__name__}")
    fmt = c.get(d, "format", (int,), "format", required=False)
    if fmt is not None and fmt > SIDECAR_FORMAT:
        raise SidecarInvalid(f"{where}: sidecar format {fmt} is newer than this tool understands",
                             hint="upgrade cs_sync")
    raw_parts = c.get(d, "parts", (list,), "parts")
    raw_members = c.get(d, "members", (list,), "members")
    parts: list[PartInfo] = []
    for i, p in enumerate(raw_parts):
        f = f"parts[{i}]"
        p = c.record(p, _PART_KEYS, f)
        parts.append(PartInfo(name=c.flat_name(p, "name", f + ".name"), size=c.get(p, "size", (int,), f + ".size"),
                              sha256=c.sha(p, f)))
    sizes = {p.name: p.size for p in parts}
    if len(sizes) != len(parts):
        raise c.fail("parts", "a part is listed twice")
    members: list[MemberInfo] = []
    for i, m in enumerate(raw_members):
        f = f"members[{i}]"
        m = c.record(m, _MEMBER_KEYS, f)
        name = c.flat_name(m, "name", f + ".name")
        part = c.flat_name(m, "part", f + ".part")
        offset = c.get(m, "offset", (int,), f + ".offset")
        size = c.get(m, "size", (int,), f + ".size")
        if part in sizes and offset + size > sizes[part]:
            raise c.fail(f, f"member runs past the end of {part} ({offset} + {size} > {sizes[part]} bytes)")
        if parts and part not in sizes:
            raise c.fail(f + ".part", f"{part!r} is not one of the sidecar's parts")
        mtime = c.get(m, "mtime", (int, float), f + ".mtime")
        mtime_ns = c.get(m, "mtime_ns", (int,), f + ".mtime_ns", required=False)
        if not math.isfinite(mtime) or mtime > _MAX_TIME_S or (mtime_ns or 0) > _MAX_TIME_S * 10**9:
            raise c.fail(f + ".mtime", f"not a time a file can have ({mtime!r}, {mtime_ns!r} ns)")
        members.append(MemberInfo(
            name=name, part=part, offset=offset, size=size, mtime=float(mtime), sha256=c.sha(m, f),
            source=c.get(m, "source", (str,), f + ".source"), mtime_ns=mtime_ns,
        ))
    top = {k: c.get(d, k, (str,), k) for k in ("fault", "dtype", "version")}
    return SetSidecar(
        parts=parts, members=members, **top,
        created=c.get(d, "created", (str,), "created", required=False) or "",
        tool=c.get(d, "tool", (str,), "tool", required=False) or "",
        max_size=c.get(d, "max_size", (int,), "max_size", required=False),
        format=fmt if fmt is not None else SIDECAR_FORMAT,
        check=c.get(d, "check", (str,), "check", required=False) or "",
    )
