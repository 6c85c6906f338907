"""The rules the layout makes visible, read from the imports with ``ast``.

Each room may import only the rooms its ``__init__`` docstring names; the engine
never imports the display (ui/), the command line (cli/), rich, tqdm or jinja2; only
``remote/rclone.py`` starts processes for rclone and only ``slurm/client.py`` runs
Slurm commands; pandas is imported only where the stocktake CSV is written.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[2] / "cs_sync"

ENGINE = {"core", "inputs", "archive", "remote", "preprocess", "upload", "download", "index", "verify", "slurm",
          "status"}
ALLOWED: dict[str, set[str]] = {
    "core": {"core"},
    "inputs": {"core", "inputs"},
    "archive": {"core", "archive"},
    "remote": {"core", "archive", "remote"},
    "preprocess": {"core", "inputs", "preprocess"},
    "upload": {"core", "inputs", "archive", "remote", "upload"},
    "download": {"core", "inputs", "archive", "remote", "index", "download"},
    "index": {"core", "inputs", "archive", "remote", "index"},
    "verify": {"core", "inputs", "archive", "remote", "index", "verify"},
    "slurm": {"core", "inputs", "remote", "upload", "download", "index", "status", "slurm"},
    "status": {"core", "inputs", "archive", "remote"},
    "ui": ENGINE | {"ui"},
    "cli": ENGINE | {"ui", "cli"},
}
DISPLAY_LIBS = {"rich", "tqdm", "jinja2"}
PROCESS_MODULES = {"remote/rclone.py", "slurm/client.py"}
PANDAS_MODULES = {"preprocess/stocktake.py"}
PROCESS_CALLS = {"system", "popen", "execv", "execvp", "execve", "spawnv", "spawnvp", "posix_spawn", "posix_spawnp"}


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py"))


def _room(rel: str) -> str | None:
    parts = rel.split("/")
    if len(parts) == 1:
        return parts[0][:-3] if parts[0] != "__init__.py" else None
    return parts[0]


def _imports(path: Path, rel: str) -> list[tuple[str, int]]:
    """Absolute dotted names imported by the module (relative imports resolved)."""
    tree = ast.parse(path.read_text())
    pkg = ["cs_sync", *rel.split("/")[:-1]]
    typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                   and isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING"
                   for stmt in block.body for n in ast.walk(stmt)}
    out = []
    for node in ast.walk(tree):
        if id(node) in typing_only:  # annotations only: nothing is loaded at run time
            continue
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[: len(pkg) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((mod, node.lineno))
            if mod == "cs_sync":  # from cs_sync import x: x may be a room
                out += [(f"cs_sync.{a.name}", node.lineno) for a in node.names if a.name != "__version__"]
    return out


def _rel(path: Path) -> str:
    return path.relative_to(PKG).as_posix()


def test_every_room_says_what_it_may_import():
    for room in ALLOWED:
        init = PKG / room / "__init__.py"
        if room == "status":
            continue
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        assert "May import" in doc, f"{init}: the docstring must say what the room may import"


def _violations(path: Path, rel: str) -> list[str]:
    room = _room(rel)
    if room is None:
        return []
    bad = []
    for name, line in _imports(path, rel):
        top = name.split(".")[0]
        if top == "cs_sync" and "." in name:
            target = name.split(".")[1]
            if target in ALLOWED and target not in ALLOWED[room]:
                bad.append(f"{rel}:{line} imports {name} ({room} may import {sorted(ALLOWED[room])})")
        if room in ENGINE and top in DISPLAY_LIBS:
            bad.append(f"{rel}:{line} imports {top}: the engine never imports display libraries")
        if top == "pandas" and rel not in PANDAS_MODULES:
            bad.append(f"{rel}:{line} imports pandas: only the stocktake CSV writer may")
        if top in ("subprocess", "pty", "multiprocessing") and rel not in PROCESS_MODULES:
            bad.append(f"{rel}:{line} imports {top}: only {sorted(PROCESS_MODULES)} start processes")
    return bad


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_rooms_import_only_what_they_may(path):
    bad = _violations(path, _rel(path))
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("path", _modules(), ids=_rel)
def test_no_process_started_outside_the_two_runners(path):
    rel = _rel(path)
    if rel in PROCESS_MODULES:
        return
    tree = ast.parse(path.read_text())
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
             and isinstance(n.func.value, ast.Name) and n.func.value.id == "os" and n.func.attr in PROCESS_CALLS]
    assert not calls, f"{rel}:{calls[0].lineno} starts a process (os.{calls[0].func.attr})"


def test_the_rules_catch_violations(tmp_path):
    """The checker itself: core importing ui, rich and subprocess, a relative import of cli."""
    fake = tmp_path / "probe.py"
    fake.write_text("from cs_sync.ui import status_table\nimport rich\nimport subprocess\nfrom ..cli import main\n")
    bad = _violations(fake, "core/probe.py")
    assert [b.split(" imports ")[1].split(" ")[0].rstrip(":") for b in bad] == ["cs_sync.ui", "rich", "subprocess", "cs_sync.cli"]
    assert [b.split(" imports ")[1].split(":")[0] for b in _violations(fake, "cli/probe.py")] == ["subprocess"]
