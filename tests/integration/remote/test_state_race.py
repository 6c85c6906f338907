"""read_version while another process writes sidecars (index shards, an upload finishing):
a sidecar that appears between the sidecar copy and the listing is copied again, not an error."""

from __future__ import annotations

import threading

from cs_sync.archive.sidecar import PartInfo, SetSidecar
from cs_sync.remote import state
from cs_sync.remote.rclone import Rclone


def test_sidecar_written_between_the_copy_and_the_listing(tmp_path, rclone_bin, monkeypatch):
    v = tmp_path / "remote" / "v1"
    (v / "F").mkdir(parents=True)
    (v / "F" / "F_BB.tar").write_bytes(b"x" * 10)
    copied = threading.Event()
    real_copy = state._copy_sidecars
    calls = []

    def copy_then_someone_writes(rclone, vpath, tmp):
        calls.append(vpath)
        try:
            return real_copy(rclone, vpath, tmp)  # the first time: no _cs_sync folder yet
        finally:
            if len(calls) == 1:
                (v / "_cs_sync").mkdir()
                sc = SetSidecar("F", "BB", "v1", parts=[PartInfo("F_BB.tar", 10, "ab" * 32)])
                (v / "_cs_sync" / "F_BB.json").write_text(sc.to_json())
                copied.set()

    rc = Rclone(rclone_bin)
    real_lsjson = rc.lsjson

    def lsjson_after_the_copy(*a, **kw):
        copied.wait(30)
        return real_lsjson(*a, **kw)

    monkeypatch.setattr(state, "_copy_sidecars", copy_then_someone_writes)
    monkeypatch.setattr(rc, "lsjson", lsjson_after_the_copy)
    listing = state.read_version(rc, str(tmp_path / "remote"), "v1", scratch=tmp_path)
    assert len(calls) == 2
    rs = listing.get("F", "BB")
    assert rs.sidecar is not None and rs.state.value == "complete"
