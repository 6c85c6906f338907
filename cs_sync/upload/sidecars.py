"""A set's sidecar, built from its journal once every part is checked, and written in batches.

Sidecars are small: the batch is written to ``{tmp}/{version}/sidecars/`` and sent
by one ``rclone copy`` of exactly those files (rclone compares size and hash after
each copy, its own check, kept on here), then the local copies are removed.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from cs_sync import __version__
from cs_sync.archive.sidecar import CHECK_CONTENT, CHECK_SIZE, MemberInfo, PartInfo, SetSidecar
from cs_sync.archive.tar_write import WrittenMember
from cs_sync.core.atomic import atomic_write_text, remove_quietly
from cs_sync.core.naming import SIDECAR_DIR, sidecar_name
from cs_sync.remote.rclone import Rclone, join
from cs_sync.upload.journal import CHECKED
from cs_sync.upload.tracker import SetTracker


def member_info(wm: WrittenMember, part: str) -> MemberInfo:
    return MemberInfo(name=wm.name, part=part, offset=wm.offset, size=wm.size, mtime=wm.mtime_ns / 1e9,
                      sha256=wm.sha256, source=wm.source, mtime_ns=wm.mtime_ns)


def set_check(part_records: list[dict]) -> str:
    """How a set's parts were checked, as the sidecar records it: size when any part was
    checked by size only, content when every part was checked by content, else ""
    (some part was checked by a run that did not record how)."""
    checks = [r.get("check", "") for r in part_records]
    if CHECK_SIZE in checks:
        return CHECK_SIZE
    if checks and all(c == CHECK_CONTENT for c in checks):
        return CHECK_CONTENT
    return ""


def build_sidecar(t: SetTracker, version: str, max_size: int) -> SetSidecar:
    """The sidecar of a set whose every part the journal records as checked."""
    sp = t.plan
    parts: list[PartInfo] = []
    members: list[MemberInfo] = []
    records = []
    for p in sp.parts:
        rec = t.journal.part(p.name)
        records.append(rec or {})
        assert rec is not None and rec["state"] == CHECKED, p.name
        # a sample's plain file is listed as a part too: its record carries the remote's own hash,
        # so verify checks it by hash, not size only (older sidecars of samples have no parts)
        parts.append(PartInfo(p.name, rec["size"], rec["sha256"], hashes=dict(rec.get("hashes") or {})))
        members += [member_info(wm, p.name) for wm in t.journal.members(p.name)]
    return SetSidecar(
        fault=sp.fault, dtype=sp.dtype, version=version, parts=parts, members=members,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"), tool=f"cs_sync {__version__}",
        max_size=max_size, check=set_check(records),
    )


def write_sidecars(rclone: Rclone, vpath: str, local_dir: Path, batch: list[SetTracker], version: str, max_size: int,
                   *, extra: list[str]) -> list[BaseException | None]:
    """Write the sidecars of ``batch`` to ``{vpath}/_cs_sync/``: one rclone copy, one outcome per set.

    A local write that fails (disk full) raises LocalIOError: the run stops.
    """
    names = [sidecar_name(t.plan.fault, t.plan.dtype) for t in batch]
    dst = join(vpath, SIDECAR_DIR)
    try:
        for t, name in zip(batch, names):
            atomic_write_text(local_dir / name, build_sidecar(t, version, max_size).to_json())
        try:
            failed = rclone.copy_files(str(local_dir), dst, names, on_copied=lambda n: None,
                                       what=f"writing {len(names)} sidecar(s)", extra=extra)
        except Exception as exc:  # rclone failed as a whole
            return [exc] * len(batch)
        return [type(failed[n])(f"writing sidecar {n}: {failed[n].message}", hint=failed[n].hint) if n in failed else None
                for n in names]
    finally:
        for n in names:
            remove_quietly(local_dir / n)
