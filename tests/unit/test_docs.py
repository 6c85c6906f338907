"""The README and docs/ say what the code does: the exit-code table is ExitCode's, every
link between them points at a file and heading that exist, the set-up commands are two."""

from __future__ import annotations

import argparse
import itertools
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


# -- the --help of every entry point and docs/usage.md agree -----------------------------


def _parsers() -> dict[str, argparse.ArgumentParser]:
    """Every command a user can type, by its name, with its parser."""
    from cs_sync.cli import download, main, preprocess, upload

    out: dict[str, argparse.ArgumentParser] = {}

    def walk(name: str, parser: argparse.ArgumentParser) -> None:
        out[name] = parser
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub_name, sub in action.choices.items():
                    walk(f"{name} {sub_name}", sub)

    walk("cs-sync", main.build_parser())
    for module, name in ((preprocess, "cs-sync-preprocess"), (upload, "cs-sync-upload"),
                         (download, "cs-sync-download")):
        out[name] = module.build_parser()
    return out


def _code_blocks(text: str) -> list[list[str]]:
    blocks: list[list[str]] = []
    current: list[str] | None = None
    for line in text.splitlines():
        if line.startswith("```"):
            if current is None:
                current = []
            else:
                blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def _synopses() -> dict[str, set[str]]:
    """Options named in each command's synopsis block in docs/ (``cs-sync-upload CS_ROOT ... [--x]``)."""
    text = "\n".join(p.read_text() for p in (ROOT / "docs" / "usage.md", ROOT / "docs" / "legacy.md"))
    found: dict[str, set[str]] = {}
    for block in _code_blocks(text):
        for i, line in enumerate(block):
            m = re.match(r"(cs-sync(?:-\w+)?(?: [a-z]+)*) (?=[A-Z\[])", line)
            if not m or "[" not in line:
                continue
            body = line + "".join(nxt for nxt in itertools.takewhile(
                lambda s: s.startswith(" ") and s.strip().startswith("["), block[i + 1:]))
            found.setdefault(m.group(1), set()).update(
                o.replace("_", "-") for o in re.findall(r"--[\w-]+|(?<=\[)-\w\b", body))
    return found


def _options(parser: argparse.ArgumentParser) -> list[list[str]]:
    return [a.option_strings for a in parser._actions if a.option_strings and a.dest != "help"]


def test_every_option_of_every_command_is_in_its_synopsis_in_the_docs():
    synopses = _synopses()
    missing = []
    for name in ("cs-sync-preprocess", "cs-sync-upload", "cs-sync-download", "cs-sync status",
                 "cs-sync report", "cs-sync index", "cs-sync verify"):
        parser = _parsers()[name]
        assert name in synopses, f"docs/usage.md has no synopsis of {name}"
        for strings in _options(parser):
            if not any(s.replace("_", "-") in synopses[name] for s in strings):
                missing.append(f"{name} {strings[-1]}")
        known = {s.replace("_", "-") for strings in _options(parser) for s in strings}
        missing += [f"{name}: the synopsis names {o}, which the command does not take"
                    for o in sorted(synopses[name] - known)]
    assert not missing, missing


def test_slurm_options_of_its_own_are_in_the_docs():
    section = (ROOT / "docs" / "usage.md").read_text().split("## Running on a cluster", 1)[1]
    for kind in ("upload", "download", "index"):
        for strings in _options(_parsers()[f"cs-sync slurm {kind}"]):
            dashed = {s.replace("_", "-") for s in strings}
            assert any(d in section for d in dashed), f"cs-sync slurm {kind} {strings[-1]}: not in usage.md"


def test_help_texts_name_sections_that_exist():
    """A help that sends the reader to 'README, "X"' or 'docs/usage.md, "X"' names a real heading."""
    headings = {}
    for doc in DOCS:
        body = re.sub(r"```.*?```", "", doc.read_text(), flags=re.S)
        headings[doc.name] = {h.strip() for h in re.findall(r"^#+ (.+)$", body, re.M)}
    for name, parser in _parsers().items():
        text = parser.format_help()
        for doc, title in re.findall(r"(README|usage\.md)[^\"\n]{0,3}\s*\"([^\"]+)\"", text):
            file = "README.md" if doc == "README" else "usage.md"
            assert any(h == title or h.startswith(title + " ") for h in headings[file]), (
                f"{name} --help cites {doc}, \"{title}\": no such heading in {file}")


def test_upload_help_says_the_default_tmp_dir_as_the_readme_does(monkeypatch):
    """The default named in --help is the README's, whatever $CS_SYNC_TMP holds at the time."""
    from cs_sync.cli import upload

    monkeypatch.setenv("CS_SYNC_TMP", "/nesi/nobackup/me/cs_sync_tmp")
    text = "".join(upload.build_parser().format_help().split())  # argparse wraps at hyphens too
    assert "$TMPDIR/cs_sync-USER(or/tmp/cs_sync-USER)" in text
    assert "/nesi/nobackup/me/cs_sync-USER" not in text
    assert "148Mi," not in text  # sizes as the rest of the output writes them (148.0 MiB)
