"""The strict sidecar parser: every wrong field named, forged names refused as unsafe."""

import json

import pytest

from cs_sync.archive.sidecar import MemberInfo, PartInfo, SetSidecar, parse_sidecar
from cs_sync.core.errors import SidecarInvalid, SidecarUnsafe

SHA = "ab" * 32


def _doc():
    sc = SetSidecar("F", "BB", "v1", parts=[PartInfo("F_BB.tar", 4096, SHA)],
                    members=[MemberInfo("F_REL01_BB.bin", "F_BB.tar", 512, 100, 1.5, SHA, "Runs/F/x", 1500000000)])
    return json.loads(sc.to_json())


def test_round_trip_and_unknown_top_level_keys_allowed():
    d = _doc()
    d["future_field"] = {"x": 1}
    sc = parse_sidecar(json.dumps(d))
    assert sc.members[0].offset == 512 and sc.parts[0].name == "F_BB.tar"
    assert sc.check == ""  # written before the check was recorded


def test_the_check_of_the_upload_round_trips():
    d = _doc()
    d["check"] = "size"
    assert parse_sidecar(json.dumps(d)).check == "size"
    sc = parse_sidecar(json.dumps(d))
    assert parse_sidecar(sc.to_json()).check == "size"


@pytest.mark.parametrize("mutate,field,error", [
    (lambda d: d.update(members=None), "members", SidecarInvalid),
    (lambda d: d.pop("parts"), "parts: missing", SidecarInvalid),
    (lambda d: d["members"][0].update(size="100"), "members[0].size: expected an integer, got str", SidecarInvalid),
    (lambda d: d["members"][0].update(size=True), "members[0].size", SidecarInvalid),
    (lambda d: d["members"][0].update(offset=-1), "members[0].offset: negative", SidecarInvalid),
    (lambda d: d["members"][0].update(colour="red"), "members[0]: unknown key(s) colour", SidecarInvalid),
    (lambda d: d["parts"][0].update(sha256="xyz"), "parts[0].sha256: not a SHA-256", SidecarInvalid),
    (lambda d: d["members"][0].update(offset=4000), "runs past the end of F_BB.tar", SidecarInvalid),
    (lambda d: d["members"][0].update(part="G_BB.tar"), "members[0].part", SidecarInvalid),
    (lambda d: d.update(fault=3), "fault: expected a string", SidecarInvalid),
    (lambda d: d.update(check=1), "check: expected a string", SidecarInvalid),
    (lambda d: d["members"][0].update(name="../../x"), "members[0].name '../../x'", SidecarUnsafe),
    (lambda d: d["members"][0].update(name="/etc/x"), "members[0].name", SidecarUnsafe),
    (lambda d: d["members"][0].update(name="a/b"), "members[0].name", SidecarUnsafe),
    (lambda d: d["parts"][0].update(name="../p.tar"), "parts[0].name", SidecarUnsafe),
])
def test_each_wrong_field_is_named(mutate, field, error):
    d = _doc()
    mutate(d)
    with pytest.raises(error) as exc:
        parse_sidecar(json.dumps(d), where="_cs_sync/F_BB.json")
    assert field in exc.value.message and "_cs_sync/F_BB.json" in exc.value.message
    assert type(exc.value) is error


def test_not_json_and_newer_format():
    with pytest.raises(SidecarInvalid, match="not JSON"):
        parse_sidecar('{"parts": [')
    d = _doc()
    d["format"] = 99
    with pytest.raises(SidecarInvalid, match="newer"):
        parse_sidecar(json.dumps(d))


# -- per-part remote hashes and index sidecars (sets made by the older scripts) -----------


def _index_doc(**top):
    sc = SetSidecar("F", "BB", "v1", origin="index", proves="member places and sizes",
                    parts=[PartInfo("F_BB.tar", 4096, None, {"dropbox": "cd" * 32})],
                    members=[MemberInfo("F/F_REL01/BB/Acc/BB.bin", "F_BB.tar", 512, 100, 1.0, None, "")])
    d = json.loads(sc.to_json())
    d.update(top)
    return d


def test_upload_sidecar_without_new_fields_stays_format_1_and_older_shape():
    d = _doc()
    assert d["format"] == 1 and "hashes" not in d["parts"][0] and "proves" not in d
    assert d["origin"] == "upload"  # a top-level key: older readers ignore it
    sc = parse_sidecar(json.dumps(d))
    assert sc.origin == "upload" and not sc.is_index and sc.hashed and sc.parts[0].hashes == {}


def test_sidecar_written_before_origin_existed_reads_as_upload():
    d = _doc()
    del d["origin"], d["format"]
    sc = parse_sidecar(json.dumps(d))
    assert sc.origin == "upload" and sc.format == 1 and sc.members[0].source == "Runs/F/x"


def test_part_hashes_round_trip_and_make_format_2():
    d = _doc()
    d["parts"][0]["hashes"] = {"sha256": SHA, "dropbox": "ef" * 32, "quickxor": "AAECAw+/="}
    sc = parse_sidecar(json.dumps(d))
    assert sc.parts[0].hashes["dropbox"] == "ef" * 32
    again = json.loads(sc.to_json())
    assert again["format"] == 2 and again["parts"][0]["hashes"] == d["parts"][0]["hashes"]


@pytest.mark.parametrize("hashes,field", [
    ({"Dropbox!": "ab"}, "parts[0].hashes: not a hash type name"),
    ({"md5": 5}, "parts[0].hashes.md5: not a hash value"),
    ({"md5": "zz zz"}, "parts[0].hashes.md5: not a hash value"),
    ({"sha256": "cd" * 32}, "parts[0].hashes.sha256: differs from the part's sha256"),
    ([], "parts[0].hashes: expected an object"),
])
def test_bad_part_hashes_are_named(hashes, field):
    d = _doc()
    d["parts"][0]["hashes"] = hashes
    with pytest.raises(SidecarInvalid) as exc:
        parse_sidecar(json.dumps(d))
    assert field in exc.value.message


def test_index_sidecar_round_trip_with_paths_and_no_sha256():
    d = _index_doc()
    assert d["format"] == 2 and d["origin"] == "index" and d["parts"][0]["sha256"] is None
    sc = parse_sidecar(json.dumps(d))
    assert sc.is_index and not sc.hashed and sc.proves == "member places and sizes"
    assert sc.members[0].name == "F/F_REL01/BB/Acc/BB.bin" and sc.members[0].sha256 is None
    assert sc.parts[0].hashes == {"dropbox": "cd" * 32}
    d["members"][0].pop("source")
    d["members"][0].pop("sha256")
    assert parse_sidecar(json.dumps(d)).members[0].source == ""


def test_index_sidecar_with_hashes_is_hashed():
    d = _index_doc()
    d["parts"][0]["sha256"] = SHA
    d["members"][0]["sha256"] = SHA
    assert parse_sidecar(json.dumps(d)).hashed


@pytest.mark.parametrize("name", ["../x", "/etc/x", "a/../b", "./a", "a//b", "a/", "", "a\x00b"])
def test_index_member_paths_must_be_clean_and_stay_inside(name):
    d = _index_doc()
    d["members"][0]["name"] = name
    with pytest.raises(SidecarUnsafe) as exc:
        parse_sidecar(json.dumps(d))
    assert "members[0].name" in exc.value.message and "clean relative path" in exc.value.message


def test_paths_and_missing_sha256_only_in_index_sidecars():
    d = _index_doc(origin="upload")
    with pytest.raises(SidecarInvalid, match=r"parts\[0\].sha256: missing|parts\[0\].sha256"):
        parse_sidecar(json.dumps(d))
    d = _doc()
    d["members"][0]["name"] = "F/x.bin"
    with pytest.raises(SidecarUnsafe, match="plain file name"):
        parse_sidecar(json.dumps(d))
    d = _index_doc()
    d["parts"][0]["name"] = "F/F_BB.tar"  # parts are files of the fault folder, always flat
    with pytest.raises(SidecarUnsafe, match=r"parts\[0\].name"):
        parse_sidecar(json.dumps(d))


def test_unknown_origin_is_refused():
    with pytest.raises(SidecarInvalid, match="origin: unknown origin 'magic'"):
        parse_sidecar(json.dumps(_index_doc(origin="magic")))
