"""How a set's sidecar records the check of its parts (pure)."""

from cs_sync.upload.sidecars import set_check


def test_a_set_is_checked_by_content_only_when_every_part_was():
    assert set_check([{"check": "content"}, {"check": "content"}]) == "content"
    assert set_check([{"check": "content"}, {"check": "size"}]) == "size"
    # a part checked by an earlier run that did not record how: not claimed either way
    assert set_check([{"check": "content"}, {}]) == ""
    assert set_check([{}, {"check": "size"}]) == "size"
    assert set_check([]) == ""
