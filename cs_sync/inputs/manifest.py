"""``files_to_sync.yaml``: what preprocess found, read by upload and status.

The YAML keeps the older scripts' structure so their readers keep working::

    .:                       # list.txt and stocktake.csv with their sizes
      list.txt: 1234
      stocktake.csv: 5678
    AlpineK2T:               # fault -> data type -> {path relative to CS_ROOT: size}
      BB:
        Runs/AlpineK2T/AlpineK2T_REL01/BB/Acc/BB.bin: 1048576

Modification times, the version name and CS_ROOT go in a sidecar beside it
(``files_to_sync.meta.json``), which older readers never open. Older manifests
with absolute paths are read too (made relative to CS_ROOT when under it).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from cs_sync.core.atomic import atomic_write_text
from cs_sync.core.errors import ManifestError
from cs_sync.core.safe_names import is_flat_name, safe_relpath
from cs_sync.inputs.text_file import read_text_input

EXTRA_SECTION = "."
META_FORMAT = 1
# libyaml when present: same text as the pure-Python classes, ~7x faster on 50k-file manifests
_Dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class FileRecord:
    path: str  # relative to CS_ROOT, '/'-separated
    size: int
    mtime_ns: int | None = None


@dataclass
class Manifest:
    """Files per fault and data type, plus the version's list.txt / stocktake.csv."""

    faults: dict[str, dict[str, dict[str, FileRecord]]] = field(default_factory=dict)
    extra: dict[str, int] = field(default_factory=dict)  # path (as given) -> size
    version: str | None = None
    cs_root: str | None = None
    extra_paths: dict[str, str] = field(default_factory=dict)  # basename -> absolute path

    def files(self, fault: str, dtype: str) -> list[FileRecord]:
        return list(self.faults.get(fault, {}).get(dtype, {}).values())

    def fault_names(self) -> list[str]:
        return list(self.faults)

    def total_bytes(self) -> int:
        return sum(r.size for types in self.faults.values() for recs in types.values() for r in recs.values())


def meta_path(manifest_path: Path | str) -> Path:
    p = Path(manifest_path)
    return p.with_name(p.name.rsplit(".", 1)[0] + ".meta.json")


def write_manifest(path: Path | str, manifest: Manifest) -> None:
    """Write the YAML and its sidecar, each atomically (sidecar first: a YAML with a
    stale sidecar only loses mtimes, never sizes)."""
    path = Path(path)
    mtimes = {
        r.path: r.mtime_ns
        for types in manifest.faults.values()
        for recs in types.values()
        for r in recs.values()
        if r.mtime_ns is not None
    }
    meta = {
        "format": META_FORMAT,
        "version": manifest.version,
        "cs_root": manifest.cs_root,
        "extra_paths": manifest.extra_paths,
        "mtime_ns": mtimes,
    }
    # compact: json's C encoder runs only without indent (0.2 s saved on 45k files)
    atomic_write_text(meta_path(path), json.dumps(meta, sort_keys=True, separators=(",", ":")))
    doc: dict = {EXTRA_SECTION: dict(manifest.extra)}
    for fault, types in manifest.faults.items():
        doc[fault] = {t: {r.path: r.size for r in recs.values()} for t, recs in types.items()}
    atomic_write_text(path, dump_manifest_doc(doc))


# A scalar PyYAML writes plain (unquoted) and reads back as the same string: starts with a
# letter or '_', holds only path characters, and is no YAML 1.1 bool/null word. Longer
# keys (>= 128 chars) become "? key" complex keys in PyYAML, so they take the slow path.
_PLAIN = re.compile(r"(?:[A-Za-z_][A-Za-z0-9_./+-]*|\.)")
_RESERVED = frozenset("yes Yes YES no No NO true True TRUE false False FALSE on On ON off Off OFF "
                      "null Null NULL y Y n N".split())


def _plain(s: object) -> bool:
    return isinstance(s, str) and len(s) < 128 and s not in _RESERVED and _PLAIN.fullmatch(s) is not None


_PLAIN_NAME = r"(?:[A-Za-z_][A-Za-z0-9_./+-]{0,126}|\.)"  # _PLAIN, shorter than 128
_PLAIN_LINES = re.compile(rf"{_PLAIN_NAME}(?:\n{_PLAIN_NAME})*")
_INT = {int}
_FILE_LINE = "    {}: {}".format


def _all_plain(names: dict) -> bool:
    """:func:`_plain` of every key, in one regex pass over them joined (no key holds a newline
    when they all match: a newline is not a path character)."""
    return (set(map(type, names)) == {str} and _RESERVED.isdisjoint(names)
            and _PLAIN_LINES.fullmatch("\n".join(names)) is not None)


def dump_manifest_doc(doc: dict[str, dict]) -> str:
    """The manifest's YAML text, byte-identical to ``yaml.dump(doc, sort_keys=False)``.

    The document is a fixed shape (section -> {path: size} or fault -> type -> {path:
    size}). PyYAML's representer is pure Python even with libyaml's emitter: 0.9 s of
    a 2 s preprocess on a 45k-file version (profiled), so plain names are written
    here directly (~20x faster); a document holding any name PyYAML would quote falls
    back to PyYAML itself. tests/unit/inputs/test_manifest.py checks equality.
    """
    out: list[str] = []
    for key, body in doc.items():
        if not _plain(key) or not isinstance(body, dict):
            return _yaml_dump(doc)
        if not body:
            out.append(f"{key}: {{}}")
            continue
        out.append(f"{key}:")
        for k2, v2 in body.items():
            if not _plain(k2):
                return _yaml_dump(doc)
            if isinstance(v2, dict):
                if not v2:
                    out.append(f"  {k2}: {{}}")
                    continue
                # a whole type's files at once (45k lines a version): all names plain, all sizes ints
                if not (_all_plain(v2) and set(map(type, v2.values())) == _INT):
                    return _yaml_dump(doc)
                out.append(f"  {k2}:")
                out.append("\n".join(map(_FILE_LINE, v2, v2.values())))
            elif type(v2) is int:
                out.append(f"  {k2}: {v2}")
            else:
                return _yaml_dump(doc)
    return "\n".join(out) + "\n" if out else "{}\n"


def _yaml_dump(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False)


def _relative(path: str, cs_root: str | None) -> str:
    if cs_root and os.path.isabs(path):
        root = cs_root.rstrip("/") + "/"
        if path.startswith(root):
            return path[len(root):]
    return path


def _usable_name(name: object) -> bool:
    """A fault or data type name that can be a folder and part of a file name on the remote."""
    return isinstance(name, str) and is_flat_name(name) and not name.startswith("_")


def _read_meta(mp: Path) -> dict:
    """The manifest's sidecar, checked field by field (a hand-edited one is named, not a crash)."""
    hint = "re-run cs-sync-preprocess"
    try:
        meta = json.loads(mp.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ManifestError(f"{mp}: cannot read manifest sidecar: {exc}", hint=hint) from None
    if not isinstance(meta, dict):
        raise ManifestError(f"{mp}: manifest sidecar is not a JSON object", hint=hint)
    for key, kind in (("version", str), ("cs_root", str), ("extra_paths", dict), ("mtime_ns", dict)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise ManifestError(f"{mp}: {key} is {meta[key]!r}, not a {kind.__name__}", hint=hint)
    return meta


def read_manifest(path: Path | str, cs_root: Path | str | None = None) -> Manifest:
    """Read a manifest (this tool's or the older scripts'); raises ManifestError.

    Fault and type names must be plain names (they become folders and file names on
    the remote), and every file must lie inside CS_ROOT: no ``..``, and an absolute
    path (older manifests) only under CS_ROOT when CS_ROOT is known.
    """
    path = Path(path)
    text = read_text_input(path, "manifest", ManifestError, "run cs-sync-preprocess first")
    try:
        doc = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: malformed YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{path}: expected a mapping of faults, got {type(doc).__name__}")
    mp = meta_path(path)
    meta: dict = _read_meta(mp) if mp.exists() else {}
    root = str(Path(cs_root).resolve()) if cs_root else meta.get("cs_root")
    mtimes: dict = meta.get("mtime_ns") or {}
    m = Manifest(version=meta.get("version"), cs_root=meta.get("cs_root"), extra_paths=meta.get("extra_paths") or {})
    for key, body in doc.items():
        key = str(key)
        if key == EXTRA_SECTION:
            if not isinstance(body, dict):
                raise ManifestError(f"{path}: section '.' must map paths to sizes")
            m.extra = {str(k): _size(path, ".", k, v) for k, v in body.items()}
            continue
        if not _usable_name(key):
            raise ManifestError(f"{path}: {key!r} is not a usable fault name",
                                hint="a fault name is one folder name, as in list.txt, not starting with '_'")
        if not isinstance(body, dict):
            raise ManifestError(f"{path}: fault {key!r} must map data types to files, got {body!r}")
        types: dict[str, dict[str, FileRecord]] = {}
        for dtype, files in body.items():
            if not _usable_name(dtype):
                raise ManifestError(f"{path}: {key}: {dtype!r} is not a usable data type name",
                                    hint="use the type names of sync_patterns.yaml (BB, IM, ...)")
            files = files or {}
            if not isinstance(files, dict):
                raise ManifestError(f"{path}: {key}.{dtype} must map paths to sizes, got {files!r}")
            recs: dict[str, FileRecord] = {}
            for p, size in files.items():
                size = _size(path, f"{key}.{dtype}", p, size)
                rel = _inside_root(path, f"{key}.{dtype}", str(p), root)
                mtime = mtimes.get(rel)
                recs[rel] = FileRecord(rel, size, mtime if isinstance(mtime, int) else None)
            types[str(dtype)] = recs
        m.faults[key] = types
    return m


def _size(path: Path, where: str, name: object, size: object) -> int:
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{path}: {where}: size of {name!r} is {size!r}, not a byte count",
                            hint="re-run cs-sync-preprocess rather than editing sizes by hand")
    return size


def _inside_root(path: Path, where: str, name: str, root: str | None) -> str:
    """``name`` relative to CS_ROOT; ManifestError when it would reach outside it."""
    rel = _relative(name, root)
    if os.path.isabs(rel) and root is not None:  # under CS_ROOT through a symlink (/scratch -> /nesi/...)?
        rel = _relative(os.path.realpath(rel), root)
    if os.path.isabs(rel):
        if root is None:  # an older manifest read without its CS_ROOT (status): kept as it is
            return rel
        raise ManifestError(f"{path}: {where}: {name!r} is not under CS_ROOT {root}",
                            hint="give the CS_ROOT this manifest was made for, or re-run cs-sync-preprocess")
    clean = safe_relpath(rel)
    if clean is None:
        raise ManifestError(f"{path}: {where}: {name!r} leaves CS_ROOT",
                            hint="paths are relative to CS_ROOT, without '..'; re-run cs-sync-preprocess")
    return rel
