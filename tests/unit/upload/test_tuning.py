"""rclone's documented Dropbox settings are added only where the user set none."""

from cs_sync.upload.tuning import DROPBOX_CHUNK, DROPBOX_CHUNK_BYTES, tuning_for


def test_dropbox_gets_big_chunks_and_sync_batches():
    t = tuning_for("dropbox", "dbx", set(), {})
    assert t.rcat == ["--dropbox-chunk-size", DROPBOX_CHUNK]
    assert t.batch[:2] == ["--dropbox-batch-mode", "sync"]
    assert t.memory_per_transfer == DROPBOX_CHUNK_BYTES and len(t.added) == 2


def test_what_the_user_set_is_left_alone():
    assert tuning_for("dropbox", "dbx", {"chunk_size"}, {}).rcat == []
    assert tuning_for("dropbox", "dbx", set(), {"RCLONE_DROPBOX_CHUNK_SIZE": "64M"}).rcat == []
    assert tuning_for("dropbox", "dbx", set(), {"RCLONE_CONFIG_DBX_CHUNK_SIZE": "64M"}).rcat == []
    assert tuning_for("dropbox", "dbx", set(), {"RCLONE_DROPBOX_BATCH_MODE": "async"}).batch == []
    assert tuning_for("dropbox", ":dropbox,chunk_size=64M", set(), {}).rcat == []
    assert tuning_for("dropbox", ":dropbox,batch_mode=off", set(), {}).batch == []


def test_other_remotes_get_nothing():
    for kind in ("webdav", "sftp", "local", None):
        t = tuning_for(kind, "x", set(), {})
        assert t.rcat == [] and t.batch == [] and t.added == [] and t.memory_per_transfer == 0
