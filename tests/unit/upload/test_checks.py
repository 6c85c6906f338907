"""Which check a remote gets and how one file's listing entry is judged (pure)."""

from cs_sync.archive.tar_write import StreamedPart
from cs_sync.remote.sets import RemoteFile
from cs_sync.upload.checks import CheckFailed, choose_check, compare
from cs_sync.upload.results import CheckMode
from cs_sync.upload.tracker import Job

SHA = "ab" * 32


def job(size=100, **hashes) -> Job:
    j = Job(relpath="F/F_BB.tar", size=size, members=(), plain=False)
    j.streamed = StreamedPart("F_BB.tar", size, SHA, {"sha256": SHA, **hashes}, ())
    return j


def test_the_strongest_hash_the_remote_keeps_is_compared():
    assert choose_check(["md5", "sha1"], checksum=True, read_back=False).hash_type == "sha1"
    dbx = choose_check(["dropbox"], checksum=True, read_back=False)
    assert (dbx.mode, dbx.stream_hashes) == (CheckMode.HASH, ("dropbox",))
    assert choose_check(["sha256", "md5"], checksum=True, read_back=False).stream_hashes == ()  # computed anyway
    webdav = choose_check([], checksum=True, read_back=True)
    assert webdav.mode == CheckMode.SIZES_ONLY and webdav.read_back and "SIZES ONLY" in webdav.describe()
    assert choose_check(["sha256"], checksum=False, read_back=False).mode == CheckMode.SIZE


def test_compare_passes_only_what_the_remote_hash_vouches_for():
    plan = choose_check(["md5"], checksum=True, read_back=False)
    assert compare(job(md5="cd" * 16), RemoteFile("F/F_BB.tar", 100, {"md5": "CD" * 16}), plan) == (CheckMode.HASH, None)
    mode, err = compare(job(md5="cd" * 16), RemoteFile("F/F_BB.tar", 100, {"md5": "00" * 16}), plan)
    assert isinstance(err, CheckFailed) and "md5 hash differs" in err.message
    _, err = compare(job(md5="cd" * 16), RemoteFile("F/F_BB.tar", 99, {"md5": "cd" * 16}), plan)
    assert isinstance(err, CheckFailed) and "99 bytes, 100 were sent" in err.message
    _, err = compare(job(md5="cd" * 16), None, plan)
    assert isinstance(err, CheckFailed) and "not on the remote" in err.message


def test_a_file_the_remote_gives_no_hash_for_counts_as_sizes_only_not_as_hashed():
    plan = choose_check(["md5"], checksum=True, read_back=False)
    assert compare(job(md5="cd" * 16), RemoteFile("F/F_BB.tar", 100, {}), plan) == (CheckMode.SIZES_ONLY, None)
    sizes = choose_check([], checksum=True, read_back=False)
    assert compare(job(), RemoteFile("F/F_BB.tar", 100, {}), sizes) == (CheckMode.SIZES_ONLY, None)
