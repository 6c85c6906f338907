"""rclone's exit code and stderr -> one typed error: the table, row by row.

The stderr samples are what rclone v1.75 prints (copied from real runs against a
local folder, a loopback WebDAV server that was stopped, and a name that is not
configured), plus the words other backends use for the same trouble.
"""

from __future__ import annotations

import pytest

from cs_sync.core.errors import (
    ExitCode,
    LocalDiskFull,
    LocalPermissionDenied,
    ObjectNotFound,
    RcloneError,
    RcloneInterrupted,
    RemoteDenied,
    RemoteFull,
    RemoteLoginFailed,
    RemoteNotFound,
    RemoteUnreachable,
    is_fatal,
)
from cs_sync.remote.rclone import classify

T = "2026/12/01 09:26:58 "
REFUSED = (f'{T}ERROR : error listing: couldn\'t list files: Propfind "http://127.0.0.1:9/": dial tcp 127.0.0.1:9: '
           "connect: connection refused\n"
           f"{T}NOTICE: Failed to lsjson with 2 errors: last error was: error in ListJSON: couldn't list files: "
           'Propfind "http://127.0.0.1:9/": dial tcp 127.0.0.1:9: connect: connection refused')
NO_CONFIG = f'{T}NOTICE: Config file "/root/.config/rclone/rclone.conf" not found - using defaults'

CASES = [
    # (exit code, stderr, expected type, words the message must hold)
    (1, f'{T}CRITICAL: Failed to create file system for "nosuch:x": didn\'t find section in config file ("nosuch")',
     RemoteNotFound, "unknown rclone remote nosuch"),
    (1, f'{T}CRITICAL: Failed to create file system for ":nosuchbackend:": didn\'t find backend called "nosuchbackend"',
     RemoteNotFound, "unusable rclone remote"),
    (1, f'{T}CRITICAL: Failed to create file system for ":webdav,url=x,pass=PPP:": couldn\'t decrypt password: '
        "input too short when revealing password - is it obscured?", RemoteNotFound, "unusable rclone remote"),
    (5, REFUSED, RemoteUnreachable, "remote unreachable"),
    (1, f'{T}CRITICAL: Failed to create file system for ":webdav,url=\'http://127.0.0.1:9\':x": read metadata failed: '
        'Propfind "http://127.0.0.1:9/x": dial tcp 127.0.0.1:9: connect: connection refused',
     RemoteUnreachable, "connection refused"),
    (1, f'{T}ERROR : error listing: couldn\'t list files: Propfind "http://nosuch.invalid/": dial tcp: lookup '
        "nosuch.invalid on 10.0.0.53:53: no such host", RemoteUnreachable, "no such host"),
    (5, f"{T}ERROR : big.bin: Failed to send to output: unexpected EOF\n{T}NOTICE: Failed to cat: unexpected EOF",
     RemoteUnreachable, "unexpected EOF"),
    (5, f"{T}ERROR : x: Failed to copy: 503 Service Unavailable: try later", RemoteUnreachable, "503"),
    # an SFTP server gone mid-transfer (its process killed, the link cut): the sftp library's words
    (2, f"{T}ERROR : x: Failed to copy: connection lost", RemoteUnreachable, "connection lost"),
    # a WebDAV server killed as a file was being opened: the connection closed before any answer
    (2, f'{T}ERROR : x: Failed to copy: failed to open source object: Get "http://127.0.0.1:9/v1/x": EOF',
     RemoteUnreachable, 'Get "http://127.0.0.1:9/v1/x": EOF'),
    (5, f"{T}ERROR : x: something the remote will get over", RemoteUnreachable, "remote failed temporarily"),
    (3, f"{T}ERROR : error listing: directory not found\n{T}NOTICE: Failed to lsjson with 2 errors: last error "
        "was: error in ListJSON: directory not found", ObjectNotFound, "not found on the remote"),
    (3, f"{T}NOTICE: Failed to lsjson: directory not found", ObjectNotFound, "directory not found"),
    (4, f"{T}NOTICE: Failed to deletefile: /tmp/rx/absent is a directory or doesn't exist: object not found",
     ObjectNotFound, "object not found"),
    (2, f'{T}ERROR : F/x.tar: Failed to copy: path/not_found/', ObjectNotFound, "not found"),
    (2, f"{T}ERROR : F/a.tar: Failed to copy: write /scratch/me/F/a.tar.partial: no space left on device",
     LocalDiskFull, "no space left on device"),
    (2, f"{T}ERROR : F/a.tar: Failed to copy: write /home/me/F/a.tar: disk quota exceeded", LocalDiskFull, "quota"),
    (2, f"{T}ERROR : F/a.tar: Failed to copy: preallocate: file too big for remaining disk space",
     LocalDiskFull, "no space left on device"),
    (2, f"{T}ERROR : F/a.tar: Failed to copy: open /data/F/a.tar.partial: permission denied",
     LocalPermissionDenied, "permission denied (local)"),
    (2, f"{T}ERROR : F: Failed to copy: mkdir /data/F: read-only file system", LocalPermissionDenied, "read-only"),
    (2, f'{T}ERROR : F/a.tar: Failed to copy: sftp: "Permission denied" (SSH_FX_PERMISSION_DENIED)',
     RemoteDenied, "the remote refused"),
    (7, f"{T}ERROR : F/a.tar: Failed to copy: 403 Forbidden", RemoteDenied, "403 Forbidden"),
    # the login is refused (an expired or revoked token, a changed password): not one file's problem
    (1, f"{T}ERROR : a.tar: Failed to rcat: Update mkParentDir failed: 401 Unauthorized: 401 Unauthorized",
     RemoteLoginFailed, "refused the login"),
    (2, f"{T}ERROR : F/a.tar: Failed to copy: expired_access_token/", RemoteLoginFailed, "expired_access_token"),
    (1, f'{T}CRITICAL: Failed to create file system for "db:v1": couldn\'t fetch token: invalid_grant: maybe token '
        'expired? - try refreshing with "rclone config reconnect db:"', RemoteLoginFailed, "couldn't fetch token"),
    (7, f"{T}ERROR : account suspended by the provider", RemoteDenied, "the remote refused"),
    # the remote is full: its own words, or an SFTP server passing on its disk's ENOSPC (not ours)
    (2, f"{T}ERROR : F/a.tar: Failed to copy: insufficient_space/", RemoteFull, "the remote is full"),
    (2, f"{T}ERROR : F/a.tar: Failed to copy: 507 Insufficient Storage", RemoteFull, "507"),
    (1, f'{T}ERROR : a.tar: Post request put error: Update Close failed: sftp: "write /srv/v1/_cs_sync/incoming/'
        f'F/a.tar: no space left on device" (SSH_FX_FAILURE)', RemoteFull, "the remote is full"),
    (1, f'{T}ERROR : a.tar: Failed to copy: Update Close failed: sftp: "preallocate: file too big for remaining '
        f'disk space" (SSH_FX_FAILURE)', RemoteFull, "the remote is full"),
    (1, f'{T}ERROR : a.tar: Failed to copy: sftp: "write /home/u/a.tar: disk quota exceeded" (SSH_FX_FAILURE)',
     RemoteFull, "disk quota exceeded"),
    (130, "", RcloneInterrupted, "rclone was stopped (exit 130)"),
    (143, "", RcloneInterrupted, "exit 143"),
    (-9, "", RcloneInterrupted, "exit -9"),
    (-15, f"{T}ERROR : x: connection refused", RcloneInterrupted, "stopped"),
    (1, f"{T}Error: unknown flag: --no-such-flag", RcloneError, "rclone failed (exit 1)"),
    (2, f"{T}ERROR : something else went wrong", RcloneError, "something else went wrong"),
    (8, f"{T}ERROR : Max transfer limit reached as set by --max-transfer", RcloneError, "exit 8"),
    (9, "", RcloneError, "rclone exited with 9"),
    (2, f"{NO_CONFIG}\n{T}ERROR : the real reason", RcloneError, "the real reason"),
    # JSON log lines (transfers run with --use-json-log)
    (5, '{"level":"error","msg":"Failed to copy: dial tcp 127.0.0.1:9: connect: connection refused"}',
     RemoteUnreachable, "connection refused"),
]


@pytest.mark.parametrize(("code", "stderr", "kind", "words"), CASES,
                         ids=[f"{c[0]}-{c[2].__name__}-{i}" for i, c in enumerate(CASES)])
def test_classify(code, stderr, kind, words):
    err = classify(code, stderr, "listing dav:v1")
    assert type(err) is kind, err
    assert err.message.startswith("listing dav:v1: ")
    assert words in err.message
    assert "\n" not in err.one_line()
    assert "Config file" not in err.message


def test_exit_codes_are_the_documented_ones():
    assert classify(5, REFUSED, "x").exit_code == ExitCode.REMOTE == 6
    assert classify(3, "directory not found", "x").exit_code == 6
    assert classify(2, "write /a: no space left on device", "x").exit_code == ExitCode.LOCAL_IO == 9
    assert classify(2, "open /a: permission denied", "x").exit_code == 9
    assert classify(130, "", "x").exit_code == ExitCode.INTERRUPTED == 130
    assert classify(2, "odd", "x").exit_code == ExitCode.RCLONE == 5
    assert classify(2, "Failed to copy: insufficient_space/", "x").exit_code == ExitCode.REMOTE


def test_a_process_we_stopped_is_an_interruption_whatever_it_said():
    err = classify(1, REFUSED, "fetching F/a.tar", stopped=True)
    assert isinstance(err, RcloneInterrupted) and "stopped" in err.message


def test_one_objects_message_without_a_code_or_a_what():
    err = classify(None, "Failed to copy: object not found", "")
    assert isinstance(err, ObjectNotFound) and err.message.startswith("not found on the remote")
    assert isinstance(classify(None, "read tcp: connection reset by peer", ""), RemoteUnreachable)
    assert type(classify(None, "odd", "")) is RcloneError


def test_credentials_in_rclone_lines_are_redacted():
    err = classify(1, f'{T}CRITICAL: Failed to create file system for ":webdav,url=\'http://h\',user=me,'
                      f'pass=OBSCURED,bearer_token=TOKEN:": read metadata failed: connection refused', "listing")
    assert "OBSCURED" not in err.one_line() and "TOKEN" not in err.one_line() and "pass=XXX" in err.message


def test_is_fatal_decides_from_types():
    assert is_fatal(classify(5, REFUSED, "x"))
    assert is_fatal(classify(1, "didn't find section in config file (\"x\")", "x"))
    assert is_fatal(classify(2, "write /a: no space left on device", "x"))
    assert is_fatal(classify(130, "", "x"))
    assert is_fatal(classify(2, "Failed to copy: insufficient_space/", "x"))  # every other write would meet it
    assert is_fatal(classify(1, "Failed to copy: 401 Unauthorized", "x"))
    assert not is_fatal(classify(3, "directory not found", "x"))
    assert not is_fatal(classify(7, "403 Forbidden", "x"))
    assert not is_fatal(classify(2, "odd", "x"))


# -- the log parser and the retry loop (pure parts of the runner) ---------------------------

def test_rclone_log_keeps_what_explains_a_failure_and_drops_noise():
    from cs_sync.remote.rclone import RcloneLog

    sunk: list[str] = []
    stats: list[dict] = []
    log = RcloneLog(sunk.append, on_stats=stats.append)
    for line in [NO_CONFIG, f"{T}ERROR : plain text error", "",
                 '{"level":"notice","msg":"Config file \\"/x\\" not found - using defaults"}',
                 '{"level":"notice","msg":"","stats":{"bytes":5}}',
                 '{"level":"info","object":"F/a.tar","msg":"Copied (new)"}',
                 '{"level":"error","object":"F/b.tar","msg":"Failed to copy: boom"}',
                 '{"level":"error","msg":"connect :webdav,url=h,pass=SECRET: refused"}']:
        log.feed(line + "\n")
    assert stats == [{"bytes": 5}]
    assert log.lines == [f"{T}ERROR : plain text error", "Failed to copy: boom", "connect :webdav,url=h,pass=SECRET: refused"]
    assert not any("Config file" in s for s in sunk) and not any("SECRET" in s for s in sunk)
    assert "error: F/b.tar: Failed to copy: boom" in sunk and not any("Copied" in s for s in sunk)


def test_retries_only_while_unreachable_and_only_as_often_as_told():
    from cs_sync.remote.rclone import Rclone

    logged: list[str] = []
    rc = Rclone("rclone-not-run", log=logged.append, retry_waits=(0, 0))
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise RemoteUnreachable("listing x: remote unreachable: connection refused")
        return "ok"

    assert rc._retrying(flaky) == "ok" and len(calls) == 3 and len(logged) == 2
    calls.clear()

    def down():
        calls.append(1)
        raise RemoteUnreachable("listing x: remote unreachable")

    with pytest.raises(RemoteUnreachable):
        rc._retrying(down)
    assert len(calls) == 3  # the first try and one per wait

    def missing():
        calls.append(1)
        raise ObjectNotFound("listing x: not found on the remote")

    calls.clear()
    with pytest.raises(ObjectNotFound):
        rc._retrying(missing)
    assert len(calls) == 1  # not found is an answer: never retried
    rc.kill_running()  # the run is stopping: no more waiting
    calls.clear()
    with pytest.raises(RemoteUnreachable):
        rc._retrying(down)
    assert len(calls) == 1
