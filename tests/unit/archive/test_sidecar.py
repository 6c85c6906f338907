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
