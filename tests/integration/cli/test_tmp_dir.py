"""The upload's scratch folder: per user and private by default (0700, unreadable to others),
$CS_SYNC_TMP honoured, a folder that belongs to another user refused with exit 9."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile

import pytest

from cs_sync.core.scratch import default_tmp_dir, prepare_tmp_dir, user_name

from cybershake_tree import FaultSpec
from dl_helpers import assert_one_line_error
from manifests import write_tree_manifest
from upload_checks import run_upload

NOBODY = 65534
FAULTS = [FaultSpec("Hope1888", rels=2, median=False, bb_size=5_000)]


@pytest.fixture
def version(make_tree, tmp_path, monkeypatch):
    root, _ = make_tree(FAULTS)
    monkeypatch.delenv("CS_SYNC_TMP", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path / "systmp"))  # the "system" temp folder of this test
    (tmp_path / "systmp").mkdir(mode=0o1777)
    os.chmod(tmp_path / "systmp", 0o1777)
    return root, write_tree_manifest(root)


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess:
    return subprocess.run(["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd],
                          capture_output=True, text=True)


def test_default_tmp_dir_is_per_user_private_and_unreadable_to_others(version, tmp_path):
    root, man = version
    p = run_upload([root, man, "--remote", tmp_path / "remote"])
    assert p.returncode == 0, p.stdout + p.stderr
    tmp = tmp_path / "systmp" / f"cs_sync-{user_name()}"
    assert f"log: {tmp}/v22p12/upload.log" in p.stdout
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o700 and tmp.stat().st_uid == os.getuid()
    if os.getuid() == 0 and shutil.which("setpriv"):  # another user really cannot look inside
        seen = _as_nobody("ls", str(tmp))
        assert seen.returncode != 0 and "Permission denied" in seen.stderr, seen
        seen = _as_nobody("cat", str(tmp / "v22p12" / "upload.log"))
        assert seen.returncode != 0, seen


def test_default_tmp_dir_left_open_is_made_private_again(version, tmp_path):
    root, man = version
    tmp = tmp_path / "systmp" / f"cs_sync-{user_name()}"
    tmp.mkdir()
    os.chmod(tmp, 0o777)
    assert run_upload([root, man, "--remote", tmp_path / "remote"]).returncode == 0
    assert stat.S_IMODE(tmp.stat().st_mode) == 0o700


def test_cs_sync_tmp_is_used_and_created_private(version, tmp_path):
    root, man = version
    mine = tmp_path / "mine" / "scratch"
    p = run_upload([root, man, "--remote", tmp_path / "remote"], env={"CS_SYNC_TMP": str(mine)})
    assert p.returncode == 0, p.stderr
    assert f"log: {mine}/v22p12/upload.log" in p.stdout
    assert stat.S_IMODE(mine.stat().st_mode) == 0o700
    assert not (tmp_path / "systmp" / f"cs_sync-{user_name()}").exists()


@pytest.mark.skipif(os.getuid() != 0, reason="making a folder of another user needs root")
def test_tmp_dir_of_another_user_is_refused(version, tmp_path):
    root, man = version
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, NOBODY, NOBODY)
    for args, env in (([ "--tmp_dir", theirs], {}), ([], {"CS_SYNC_TMP": str(theirs)})):
        p = run_upload([root, man, "--remote", tmp_path / "remote", *args], env=env)
        assert p.returncode == 9, p.stdout + p.stderr
        assert_one_line_error(p.stderr, f"tmp dir {theirs} belongs to nobody, not to you", "--tmp_dir or CS_SYNC_TMP")
    assert list(theirs.iterdir()) == []  # nothing written into it
    # the default name taken by another user on a shared /tmp: refused too, never used
    planted = tmp_path / "systmp" / f"cs_sync-{user_name()}"
    planted.mkdir()
    os.chown(planted, NOBODY, NOBODY)
    p = run_upload([root, man, "--remote", tmp_path / "remote"])
    assert p.returncode == 9 and "belongs to nobody" in p.stderr, p.stderr


def test_default_tmp_dir_that_is_a_symlink_is_refused(version, tmp_path):
    root, man = version
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "systmp" / f"cs_sync-{user_name()}").symlink_to(elsewhere)
    p = run_upload([root, man, "--remote", tmp_path / "remote"])
    assert p.returncode == 9
    assert_one_line_error(p.stderr, "is a symbolic link")
    assert list(elsewhere.iterdir()) == []


def test_prepare_tmp_dir_library_call(tmp_path, monkeypatch):
    monkeypatch.delenv("CS_SYNC_TMP", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() caches: look at TMPDIR again
    d = default_tmp_dir()
    assert d == tmp_path / f"cs_sync-{user_name()}"
    assert prepare_tmp_dir(d) == d and stat.S_IMODE(d.stat().st_mode) == 0o700
    given = tmp_path / "shared"
    given.mkdir(mode=0o770)
    os.chmod(given, 0o770)
    prepare_tmp_dir(given)  # a folder the user chose keeps its permissions (a project may share one)
    assert stat.S_IMODE(given.stat().st_mode) == 0o770
