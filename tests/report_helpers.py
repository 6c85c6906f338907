"""A small version on a remote with every state the report shows, and its manifest.

Faults and what their sets are on the remote (``EXPECTED``):

* AlpineK2T: BB incomplete (part _1 deleted); IM, Source, SAMPLE_BB complete, checked by content
* Hope1888: BB stale (a source modified after upload); IM ambiguous; Source and SAMPLE_BB complete,
  checked by size only
* Wairau: every set complete by its part names, no sidecar (the older scripts)
* Kelly: in the manifest, nothing on the remote (not uploaded)
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from cs_sync.inputs.manifest import FileRecord, Manifest, write_manifest

from archive_builder import collect_sets, write_version
from cybershake_tree import FaultSpec, make_version

V = "v22p12"
TYPES = ["BB", "IM", "Source", "SAMPLE_BB"]
REPORT_FAULTS = [
    FaultSpec("AlpineK2T", rels=4, median=True, perturbed=True, bb_size=30_000),
    FaultSpec("Hope1888", rels=3, median=False, bb_size=20_000),
    FaultSpec("Wairau", rels=3, median=True, bb_size=8_000),
    FaultSpec("Kelly", rels=2, median=True, bb_size=4_000),
]
MAX_PART = 50_000
EXPECTED = {
    ("AlpineK2T", "BB"): "incomplete", ("AlpineK2T", "IM"): "complete", ("AlpineK2T", "Source"): "complete",
    ("AlpineK2T", "SAMPLE_BB"): "complete",
    ("Hope1888", "BB"): "stale", ("Hope1888", "IM"): "ambiguous", ("Hope1888", "Source"): "complete",
    ("Hope1888", "SAMPLE_BB"): "complete",
    **{("Wairau", t): "complete" for t in TYPES},
    **{("Kelly", t): "not uploaded" for t in TYPES},
}
OLDEST, NEWEST = "2024-03-01T10:00:00+00:00", "2025-01-02T08:30:00+00:00"


@dataclass
class ReportVersion:
    remote: Path  # the local folder used as the remote root
    tree: Path  # CS_ROOT
    manifest: Path  # files_to_sync.yaml (Hope1888's BB changed since upload)


def _stamp_sidecars(vdir: Path, fault: str, created: str, check: str) -> None:
    for sc in (vdir / "_cs_sync").glob(f"{fault}_*.json"):
        d = json.loads(sc.read_text())
        d["created"], d["check"] = created, check
        sc.write_text(json.dumps(d))


def make_report_version(tmp_path: Path) -> ReportVersion:
    """Build the tree, archive it to ``tmp_path/remote`` and damage it as ``EXPECTED`` says."""
    tree = tmp_path / V
    make_version(tree, REPORT_FAULTS)
    remote = tmp_path / "remote"
    remote.mkdir()
    built = write_version(tree, remote, V, ["AlpineK2T", "Hope1888"], max_part=MAX_PART)
    write_version(tree, remote, V, ["Wairau"], sidecar=False)
    vdir = remote / V
    shutil.copy(tree / "list.txt", vdir / "list.txt")
    _stamp_sidecars(vdir, "AlpineK2T", OLDEST, "content")
    _stamp_sidecars(vdir, "Hope1888", NEWEST, "size")
    (vdir / "AlpineK2T" / built.parts[("AlpineK2T", "BB")][1]).unlink()
    shutil.copy(vdir / "Hope1888" / "Hope1888_IM.tar", vdir / "Hope1888" / "Hope1888_IM_0f.tar")
    man = Manifest(version=V, cs_root=str(tree))
    for (fault, dtype), files in collect_sets(tree, [f.name for f in REPORT_FAULTS]).items():
        if dtype == "SAMPLE_BB":
            continue
        man.faults.setdefault(fault, {})[dtype] = {
            f.source: FileRecord(f.source, f.path.stat().st_size, f.path.stat().st_mtime_ns) for f in files}
    bb = tree / "Runs/Hope1888/Hope1888_REL02/BB/Acc/BB.bin"
    st = bb.stat()
    os.utime(bb, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    rel = bb.relative_to(tree).as_posix()
    man.faults["Hope1888"]["BB"][rel] = FileRecord(rel, st.st_size, bb.stat().st_mtime_ns)
    mpath = tmp_path / "files_to_sync.yaml"
    write_manifest(mpath, man)
    return ReportVersion(remote, tree, mpath)


def big_status_doc(n_faults: int = 500, types: tuple[str, ...] = ("BB", "IM", "Source", "SAMPLE_BB")) -> dict:
    """A status document shaped like ``cs-sync status --json`` for a large version (every
    tenth fault with a problem in every type), with a stocktake per fault and pattern."""
    broken = ["incomplete", "stale", "ambiguous", "mismatch"]  # the types of every tenth fault
    faults = [f"Fault{i:03d}{'Alpine' if i % 50 == 0 else ''}" for i in range(n_faults)]
    cells = []
    by_state = {s: 0 for s in ["complete", "incomplete", "ambiguous", "mismatch", "stale", "not uploaded"]}
    total = 0
    for i, f in enumerate(faults):
        for j, t in enumerate(types):
            state = broken[j % len(broken)] if i % 10 == 3 else "complete"
            size = (i + 1) * (j + 1) * 7_340_032
            total += size
            by_state[state] += 1
            cells.append({"fault": f, "type": t, "state": state, "parts": 3, "size": size,
                          "problems": ["missing part _1"] if state == "incomplete" else [],
                          "verified": True, "check": "content", "uploaded": "2024-03-01T10:00:00+00:00"})
    patterns = [{"type": "BB", "pattern": "*/BB/Acc/BB.bin"}, {"type": "IM", "pattern": "*/IM_calc/**.csv"},
                {"type": "Source", "pattern": "Srf/**.info"}, {"type": "Source", "pattern": "Srf/**.csv"},
                {"type": "Source", "pattern": "Sim_params/**.yaml"}, {"type": "VM", "pattern": "vm_params.yaml"},
                {"type": "VM", "pattern": "nzvm.cfg"}, {"type": "VM", "pattern": "$*_REL*.pertb.csv"}]
    rows = [{"fault": f, "rels": 30, "rel_start": 1, "median": True, "unlisted": 0, "ok": i % 25 != 7,
             "types": {t: {"ok": True, "files": None, "bytes": None} for t in ("BB", "IM", "Source", "VM")},
             "cells": [{"found": 31 if i % 25 != 7 or k else 30, "expected": 31, "ok": i % 25 != 7 or k > 0, "missing": ""}
                       for k in range(len(patterns))]}
            for i, f in enumerate(faults)]
    return {"version": "v24p1", "root": "dropbox:/QuakeCoRE/Public/Cybershake", "manifest": None, "cs_root": None,
            "has_list": True, "has_stocktake": True, "faults": faults, "types": list(types), "cells": cells,
            "other_files": [], "stocktake": {"source": "stocktake.csv", "types": ["BB", "IM", "Source", "VM"],
                                             "patterns": patterns, "rows": rows,
                                             "failed_faults": sum(1 for r in rows if not r["ok"])},
            "totals": {"sets": by_state, "bytes": total, "parts": 3 * len(cells),
                       "bytes_by_type": {t: sum(c["size"] for c in cells if c["type"] == t) for t in types},
                       "faults": len(faults), "checks": {"content": len(cells), "size": 0, "unrecorded": 0,
                                                         "no sidecar": 0},
                       "uploaded": {"oldest": "2024-03-01T10:00:00+00:00", "newest": "2024-03-01T10:00:00+00:00"}},
            "exit_code": 7}
