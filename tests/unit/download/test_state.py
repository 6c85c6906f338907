"""The download state log: survives torn lines, scoped by version, size, hash and filter."""

from cs_sync.download.state import DownloadState, Unit


def test_record_and_reload(tmp_path):
    st = DownloadState(tmp_path, "v1")
    u = Unit("F", "F_BB_0.tar", 100, "abc")
    assert not st.is_done(u, "*")
    st.record_ok(u, "*")
    assert st.is_done(u, "*") and st.is_done(u, "rel=7;member=")  # a full extraction covers any filter
    again = DownloadState(tmp_path, "v1")
    assert again.is_done(u, "*")
    assert not again.is_done(Unit("F", "F_BB_0.tar", 101, "abc"), "*")  # the remote part changed
    assert not again.is_done(Unit("F", "F_BB_0.tar", 100, "abd"), "*")
    assert not DownloadState(tmp_path, "v2").is_done(u, "*")  # another version
    assert not DownloadState(tmp_path, "v1", ignore_old=True).is_done(u, "*")  # --force_untar


def test_filtered_extraction_does_not_count_as_full(tmp_path):
    st = DownloadState(tmp_path, "v1")
    u = Unit("F", "F_BB.tar", 10)
    st.record_ok(u, "rel=7;member=")
    assert st.is_done(u, "rel=7;member=") and not st.is_done(u, "*") and not st.is_done(u, "rel=8;member=")


def test_torn_last_line_is_ignored_and_closed_before_the_next(tmp_path):
    st = DownloadState(tmp_path, "v1")
    st.record_ok(Unit("F", "a.tar", 1), "*")
    with open(tmp_path / "tar_ok.log", "ab") as fh:
        fh.write(b"ok\tv1\tF/b.tar\t2\t-\t")  # killed mid-write
    st2 = DownloadState(tmp_path, "v1")
    assert st2.is_done(Unit("F", "a.tar", 1), "*") and not st2.is_done(Unit("F", "b.tar", 2), "*")
    st2.record_ok(Unit("F", "c.tar", 3), "*")
    st3 = DownloadState(tmp_path, "v1")
    assert st3.is_done(Unit("F", "c.tar", 3), "*") and not st3.is_done(Unit("F", "b.tar", 2), "*")
    lines = (tmp_path / "tar_ok.log").read_text().splitlines()
    assert lines[-1].startswith("ok\tv1\tF/c.tar\t3\t")


def test_shards_write_their_own_files_and_everyone_reads_all(tmp_path):
    s0 = DownloadState(tmp_path, "v1", (0, 2))
    s1 = DownloadState(tmp_path, "v1", (1, 2))
    s0.record_ok(Unit("F", "a.tar", 1), "*")
    s1.record_ok(Unit("G", "b.tar", 1), "*")
    s1.record_error(Unit("G", "c.tar", 1), "boom\nsecond line")
    assert s0.ok_path.name == "tar_ok.shard-0-of-2.log" and s1.error_path.name == "tar_error.shard-1-of-2.log"
    assert len(s1.error_path.read_text().splitlines()) == 1
    whole = DownloadState(tmp_path, "v1")
    assert whole.is_done(Unit("F", "a.tar", 1), "*") and whole.is_done(Unit("G", "b.tar", 1), "*")


def test_older_and_junk_lines_are_skipped(tmp_path):
    (tmp_path / "tar_ok.log").write_text("/scratch/old/F/F_BB.tar\nok\tv1\tF/x.tar\tNaN\t-\t*\tt\n\x00\x01\n")
    st = DownloadState(tmp_path, "v1")
    assert not st.is_done(Unit("F", "F_BB.tar", 5), "*") and not st.is_done(Unit("F", "x.tar", 0), "*")
