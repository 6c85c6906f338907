"""Per-set upload journal in the tmp dir: what an interrupted run already did.

One small JSON file per set, rewritten atomically after each step. A part is
recorded ``sending`` before its stream starts (so a copy of it that lands on the
remote is known to be ours, not the older scripts') and ``checked`` once its
remote copy passed the check and is under its final name, with everything its
set's sidecar needs (size, hashes, members with offsets). A re-run of the same
command redoes only the parts not recorded as checked. It is a hint, never
proof: a checked part counts only while the remote still holds it with its size.

The journal is tied to the plan of its set (members, sizes, mtimes, part names):
when the manifest or the cap changes, the old journal's records are ignored, but the
names of the files it recorded are kept (:attr:`Journal.earlier`): they are this tool's,
left by a run that stopped, not the older scripts', so the new plan may remove them.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from cs_sync.archive.tar_write import StreamedPart, WrittenMember
from cs_sync.core.atomic import atomic_write_text
from cs_sync.upload.planning import SetPlan

JOURNAL_FORMAT = 2
SENDING = "sending"
CHECKED = "checked"


def plan_key(sp: SetPlan) -> str:
    """Fingerprint of what a set's parts will contain."""
    doc = [[p.name, p.size, [[m.name, m.source, m.size, m.mtime_ns] for m in p.members]] for p in sp.parts]
    return hashlib.sha256(json.dumps(doc).encode()).hexdigest()


class Journal:
    def __init__(self, path: Path, set_name: str, key: str, data: dict | None = None,
                 earlier: frozenset[str] = frozenset()) -> None:
        self.path = path
        self.set_name = set_name
        self.key = key
        self._lock = threading.Lock()
        self.data = data or {"format": JOURNAL_FORMAT, "set": set_name, "plan": key, "parts": {}, "done": False}
        self.earlier = earlier  # files of this set a run of an earlier plan sent (or began to)

    @classmethod
    def load(cls, path: Path, sp: SetPlan) -> Journal:
        """The journal for ``sp``; a fresh one if absent, unreadable, older or for another plan
        (then remembering the file names the other plan's journal recorded)."""
        key = plan_key(sp)
        earlier: frozenset[str] = frozenset()
        try:
            data = json.loads(path.read_text())
            if data.get("plan") != key or data.get("format") != JOURNAL_FORMAT:
                if data.get("set") == sp.name and isinstance(data.get("parts"), dict):
                    earlier = frozenset(n for n in data["parts"] if isinstance(n, str))
                data = None
        except (OSError, ValueError, AttributeError):
            data = None
        return cls(path, sp.name, key, data, earlier)

    @property
    def exists(self) -> bool:
        """An earlier run began on this set, with this plan or another (so what it left on
        the remote is ours)."""
        return bool(self.data["parts"]) or self.data["done"] or bool(self.earlier)

    def ours(self) -> frozenset[str]:
        """Names of this set's files that runs of ours sent or began to send, under any plan."""
        return frozenset(self.data["parts"]) | self.earlier

    @property
    def done(self) -> bool:
        return bool(self.data["done"])

    def part(self, name: str) -> dict | None:
        return self.data["parts"].get(name)

    def checked(self) -> frozenset[str]:
        return frozenset(n for n, p in self.data["parts"].items() if p.get("state") == CHECKED)

    def members(self, name: str) -> tuple[WrittenMember, ...]:
        p = self.part(name)
        return tuple(WrittenMember(**m) for m in p["members"]) if p else ()

    def record_sending(self, name: str) -> None:
        with self._lock:
            if self.data["parts"].get(name, {}).get("state") != CHECKED:
                self.data["parts"][name] = {"state": SENDING}
                self._save()

    def record_checked(self, part: StreamedPart, check: str, how: str = "") -> None:
        """``part`` is on the remote under its name; ``check``: sidecar.CHECK_CONTENT or
        CHECK_SIZE, ``how``: in words (which hash was compared)."""
        with self._lock:
            self.data["parts"][part.name] = {
                "state": CHECKED,
                "size": part.size,
                "sha256": part.sha256,
                "hashes": dict(part.hashes),
                "check": check,
                "how": how,
                "members": [m.__dict__ for m in part.members],
            }
            self._save()

    def record_done(self) -> None:
        with self._lock:
            self.data["done"] = True
            self._save()

    def forget(self) -> None:
        """Drop every record not yet checked (the set's sources changed)."""
        with self._lock:
            parts = self.data["parts"]
            for n in [n for n, p in parts.items() if p.get("state") != CHECKED]:
                del parts[n]
            self._save()

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def _save(self) -> None:
        atomic_write_text(self.path, json.dumps(self.data, indent=1))
