"""files_to_sync.yaml keeps the older scripts' structure; mtimes live in a sidecar."""

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


def test_missing_manifest_says_run_preprocess(tmp_path):
    with pytest.raises(ManifestError, match="run cs-sync-preprocess"):
        read_manifest(tmp_path / "nope.yaml")
