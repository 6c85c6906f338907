"""The run log on a full disk: never raises into the thread that logs, reported once, exit 9."""

import threading

import pytest

from cs_sync.core.errors import LocalIOError
from cs_sync.ui.progress_display import TeeLog


def test_a_log_on_a_full_disk_keeps_the_first_error_and_never_raises_into_callers():
    log = TeeLog("/dev/full")  # every write fails with ENOSPC
    t = threading.Thread(target=lambda: [log("x" * 5000) for _ in range(3)])  # like rclone's reader thread
    t.start()
    t.join()
    log("more")
    log.close()
    assert isinstance(log.error, LocalIOError) and log.error.exit_code == 9
    assert log.error.message == "no space left on device: writing /dev/full"
    with pytest.raises(LocalIOError):
        log.check()


def test_a_healthy_log_checks_clean(tmp_path):
    log = TeeLog(tmp_path / "run.log")
    log("hello")
    log.close()
    log.check()
    assert (tmp_path / "run.log").read_text().endswith(" hello\n")
