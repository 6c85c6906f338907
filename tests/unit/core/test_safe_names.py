import pytest

from cs_sync.core.errors import UnsafeNameError
from cs_sync.core.safe_names import is_flat_name, local_path, safe_relpath


@pytest.mark.parametrize("name,clean", [
    ("a", "a"), ("./a//b", "a/b"), ("a/./b/", "a/b"), ("a//b/", "a/b"),
    ("", None), ("/etc/passwd", None), ("../x", None), ("a/../../x", None), ("a/\x00b", None), (".", None),
    ("..", None), ("a/..", None),
])
def test_safe_relpath(name, clean):
    assert safe_relpath(name) == clean


@pytest.mark.parametrize("name,ok", [
    ("F_REL01_BB.bin", True), (".hidden", True), ("", False), (".", False), ("..", False),
    ("a/b", False), ("a\\b", False), ("/x", False), ("x\x00", False),
])
def test_is_flat_name(name, ok):
    assert is_flat_name(name) is ok


def test_local_path_flat_and_relative(tmp_path):
    assert local_path(tmp_path, "x.bin", flat=True, what="t") == tmp_path / "x.bin"
    assert local_path(tmp_path, "a/b.bin", flat=False, what="t") == tmp_path / "a" / "b.bin"
    for bad in ("a/b.bin", "../x", "/tmp/x"):
        with pytest.raises(UnsafeNameError, match="refused name"):
            local_path(tmp_path, bad, flat=True, what="t")
    with pytest.raises(UnsafeNameError):
        local_path(tmp_path, "../x", flat=False, what="t")


def test_local_path_refuses_a_planted_symlink_leading_out(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    with pytest.raises(UnsafeNameError, match="outside"):
        local_path(root, "link/x", flat=False, what="t")
