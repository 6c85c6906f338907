"""Per-set upload journal in the tmp dir: what an interrupted run already did.

One small JSON file per set, rewritten atomically after each step, recording the
parts packed (size, SHA-256, members with offsets) and the parts uploaded and
checked. A re-run of the same command reads it to redo only the parts that were
in flight. It is a hint, never proof: a packed part is re-hashed before reuse and
a checked part counts only while the remote still holds it with its size.

The journal is tied to the plan of its set (members, sizes, mtimes, part names):
when the manifest or the cap changes, the old journal is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from cs_sync.archive.tar_write import WrittenMember, WrittenPart
from cs_sync.core.atomic import atomic_write_text
from cs_sync.upload.planning import SetPlan

JOURNAL_FORMAT = 1
PACKED = "packed"
CHECKED = "checked"


def plan_key(sp: SetPlan) -> str:
    """Fingerprint of what a set's parts will contain."""
    doc = [[p.name, p.size, [[m.name, m.source, m.size, m.mtime_ns] for m in p.members]] for p in sp.parts]
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()


class Journal:
    def __init__(self, path: Path, set_name: str, key: str, data: dict | None = None) -> None:
        self.path = path
        self.set_name = set_name
        self.key = key
        self._lock = threading.Lock()
        self.data = data or {"format": JOURNAL_FORMAT, "set": set_name, "plan": key, "parts": {}, "done": False}

    @classmethod
    def load(cls, path: Path, sp: SetPlan) -> Journal:
        """The journal for ``sp``; a fresh one if absent, unreadable or for another plan."""
        key = plan_key(sp)
        try:
            data = json.loads(path.read_text())
            if data.get("plan") != key or data.get("format") != JOURNAL_FORMAT:
                data = None
        except (OSError, ValueError, AttributeError):
            data = None
        return cls(path, sp.name, key, data)

    @property
    def exists(self) -> bool:
        return bool(self.data["parts"]) or self.data["done"]

    @property
    def done(self) -> bool:
        return bool(self.data["done"])

    def part(self, name: str) -> dict | None:
        return self.data["parts"].get(name)

    def checked(self) -> frozenset[str]:
        return frozenset(n for n, p in self.data["parts"].items() if p.get("state") == CHECKED)

    def written(self, name: str, path: Path) -> WrittenPart | None:
        """The recorded part (for reuse after re-hashing the local file)."""
        p = self.part(name)
        if not p:
            return None
        members = tuple(WrittenMember(**m) for m in p["members"])
        return WrittenPart(name=name, path=path, size=p["size"], sha256=p["sha256"], members=members)

    def record_packed(self, part: WrittenPart) -> None:
        with self._lock:
            self.data["parts"][part.name] = {
                "state": PACKED,
                "size": part.size,
                "sha256": part.sha256,
                "members": [m.__dict__ for m in part.members],
            }
            self._save()

    def record_checked(self, name: str, check: str = "") -> None:
        """``check``: how the remote copy was checked (sidecar.CHECK_CONTENT / CHECK_SIZE)."""
        with self._lock:
            self.data["parts"][name]["state"] = CHECKED
            if check:
                self.data["parts"][name]["check"] = check
            self._save()

    def record_done(self) -> None:
        with self._lock:
            self.data["done"] = True
            self._save()

    def forget(self, name: str | None = None) -> None:
        """Drop one part's record (or every not-yet-checked one)."""
        with self._lock:
            parts = self.data["parts"]
            for n in [name] if name else list(parts):
                if n in parts and (name or parts[n].get("state") != CHECKED):
                    del parts[n]
            self._save()

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=1))
