"""Credential parameters of rclone connection strings never leave the tool unredacted."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from cs_sync.remote.redact import ANY_BACKEND, REDACTED, SENSITIVE, has_credentials, redact

CASES = [
    # (text, secrets that must be gone, text that must stay)
    (":webdav,url='http://127.0.0.1:8080',user=u,pass=OBSCURED,bearer_token=TOK:path/v1",
     ["OBSCURED", "TOK", "user=u,"], ["url='http://127.0.0.1:8080'", ":path/v1", "pass=XXX", "bearer_token=XXX"]),
    (":s3,provider=AWS,access_key_id=AKIA1,secret_access_key=S3CRET,session_token=SESS:bucket/x",
     ["AKIA1", "S3CRET", "SESS"], ["provider=AWS", ":bucket/x"]),
    ("dropbox,token='{\"access_token\":\"AT\",\"expiry\":\"2030\"}',client_secret=CS:/QuakeCoRE",
     ["AT", "CS", "expiry"], ["dropbox,token=XXX", ":/QuakeCoRE"]),
    ('mydav,pass="a,""b"":c":v1', ['a,""b""'], ["mydav,pass=XXX:v1"]),
    (":sftp,host=h.example,user=me,key_file_pass=KFP,pass=P:/data", ["KFP", "h.example", ",pass=P"], [":/data"]),
    # a connection string inside another one's value
    (":hasher,remote=':webdav,url=h,pass=INNER:',hashes=dropbox:v1", ["INNER"], ["hashes=dropbox", ":hasher,remote="]),
    # rclone's own error line quoting the remote
    ('CRITICAL: Failed to create file system for ":webdav,url=\'http://h\',pass=PPP:": connection refused',
     ["PPP"], ["connection refused"]),
    # an option spelled with dashes
    (":webdav,url=h,bearer-token=DASH:x", ["DASH"], ["bearer-token=XXX"]),
    ("https://me:URLPW@host.example/dav", ["URLPW"], ["https://me:XXX@host.example/dav"]),
]


@pytest.mark.parametrize(("text", "gone", "kept"), CASES)
def test_redact(text, gone, kept):
    out = redact(text)
    for g in gone:
        assert g not in out, out
    for k in kept:
        assert k in out, out
    assert has_credentials(text)
    assert redact(out) == out  # redacting twice changes nothing


@pytest.mark.parametrize("text", [
    "dropbox:/QuakeCoRE/Public/Cybershake", "csdav:v1/AlpineK2T/AlpineK2T_BB_1.tar", "/scratch/a,b/c",
    ":webdav,url='http://127.0.0.1:8080':v1", "F_BB,IM: 2 sets, 3 parts", ":local,links:/data",
])
def test_no_credentials_nothing_changed(text):
    assert redact(text) == text and not has_credentials(text)


def test_the_backend_of_an_on_the_fly_remote_decides():
    # webdav's url is not a credential; a named remote's backend is unknown, so every backend's list applies
    assert redact(":webdav,url=h,pass=P:") == f":webdav,url=h,pass={REDACTED}:"
    assert "url" in ANY_BACKEND and "url" not in SENSITIVE["webdav"]


def _installed_rclone() -> str | None:
    try:
        from cs_sync.remote.rclone import find_rclone

        return find_rclone()
    except Exception:
        return shutil.which("rclone")


def test_the_list_matches_the_installed_rclone():
    """Every option the installed rclone marks Sensitive or IsPassword is in the stored list."""
    rclone = _installed_rclone()
    if rclone is None:
        pytest.skip("rclone not installed: the stored list cannot be compared")
    out = subprocess.run([rclone, "config", "providers"], capture_output=True, text=True, timeout=60, check=True).stdout
    missing = {}
    for backend in json.loads(out):
        secret = {o["Name"] for o in backend["Options"] if o.get("Sensitive") or o.get("IsPassword")}
        if secret - SENSITIVE.get(backend["Name"], frozenset()):
            missing[backend["Name"]] = sorted(secret - SENSITIVE.get(backend["Name"], frozenset()))
    assert not missing, f"regenerate SENSITIVE in cs_sync/remote/redact.py (see its comment): {missing}"
