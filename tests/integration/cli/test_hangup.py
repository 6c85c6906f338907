"""A hang-up (a closed screen window or ssh session) stops a command as Ctrl-C does, except
under nohup, which asked for hang-ups to be ignored."""

from __future__ import annotations

import subprocess
import sys

import pytest

# a command body that hangs itself up, then would finish normally
BODY = """
import os, signal, sys, time
from cs_sync.cli.common import run
{ignore}
def body():
    os.kill(os.getpid(), signal.SIGHUP)
    time.sleep(2)
    print("finished")
    return 0
sys.exit(run("cs-sync-upload", body, False))
"""


@pytest.mark.parametrize("nohup", [False, True])
def test_sighup_interrupts_unless_ignored_by_nohup(nohup):
    ignore = "signal.signal(signal.SIGHUP, signal.SIG_IGN)" if nohup else ""
    proc = subprocess.run([sys.executable, "-c", BODY.format(ignore=ignore)], capture_output=True, text=True,
                          timeout=60)
    if nohup:
        assert proc.returncode == 0 and "finished" in proc.stdout, proc.stdout + proc.stderr
    else:
        assert proc.returncode == 130, proc.stdout + proc.stderr
        assert proc.stderr == "cs-sync-upload: interrupted; re-run the same command to continue\n"
        assert "finished" not in proc.stdout
