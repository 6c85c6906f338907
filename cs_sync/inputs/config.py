"""Load ``sync_patterns.yaml``: which files make up each data type of a fault.

Today's format (``where`` + a list of glob ``pattern`` strings, ``$`` marking an
optional pattern) is accepted unchanged. Optional keys, all new:

* pattern entries may be mappings: ``{glob: "...", expect: 1|rels|events|N, optional: true}``
* ``pack_into: Source`` -- this type's files go into the TAR of another type;
* ``sample_of: BB`` -- this type is one file set per fault taken from another type
  (the median event's, else the first realisation's); it needs no ``where``/``pattern``;
* ``member: "{event}_{name}"`` -- how files are named inside the TAR.

A file that uses none of ``pack_into``/``sample_of`` behaves as the older scripts
did: VM is packed with Source, and SAMPLE_BB is a sample of BB.
"""

from __future__ import annotations

import posixpath
import re
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from cs_sync.core.errors import ConfigError
from cs_sync.core.naming import match_type_name
from cs_sync.core.safe_names import is_flat_name
from cs_sync.inputs.text_file import read_text_input

OPTIONAL_MARKER = "$"
PLACEHOLDERS = {"fault_name"}
EXPECT_ONE = "one"
EXPECT_RELS = "rels"
EXPECT_EVENTS = "events"
_WILDCARDS = set("*?[")
DEFAULT_CONFIG_NAME = "sync_patterns.yaml"


@dataclass(frozen=True)
class Pattern:
    """One glob of a data type, relative to the type's ``where``."""

    text: str  # as written in the YAML (with '$' if optional): used for column names
    glob: str  # '$' removed, '{fault_name}' still in place
    optional: bool
    expect: str | int  # EXPECT_ONE / EXPECT_RELS / EXPECT_EVENTS or a fixed count

    @property
    def has_wildcard(self) -> bool:
        return any(c in _WILDCARDS for c in self.glob)

    def for_fault(self, fault: str) -> str:
        return self.glob.format(fault_name=fault)

    def expected(self, n_rels: int, has_median: bool) -> int:
        """How many files this pattern must find for a fault."""
        if isinstance(self.expect, int):
            return self.expect
        if self.expect == EXPECT_ONE:
            return 1
        if self.expect == EXPECT_RELS:
            return n_rels
        return n_rels + (1 if has_median else 0)

    @property
    def label(self) -> str:
        """Fault-independent name for stocktake columns, as the older scripts made it:
        the text as written (``$`` kept) with ``{fault_name}`` -> ``*``:
        ``*/BB/Acc/BB.bin``, ``$*_REL*.pertb.csv``."""
        return self.text.replace("{fault_name}", "*")


@dataclass(frozen=True)
class DataType:
    name: str
    where: str | None  # with '{fault_name}'; None for sample types
    patterns: tuple[Pattern, ...] = ()
    pack_into: str | None = None
    sample_of: str | None = None
    member: str | None = None

    def where_for(self, fault: str) -> str:
        assert self.where is not None
        return self.where.format(fault_name=fault)


@dataclass(frozen=True)
class SyncConfig:
    types: dict[str, DataType]
    source: str = "<built-in>"
    order: tuple[str, ...] = field(default=())

    def names(self) -> list[str]:
        return list(self.order or self.types)

    def scanned_types(self) -> list[DataType]:
        """Types that have files of their own to find (not samples)."""
        return [t for t in (self.types[n] for n in self.names()) if t.sample_of is None]

    def sample_types(self) -> list[DataType]:
        return [t for t in (self.types[n] for n in self.names()) if t.sample_of is not None]

    def set_types(self) -> list[str]:
        """Types that become TAR sets of their own (neither packed into another nor samples)."""
        return [t.name for t in self.scanned_types() if t.pack_into is None]

    def host_of(self, name: str) -> str:
        """The type whose TAR holds ``name``'s files."""
        t = self.types[name]
        return t.pack_into or t.name

    def packed_with(self, host: str) -> list[str]:
        """``host`` and every type packed into it, host first."""
        return [host] + [t.name for t in self.scanned_types() if t.pack_into == host]

    def check_types(self, selected: list[str] | None, *, option: str = "-t") -> list[str]:
        """Validate a ``-t`` selection against this config; all types when empty."""
        if not selected:
            return self.names()
        names = self.names()
        matched = [match_type_name(s, names) for s in selected]
        unknown = [s for s, m in zip(selected, matched) if m is None]
        if unknown:
            raise ConfigError(
                f"{option} {unknown[0]!r} is not a data type of {self.source}",
                hint=f"choose from {', '.join(names)}",
            )
        return list(dict.fromkeys(m for m in matched if m is not None))


def _fail(source: str, where: str, msg: str, hint: str | None = None) -> ConfigError:
    return ConfigError(f"{source}: {where}: {msg}", hint=hint)


def _check_template(source: str, where: str, text: str, *, last_is_file: bool = False) -> None:
    try:
        fields = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(text) if f is not None]
    except ValueError as exc:
        raise _fail(source, where, f"cannot read {text!r}: {exc}") from None
    for f, spec, conv in fields:
        if f not in PLACEHOLDERS:
            raise _fail(
                source, where, f"unknown placeholder {{{f}}} in {text!r}", hint="the only placeholder is {fault_name}"
            )
        if spec or conv:
            shown = "{" + f + (f"!{conv}" if conv else "") + (f":{spec}" if spec else "") + "}"
            raise _fail(source, where, f"{shown} in {text!r} changes the fault name", hint="write {fault_name} alone")
    probe = text.format(fault_name="F")
    if probe.startswith("/") or ".." in probe.split("/"):
        raise _fail(source, where, f"{text!r} escapes CS_ROOT", hint="use paths relative to CS_ROOT without '..'")
    if posixpath.normpath(probe).startswith(".."):
        raise _fail(source, where, f"{text!r} escapes CS_ROOT")
    folders = [s for s in probe.split("/") if s]
    if last_is_file:
        folders = folders[:-1]
    hidden = [s for s in folders if s.startswith("_")]
    if hidden:
        raise _fail(
            source, where, f"folder {hidden[0]!r} in {text!r} starts with '_'",
            hint="folders starting with '_' are never selected; rename the folder",
        )


def _parse_expect(source: str, where: str, value: Any) -> str | int:
    if isinstance(value, bool):
        raise _fail(source, where, f"expect: {value!r} is not valid", hint="use 1, a number, rels or events")
    if isinstance(value, int) and value >= 0:
        return value
    if value in (EXPECT_RELS, EXPECT_EVENTS, EXPECT_ONE):
        return value
    raise _fail(source, where, f"expect: {value!r} is not valid", hint="use 1, a number, rels or events")


def _parse_pattern(source: str, tname: str, i: int, raw: Any) -> Pattern:
    where = f"{tname}.pattern[{i}]"
    expect: Any = None
    optional = False
    if isinstance(raw, dict):
        text = raw.get("glob", raw.get("pattern"))
        if "expect" in raw:
            expect = raw["expect"]
        optional = raw.get("optional", False)
        if not isinstance(optional, bool):
            raise _fail(source, where, f"optional: {optional!r} is not true or false")
        unknown = set(raw) - {"glob", "pattern", "expect", "optional"}
        if unknown:
            raise _fail(source, where, f"unknown key {sorted(unknown)[0]!r}", hint="use glob, expect, optional")
    else:
        text = raw
    if not isinstance(text, str) or not text.strip():
        raise _fail(source, where, f"pattern must be a non-empty string, got {text!r}")
    glob = text
    if glob.startswith(OPTIONAL_MARKER):
        optional = True
        glob = glob[len(OPTIONAL_MARKER):]
    _check_template(source, where, glob, last_is_file=True)
    pat = Pattern(text=text, glob=glob, optional=optional, expect=EXPECT_ONE)
    if expect is not None:
        resolved = _parse_expect(source, where, expect)
    elif not pat.has_wildcard:
        resolved = EXPECT_ONE
    elif "REL" in "".join(c for c in glob if c not in _WILDCARDS):
        resolved = EXPECT_RELS
    else:
        resolved = EXPECT_EVENTS
    return Pattern(text=text, glob=glob, optional=optional, expect=resolved)


_TYPE_KEYS = {"where", "pattern", "pack_into", "sample_of", "member"}
_TYPE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_FAULT = "{fault_name}"


def _check_member(source: str, tname: str, member: Any) -> None:
    """A ``member`` template must make a plain file name: download refuses any other as forged."""
    where = f"{tname}.member"
    if not isinstance(member, str):
        raise _fail(source, where, f"expected a string, got {member!r}")
    try:
        probe = member.format(event="E", name="N", fault_name="F")
    except (KeyError, IndexError, ValueError) as exc:
        raise _fail(source, where, f"bad template {member!r}: {exc}", hint="use {event}, {name}, {fault_name}") from None
    if not is_flat_name(probe) or probe.startswith("."):
        raise _fail(source, where, f"{member!r} does not make a plain file name",
                    hint="members are files side by side in the TAR: no '/', not starting with '.'")


def _check_names_fault(source: str, tname: str, where: str, patterns: tuple[Pattern, ...]) -> None:
    """Each fault's files must be told apart from other faults': by ``where`` or by every pattern."""
    if _FAULT in where:
        return
    for i, pat in enumerate(patterns):
        if _FAULT not in pat.glob:
            raise _fail(source, f"{tname}.pattern[{i}]", f"neither 'where' ({where!r}) nor {pat.text!r} names "
                        "{fault_name}, so every fault would take the same files",
                        hint="put {fault_name} in 'where' (e.g. \"Runs/{fault_name}\") or in the pattern")


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice (a copied type block would silently replace the first)."""


def _unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(
                None, None, f"{key!r} is given twice (first on line {seen[key] + 1})", key_node.start_mark)
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _unique_mapping)


def parse_config(data: Any, source: str = "<config>") -> SyncConfig:
    """Build a SyncConfig from already-loaded YAML data; raises ConfigError naming the key."""
    if not isinstance(data, dict) or not data:
        raise ConfigError(
            f"{source}: expected a mapping of data types (BB:, IM:, ...), got {type(data).__name__}",
            hint="see sync_patterns.yaml in the README",
        )
    uses_new_keys = any(isinstance(v, dict) and ({"pack_into", "sample_of"} & set(v)) for v in data.values())
    types: dict[str, DataType] = {}
    for raw_name, body in data.items():
        name = str(raw_name)
        if not isinstance(raw_name, str) or not _TYPE_NAME.fullmatch(name):
            raise _fail(source, name, "a data type name must start with a letter and hold only letters, digits and '_'")
        if not isinstance(body, dict):
            raise _fail(source, name, f"expected a mapping with 'where' and 'pattern', got {body!r}")
        unknown = set(body) - _TYPE_KEYS
        if unknown:
            raise _fail(source, name, f"unknown key {sorted(unknown)[0]!r}", hint=f"keys are {', '.join(sorted(_TYPE_KEYS))}")
        for key in ("pack_into", "sample_of", "where"):
            if body.get(key) is not None and not isinstance(body[key], str):
                raise _fail(source, f"{name}.{key}", f"expected a string, got {body[key]!r}")
        sample_of = body.get("sample_of")
        member = body.get("member")
        if member is not None:
            _check_member(source, name, member)
        if sample_of is not None:
            types[name] = DataType(name=name, where=None, sample_of=sample_of, member=member)
            continue
        if body.get("where") is None:
            raise _fail(source, name, "missing 'where' (a folder under CS_ROOT, e.g. \"Runs/{fault_name}\")")
        if "pattern" not in body:
            raise _fail(source, name, "missing 'pattern' (a list of globs)")
        _check_template(source, f"{name}.where", body["where"])
        raw_patterns = body["pattern"]
        if isinstance(raw_patterns, (str, dict)):
            raw_patterns = [raw_patterns]
        if not isinstance(raw_patterns, list) or not raw_patterns:
            raise _fail(source, f"{name}.pattern", "expected a non-empty list of globs")
        patterns = tuple(_parse_pattern(source, name, i, p) for i, p in enumerate(raw_patterns))
        types[name] = DataType(
            name=name, where=body["where"], patterns=patterns, pack_into=body.get("pack_into"), member=member
        )
    if not uses_new_keys:
        if "VM" in types and "Source" in types and "pack_into" not in data["VM"]:
            types["VM"] = DataType(**{**types["VM"].__dict__, "pack_into": "Source"})
        if "BB" in types and "SAMPLE_BB" not in types:
            types["SAMPLE_BB"] = DataType(name="SAMPLE_BB", where=None, sample_of="BB")
    for t in types.values():
        for ref, key in ((t.pack_into, "pack_into"), (t.sample_of, "sample_of")):
            if ref is None:
                continue
            if ref not in types or types[ref].sample_of is not None or ref == t.name:
                raise _fail(source, f"{t.name}.{key}", f"{ref!r} is not a data type with files of its own")
            if key == "pack_into" and types[ref].pack_into is not None:
                raise _fail(source, f"{t.name}.pack_into", f"{ref!r} is itself packed into {types[ref].pack_into!r}")
    for t in types.values():
        if t.where is not None:
            _check_names_fault(source, t.name, t.where, t.patterns)
    return SyncConfig(types=types, source=source, order=tuple(types))


def load_config(path: Path | str | None = None) -> SyncConfig:
    """Load a config file, or the one shipped with the package when ``path`` is None."""
    if path is None:
        text = resources.files("cs_sync.inputs").joinpath(DEFAULT_CONFIG_NAME).read_text()
        source = DEFAULT_CONFIG_NAME
    else:
        source = str(path)
        text = read_text_input(Path(path), "config", ConfigError, "give --config PATH to a sync_patterns.yaml")
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}: {at}malformed YAML: {problem}") from None
    return parse_config(data, source)
