"""The README and docs/ say what the code does: the exit-code table is ExitCode's, every
link between them points at a file and heading that exist, the set-up commands are two."""

from __future__ import annotations

import re
from pathlib import Path

from cs_sync.core.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    body = re.sub(r"```.*?```", "", path.read_text(), flags=re.S)  # '#' lines in code blocks are not headings
    return {_slug(m) for m in re.findall(r"^#+ (.+)$", body, re.M)}


def test_readme_exit_code_table_is_the_exit_code_enum():
    text = (ROOT / "README.md").read_text()
    table = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| (\d+) \| (.+) \|$", table, re.M)
    assert [int(c) for c, _ in rows] == [int(c) for c in ExitCode]
    assert "another run holds the lock" in dict(rows)[str(int(ExitCode.LOCKED))]


def test_links_between_the_docs_point_at_files_and_headings_that_exist():
    for doc in DOCS:
        for target, anchor in re.findall(r"\]\(((?!https?:)[^)#\s]*)(?:#([^)\s]+))?\)", doc.read_text()):
            path = (doc.parent / target).resolve() if target else doc
            assert path.exists(), f"{doc.name}: link to missing {target}"
            if anchor and path.suffix == ".md":
                assert anchor in _anchors(path), f"{doc.name}: no heading #{anchor} in {path.name}"


def test_two_set_up_commands_for_developers():
    text = (ROOT / "README.md").read_text()
    makes = sorted(set(re.findall(r"^make (\w+)", text, re.M)))
    assert makes == ["demo", "test"]
    assert len(text.splitlines()) < 500  # a first read, not the reference
