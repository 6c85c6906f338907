import pytest

from cs_sync.core.errors import UsageError
from cs_sync.core.sharding import assign_shards, parse_shard


def test_balanced_and_deterministic():
    w = {f"F{i}": (i * 37) % 11 + 1 for i in range(40)}
    a = assign_shards(w, 4)
    assert a == assign_shards(dict(reversed(list(w.items()))), 4)
    loads = [sum(w[k] for k in s) for s in a]
    assert max(loads) - min(loads) <= max(w.values())
    assert sorted(k for s in a for k in s) == sorted(w)


def test_parse_shard():
    assert parse_shard("0/4") == (0, 4)
    for bad in ("4/4", "x", "1/0", "-1/2"):
        with pytest.raises(UsageError):
            parse_shard(bad)
