import pytest

from cs_sync.core.errors import InputError
from cs_sync.core.sizes import format_size, parse_size


@pytest.mark.parametrize(
    "text,value",
    [("100G", 100 * 2**30), ("100GiB", 100 * 2**30), ("500M", 500 * 2**20), ("350GB", 350 * 10**9), ("12345", 12345)],
)
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "abc", "10X", "0", "-5M"])
def test_parse_size_rejects(text):
    with pytest.raises(InputError, match="--max-size"):
        parse_size(text, option="--max-size")


def test_format_size():
    assert format_size(1536) == "1.5 KiB"
    assert format_size(10) == "10 B"
