"""files_to_sync.yaml keeps the older scripts' structure; mtimes live in a sidecar."""

import re

import pytest
import yaml

from cs_sync.core.errors import ManifestError
from cs_sync.inputs.manifest import FileRecord, Manifest, meta_path, read_manifest, write_manifest


def sample_manifest() -> Manifest:
    m = Manifest(version="v22p12", cs_root="/scratch/v22p12")
    m.extra = {"list.txt": 20, "stocktake.csv": 300}
    m.faults["F"] = {
        "BB": {"Runs/F/F_REL01/BB/Acc/BB.bin": FileRecord("Runs/F/F_REL01/BB/Acc/BB.bin", 100, 1_700_000_000_123_456_789)},
        "VM": {},
    }
    return m


def test_roundtrip_and_old_readers_see_old_structure(tmp_path):
    p = tmp_path / "files_to_sync.yaml"
    write_manifest(p, sample_manifest())
    doc = yaml.safe_load(p.read_text())
    assert doc == {
        ".": {"list.txt": 20, "stocktake.csv": 300},
        "F": {"BB": {"Runs/F/F_REL01/BB/Acc/BB.bin": 100}, "VM": {}},
    }
    assert meta_path(p).name == "files_to_sync.meta.json"
    back = read_manifest(p)
    assert back.version == "v22p12"
    rec = back.files("F", "BB")[0]
    assert rec.mtime_ns == 1_700_000_000_123_456_789 and rec.size == 100
    assert back.total_bytes() == 100


def test_reads_older_manifest_with_absolute_paths(tmp_path):
    p = tmp_path / "files_to_sync.yaml"
    p.write_text(yaml.safe_dump({"F": {"BB": {"/scratch/v1/Runs/F/F_REL01/BB/Acc/BB.bin": 5}}, ".": {"/x/list.txt": 3}}))
    m = read_manifest(p, cs_root="/scratch/v1")
    assert [r.path for r in m.files("F", "BB")] == ["Runs/F/F_REL01/BB/Acc/BB.bin"]
    assert m.files("F", "BB")[0].mtime_ns is None


@pytest.mark.parametrize(
    "text,needle",
    [("[1, 2]", "expected a mapping"), ("F: {BB: {a: -1}}", "not a byte count"), ("F: [1]", "must map data types"), ("a: [", "malformed YAML")],
)
def test_bad_manifests(tmp_path, text, needle):
    p = tmp_path / "m.yaml"
    p.write_text(text)
    with pytest.raises(ManifestError, match=needle):
        read_manifest(p)


def test_older_absolute_paths_under_cs_root_through_a_symlink_are_made_relative(tmp_path):
    (tmp_path / "real" / "v1").mkdir(parents=True)
    (tmp_path / "scratch").symlink_to(tmp_path / "real")  # what the older script saw: /scratch -> /nesi/...
    p = tmp_path / "files_to_sync.yaml"
    p.write_text(yaml.safe_dump({"F": {"BB": {f"{tmp_path}/scratch/v1/Runs/F/BB.bin": 5}}}))
    for root in (tmp_path / "real" / "v1", tmp_path / "scratch" / "v1"):
        assert [r.path for r in read_manifest(p, cs_root=root).files("F", "BB")] == ["Runs/F/BB.bin"]


@pytest.mark.parametrize(
    "doc,needle",
    [({"F": {"BB": {"/etc/hostname": 5}}}, "'/etc/hostname' is not under CS_ROOT"),
     ({"F": {"BB": {"Runs/../../x": 5}}}, "F.BB: 'Runs/../../x' leaves CS_ROOT"),
     ({"../F": {"BB": {"Runs/x": 5}}}, "'../F' is not a usable fault name"),
     ({"_F": {"BB": {"Runs/x": 5}}}, "'_F' is not a usable fault name"),
     ({"F": {"B/B": {"Runs/x": 5}}}, "F: 'B/B' is not a usable data type name"),
     ({".": {"list.txt": "abc"}}, "size of 'list.txt' is 'abc'")],
)
def test_entries_that_would_reach_outside_cs_root_or_the_version_folder(tmp_path, doc, needle):
    p = tmp_path / "m.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(ManifestError, match=re.escape(needle)):
        read_manifest(p, cs_root=tmp_path / "v1")


@pytest.mark.parametrize("meta,needle", [("[1]", "not a JSON object"), ('{"cs_root": 5}', "cs_root is 5, not a str"),
                                         ('{"mtime_ns": []}', "mtime_ns is [], not a dict")])
def test_a_hand_edited_sidecar_is_named(tmp_path, meta, needle):
    p = tmp_path / "m.yaml"
    p.write_text("F: {BB: {Runs/x: 5}}\n")
    meta_path(p).write_text(meta)
    with pytest.raises(ManifestError, match=re.escape(needle)):
        read_manifest(p)


def test_missing_manifest_says_run_preprocess(tmp_path):
    with pytest.raises(ManifestError, match="run cs-sync-preprocess"):
        read_manifest(tmp_path / "nope.yaml")


def _yaml_reference(doc):
    import yaml

    return yaml.dump(doc, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=False,
                     default_flow_style=False)


@pytest.mark.parametrize("seed", range(40))
def test_manifest_text_is_byte_identical_to_pyyaml(seed):
    """The direct writer and PyYAML agree on every document, odd names included."""
    import random

    from cs_sync.inputs.manifest import dump_manifest_doc

    rnd = random.Random(seed)
    odd = ["yes", "No", "null", "~", "1e3", "0x1F", "2017-01-01", ".inf", "a b", "a: b", "#x", "-x", "é.bin",
           "x" * 130, "'q'", "a\"b", "", "true", "On", "_ok", "Runs/F/F_REL01/BB/Acc/BB.bin", ".", "a+b-c"]

    def name():
        if rnd.random() < 0.15:
            return rnd.choice(odd)
        return "".join(rnd.choice("abcXYZ_09./-") for _ in range(rnd.randint(1, 12))).lstrip("0123456789.-/") or "f"

    doc = {".": {name(): rnd.randint(0, 10**12) for _ in range(rnd.randint(0, 3))}}
    for _ in range(rnd.randint(0, 6)):
        doc[name()] = {name(): {name(): rnd.randint(0, 10**9) for _ in range(rnd.randint(0, 5))}
                       for _ in range(rnd.randint(0, 3))}
    assert dump_manifest_doc(doc) == _yaml_reference(doc)
