"""The per-set metadata sidecar: ``{root}/{version}/_cs_sync/{fault}_{TYPE}.json``.

Written only after every part of a set is uploaded and checked, so its presence
means the set is complete. It records each part's size and SHA-256 and each
member's byte offset inside its part, so download can verify parts and fetch a
single member with a ranged read.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

SIDECAR_FORMAT = 1


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

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1)

    @classmethod
    def from_json(cls, text: str) -> "SetSidecar":
        """Parse a sidecar; raises ValueError when it is not one this tool can read."""
        d = json.loads(text)
        if not isinstance(d, dict) or "parts" not in d or "members" not in d:
            raise ValueError("not a cs_sync sidecar (no parts/members)")
        if int(d.get("format", 1)) > SIDECAR_FORMAT:
            raise ValueError(f"sidecar format {d['format']} is newer than this tool understands; upgrade cs_sync")
        parts = [PartInfo(**p) for p in d.pop("parts")]
        members = [MemberInfo(**m) for m in d.pop("members")]
        known = {f for f in cls.__dataclass_fields__}
        return cls(parts=parts, members=members, **{k: v for k, v in d.items() if k in known})

    def part_sizes(self) -> dict[str, int]:
        return {p.name: p.size for p in self.parts}

    @property
    def total_size(self) -> int:
        return sum(p.size for p in self.parts)
