"""An upload journal is created the way the user's umask says (0600 under umask 077)."""

import os
import stat

from cs_sync.upload.journal import Journal


def test_journal_honours_umask_077(tmp_path):
    old = os.umask(0o077)
    try:
        j = Journal(tmp_path / "journal" / "F_BB.json", "F_BB", "key")
        j.record_done()
    finally:
        os.umask(old)
    assert stat.S_IMODE(j.path.stat().st_mode) == 0o600


def test_a_journal_of_another_plan_is_not_resumed_but_its_files_stay_ours(tmp_path):
    from cs_sync.archive.tar_write import StreamedPart
    from cs_sync.inputs.config import load_config
    from cs_sync.inputs.manifest import FileRecord, Manifest
    from cs_sync.upload.planning import plan_upload

    m = Manifest(version="v1")
    m.faults["F"] = {"BB": {f"Runs/F/F_REL0{i}/BB/Acc/BB.bin": FileRecord(f"Runs/F/F_REL0{i}/BB/Acc/BB.bin", 30_000, i)
                            for i in (1, 2)}}
    [wide] = plan_upload(m, load_config(), max_size=1 << 20, hard_limit=1 << 40).sets[:1]
    [narrow] = plan_upload(m, load_config(), max_size=40_000, hard_limit=1 << 40).sets[:1]
    path = tmp_path / "F_BB.json"
    j = Journal.load(path, wide)
    j.record_checked(StreamedPart("F_BB.tar", 1, "0" * 64, {}, ()), "content")
    assert Journal.load(path, wide).checked() == {"F_BB.tar"}
    other = Journal.load(path, narrow)
    assert other.checked() == frozenset() and not other.done  # nothing of it is resumed ...
    assert other.exists and other.ours() == {"F_BB.tar"}  # ... but the file it sent is ours
    assert not Journal.load(tmp_path / "none.json", narrow).exists
