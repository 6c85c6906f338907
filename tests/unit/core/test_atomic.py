import os
import stat

import pytest

from cs_sync.core.atomic import (
    TMP_SUFFIX,
    atomic_open,
    atomic_write_text,
    create_temp_beside,
    is_temp_name,
    leftover_temps,
)


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
        p = tmp_path / "journal.json"
        atomic_write_text(p, "{}")
        atomic_write_text(p, "{}")  # replacing keeps honouring it
    finally:
        os.umask(old)
    assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask


def test_one_temporary_name_scheme_and_leftovers_of_both(tmp_path):
    target = tmp_path / "F_BB.json"
    fd, tmp = create_temp_beside(target, 0o640)
    os.close(fd)
    assert tmp.parent == tmp_path and tmp.name.startswith(".F_BB.json.") and tmp.name.endswith(TMP_SUFFIX)
    assert is_temp_name(tmp.name) and stat.S_IMODE(tmp.stat().st_mode) == 0o640
    fd2, tmp2 = create_temp_beside(target)
    os.close(fd2)
    assert tmp2 != tmp  # two writers of one file never share a temporary file
    old = tmp_path / ".F_BB.json.k3j_9xq2.tmp"  # atomic_open's name in earlier versions
    old.write_text("torn")
    assert is_temp_name(".F_BB.json.cs_sync_tmp")  # download's member name in earlier versions
    for other in ("F_BB.json", ".G_BB.json.abc.tmp", ".F_BB.json.x.partial", "F_BB.json.abc.cs_sync_tmp"):
        (tmp_path / other).write_text("")
    assert sorted(leftover_temps(target)) == sorted([tmp, tmp2, old])


def test_missing_dirs_then_remove_empty_dirs_undo_only_what_was_made(tmp_path):
    from cs_sync.core.atomic import missing_dirs, remove_empty_dirs

    (tmp_path / "a").mkdir()
    made = missing_dirs(tmp_path / "a" / "b" / "c")
    assert made == [tmp_path / "a" / "b" / "c", tmp_path / "a" / "b"]  # deepest first; 'a' was there
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "keep").write_text("x")
    remove_empty_dirs(made)
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["keep"]
    (tmp_path / "a" / "b" / "c").mkdir(parents=True)
    (tmp_path / "a" / "b" / "c" / "f").write_text("x")  # not empty: nothing removed
    remove_empty_dirs(made)
    assert (tmp_path / "a" / "b" / "c" / "f").exists()
