"""The older scripts' preprocess, as a baseline for the whole command (not a tool to use).

What they did, read from their description: for every fault of list.txt, every data
type and every pattern, ``glob`` the type's folder with pathlib, ``stat`` each hit,
count the hits against the expected number, then ``yaml.dump`` the files per fault
and type with their sizes and write the counts with pandas' ``to_csv``. ``yaml.dump``
with no Dumper is PyYAML's pure-Python dumper, as the scripts called it; ``--c-dumper``
gives it libyaml's emitter (the older way at its best; both are reported).

Usage: python benchmarks/older_preprocess.py CS_ROOT LIST_TXT OUT_DIR [--c-dumper]
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from cs_sync.inputs.config import load_config  # noqa: E402
from cs_sync.inputs.faultlist import read_fault_list  # noqa: E402


def main(root: Path, lst: Path, out: Path, c_dumper: bool) -> None:
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper) if c_dumper else yaml.Dumper
    config = load_config(None)
    doc: dict = {}
    rows = []
    for entry in read_fault_list(lst):
        per_type: dict = {}
        row: dict = {"fault": entry.name, "rel_nums": entry.n_rels}
        for dt in config.scanned_types():
            where = root / dt.where_for(entry.name)
            files: dict = {}
            for p in dt.patterns:
                pat = p.for_fault(entry.name)
                hits = sorted(where.glob(pat)) if p.has_wildcard else [h for h in [where / pat] if h.exists()]
                for h in hits:
                    files[str(h.relative_to(root))] = h.stat().st_size
                row[f"num({dt.name}_{p.label})"] = len(hits)
            per_type[dt.name] = files
        doc[entry.name] = per_type
        rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    (out / "files_to_sync.yaml").write_text(yaml.dump(doc, Dumper=dumper, sort_keys=False, default_flow_style=False))
    pd.DataFrame(rows).set_index("fault").to_csv(out / "stocktake.csv")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), "--c-dumper" in sys.argv[4:])
