"""Generate small Cybershake-like version trees for the demo, the tests and the benchmarks.

A version tree looks like the real thing, only smaller::

    v22p12/list.txt
    v22p12/Runs/{F}/{F}/BB/Acc/BB.bin            (median event, when the fault has one)
    v22p12/Runs/{F}/{F}_REL01/BB/Acc/BB.bin
    v22p12/Runs/{F}/{F}_REL01/IM_calc/{F}_REL01.csv
    v22p12/Runs/{F}/{F}_REL01/LF/OutBin/...       (not archived: no pattern selects it)
    v22p12/Data/Sources/{F}/Srf/{F}_REL01.info, .csv; Sim_params/{F}_REL01.yaml
    v22p12/Data/VMs/{F}/vm_params.yaml, nzvm.cfg[, {F}_REL01.pertb.csv when perturbed]

``layout="old"`` puts sources at the top of ``Data/Sources/{F}/`` (before v22p12).
Run as a script to make the demo tree: ``python examples/cybershake_tree.py DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import random
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class FaultSpec:
    name: str
    rels: int
    skip: int = 0
    median: bool = True
    perturbed: bool = False
    bb_size: int = 4096  # bytes per BB.bin
    extra_rels: int = 0  # realisation folders beyond the list (reported, not archived)
    omit: list[str] = field(default_factory=list)  # relative paths to leave out
    list_suffix: str = "r"

    def list_line(self) -> str:
        if self.skip:
            return f"{self.name} {self.rels} {self.skip}{self.list_suffix}"
        return f"{self.name} {self.rels}{self.list_suffix}"


def file_bytes(relpath: str, size: int) -> bytes:
    """Deterministic content for ``relpath``: tests can regenerate and compare."""
    seed = hashlib.sha256(relpath.encode()).digest()
    if size <= 1 << 16:
        return random.Random(seed).randbytes(size)
    block = random.Random(seed).randbytes(1 << 16)
    reps = size // len(block) + 1
    return (seed + block * reps)[:size]


def _write(root: Path, rel: str, size: int, omit: set[str]) -> int:
    if rel in omit:
        return 0
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    if size > 1 << 24:
        with open(p, "wb") as fh:
            chunk = file_bytes(rel, 1 << 24)
            left = size
            while left > 0:
                fh.write(chunk[: min(left, len(chunk))])
                left -= len(chunk)
    else:
        p.write_bytes(file_bytes(rel, size))
    return size


def events(spec: FaultSpec, *, with_extra: bool = True) -> list[str]:
    names = [spec.name] if spec.median else []
    last = spec.rels + (spec.extra_rels if with_extra else 0)
    names += [f"{spec.name}_REL{r:02d}" for r in range(spec.skip + 1, last + 1)]
    return names


def make_fault(root: Path, spec: FaultSpec, layout: str = "v22p12") -> int:
    """Write one fault's files under ``root``; returns bytes written."""
    f = spec.name
    omit = set(spec.omit)
    total = 0
    src = f"Data/Sources/{f}" + ("" if layout == "old" else "")
    for ev in events(spec):
        total += _write(root, f"Runs/{f}/{ev}/BB/Acc/BB.bin", spec.bb_size, omit)
        total += _write(root, f"Runs/{f}/{ev}/IM_calc/{ev}.csv", 300, omit)
        total += _write(root, f"Runs/{f}/{ev}/LF/OutBin/{ev}_xyts.e3d", 64, omit)
        if layout == "old":
            total += _write(root, f"{src}/{ev}.info", 120, omit)
            total += _write(root, f"{src}/{ev}.csv", 200, omit)
            total += _write(root, f"{src}/{ev}.yaml", 80, omit)
        else:
            total += _write(root, f"{src}/Srf/{ev}.info", 120, omit)
            total += _write(root, f"{src}/Srf/{ev}.csv", 200, omit)
            total += _write(root, f"{src}/Sim_params/{ev}.yaml", 80, omit)
        if spec.perturbed and ev != f:
            total += _write(root, f"Data/VMs/{f}/{ev}.pertb.csv", 150, omit)
    total += _write(root, f"Data/VMs/{f}/vm_params.yaml", 90, omit)
    total += _write(root, f"Data/VMs/{f}/nzvm.cfg", 70, omit)
    # a folder starting with '_' that holds matching-looking files: never selected
    total += _write(root, f"Runs/{f}/_trash/BB/Acc/BB.bin", 32, omit)  # "*" would match "_trash"
    return total


def make_version(root: Path, faults: list[FaultSpec], layout: str = "v22p12", list_name: str = "list.txt") -> Path:
    """Write a whole version tree and its list.txt; returns the list.txt path."""
    root.mkdir(parents=True, exist_ok=True)
    for spec in faults:
        make_fault(root, spec, layout)
    lst = root / list_name
    lst.write_text("# fault  realisations  [skip]\n" + "\n".join(s.list_line() for s in faults) + "\n")
    return lst


DEMO_FAULTS = [
    FaultSpec("AlpineK2T", rels=4, median=True, perturbed=True, bb_size=300_000),
    FaultSpec("Hope1888", rels=3, median=False, perturbed=False, bb_size=200_000),
    FaultSpec("Wairau", rels=6, skip=2, median=True, perturbed=True, bb_size=250_000),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("root", type=Path, help="version folder to create, e.g. demo/v22p12")
    ap.add_argument("--layout", choices=["v22p12", "old"], default="v22p12")
    args = ap.parse_args()
    lst = make_version(args.root, DEMO_FAULTS, args.layout)
    print(f"made {args.root} with {len(DEMO_FAULTS)} faults; fault list {lst}")


if __name__ == "__main__":
    main()
