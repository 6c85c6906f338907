import os
import stat

import pytest

from cs_sync.core.atomic import atomic_open, atomic_write_text, current_umask


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    p = tmp_path / "out.csv"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(p) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["out.csv"]


@pytest.mark.parametrize("umask", [0o077, 0o022, 0o002])
def test_written_files_honour_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        p = tmp_path / "journal.json"
        atomic_write_text(p, "{}")
        atomic_write_text(p, "{}")  # replacing keeps honouring it
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask
