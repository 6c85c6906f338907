import pytest

from cs_sync.core.atomic import atomic_open, atomic_write_text


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    p = tmp_path / "out.csv"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError):
        with atomic_open(p) as fh:
            fh.write("half")
            raise RuntimeError("boom")
    assert p.read_text() == "old"
    assert [x.name for x in tmp_path.iterdir()] == ["out.csv"]
