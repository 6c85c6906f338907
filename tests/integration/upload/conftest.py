"""Fixtures of the upload tests."""

import pytest


@pytest.fixture(params=["batched", "rcat"])
def small_files(request, monkeypatch):
    """Both ways small files go: in batches through memory (the default), or each by its own
    ``rclone rcat`` (``CS_SYNC_SMALL_FILE=0``, and what every file above 8 MiB does)."""
    if request.param == "rcat":
        monkeypatch.setenv("CS_SYNC_SMALL_FILE", "0")
    else:
        monkeypatch.delenv("CS_SYNC_SMALL_FILE", raising=False)
    return request.param
