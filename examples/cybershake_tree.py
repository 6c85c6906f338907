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
Run as a script to make the demo tree: ``python examples/cybershake_tree.py DIR``, or one
of the size you want: ``python examples/cybershake_tree.py DIR --faults 8 --rels 10 --bb-size 20M``.
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


FAULT_NAMES = ["AlpineK2T", "Hope1888", "Wairau", "Awatere", "Clarence", "Wellington", "Ohariu", "Hikurangi",
               "Kekerengu", "Hundalee", "Jordan", "Porters", "Greendale", "Hossack", "Fowlers", "Kaikoura"]


def fault_names(n: int) -> list[str]:
    """``n`` distinct Cybershake-like fault names (NZ faults, numbered past the list)."""
    return [FAULT_NAMES[i % len(FAULT_NAMES)] + (str(i // len(FAULT_NAMES) + 1) if i >= len(FAULT_NAMES) else "")
            for i in range(n)]


def sized_faults(n_faults: int, rels: int, bb_size: int) -> list[FaultSpec]:
    """A version of the size you ask for: ``n_faults`` faults of ``rels`` realisations plus a
    median event, every BB.bin ``bb_size`` bytes; every other fault VM-perturbed."""
    return [FaultSpec(name, rels=rels, median=True, perturbed=i % 2 == 0, bb_size=bb_size)
            for i, name in enumerate(fault_names(n_faults))]


def parse_bytes(text: str) -> int:
    """``300000``, ``300K``, ``20M``, ``1G`` (K/M/G binary, as everywhere in cs_sync)."""
    t = text.strip().upper().removesuffix("IB").removesuffix("B")
    mult = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(t[-1:], 1)
    try:
        value = int(float(t[:-1] if mult > 1 else t) * mult)
    except ValueError:
        raise argparse.ArgumentTypeError(f"cannot read size {text!r} (e.g. 300K, 20M, 1G)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"size {text!r} must be at least 1 byte")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Without --faults, --rels or --bb-size: the demo's three faults (about 3 MiB). With any of them: "
               "FAULTS faults of RELS realisations and a median each, every BB.bin BB_SIZE bytes, e.g. "
               "--faults 8 --rels 10 --bb-size 20M makes about 1.8 GB.")
    ap.add_argument("root", type=Path, help="version folder to create, e.g. demo/v22p12 (its name is the version)")
    ap.add_argument("--layout", choices=["v22p12", "old"], default="v22p12",
                    help="old: sources at the top of Data/Sources/FAULT (before v22p12)")
    ap.add_argument("--faults", type=_count, default=None, metavar="N", help="number of faults (default 3)")
    ap.add_argument("--rels", type=_count, default=None, metavar="N", help="realisations per fault (default 4)")
    ap.add_argument("--bb-size", type=parse_bytes, default=None, metavar="SIZE",
                    help="bytes per BB.bin, e.g. 300K, 20M (default 300K)")
    args = ap.parse_args(argv)
    if args.faults is None and args.rels is None and args.bb_size is None:
        faults = DEMO_FAULTS
    else:
        faults = sized_faults(args.faults or 3, args.rels or 4, args.bb_size or 300 * 1024)
    lst = make_version(args.root, faults, args.layout)
    total = sum(p.stat().st_size for p in args.root.rglob("*") if p.is_file())
    print(f"made {args.root} with {len(faults)} fault{'s' if len(faults) != 1 else ''} "
          f"({total / 2**20:.1f} MiB); fault list {lst}")


if __name__ == "__main__":
    main()
