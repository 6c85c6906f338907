"""The per-set metadata sidecar: ``{root}/{version}/_cs_sync/{fault}_{TYPE}.json``.

Written only after every part of a set is uploaded and checked, so its presence
means the set is complete. It records each part's size and SHA-256 and each
member's byte offset inside its part, so download can verify parts and fetch a
single member with a ranged read.

Two origins (the ``origin`` field; a sidecar without one was written at upload):

* ``upload``: written by this tool's upload. Flat member names, every part and
  member with its SHA-256 taken while packing.
* ``index``: written by ``cs-sync index`` for a set the older scripts made, from
  its TAR headers read by byte range. Member names may be relative paths (older
  TARs may hold folders; each is a clean path that stays inside its target).
  Without ``--hash-members`` no SHA-256 is known (``sha256`` is null): such a
  sidecar proves each member's place and size inside its part, and each part's
  size and the remote's own hash at indexing time (``hashes``), not the content.
  With ``--hash-members`` every part was streamed once and every SHA-256 is
  there, as strong as a sidecar written at upload. ``proves`` says which, in words.

Each part may carry ``hashes``: the remote's own hash types (rclone's names, e.g.
``dropbox``, ``md5``, ``sha1``) and their values, as the remote reported them,
so ``cs-sync verify`` can compare them with a listing without reading data.
``format`` is 1 for a sidecar that uses none of this (older readers parse it), 2
otherwise (older readers then say they are too old instead of refusing a field).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from cs_sync.core.errors import SidecarInvalid, SidecarUnsafe
from cs_sync.core.safe_names import is_flat_name, safe_relpath

SIDECAR_FORMAT = 2  # the newest format this tool reads (and writes when a sidecar needs it)
ORIGIN_UPLOAD = "upload"
ORIGIN_INDEX = "index"
ORIGINS = (ORIGIN_UPLOAD, ORIGIN_INDEX)
CHECK_CONTENT = "content"
CHECK_SIZE = "size"


@dataclass(frozen=True)
class PartInfo:
    name: str
    size: int
    sha256: str | None  # None only in an index sidecar made without --hash-members
    # the remote's own hashes of the part, rclone hash type -> value (e.g. {"dropbox": "..."})
    hashes: dict[str, str] = field(default_factory=dict, hash=False)


@dataclass(frozen=True)
class MemberInfo:
    name: str  # flat name inside the TAR
    part: str  # part file name
    offset: int  # byte offset of the member's data inside the part
    size: int
    mtime: float  # seconds since the epoch (source file's mtime; an index sidecar: the TAR header's)
    sha256: str | None  # None only in an index sidecar made without --hash-members
    source: str  # path relative to CS_ROOT ("" in an index sidecar: not known)
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
    format: int = 1
    # how the upload checked the remote copies of the parts: CHECK_CONTENT (a hash of the bytes
    # the remote holds was compared), CHECK_SIZE (sizes only), "" (not recorded: older sidecars,
    # or parts checked by an earlier run before this was recorded). Readers ignore unknown
    # top-level keys, so older cs_sync versions still read sidecars that have it.
    check: str = ""
    origin: str = ORIGIN_UPLOAD
    proves: str = ""  # what the sidecar can vouch for, in words (index sidecars)

    @property
    def is_index(self) -> bool:
        """Made by ``cs-sync index`` from an older archive's TAR headers (not at upload)."""
        return self.origin == ORIGIN_INDEX

    @property
    def hashed(self) -> bool:
        """Every part and member has its SHA-256 (always true for upload sidecars)."""
        return all(p.sha256 for p in self.parts) and all(m.sha256 for m in self.members)

    def needs_format(self) -> int:
        """2 when the sidecar uses a field older readers refuse (member paths, missing
        SHA-256s, part hashes), else 1, so older readers still parse what they can."""
        if self.is_index or any(p.hashes for p in self.parts) or not self.hashed:
            return 2
        return 1

    def to_json(self) -> str:
        d = asdict(self)
        d["format"] = max(self.format, self.needs_format())
        for p in d["parts"]:
            if not p["hashes"]:
                del p["hashes"]  # absent, not empty: older readers refuse unknown keys
        if not self.proves:
            del d["proves"]
        return json.dumps(d, indent=1)

    @classmethod
    def from_json(cls, text: str, *, where: str = "sidecar") -> SetSidecar:
        """Parse and validate a sidecar strictly; see :func:`parse_sidecar`."""
        return parse_sidecar(text, where=where)

    def part_sizes(self) -> dict[str, int]:
        return {p.name: p.size for p in self.parts}


_HEX64 = re.compile(r"[0-9a-f]{64}")
_MAX_TIME_S = 2**40  # about 35,000 years: beyond it os.utime overflows, so it is damage, not a time
_HASH_TYPE = re.compile(r"[a-z0-9]{1,32}")  # rclone's hash names: md5, sha1, dropbox, quickxor, ...
_HASH_VALUE = re.compile(r"[0-9A-Za-z+/=]{1,256}")  # hex for most; quickxor is base64


class _Check:
    """Typed field access that names the sidecar and the field when a value is wrong."""

    def __init__(self, where: str) -> None:
        self.where = where

    def fail(self, field_: str, why: str) -> SidecarInvalid:
        return SidecarInvalid(f"sidecar invalid: {self.where}: {field_}: {why}",
                              hint="the set is not vouched for; re-upload it with --overwrite")

    def unsafe(self, field_: str, name: object, *, paths: bool = False) -> SidecarUnsafe:
        kind = "a clean relative path" if paths else "a plain file name"
        return SidecarUnsafe(f"sidecar unsafe: {self.where}: {field_} {name!r} is not {kind} "
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

    def sha(self, d: dict, field_: str, *, required: bool = True) -> str | None:
        v = self.get(d, "sha256", (str,), field_ + ".sha256", required=required)
        if v is None:
            return None
        if not _HEX64.fullmatch(v):
            raise self.fail(field_ + ".sha256", f"not a SHA-256 ({v[:20]!r})")
        return v

    def hashes(self, d: dict, field_: str, sha256: str | None) -> dict[str, str]:
        raw = self.get(d, "hashes", (dict,), field_ + ".hashes", required=False) or {}
        out: dict[str, str] = {}
        for k, v in raw.items():
            if not isinstance(k, str) or not _HASH_TYPE.fullmatch(k):
                raise self.fail(field_ + ".hashes", f"not a hash type name ({str(k)[:20]!r})")
            if not isinstance(v, str) or not _HASH_VALUE.fullmatch(v):
                raise self.fail(f"{field_}.hashes.{k}", f"not a hash value ({str(v)[:20]!r})")
            out[k] = v
        if sha256 is not None and "sha256" in out and out["sha256"].lower() != sha256:
            raise self.fail(f"{field_}.hashes.sha256", "differs from the part's sha256")
        return out

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

    def member_name(self, d: dict, field_: str, *, paths: bool) -> str:
        """A member's name: plain, or (``paths``: an index sidecar) a clean relative path."""
        v = self.get(d, "name", (str,), field_)
        if not (is_flat_name(v) or (paths and safe_relpath(v) == v)):
            raise self.unsafe(field_, v, paths=paths)
        return v


_PART_KEYS = {f.name for f in fields(PartInfo)}
_MEMBER_KEYS = {f.name for f in fields(MemberInfo)}


def parse_sidecar(text: str, *, where: str = "sidecar") -> SetSidecar:
    """Parse a sidecar, refusing anything this tool would not have written.

    Every field is type-checked and every part name must be a plain file name;
    member names too, except in an index sidecar, where they may be relative
    paths that stay inside the target (older TARs hold folders), so a forged
    sidecar can never steer download outside its folder. SHA-256s may be null
    only in an index sidecar. Unknown top-level keys are allowed (a newer writer
    may add some); unknown part or member keys are not.
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
    origin = c.get(d, "origin", (str,), "origin", required=False) or ORIGIN_UPLOAD
    if origin not in ORIGINS:
        raise c.fail("origin", f"unknown origin {origin!r} (expected {' or '.join(ORIGINS)})")
    index = origin == ORIGIN_INDEX
    raw_parts = c.get(d, "parts", (list,), "parts")
    raw_members = c.get(d, "members", (list,), "members")
    parts: list[PartInfo] = []
    for i, p in enumerate(raw_parts):
        f = f"parts[{i}]"
        p = c.record(p, _PART_KEYS, f)
        sha = c.sha(p, f, required=not index)
        parts.append(PartInfo(name=c.flat_name(p, "name", f + ".name"), size=c.get(p, "size", (int,), f + ".size"),
                              sha256=sha, hashes=c.hashes(p, f, sha)))
    sizes = {p.name: p.size for p in parts}
    if len(sizes) != len(parts):
        raise c.fail("parts", "a part is listed twice")
    members: list[MemberInfo] = []
    for i, m in enumerate(raw_members):
        f = f"members[{i}]"
        m = c.record(m, _MEMBER_KEYS, f)
        name = c.member_name(m, f + ".name", paths=index)
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
            name=name, part=part, offset=offset, size=size, mtime=float(mtime),
            sha256=c.sha(m, f, required=not index),
            source=c.get(m, "source", (str,), f + ".source", required=not index) or "", mtime_ns=mtime_ns,
        ))
    top = {k: c.get(d, k, (str,), k) for k in ("fault", "dtype", "version")}
    return SetSidecar(
        parts=parts, members=members, **top,
        created=c.get(d, "created", (str,), "created", required=False) or "",
        tool=c.get(d, "tool", (str,), "tool", required=False) or "",
        max_size=c.get(d, "max_size", (int,), "max_size", required=False),
        format=fmt if fmt is not None else 1,
        check=c.get(d, "check", (str,), "check", required=False) or "",
        origin=origin,
        proves=c.get(d, "proves", (str,), "proves", required=False) or "",
    )
