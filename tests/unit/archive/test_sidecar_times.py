"""Times that no file can have (NaN, beyond time_t) are damage, said in one line, never a crash
(found by tests/integration/test_hostile_property.py)."""

import json

import pytest

from cs_sync.archive.sidecar import MemberInfo, PartInfo, SetSidecar, parse_sidecar
from cs_sync.archive.tar_read import ArchiveError, write_verified
from cs_sync.core.errors import SidecarInvalid

SHA = "0" * 64


def _doc(**member):
    m = MemberInfo(name="F_REL01.csv", part="F_IM.tar", offset=512, size=3, mtime=1.0, sha256=SHA, source="x")
    d = json.loads(SetSidecar("F", "IM", "v1", parts=[PartInfo("F_IM.tar", 2048, SHA)], members=[m]).to_json())
    d["members"][0].update(member)
    return json.dumps(d)


@pytest.mark.parametrize("member", [{"mtime": float("nan")}, {"mtime": float("inf")}, {"mtime": 2**70},
                                    {"mtime_ns": 2**80}])
def test_a_sidecar_time_no_file_can_have_is_invalid(member):
    with pytest.raises(SidecarInvalid, match=r"x.json: members\[0\].mtime: not a time"):
        parse_sidecar(_doc(**member), where="x.json")


def test_a_normal_time_parses():
    assert parse_sidecar(_doc(mtime=1_700_000_000.5)).members[0].mtime == 1_700_000_000.5


@pytest.mark.parametrize("mtime", [float("nan"), 1e300])
def test_write_verified_refuses_a_time_it_cannot_set_and_leaves_nothing(tmp_path, mtime):
    with pytest.raises(ArchiveError, match="not a time a file can have"):
        write_verified(iter([b"abc"]), tmp_path / "x", size=3, sha256=None, what="m", mtime=mtime)
    assert list(tmp_path.iterdir()) == []
