"""cs-sync-preprocess on generated Cybershake-like trees, run both as the installed
command (subprocess) and through ``main(argv)``: per-type OK flags and counts, the
outputs as the older readers load them, and one clear line for every bad input."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cs_sync.cli.preprocess import main
from cs_sync.core.atomic import TMP_SUFFIX
from cs_sync.inputs.manifest import read_manifest

from cybershake_tree import FaultSpec, make_fault, make_version

CLI = Path(sys.executable).parent / "cs-sync-preprocess"
OLD_LAYOUT_CONFIG = """\
BB:
  where: "Runs/{fault_name}"
  pattern:
    - "*/BB/Acc/BB.bin"
IM:
  where: "Runs/{fault_name}"
  pattern:
    - "*/IM_calc/{fault_name}*.csv"
Source:
  where: "Data/Sources/{fault_name}"
  pattern:
    - "{fault_name}*.info"
    - "{fault_name}*.csv"
    - "{fault_name}*.yaml"
VM:
  where: "Data/VMs/{fault_name}"
  pattern:
    - "vm_params.yaml"
    - "nzvm.cfg"
    - "${fault_name}_REL*.pertb.csv"
"""
TYPES = ["BB", "IM", "Source", "VM", "SAMPLE_BB"]


@pytest.fixture(params=["command", "main"])
def invoke(request, capsys, monkeypatch):
    """``invoke(args, cwd)`` -> (exit code, stdout, stderr), via the installed command or main()."""

    def _run(args, cwd: Path):
        cwd.mkdir(parents=True, exist_ok=True)
        args = [str(a) for a in args]
        if request.param == "command":
            p = subprocess.run([str(CLI), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
            return p.returncode, p.stdout, p.stderr
        monkeypatch.chdir(cwd)
        capsys.readouterr()
        code = main(args)
        out, err = capsys.readouterr()
        return code, out, err

    _run.mode = request.param
    return _run


def in_range_events(spec: FaultSpec) -> list[str]:
    return ([spec.name] if spec.median else []) + [f"{spec.name}_REL{r:02d}" for r in range(spec.skip + 1, spec.rels + 1)]


def expected_files(spec: FaultSpec, layout: str = "v22p12") -> dict[str, list[str]]:
    """The files each type should select, from the generator's layout (not from the scanner)."""
    f, evs = spec.name, in_range_events(spec)
    rels = [e for e in evs if e != f]
    src = f"Data/Sources/{f}"
    if layout == "old":
        source = [f"{src}/{e}.info" for e in evs] + [f"{src}/{e}.csv" for e in evs] + [f"{src}/{e}.yaml" for e in evs]
    else:
        source = ([f"{src}/Srf/{e}.info" for e in evs] + [f"{src}/Srf/{e}.csv" for e in evs]
                  + [f"{src}/Sim_params/{e}.yaml" for e in evs])
    out = {
        "BB": [f"Runs/{f}/{e}/BB/Acc/BB.bin" for e in evs],
        "IM": [f"Runs/{f}/{e}/IM_calc/{e}.csv" for e in evs],
        "Source": source,
        "VM": [f"Data/VMs/{f}/vm_params.yaml", f"Data/VMs/{f}/nzvm.cfg"]
        + ([f"Data/VMs/{f}/{e}.pertb.csv" for e in rels] if spec.perturbed else []),
        "SAMPLE_BB": [f"Runs/{f}/{evs[0]}/BB/Acc/BB.bin"],
    }
    return {t: [p for p in ps if p not in spec.omit] for t, ps in out.items()}


def load_outputs(yaml_path: Path, csv_path: Path):
    doc = yaml.safe_load(yaml_path.read_text())  # what the older readers do
    df = pd.read_csv(csv_path, index_col=0)
    return doc, df


def ok_flags(df: pd.DataFrame, fault: str, types=TYPES) -> dict[str, bool]:
    return {t: bool(df.loc[fault, f"{t}_ok"]) for t in types}


def add(root: Path, rel: str, data: bytes = b"junk") -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


# -- the main case: medians or not, perturbed or not, three columns, '_' folders, unlisted realisations --

def test_mixed_version_all_ok_and_outputs_as_old_readers_expect(make_tree, tmp_path, invoke):
    specs = [
        FaultSpec("AlpineK2T", rels=4, median=True, perturbed=True),
        FaultSpec("Hope1888", rels=3, median=False, perturbed=False),
        FaultSpec("Wairau", rels=6, skip=2, median=True, perturbed=True, extra_rels=2),  # REL07-08 beyond the list
    ]
    root, lst = make_tree(specs)
    make_fault(root, FaultSpec("Wairau", rels=2, median=False, perturbed=True))  # skipped REL01-02 exist on disk
    add(root, "Runs/AlpineK2T/_old/BB/Acc/BB.bin")  # '*' would match '_old': never selected
    add(root, "Runs/AlpineK2T/_AlpineK2T_REL09/IM_calc/AlpineK2T_REL09.csv")
    add(root, "Data/VMs/Hope1888/_bak/Hope1888_REL01.pertb.csv")
    work = tmp_path / "work"

    code, out, err = invoke([root, lst], work)  # default outputs: the current folder

    assert code == 0, err
    assert err == ""
    yml, csv = work / "files_to_sync.yaml", work / "stocktake.csv"
    doc, df = load_outputs(yml, csv)

    # stocktake.csv: exact flags and counts
    assert list(df.index) == ["AlpineK2T", "Hope1888", "Wairau"]
    for f in df.index:
        assert ok_flags(df, f) == dict.fromkeys(TYPES, True), f
    assert df.loc["Wairau", ["rel_nums", "rel_start"]].tolist() == [4, 3]
    assert df.loc["Hope1888", ["rel_nums", "rel_start"]].tolist() == [3, 1]
    assert df.loc["AlpineK2T", "num(BB_*/BB/Acc/BB.bin)"] == 5  # 4 realisations + median
    assert df.loc["Hope1888", "num(BB_*/BB/Acc/BB.bin)"] == 3  # no median
    assert df.loc["Wairau", "num(BB_*/BB/Acc/BB.bin)"] == 5  # REL03-06 + median
    assert df.loc["AlpineK2T", "num(VM_$*_REL*.pertb.csv)"] == 4  # realisations only: no median perturbation
    assert df.loc["Hope1888", "num(VM_$*_REL*.pertb.csv)"] == 0  # unperturbed: optional pattern passes
    assert df.loc["Wairau", "num(VM_$*_REL*.pertb.csv)"] == 4
    assert df.loc["Wairau", "unlisted_files"] == 4 * 6  # REL01-02 and REL07-08: BB, IM, 3 Source, pertb each
    assert df.loc["AlpineK2T", "unlisted_files"] == 0
    assert df["median"].tolist() == [True, False, True]

    # files_to_sync.yaml: the older structure, paths relative to CS_ROOT, sizes from disk
    assert list(doc) == [".", "AlpineK2T", "Hope1888", "Wairau"]
    assert doc["."] == {"list.txt": lst.stat().st_size, "stocktake.csv": csv.stat().st_size}
    for spec in specs:
        want = expected_files(spec)
        assert list(doc[spec.name]) == TYPES
        for t in TYPES:
            assert sorted(doc[spec.name][t]) == sorted(want[t]), (spec.name, t)
            for rel, size in doc[spec.name][t].items():
                assert size == (root / rel).stat().st_size
    assert not any("/_" in p for f in doc if f != "." for t in doc[f] for p in doc[f][t])

    # the sidecar: version, CS_ROOT, every file's mtime
    meta = json.loads((work / "files_to_sync.meta.json").read_text())
    assert meta["version"] == "v22p12" and meta["cs_root"] == str(root)
    assert meta["extra_paths"] == {"list.txt": str(lst), "stocktake.csv": str(csv)}
    all_paths = {p for f in doc if f != "." for t in doc[f] for p in doc[f][t]}
    assert set(meta["mtime_ns"]) == all_paths
    for p in all_paths:
        assert meta["mtime_ns"][p] == (root / p).stat().st_mtime_ns
    m = read_manifest(yml)
    assert m.files("Wairau", "BB")[0].mtime_ns == (root / m.files("Wairau", "BB")[0].path).stat().st_mtime_ns

    # the report (plain: stdout is not a terminal here)
    assert "\x1b[" not in out
    lines = out.splitlines()
    assert lines[0] == "scanning 3 faults ..."
    assert lines[1] == f"stocktake of v22p12 ({root})"
    assert lines[2].split() == ["fault", "rels", "median"] + TYPES
    assert lines[3].split() == ["AlpineK2T", "1-4", "yes"] + ["OK"] * 4 + ["OK", "(median)"]
    assert lines[4].split() == ["Hope1888", "1-3", "no"] + ["OK"] * 4 + ["OK", "(REL01)"]
    assert "3 faults: 3 OK" in out
    assert "note  Wairau: 24 files of realisations outside the list (REL03..REL06) not selected: " \
           "REL01, REL02, REL07, REL08" in out
    assert not list(work.glob(f".*{TMP_SUFFIX}"))  # no temp files left behind


def test_perturbed_fault_missing_one_pertb(make_tree, tmp_path, invoke):
    root, lst = make_tree([
        FaultSpec("A", rels=3, perturbed=True, omit=["Data/VMs/A/A_REL02.pertb.csv"]),
        FaultSpec("B", rels=3, perturbed=True),
    ])
    code, out, err = invoke([root, lst, "--out_file", tmp_path / "o/f.yaml", "--stocktake_csv", tmp_path / "o/s.csv"],
                            tmp_path)
    assert code == 4
    assert err.strip().count("\n") == 0
    assert err.startswith("cs-sync-preprocess: error: stocktake failed for 1 of 2 faults (A); see ")
    doc, df = load_outputs(tmp_path / "o/f.yaml", tmp_path / "o/s.csv")  # written all the same
    assert ok_flags(df, "A") == {"BB": True, "IM": True, "Source": True, "VM": False, "SAMPLE_BB": True}
    assert ok_flags(df, "B") == dict.fromkeys(TYPES, True)
    assert df.loc["A", "num(VM_$*_REL*.pertb.csv)"] == 2 and not df.loc["A", "OK(VM_$*_REL*.pertb.csv)"]
    assert sorted(doc["A"]["VM"]) == sorted(expected_files(FaultSpec("A", 3, perturbed=True,
                                                                     omit=["Data/VMs/A/A_REL02.pertb.csv"]))["VM"])
    assert "$*_REL*.pertb.csv: missing REL02" in out
    assert "FAIL  A VM: $*_REL*.pertb.csv: found 2, expected 3; missing REL02" in out


def test_missing_bb_bin(make_tree, tmp_path, invoke):
    root, lst = make_tree([FaultSpec("A", rels=3, omit=["Runs/A/A_REL02/BB/Acc/BB.bin"])])
    code, out, err = invoke([root, lst, "--out-file", tmp_path / "f.yaml", "--stocktake-csv", tmp_path / "s.csv"],
                            tmp_path)
    assert code == 4
    doc, df = load_outputs(tmp_path / "f.yaml", tmp_path / "s.csv")
    assert ok_flags(df, "A") == {"BB": False, "IM": True, "Source": True, "VM": True, "SAMPLE_BB": True}
    assert df.loc["A", "num(BB_*/BB/Acc/BB.bin)"] == 3  # of 4 (median + 3)
    assert len(doc["A"]["BB"]) == 3
    assert "BB.bin: missing REL02" in out


def test_pre_v22p12_source_layout_with_config(make_tree, tmp_path, invoke):
    specs = [FaultSpec("A", rels=3, median=True, perturbed=True), FaultSpec("B", rels=2, median=False)]
    root, lst = make_tree(specs, layout="old")
    cfg = tmp_path / "old_patterns.yaml"
    cfg.write_text(OLD_LAYOUT_CONFIG)
    out_args = ["--out_file", tmp_path / "f.yaml", "--stocktake_csv", tmp_path / "s.csv"]

    code, out, err = invoke([root, lst, "--config", cfg, *out_args], tmp_path)
    assert code == 0, err
    doc, df = load_outputs(tmp_path / "f.yaml", tmp_path / "s.csv")
    for spec in specs:
        assert ok_flags(df, spec.name) == dict.fromkeys(TYPES, True)
        assert sorted(doc[spec.name]["Source"]) == sorted(expected_files(spec, "old")["Source"])
    assert df.loc["A", "num(Source_**.info)"] == 4 and df.loc["B", "num(Source_**.yaml)"] == 2

    # the shipped (v22p12) patterns find no sources in this layout: said plainly
    code, out, err = invoke([root, lst, *out_args], tmp_path)
    assert code == 4
    _, df = load_outputs(tmp_path / "f.yaml", tmp_path / "s.csv")
    assert ok_flags(df, "A") == {"BB": True, "IM": True, "Source": False, "VM": True, "SAMPLE_BB": True}


@pytest.mark.parametrize(
    "types,want_types",
    [
        (["Source"], ["Source", "VM"]),  # VM is packed with Source
        (["VM"], ["Source", "VM"]),
        (["SAMPLE_BB"], ["SAMPLE_BB"]),  # BB is scanned for it, not output
        (["IM", "BB"], ["BB", "IM"]),
    ],
)
def test_type_selection(make_tree, tmp_path, invoke, types, want_types):
    specs = [FaultSpec("A", rels=3, median=True, perturbed=True), FaultSpec("B", rels=2, median=False)]
    root, lst = make_tree(specs)
    args = [root, lst, "--out_file", tmp_path / "f.yaml", "--stocktake_csv", tmp_path / "s.csv"]
    for t in types:
        args += ["-t", t]
    code, out, err = invoke(args, tmp_path)
    assert code == 0, err
    doc, df = load_outputs(tmp_path / "f.yaml", tmp_path / "s.csv")
    assert [c[:-3] for c in df.columns if c.endswith("_ok")] == want_types
    for spec in specs:
        assert list(doc[spec.name]) == want_types
        for t in want_types:
            assert sorted(doc[spec.name][t]) == sorted(expected_files(spec)[t])
    if want_types == ["SAMPLE_BB"]:
        assert list(doc["A"]["SAMPLE_BB"]) == ["Runs/A/A/BB/Acc/BB.bin"]  # the median's
        assert list(doc["B"]["SAMPLE_BB"]) == ["Runs/B/B_REL01/BB/Acc/BB.bin"]  # else the first realisation's


def test_data_types_long_option_of_the_older_script(make_tree, tmp_path, invoke):
    root, lst = make_tree([FaultSpec("A", rels=2)])
    code, _, err = invoke([root, lst, "--data_types", "IM", "--out_file", tmp_path / "f.yaml",
                           "--stocktake_csv", tmp_path / "s.csv"], tmp_path)
    assert code == 0, err
    assert list(yaml.safe_load((tmp_path / "f.yaml").read_text())["A"]) == ["IM"]


def test_rerun_overwrites_atomically_and_identically(make_tree, tmp_path, invoke):
    root, lst = make_tree([FaultSpec("A", rels=2, perturbed=True)])
    args = [root, lst, "--out_file", tmp_path / "f.yaml", "--stocktake_csv", tmp_path / "s.csv"]
    assert invoke(args, tmp_path)[0] == 0
    first = ((tmp_path / "f.yaml").read_bytes(), (tmp_path / "s.csv").read_bytes())
    assert invoke(args + ["--threads", "4"], tmp_path)[0] == 0
    assert ((tmp_path / "f.yaml").read_bytes(), (tmp_path / "s.csv").read_bytes()) == first
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_file()) == [
        "f.meta.json", "f.yaml", "s.csv"]


# -- bad input: one line on stderr naming the file/line/value, exit 3, nothing written, no traceback --

def _cfg(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    return p


def _lst(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "bad_list.txt"
    p.write_text(text)
    return p


GOOD_TYPE = 'BB:\n  where: "Runs/{fault_name}"\n  pattern: ["*/BB/Acc/BB.bin"]\n'

BAD_INPUTS = {
    # name: (builds args from (root, lst, tmp_path), exit code, text the one line must contain)
    "missing CS_ROOT": (lambda r, l, t: [t / "nope", l], 3, "CS_ROOT {t}/nope does not exist"),
    "CS_ROOT is a file": (lambda r, l, t: [l, l], 3, "is not a folder"),
    "missing list": (lambda r, l, t: [r, t / "nolist.txt"], 3, "{t}/nolist.txt: fault list not found"),
    "unreadable list": (lambda r, l, t: [r, t], 3, "{t}: cannot read fault list"),
    "list not text": (lambda r, l, t: [r, _bytes(t / "bin.txt")], 3, "bin.txt: cannot read fault list"),
    "empty list": (lambda r, l, t: [r, _lst(t, "# nothing\n\n")], 3, "bad_list.txt: no faults listed"),
    "non-number": (lambda r, l, t: [r, _lst(t, "A 3\nB xr\n")], 3, "bad_list.txt:2: realisation count 'xr'"),
    "negative": (lambda r, l, t: [r, _lst(t, "A -3\n")], 3, "bad_list.txt:1: realisation count '-3' is negative"),
    "skip >= count": (lambda r, l, t: [r, _lst(t, "A 3 3r\n")], 3, "bad_list.txt:1: skip 3 must be less"),
    "duplicate": (lambda r, l, t: [r, _lst(t, "A 3\n\nA 4\n")], 3, "bad_list.txt:3: fault 'A' is listed twice"),
    "missing config": (lambda r, l, t: [r, l, "--config", t / "no.yaml"], 3, "{t}/no.yaml: config not found"),
    "unreadable config": (lambda r, l, t: [r, l, "--config", t], 3, "{t}: cannot read config"),
    "malformed YAML": (lambda r, l, t: [r, l, "--config", _cfg(t, "BB:\n  where: [x\n")], 3,
                       "bad.yaml: line 3: malformed YAML"),
    "not a mapping": (lambda r, l, t: [r, l, "--config", _cfg(t, "- BB\n- IM\n")], 3,
                      "bad.yaml: expected a mapping of data types"),
    "no where": (lambda r, l, t: [r, l, "--config", _cfg(t, "BB:\n  pattern: [x]\n")], 3, "bad.yaml: BB: missing 'where'"),
    "no pattern": (lambda r, l, t: [r, l, "--config", _cfg(t, 'BB:\n  where: "Runs"\n')], 3,
                   "bad.yaml: BB: missing 'pattern'"),
    "unknown placeholder": (lambda r, l, t: [r, l, "--config", _cfg(t, 'BB:\n  where: "Runs/{fault}"\n  pattern: [x]\n')],
                            3, "bad.yaml: BB.where: unknown placeholder {fault}"),
    "where escapes": (lambda r, l, t: [r, l, "--config", _cfg(t, 'BB:\n  where: "../{fault_name}"\n  pattern: [x]\n')],
                      3, "'../{fault_name}' escapes CS_ROOT"),
    "pattern escapes": (lambda r, l, t: [r, l, "--config", _cfg(t, 'BB:\n  where: "Runs"\n  pattern: ["../../*"]\n')],
                        3, "bad.yaml: BB.pattern[0]: '../../*' escapes CS_ROOT"),
    "unknown type": (lambda r, l, t: [r, l, "-t", "LF"], 3, "-t 'LF' is not a data type of sync_patterns.yaml"),
    "fault with no data": (lambda r, l, t: [r, _lst(t, "A 2\n# typo below\nAlpinK2T 3r\nGhost 1\n")], 3,
                           "bad_list.txt:3: fault 'AlpinK2T' has no data at all (nothing matched in Data/Sources/AlpinK2T, "
                           "Data/VMs/AlpinK2T, Runs/AlpinK2T); also without data: Ghost"),
    "fault with no data of the type asked": (
        lambda r, l, t: [r, l, "--config", _cfg(t, GOOD_TYPE + 'LF:\n  where: "Runs/{fault_name}"\n  pattern: ["*/LF/*.x"]\n'),
                         "-t", "LF"], 3, "fault 'A' has no data at all (nothing matched in Runs/A)"),
    "threads 0": (lambda r, l, t: [r, l, "--threads", "0"], 2, "--threads: must be at least 1"),
    "same output twice": (lambda r, l, t: [r, l, "--out_file", t / "x", "--stocktake_csv", t / "x"], 3,
                          "--out_file and --stocktake_csv are the same file"),
}


def _bytes(p: Path) -> Path:
    p.write_bytes(b"A 3\n\xff\xfe\x00bad\n")
    return p


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_one_line_no_traceback_nothing_written(make_tree, tmp_path, invoke, case):
    build, want_code, needle = BAD_INPUTS[case]
    root, lst = make_tree([FaultSpec("A", rels=2)])
    work = tmp_path / "work"
    code, out, err = invoke(build(root, lst, tmp_path), work)
    assert code == want_code, (out, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    if want_code != 2:  # (argparse prints its usage before the one line)
        assert len(lines) == 1, err
    assert needle.replace("{t}", str(tmp_path)) in lines[-1]
    assert not (work / "files_to_sync.yaml").exists() and not (work / "stocktake.csv").exists()


def test_debug_shows_the_traceback(make_tree, tmp_path, invoke):
    root, lst = make_tree([FaultSpec("A", rels=2)])
    code, out, err = invoke([root, tmp_path / "nolist.txt", "--debug"], tmp_path)
    assert code == 3
    assert "Traceback" in err and err.strip().splitlines()[-1].endswith("(give the path to list.txt)")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_permission_denied_list(make_tree, tmp_path, invoke):
    root, lst = make_tree([FaultSpec("A", rels=2)])
    lst.chmod(0)
    code, _, err = invoke([root, lst], tmp_path)
    assert code == 3 and "cannot read fault list" in err


def test_outputs_byte_for_byte(make_tree, tmp_path, invoke):
    """The exact text of both outputs for a tiny version: what the older readers parse."""
    root, lst = make_tree([FaultSpec("F", rels=2, median=False, perturbed=True, bb_size=10)])
    code, _, err = invoke([root, lst, "--out_file", tmp_path / "f.yaml", "--stocktake_csv", tmp_path / "s.csv"],
                          tmp_path)
    assert code == 0, err
    csv = (tmp_path / "s.csv").read_text()
    assert csv == (
        ",rel_nums,rel_start,BB_ok,num(BB_*/BB/Acc/BB.bin),OK(BB_*/BB/Acc/BB.bin),"
        "IM_ok,num(IM_*/IM_calc/**.csv),OK(IM_*/IM_calc/**.csv),"
        "Source_ok,num(Source_Srf/**.info),OK(Source_Srf/**.info),num(Source_Srf/**.csv),OK(Source_Srf/**.csv),"
        "num(Source_Sim_params/**.yaml),OK(Source_Sim_params/**.yaml),"
        "VM_ok,num(VM_vm_params.yaml),OK(VM_vm_params.yaml),num(VM_nzvm.cfg),OK(VM_nzvm.cfg),"
        "num(VM_$*_REL*.pertb.csv),OK(VM_$*_REL*.pertb.csv),SAMPLE_BB_ok,num(SAMPLE_BB),OK(SAMPLE_BB),"
        "median,unlisted_files\n"
        "F,2,1,True,2,True,True,2,True,True,2,True,2,True,2,True,True,1,True,1,True,2,True,True,1,True,False,0\n"
    )
    assert (tmp_path / "f.yaml").read_text() == f"""\
.:
  list.txt: {lst.stat().st_size}
  stocktake.csv: {len(csv)}
F:
  BB:
    Runs/F/F_REL01/BB/Acc/BB.bin: 10
    Runs/F/F_REL02/BB/Acc/BB.bin: 10
  IM:
    Runs/F/F_REL01/IM_calc/F_REL01.csv: 300
    Runs/F/F_REL02/IM_calc/F_REL02.csv: 300
  Source:
    Data/Sources/F/Srf/F_REL01.info: 120
    Data/Sources/F/Srf/F_REL02.info: 120
    Data/Sources/F/Srf/F_REL01.csv: 200
    Data/Sources/F/Srf/F_REL02.csv: 200
    Data/Sources/F/Sim_params/F_REL01.yaml: 80
    Data/Sources/F/Sim_params/F_REL02.yaml: 80
  VM:
    Data/VMs/F/vm_params.yaml: 90
    Data/VMs/F/nzvm.cfg: 70
    Data/VMs/F/F_REL01.pertb.csv: 150
    Data/VMs/F/F_REL02.pertb.csv: 150
  SAMPLE_BB:
    Runs/F/F_REL01/BB/Acc/BB.bin: 10
"""


def test_outputs_of_a_varied_version_are_what_pyyaml_and_pandas_write(make_tree, tmp_path, invoke):
    """Many faults, failed checks, skipped and unlisted realisations: the manifest is the text
    ``yaml.dump`` gives its document (the older scripts' writer), the CSV what pandas reads back."""
    specs = [FaultSpec(f"F{i}", rels=3 + i % 3, skip=1 if i % 4 == 1 else 0, median=i % 2 == 0, perturbed=i % 3 == 0,
                       bb_size=5 + i, extra_rels=2 if i == 2 else 0,
                       omit=[f"Runs/F{i}/F{i}_REL02/BB/Acc/BB.bin"] if i == 3 else [])
             for i in range(6)]
    root, lst = make_tree(specs)
    code, _, err = invoke([root, lst, "--out_file", tmp_path / "f.yaml", "--stocktake_csv", tmp_path / "s.csv"],
                          tmp_path)
    assert code == 4, err  # F3 lacks a BB file
    text = (tmp_path / "f.yaml").read_text()
    doc = yaml.safe_load(text)
    assert text == yaml.dump(doc, sort_keys=False, default_flow_style=False)
    assert list(doc) == [".", *[s.name for s in specs]]
    for s in specs:
        assert {t: sorted(v) for t, v in doc[s.name].items()} == {t: sorted(v) for t, v in expected_files(s).items()}
    csv = (tmp_path / "s.csv").read_text()
    assert pd.read_csv(tmp_path / "s.csv", index_col=0).to_csv() == csv
    assert [bool(v) for v in pd.read_csv(tmp_path / "s.csv", index_col=0)["BB_ok"]] == [i != 3 for i in range(6)]


@pytest.mark.browser
def test_html_page_of_the_stocktake_written_when_checks_fail(make_tree, tmp_path, invoke):
    from cs_sync.inputs.config import load_config
    from cs_sync.inputs.stocktake_csv import parse_stocktake_csv

    from browser import dump_dom
    from html_checks import Tags, assert_self_contained

    root, lst = make_tree([FaultSpec("A", rels=3, omit=["Runs/A/A_REL02/BB/Acc/BB.bin"]),
                           FaultSpec("B", rels=2, perturbed=True)])
    page = tmp_path / "out" / "stocktake.html"
    page.parent.mkdir()
    code, out, err = invoke([root, lst, "--out_file", tmp_path / "f.yaml", "--stocktake_csv", tmp_path / "s.csv",
                             "--html", page], tmp_path)
    assert code == 4, out + err
    assert f"wrote {page}" in out
    html = page.read_text()
    assert_self_contained(html)
    data = json.loads(Tags(html).data)
    assert data["version"] == root.name and data["ok"] is False
    # the page's stocktake and the CSV written beside it say the same, read back by the report's reader
    back = parse_stocktake_csv((tmp_path / "s.csv").read_text(), load_config(), "s.csv")
    assert [[(c["found"], c["expected"], c["ok"]) for c in r["cells"]] for r in back["rows"]] == \
        [[(c["found"], c["expected"], c["ok"]) for c in r["cells"]] for r in data["stocktake"]["rows"]]
    dom = dump_dom(page)
    tags = Tags(dom)
    states = [(a["data-state"]) for t, a in tags.tags if t == "td" and "data-state" in a]
    assert states == ["failed", "OK", "OK", "OK", "OK"] + ["OK"] * 5  # A's BB is missing a file
    bad = [a for t, a in tags.tags if t == "td" and a.get("class") == "bad"]
    assert len(bad) == 1 and "A BB */BB/Acc/BB.bin: found 3, expected 4; missing REL02" == bad[0]["title"]
    assert f"cs-sync-preprocess {root} {lst}" in dom
    assert "1 of 2 faults shown" in dump_dom(page, "problems=1")


def test_a_fifo_at_a_matched_path_is_not_listed_and_fails_the_stocktake(make_tree, tmp_path, invoke):
    root, lst = make_tree([FaultSpec("A", rels=3, omit=["Runs/A/A_REL02/BB/Acc/BB.bin"])])
    fifo = root / "Runs/A/A_REL02/BB/Acc/BB.bin"
    fifo.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(fifo)  # opening it would block for ever: it must never be opened
    code, out, err = invoke([root, lst, "--out-file", tmp_path / "f.yaml", "--stocktake-csv", tmp_path / "s.csv"],
                            tmp_path)
    assert code == 4, out + err
    assert "Traceback" not in err
    doc, df = load_outputs(tmp_path / "f.yaml", tmp_path / "s.csv")
    assert "Runs/A/A_REL02/BB/Acc/BB.bin" not in doc["A"]["BB"] and len(doc["A"]["BB"]) == 3
    assert not df.loc["A", "BB_ok"]
    assert f"{fifo} is a FIFO, not a regular file: not listed" in out


NOBODY = 65534


@pytest.fixture
def shared_dir():
    """A folder another user may enter (pytest's own temp folders are private to root)."""
    d = Path(tempfile.mkdtemp(prefix="cs_sync_shared_"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d)


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to run preprocess as another user")
def test_a_file_the_user_cannot_read_fails_the_stocktake_not_the_upload(shared_dir):
    """stat works on a file without read permission, so it used to be listed as OK and upload
    failed on it hours later; preprocess (run as the user who will upload) names it now."""
    root = shared_dir / "v22p12"
    lst = make_version(root, [FaultSpec("A", rels=2), FaultSpec("B", rels=2)])
    locked = root / "Runs/A/A_REL01/BB/Acc/BB.bin"  # root's, 0600: the uploading user cannot read it
    locked.chmod(0o600)
    (root / "Data/VMs/B/vm_params.yaml").chmod(0o600)  # a literal pattern: found with a stat, no listing
    out = shared_dir / "out"
    out.mkdir(mode=0o777)
    out.chmod(0o777)
    p = subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", str(CLI), str(root),
                        str(lst)], cwd=out, capture_output=True, text=True, timeout=300)
    assert p.returncode == 4, p.stdout + p.stderr
    assert "Traceback" not in p.stderr
    assert f"{locked} cannot be read (permission denied)" in p.stdout
    assert f"{root}/Data/VMs/B/vm_params.yaml cannot be read (permission denied)" in p.stdout
    doc, df = load_outputs(out / "files_to_sync.yaml", out / "stocktake.csv")
    assert "Runs/A/A_REL01/BB/Acc/BB.bin" not in doc["A"]["BB"] and len(doc["A"]["BB"]) == 2
    assert "Data/VMs/B/vm_params.yaml" not in doc["B"]["VM"]
    assert not df.loc["A", "BB_ok"] and not df.loc["B", "VM_ok"] and df.loc["A", "IM_ok"]


def test_a_renamed_realisation_and_a_fault_on_an_unmounted_disk_fail_in_text_csv_and_page(make_tree, tmp_path,
                                                                                        invoke):
    """Two trees users really have: A's REL02 folder renamed to A_REL02_old (the count still
    matched, so BB said OK without REL02), and B's run folder a link to a disk that is not
    mounted on this node (reported only as every file missing). Each is one line naming why,
    in the report, in stocktake.csv's OK columns and on the --html page."""
    from browser import dump_dom
    from html_checks import Tags

    root, lst = make_tree([FaultSpec("A", rels=3), FaultSpec("B", rels=2), FaultSpec("C", rels=2)])
    os.rename(root / "Runs/A/A_REL02", root / "Runs/A/A_REL02_old")
    shutil.rmtree(root / "Runs/B")
    (root / "Runs/B").symlink_to(tmp_path / "scratch2/B")
    page = tmp_path / "out" / "stocktake.html"
    page.parent.mkdir()
    code, out, err = invoke([root, lst, "--out_file", tmp_path / "f.yaml", "--stocktake_csv", tmp_path / "s.csv",
                             "--html", page], tmp_path)
    assert code == 4, out + err
    lines = [
        "A BB: */BB/Acc/BB.bin: found 4, expected 4; missing REL02; of no event: A_REL02_old/BB/Acc/BB.bin",
        f"B: {root}/Runs/B is a broken symbolic link (to {tmp_path}/scratch2/B): not listed "
        "(mount or restore its target, or remove the link)",
    ]
    for line in lines:
        assert f"FAIL  {line}\n" in out
    assert "stocktake failed for 2 of 3 faults (A, B)" in err
    doc, df = load_outputs(tmp_path / "f.yaml", tmp_path / "s.csv")
    assert not df.loc["A", "BB_ok"] and not df.loc["A", "OK(BB_*/BB/Acc/BB.bin)"] and df.loc["A", "IM_ok"]
    assert not df.loc["B", "BB_ok"] and df.loc["B", "num(BB_*/BB/Acc/BB.bin)"] == 0
    assert df.loc["C"].filter(like="_ok").all()
    assert doc["B"]["BB"] == {} and doc["B"]["Source"]
    dom = dump_dom(page)
    tags = Tags(dom)
    states = {a["data-state"] for t, a in tags.tags if t == "td" and "data-state" in a}
    assert "failed" in states
    for line in lines:
        assert html.escape(line, quote=False) in dom
