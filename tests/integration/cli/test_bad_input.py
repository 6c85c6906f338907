"""What users really get wrong, run through the installed entry points: hand-edited or foreign
manifests, configs with the wrong types, list.txt typos and encodings, version names that are
paths, blank remotes, output paths that are folders or inputs, nonsense option values.

Each case expects exactly one error line on stderr naming the file, line or value (no
traceback), the documented exit code, nothing created in the working folder, and the
local-folder remote unchanged. One small version is made and uploaded once for the module.
(Bad list.txt lines and configs already covered one by one are in
tests/integration/preprocess/test_preprocess_cli.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from cybershake_tree import FaultSpec, make_version
from dl_helpers import assert_one_line_error, script

FAULTS = [FaultSpec("AlpineK2T", rels=2, bb_size=3_000), FaultSpec("Hope1888", rels=2, median=False, bb_size=3_000)]
BB = "Runs/AlpineK2T/AlpineK2T_REL01/BB/Acc/BB.bin"
TYPE_BB = 'BB:\n  where: "Runs/{fault_name}"\n  pattern: ["*/BB/Acc/BB.bin"]\n'


@dataclass(frozen=True)
class Ctx:
    root: Path  # CS_ROOT (v1)
    lst: Path  # its list.txt
    man: Path  # the files_to_sync.yaml preprocess wrote for it
    remote: Path  # a local-folder remote holding v1, uploaded by cs-sync-upload
    inputs: Path  # where cases write their bad files
    cwd: Path  # the (empty) working folder of the run
    scratch: Path  # --tmp_dir of upload runs (outside cwd)

    def write(self, name: str, text: str | bytes) -> Path:
        p = self.inputs / name
        p.write_bytes(text if isinstance(text, bytes) else text.encode())
        return p

    def manifest(self, name: str, text: str, meta: str | None = None) -> Path:
        """A hand-edited manifest (with a sidecar of its own when ``meta`` is given)."""
        p = self.write(f"{name}.yaml", text)
        if meta is not None:
            self.write(f"{name}.meta.json", meta)
        return p


@dataclass(frozen=True)
class Case:
    cmd: str
    args: Callable[[Ctx], list]
    code: int
    needles: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)


def up(*extra) -> Callable[[Ctx], list]:
    """cs-sync-upload of v1 and its manifest to the module's remote, a real run unless --dry-run is given."""
    return lambda c: [c.root, c.man, "--remote", c.remote, "--tmp_dir", c.scratch, *extra]


def up_manifest(build: Callable[[Ctx], Path], *extra) -> Callable[[Ctx], list]:
    return lambda c: [c.root, build(c), "--remote", c.remote, "--tmp_dir", c.scratch, *extra]


def pp(*extra) -> Callable[[Ctx], list]:
    return lambda c: [c.root, c.lst, *[e(c) if callable(e) else e for e in extra]]


def pp_config(text: str) -> Callable[[Ctx], list]:
    return lambda c: [c.root, c.lst, "--config", c.write("sync_patterns.yaml", text)]


def pp_list(text: str | bytes) -> Callable[[Ctx], list]:
    return lambda c: [c.root, c.write("list.txt", text)]


def dl(version: str, *extra) -> Callable[[Ctx], list]:
    return lambda c: [version, "--remote", c.remote, "--download_dir", c.cwd / "dl", *extra]


def sub(command: str, *extra) -> Callable[[Ctx], list]:
    """A ``cs-sync`` subcommand on the module's remote (callables in ``extra`` get the context)."""
    return lambda c: [command, *[e(c) if callable(e) else e for e in extra], "--remote", c.remote]


def manifest_of(fault: str, dtype: str, path: str, size: int | str = 3000) -> str:
    return f".:\n  list.txt: 10\n{fault}:\n  {dtype}:\n    {path}: {size}\n"


CASES: dict[str, Case] = {
    # -- files_to_sync.yaml: hand-edited, foreign, not a manifest ----------------------------------
    "manifest '.' size not a number": Case(
        "cs-sync-upload", up_manifest(lambda c: c.manifest("m", ".:\n  list.txt: abc\n")), 3,
        ("m.yaml: .: size of 'list.txt' is 'abc', not a byte count",)),
    "manifest path outside CS_ROOT": Case(
        "cs-sync-upload", up_manifest(lambda c: c.manifest("m", manifest_of("AlpineK2T", "BB", "/etc/hostname"))), 3,
        ("m.yaml: AlpineK2T.BB: '/etc/hostname' is not under CS_ROOT",)),
    "manifest path with ..": Case(
        "cs-sync-upload", up_manifest(lambda c: c.manifest("m", manifest_of("AlpineK2T", "BB", "../v1/" + BB))), 3,
        (f"m.yaml: AlpineK2T.BB: '../v1/{BB}' leaves CS_ROOT",)),
    "manifest fault name with ..": Case(
        "cs-sync-upload", up_manifest(lambda c: c.manifest("m", manifest_of("../evil", "BB", BB))), 3,
        ("m.yaml: '../evil' is not a usable fault name",)),
    "manifest type name with /": Case(
        "cs-sync-upload", up_manifest(lambda c: c.manifest("m", manifest_of("AlpineK2T", "B/B", BB))), 3,
        ("m.yaml: AlpineK2T: 'B/B' is not a usable data type name",)),
    "manifest sidecar not an object": Case(
        "cs-sync-upload", up_manifest(lambda c: c.manifest("m", manifest_of("AlpineK2T", "BB", BB), "[1, 2]")), 3,
        ("m.meta.json: manifest sidecar is not a JSON object", "re-run cs-sync-preprocess")),
    "manifest sidecar field of the wrong type": Case(
        "cs-sync-upload",
        up_manifest(lambda c: c.manifest("m", manifest_of("AlpineK2T", "BB", BB), '{"mtime_ns": [1]}')), 3,
        ("m.meta.json: mtime_ns is [1], not a dict",)),
    "manifest is list.txt": Case("cs-sync-upload", up_manifest(lambda c: c.lst, "--dry-run"), 3,
                                 ("list.txt: expected a mapping of faults, got str",)),
    "manifest empty": Case("cs-sync-upload", up_manifest(lambda c: c.manifest("m", "")), 3,
                           ("m.yaml: expected a mapping of faults",)),
    "manifest not text": Case("cs-sync-upload", up_manifest(lambda c: c.write("m.yaml", b"\x00\xff\xfe junk")), 3,
                              ("m.yaml: cannot read manifest: not UTF-8 text", "save it as plain UTF-8 text")),
    "manifest is a folder": Case("cs-sync-upload", up_manifest(lambda c: c.inputs), 3, ("cannot read manifest",)),
    "CS_ROOT missing": Case("cs-sync-upload", lambda c: [c.root.parent / "elsewhere" / "v1", c.man, "--remote", c.remote,
                                                         "--tmp_dir", c.scratch], 3,
                            ("CS_ROOT", "elsewhere/v1 does not exist",)),
    # -- upload options ---------------------------------------------------------------------------
    "--max-size 10QB": Case("cs-sync-upload", up("--max-size", "10QB", "--dry-run"), 3, ("--max-size: cannot read size '10QB'",)),
    "--max-size 0": Case("cs-sync-upload", up("--max-size", "0", "--dry-run"), 3, ("--max-size: '0' must be more than 0",)),
    "--max-size -1": Case("cs-sync-upload", up("--max-size=-1", "--dry-run"), 3, ("--max-size: cannot read size '-1'",)),
    "--hard-limit abc": Case("cs-sync-upload", up("--hard-limit", "abc", "--dry-run"), 3, ("--hard-limit: cannot read",)),
    "--transfers 0": Case("cs-sync-upload", up("--transfers", "0"), 2, ("--transfers: must be at least 1",)),
    "--progress-interval 0": Case("cs-sync-upload", up("--progress-interval", "0"), 2,
                                  ("--progress-interval", "above 0, got '0'")),
    "--progress-interval inf": Case("cs-sync-upload", up("--progress-interval", "inf"), 2,
                                    ("--progress-interval", "above 0, got 'inf'")),
    "--overwrite with --update": Case("cs-sync-upload", up("--overwrite", "--update"), 2, ("choose one",)),
    "--remote empty (upload)": Case("cs-sync-upload", lambda c: [c.root, c.man, "--remote", "", "--tmp_dir", c.scratch],
                                    3, ("--remote '' is empty",)),
    "CS_SYNC_REMOTE empty (upload)": Case("cs-sync-upload", lambda c: [c.root, c.man, "--tmp_dir", c.scratch], 3,
                                          ("$CS_SYNC_REMOTE is set but empty", "unset it"), env={"CS_SYNC_REMOTE": ""}),
    # -- list.txt ----------------------------------------------------------------------------------
    "list count far too big": Case("cs-sync-preprocess", pp_list("AlpineK2T 99999999999999999999\n"), 3,
                                   ("list.txt:1: realisation count '99999999999999999999' is more than 9999",)),
    "list in UTF-16": Case("cs-sync-preprocess", pp_list("AlpineK2T 2r\n".encode("utf-16")), 3,
                           ("list.txt: cannot read fault list: not UTF-8 text (byte 0xff at offset 0)",)),
    "list with a comma": Case("cs-sync-preprocess", pp_list("AlpineK2T,2r\n"), 3,
                              ("list.txt:1: expected 'FAULT COUNT [SKIP]' but got 'AlpineK2T,2r'",)),
    # -- sync_patterns.yaml: the wrong types, odd templates -------------------------------------------
    "config where a list": Case("cs-sync-preprocess", pp_config('BB:\n  where: ["Runs/{fault_name}"]\n  pattern: [x]\n'),
                                3, ("BB.where: expected a string, got ['Runs/{fault_name}']",)),
    "config pattern a number": Case("cs-sync-preprocess", pp_config('BB:\n  where: "Runs/{fault_name}"\n  pattern: [5]\n'),
                                    3, ("BB.pattern[0]: pattern must be a non-empty string, got 5",)),
    "config pack_into a list": Case("cs-sync-preprocess", pp_config(TYPE_BB + 'IM:\n  where: "Runs/{fault_name}"\n'
                                                                    '  pattern: ["*/IM_calc/*.csv"]\n  pack_into: [BB]\n'),
                                    3, ("IM.pack_into: expected a string, got ['BB']",)),
    "config optional not a bool": Case(
        "cs-sync-preprocess",
        pp_config('BB:\n  where: "Runs/{fault_name}"\n  pattern: [{glob: "*/BB/Acc/BB.bin", optional: "no"}]\n'),
        3, ("BB.pattern[0]: optional: 'no' is not true or false",)),
    "config type name a number": Case("cs-sync-preprocess", pp_config(TYPE_BB.replace("BB:", "1:", 1)), 3,
                                      ("1: a data type name must start with a letter",)),
    "config type given twice": Case("cs-sync-preprocess", pp_config(TYPE_BB + TYPE_BB.replace("Runs", "Data")), 3,
                                    ("sync_patterns.yaml: line 4: malformed YAML: 'BB' is given twice (first on line 1)",)),
    "config where without {fault_name}": Case(
        "cs-sync-preprocess", pp_config('BB:\n  where: "Runs"\n  pattern: ["*/*/BB/Acc/BB.bin"]\n'), 3,
        ("BB.pattern[0]: neither 'where' ('Runs') nor '*/*/BB/Acc/BB.bin' names {fault_name}",
         "every fault would take the same files")),
    "config {fault}": Case("cs-sync-preprocess", pp_config(TYPE_BB.replace("{fault_name}", "{fault}")), 3,
                           ("BB.where: unknown placeholder {fault}",)),
    "config {fault_name!r}": Case("cs-sync-preprocess", pp_config(TYPE_BB.replace("{fault_name}", "{fault_name!r}")), 3,
                                  ("BB.where: {fault_name!r} in 'Runs/{fault_name!r}' changes the fault name",)),
    "config {fault_name:>9}": Case("cs-sync-preprocess", pp_config(TYPE_BB.replace("{fault_name}", "{fault_name:>9}")),
                                   3, ("BB.where: {fault_name:>9} in",)),
    "config member leaves the TAR folder": Case(
        "cs-sync-preprocess", pp_config(TYPE_BB + '  member: "../{event}_{name}"\n'), 3,
        ("BB.member: '../{event}_{name}' does not make a plain file name",)),
    # -- preprocess outputs ------------------------------------------------------------------------
    "--out_file is list.txt": Case("cs-sync-preprocess", pp("--out_file", lambda c: c.lst), 3,
                                   ("--out_file", "list.txt is the FAULT_LIST",)),
    "--stocktake_csv is --config": Case(
        "cs-sync-preprocess",
        lambda c: [c.root, c.lst, "--config", c.write("cfg.yaml", TYPE_BB), "--stocktake_csv", c.inputs / "cfg.yaml"], 3,
        ("--stocktake_csv", "cfg.yaml is the --config",)),
    "--out_file a folder": Case("cs-sync-preprocess", pp("--out_file", lambda c: c.inputs), 3,
                                ("--out_file", "is a folder",)),
    "--html a folder": Case("cs-sync-preprocess", pp("--html", lambda c: c.inputs), 3, ("--html", "is a folder",)),
    "--html is list.txt": Case("cs-sync-preprocess", pp("--html", lambda c: c.lst), 3, ("list.txt is the FAULT_LIST",)),
    "--threads 0": Case("cs-sync-preprocess", pp("--threads", "0"), 2, ("--threads: must be at least 1",)),
    # -- CS_VER that is not one folder name -----------------------------------------------------------
    **{f"{cmd} CS_VER {v!r}": Case(script_name, build, 3, (f"CS_VER {v!r} is not a version name",))
       for v in ("v1/AlpineK2T", "..", "", "/")
       for cmd, script_name, build in (
           ("download", "cs-sync-download", dl(v)),
           ("status", "cs-sync", sub("status", v)),
           ("verify", "cs-sync", sub("verify", v)),
           ("index", "cs-sync", sub("index", v, "--dry_run")),
           ("report", "cs-sync", sub("report", v, "-o", lambda c: c.cwd / "r.html")),
       )},
    "slurm download CS_VER with a slash": Case(
        "cs-sync", lambda c: ["slurm", "download", "v1/AlpineK2T", "--remote", c.remote, "--tasks", "2", "--dry_run",
                              "--run_dir", c.cwd / "run"], 3, ("CS_VER 'v1/AlpineK2T' is not a version name",)),
    # -- remotes -----------------------------------------------------------------------------------
    "--remote empty (status)": Case("cs-sync", lambda c: ["status", "v1", "--remote", ""], 3, ("--remote '' is empty",)),
    "CS_SYNC_REMOTE blank (download)": Case("cs-sync-download", lambda c: ["v1", "--download_dir", c.cwd / "dl"], 3,
                                            ("$CS_SYNC_REMOTE is set but empty",), env={"CS_SYNC_REMOTE": "  "}),
    "slurm upload of a bad manifest": Case(
        "cs-sync", lambda c: ["slurm", "upload", c.root, c.manifest("m", manifest_of("../evil", "BB", BB)),
                              "--remote", c.remote, "--tasks", "2", "--dry_run", "--run_dir", c.cwd / "run"], 3,
        ("m.yaml: '../evil' is not a usable fault name",)),
    "slurm --remote empty": Case(
        "cs-sync", lambda c: ["slurm", "download", "v1", "--remote", "", "--tasks", "2", "--dry_run",
                              "--run_dir", c.cwd / "run"], 3, ("--remote '' is empty",)),
    "unknown remote": Case("cs-sync-download", lambda c: ["v1", "--remote", "nosuchremote:x", "--download_dir",
                                                          c.cwd / "dl"], 6, ("unknown rclone remote nosuchremote",)),
    "unknown version": Case("cs-sync-download", dl("v9"), 6, ("version 'v9' not found", "versions there: v1")),
    # -- download and status options -----------------------------------------------------------------
    "--rel abc": Case("cs-sync-download", dl("v1", "--rel", "abc"), 3, ("--rel 'abc' is not a realisation",)),
    "--rel 1.5": Case("cs-sync-download", dl("v1", "--rel", "1.5"), 3, ("--rel '1.5' is not a realisation",)),
    "--inc_fault of no fault": Case("cs-sync-download", dl("v1", "--inc_fault", "AlpinK2T"), 3,
                                    ("nothing selected: --inc_fault AlpinK2T: no such fault in v1",)),
    "--rel of no realisation": Case("cs-sync-download", dl("v1", "--rel", "9", "-t", "BB"), 3,
                                    ("nothing selected: --rel 9: matches no member",)),
    "--member matching nothing": Case("cs-sync-download", dl("v1", "--member", "*.nope"), 3,
                                      ("nothing selected: --member *.nope",)),
    "--streams 0": Case("cs-sync-download", dl("v1", "--streams", "0"), 2, ("--streams: must be at least 1",)),
    "--stocktake a number too big": Case(
        "cs-sync", sub("status", "v1", "--stocktake", lambda c: c.write(
            "st.csv", "fault,rel_nums,num(BB_*/BB/Acc/BB.bin)\nAlpineK2T,1e999,3\n")), 3,
        ("st.csv: line 2: rel_nums is '1e999', not a number",)),
    "--manifest with a bad size (status)": Case(
        "cs-sync", sub("status", "v1", "--manifest", lambda c: c.manifest("m", ".:\n  list.txt: abc\n")), 3,
        ("m.yaml: .: size of 'list.txt' is 'abc'",)),
    "report -o a folder": Case("cs-sync", sub("report", "v1", "-o", lambda c: c.inputs), 9,
                               ("is a folder, not a file",)),
}


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder under ``folder`` with its size and mtime: what "unchanged" means."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(folder):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            out[str(p.relative_to(folder))] = (st.st_size if p.is_file() else 0, st.st_mtime_ns)
    return out


def _run(cmd: str, args: list, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("CS_SYNC_REMOTE", None)
    full.update(env)
    return subprocess.run([script(cmd), *map(str, args)], capture_output=True, text=True, cwd=cwd, env=full,
                          timeout=120)


@pytest.fixture(scope="module")
def version(tmp_path_factory) -> tuple[Path, Path, Path, Path]:
    """(CS_ROOT, list.txt, manifest, remote): v1 preprocessed and uploaded by the real commands."""
    base = tmp_path_factory.mktemp("bad_input")
    root = base / "v1"
    lst = make_version(root, FAULTS)
    man = base / "files_to_sync.yaml"
    for cmd, args in (("cs-sync-preprocess", [root, lst, "--out_file", man, "--stocktake_csv", base / "stocktake.csv"]),
                      ("cs-sync-upload", [root, man, "--remote", base / "remote", "--tmp_dir", base / "scratch"])):
        p = _run(cmd, args, base, {})
        assert p.returncode == 0, p.stdout + p.stderr
    return root, lst, man, base / "remote"


@pytest.fixture
def ctx(version, tmp_path) -> Ctx:
    root, lst, man, remote = version
    for d in ("inputs", "cwd"):
        (tmp_path / d).mkdir()
    return Ctx(root, lst, man, remote, tmp_path / "inputs", tmp_path / "cwd", tmp_path / "scratch")


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_one_line_its_exit_code_and_changes_nothing(ctx, case):
    c = CASES[case]
    args = c.args(ctx)  # (writes the case's bad files)
    remote_before, inputs_before = _snapshot(ctx.remote), _snapshot(ctx.inputs)
    tree_before, list_before = _snapshot(ctx.root), ctx.lst.read_bytes()
    p = _run(c.cmd, args, ctx.cwd, c.env)
    assert p.returncode == c.code, p.stdout + p.stderr
    assert_one_line_error(p.stderr, *c.needles)
    said = [ln for ln in p.stderr.splitlines() if ln.strip() and not ln.startswith(("usage:", " "))]
    assert len(said) == 1, p.stderr  # the error line alone: no warning before it (argparse's usage aside)
    assert sorted(os.listdir(ctx.cwd)) == [], "created in the working folder"
    assert _snapshot(ctx.remote) == remote_before, "the remote changed"
    assert _snapshot(ctx.inputs) == inputs_before and _snapshot(ctx.root) == tree_before
    assert ctx.lst.read_bytes() == list_before


def test_debug_shows_the_traceback_of_a_bad_input(ctx):
    p = _run("cs-sync-upload", up_manifest(lambda c: c.manifest("m", ".:\n  list.txt: abc\n"), "--debug")(ctx),
             ctx.cwd, {})
    assert p.returncode == 3, p.stderr
    assert "Traceback" in p.stderr and "ManifestError" in p.stderr
    assert p.stderr.strip().splitlines()[-1].startswith("cs-sync-upload: error: ")


# -- list.txt spellings that are the same list ------------------------------------------------------

SAME_LIST = {
    "tabs": "AlpineK2T\t2r\nHope1888\t2\n",
    "CRLF line ends": "AlpineK2T 2r\r\nHope1888 2r\r\n",
    "byte-order mark": "\ufeffAlpineK2T 2r\nHope1888 2r\n",
    "comments and blank lines": "# faults\n\nAlpineK2T 2r   # the first\n  Hope1888   2r  \n# Nope 3r\n",
    "no newline at the end": "AlpineK2T 2r\nHope1888 2r",
}


@pytest.mark.parametrize("spelling", list(SAME_LIST))
def test_list_spellings_give_the_same_manifest(version, tmp_path, spelling):
    root, _, man, _ = version
    lst = tmp_path / "list.txt"
    lst.write_bytes(SAME_LIST[spelling].encode("utf-8"))
    out = tmp_path / "m.yaml"
    p = _run("cs-sync-preprocess", [root, lst, "--out_file", out, "--stocktake_csv", tmp_path / "s.csv"], tmp_path, {})
    assert p.returncode == 0, p.stdout + p.stderr
    # the fault sections are the same; '.' lists this list.txt's own size
    assert out.read_text().split("\nAlpineK2T:", 1)[1] == man.read_text().split("\nAlpineK2T:", 1)[1]
    assert list(json.loads(out.with_name("m.meta.json").read_text())["mtime_ns"]) == \
        list(json.loads(man.with_name("files_to_sync.meta.json").read_text())["mtime_ns"])
