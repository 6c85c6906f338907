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
