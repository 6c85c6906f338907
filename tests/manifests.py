"""Build a manifest straight from a generated tree, for tests that must not depend on
preprocess: walk each fault's ``where`` with the config's globs, as preprocess would."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from cs_sync.inputs.config import SyncConfig, load_config
from cs_sync.inputs.faultlist import read_fault_list
from cs_sync.inputs.manifest import FileRecord, Manifest, write_manifest


def manifest_from_tree(cs_root: Path, config: SyncConfig | None = None, *, stocktake: bool = True) -> Manifest:
    config = config or load_config()
    cs_root = Path(cs_root)
    lst = cs_root / "list.txt"
    m = Manifest(version=cs_root.name, cs_root=str(cs_root.resolve()))
    for entry in read_fault_list(lst):
        types: dict[str, dict[str, FileRecord]] = {}
        for dt in config.scanned_types():
            base = cs_root / dt.where_for(entry.name)
            recs: dict[str, FileRecord] = {}
            for pat in dt.patterns:
                # a fault name is literal: glob characters in it are escaped
                for p in sorted(base.glob(pat.for_fault(glob.escape(entry.name)))):
                    rel = p.relative_to(cs_root).as_posix()
                    if any(c.startswith("_") for c in rel.split("/")) or not p.is_file():
                        continue
                    st = p.stat()
                    recs[rel] = FileRecord(rel, st.st_size, st.st_mtime_ns)
            if recs:
                types[dt.name] = recs
        m.faults[entry.name] = types
    m.extra["list.txt"] = lst.stat().st_size
    m.extra_paths["list.txt"] = str(lst.resolve())
    if stocktake:
        st = cs_root.parent / f"{cs_root.name}_stocktake.csv"
        st.write_text("fault,ok\n" + "".join(f"{f},1\n" for f in m.faults))
        m.extra["stocktake.csv"] = st.stat().st_size
        m.extra_paths["stocktake.csv"] = str(st.resolve())
    return m


def write_tree_manifest(cs_root: Path, out: Path | None = None, config: SyncConfig | None = None) -> Path:
    """Write ``files_to_sync.yaml`` (and its .meta.json) for ``cs_root`` beside it; returns its path."""
    out = out or Path(cs_root).parent / "files_to_sync.yaml"
    write_manifest(out, manifest_from_tree(cs_root, config))
    return out


def refresh_mtime(m: Manifest, cs_root: Path, rel: str) -> Manifest:
    """The manifest as a re-run of preprocess would write it after ``rel`` changed."""
    st = os.stat(Path(cs_root) / rel)
    for types in m.faults.values():
        for recs in types.values():
            if rel in recs:
                recs[rel] = FileRecord(rel, st.st_size, st.st_mtime_ns)
    return m
