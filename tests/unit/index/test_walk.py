"""A set's index sidecar from its parts' walks (pure), and the header check of a ranged member."""

import io
import tarfile

import pytest

from cs_sync.archive.tar_index import PartWalk, TarIndexError, TarMember
from cs_sync.core.errors import VerifyError
from cs_sync.download.legacy import after_header
from cs_sync.index.walk import PartResult, preferred_hash, proves_text, set_sidecar
from cs_sync.remote.sets import RemoteFile, classify_listing, group_listing


def _set(hashes=None):
    files = [RemoteFile("F/F_BB_0.tar", 3000, hashes or {}), RemoteFile("F/F_BB_1f.tar", 2000, hashes or {})]
    return classify_listing(group_listing("v1", files), {}).get("F", "BB")


def _walk(*members, sha=None):
    return PartWalk(members=[TarMember(n, o, s, 1.0, sha) for n, o, s in members], end=100, sha256=sha)


def test_sidecar_from_walks_in_part_order_with_the_remotes_hash():
    rs = _set({"dropbox": "ab" * 32, "md5": "cd" * 16})
    results = [PartResult("F_BB_1f.tar", _walk(("F/c.bin", 512, 10)), 0.1),
               PartResult("F_BB_0.tar", _walk(("F/a.bin", 512, 10), ("F/b.bin", 1536, 10)), 0.1)]
    sc = set_sidecar(rs, "v1", results, ("dropbox",))
    assert sc.is_index and not sc.hashed and sc.origin == "index"
    assert [p.name for p in sc.parts] == ["F_BB_0.tar", "F_BB_1f.tar"]
    assert sc.parts[0].hashes == {"dropbox": "ab" * 32} and sc.parts[0].size == 3000
    assert [(m.name, m.part, m.offset) for m in sc.members] == [
        ("F/a.bin", "F_BB_0.tar", 512), ("F/b.bin", "F_BB_0.tar", 1536), ("F/c.bin", "F_BB_1f.tar", 512)]
    assert "dropbox hash" in sc.proves and "not the members' content" in sc.proves
    again = type(sc).from_json(sc.to_json())
    assert again.members == sc.members and again.parts == sc.parts


def test_hashed_walks_make_a_hashed_sidecar_and_duplicates_are_refused():
    rs = _set()
    sha = "ef" * 32
    results = [PartResult("F_BB_0.tar", _walk(("a", 512, 1), sha=sha), 0), PartResult("F_BB_1f.tar", _walk(("b", 512, 1), sha=sha), 0)]
    sc = set_sidecar(rs, "v1", results, ())
    assert sc.hashed and "as strong as a sidecar written at upload" in sc.proves
    dup = [PartResult("F_BB_0.tar", _walk(("a", 512, 1)), 0), PartResult("F_BB_1f.tar", _walk(("a", 512, 1)), 0)]
    with pytest.raises(VerifyError, match="member 'a' is in both F_BB_0.tar and F_BB_1f.tar"):
        set_sidecar(rs, "v1", dup, ())


def test_preferred_hash_and_proves_text():
    assert preferred_hash(["md5", "sha1", "sha256"]) == ("sha256",)
    assert preferred_hash(["quickxor"]) == ("quickxor",) and preferred_hash([]) == ()
    assert preferred_hash(["md5", "dropbox"]) == ("dropbox",)
    assert "its sha1 hash" in proves_text(False, ("sha1",)) and "hash as the remote" not in proves_text(False, ())


def _member_bytes(name="F_REL01_BB.bin", data=b"x" * 1000):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        ti = tarfile.TarInfo(name)
        ti.size = len(data)
        tar.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    return raw[:512 + len(data)], data


@pytest.mark.parametrize("cut", [1, 100, 512, 513, 700])
def test_after_header_checks_the_header_and_passes_only_the_data(cut):
    raw, data = _member_bytes()
    chunks = [raw[:cut], raw[cut:]]
    assert b"".join(after_header(chunks, name="F_REL01_BB.bin", size=len(data), label="p")) == data


def test_after_header_refuses_a_header_that_changed():
    raw, data = _member_bytes()
    with pytest.raises(TarIndexError, match="the part changed since it was indexed"):
        b"".join(after_header([raw], name="F_REL02_BB.bin", size=len(data), label="p"))
    with pytest.raises(TarIndexError, match="damaged"):
        b"".join(after_header([raw[:300]], name="F_REL01_BB.bin", size=len(data), label="p"))
