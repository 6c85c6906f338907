"""Test-only: write remote versions the way the two kinds of archive users have look.

* ``sidecar=True``: TAR parts written with Python's tarfile plus the per-set JSON
  sidecar exactly as documented in cs_sync/sidecar.py (parts with size and SHA-256;
  members with part, byte offset of their data inside the part, size, mtime,
  SHA-256, source), and SAMPLE_BB as a plain ``{event}_BB.bin`` with a sidecar
  whose ``parts`` is empty and whose one member names that file.
* ``sidecar=False``: the older scripts' archives, made with GNU ``tar cf``, no sidecar;
  with ``member_paths=True`` members keep their paths relative to the tree (as the
  older scripts' staged copies did: GNU long-name headers once a path passes 100
  characters), ``tar_format="pax"`` writes pax headers instead.

Which files make up each set comes from the shipped sync_patterns.yaml, member
names from cs_sync.core.naming, so the archives match what the tool's upload makes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cs_sync.archive.sidecar import MemberInfo, PartInfo, SetSidecar
from cs_sync.core import naming
from cs_sync.inputs.config import load_config


@dataclass
class SourceFile:
    member: str  # name inside the TAR
    source: str  # relative to the tree root
    path: Path  # absolute


@dataclass
class BuiltVersion:
    root: Path  # remote version folder
    sets: dict[tuple[str, str], list[SourceFile]] = field(default_factory=dict)
    parts: dict[tuple[str, str], list[str]] = field(default_factory=dict)


def sha256_file(p: Path) -> str:
    return hashlib.sha256(p.read_bytes()).hexdigest()


def collect_sets(tree: Path, faults: list[str]) -> dict[tuple[str, str], list[SourceFile]]:
    """Files of every set of every fault, found with the shipped patterns (like preprocess)."""
    cfg = load_config()
    out: dict[tuple[str, str], list[SourceFile]] = {}
    for fault in faults:
        for host in cfg.set_types():
            files: list[SourceFile] = []
            for tname in cfg.packed_with(host):
                t = cfg.types[tname]
                where = tree / t.where_for(fault)
                for pat in t.patterns:
                    for p in sorted(where.glob(pat.for_fault(fault))):
                        rel = p.relative_to(where).as_posix()
                        if any(c.startswith("_") for c in rel.split("/")) or not p.is_file():
                            continue
                        files.append(SourceFile(naming.member_name(fault, rel), p.relative_to(tree).as_posix(), p))
            if files:
                out[(fault, host)] = files
        bbs = out.get((fault, "BB"), [])
        if bbs:
            median = [f for f in bbs if naming.find_event(fault, f.source.split(f"Runs/{fault}/", 1)[1]) == fault]
            pick = (median or bbs)[0]
            event = naming.find_event(fault, pick.source.split(f"Runs/{fault}/", 1)[1])
            out[(fault, "SAMPLE_BB")] = [SourceFile(naming.sample_file_name(fault, event), pick.source, pick.path)]
    return out


def _split(files: list[SourceFile], max_part: int | None) -> list[list[SourceFile]]:
    if not max_part:
        return [files]
    parts: list[list[SourceFile]] = [[]]
    size = 0
    for f in files:
        n = f.path.stat().st_size
        if parts[-1] and size + n > max_part:
            parts.append([])
            size = 0
        parts[-1].append(f)
        size += n
    return parts


def write_version(
    tree: Path, remote_root: Path, version: str, faults: list[str], *, sidecar: bool = True,
    max_part: int | None = None, types: list[str] | None = None, member_paths: bool = False,
    tar_format: str = "gnu",
) -> BuiltVersion:
    """Archive ``faults`` of the version ``tree`` into ``remote_root/version``."""
    vdir = Path(remote_root) / version
    vdir.mkdir(parents=True, exist_ok=True)
    built = BuiltVersion(root=vdir)
    for (fault, dtype), files in collect_sets(tree, faults).items():
        if types and dtype not in types:
            continue
        if member_paths and not sidecar and dtype != "SAMPLE_BB":
            files = [SourceFile(f.source, f.source, f.path) for f in files]
        built.sets[(fault, dtype)] = files
        fdir = vdir / fault
        fdir.mkdir(exist_ok=True)
        if dtype == "SAMPLE_BB":
            f = files[0]
            shutil.copy2(f.path, fdir / f.member)
            built.parts[(fault, dtype)] = [f.member]
            if sidecar:
                st = f.path.stat()
                m = MemberInfo(name=f.member, part=f.member, offset=0, size=st.st_size, mtime=st.st_mtime,
                               sha256=sha256_file(f.path), source=f.source, mtime_ns=st.st_mtime_ns)
                _write_sidecar(vdir, SetSidecar(fault, dtype, version, parts=[], members=[m]))
            continue
        groups = _split(files, max_part)
        names = [naming.part_name(fault, dtype, i, len(groups)) for i in range(len(groups))]
        built.parts[(fault, dtype)] = names
        part_infos: list[PartInfo] = []
        members: list[MemberInfo] = []
        for name, group in zip(names, groups):
            dest = fdir / name
            if sidecar:
                with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
                    for f in group:
                        tar.add(f.path, arcname=f.member, recursive=False)
                by_name = {f.member: f for f in group}
                with tarfile.open(dest, "r") as tar:
                    for ti in tar.getmembers():
                        f = by_name[ti.name]
                        st = f.path.stat()
                        members.append(MemberInfo(name=ti.name, part=name, offset=ti.offset_data, size=ti.size,
                                                  mtime=st.st_mtime, sha256=sha256_file(f.path), source=f.source,
                                                  mtime_ns=st.st_mtime_ns))
                part_infos.append(PartInfo(name, dest.stat().st_size, sha256_file(dest)))
            else:
                gnu_tar(dest, [(f.member, f.path) for f in group], tar_format=tar_format)
        if sidecar:
            _write_sidecar(vdir, SetSidecar(fault, dtype, version, parts=part_infos, members=members,
                                            created="2026-01-01T00:00:00Z", tool="tests/archive_builder"))
    return built


def gnu_tar(dest: Path, members: list[tuple[str, Path]], tar_format: str = "gnu") -> None:
    """An older script's part: GNU ``tar cf`` of files laid out under their member names."""
    with tempfile.TemporaryDirectory() as tmp:
        for name, src in members:
            p = Path(tmp) / name
            p.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, p)
        subprocess.run(["tar", "cf", str(dest), f"--format={tar_format}", "-C", tmp, *[n for n, _ in members]],
                       check=True)


def _write_sidecar(vdir: Path, sc: SetSidecar) -> None:
    d = vdir / naming.SIDECAR_DIR
    d.mkdir(exist_ok=True)
    (d / naming.sidecar_name(sc.fault, sc.dtype)).write_text(sc.to_json())


def assert_tree_matches(download_dir: Path, built: BuiltVersion, keys=None, members=None) -> int:
    """Every file of the built sets (or ``keys``) is in ``download_dir/{fault}/{TYPE}/``, byte-exact.

    Returns the number of files compared.
    """
    n = 0
    for key, files in built.sets.items():
        if keys is not None and key not in keys:
            continue
        fault, dtype = key
        for f in files:
            if members is not None and f.member not in members:
                continue
            got = download_dir / fault / dtype / f.member
            assert got.is_file(), f"missing {got}"
            assert got.read_bytes() == f.path.read_bytes(), f"{got} differs from {f.path}"
            n += 1
    return n


def flip_byte(path: Path, offset: int | None = None) -> None:
    """Corrupt one byte in place (same size)."""
    size = path.stat().st_size
    at = size // 2 if offset is None else offset
    with open(path, "r+b") as fh:
        fh.seek(at)
        b = fh.read(1)
        fh.seek(at)
        fh.write(bytes([b[0] ^ 0xFF]))
    os.utime(path, None)
