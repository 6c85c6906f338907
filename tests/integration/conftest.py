"""Fixtures shared by the download and status tests (a module may define its own ``remote``)."""

import pytest

from dl_helpers import make_remote, make_source_tree


@pytest.fixture(params=["local", "webdav"])
def remote(request, tmp_path):
    """A remote holding generated archives: a local folder, then the loopback WebDAV server."""
    webdav = request.getfixturevalue("webdav") if request.param == "webdav" else None
    return make_remote(request.param, tmp_path, webdav)


@pytest.fixture
def tree(tmp_path):
    return make_source_tree(tmp_path)
