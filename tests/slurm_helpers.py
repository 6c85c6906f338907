"""Shared by the Slurm tests: the cluster fixture's checks and small job helpers."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

REQUIRED = os.environ.get("CS_SYNC_REQUIRE_SLURM") == "1"


def need_slurm() -> dict[str, str]:
    """The environment for Slurm clients; skip (or fail under CS_SYNC_REQUIRE_SLURM=1) without one."""
    why = None
    conf = os.environ.get("SLURM_CONF")
    if not conf:
        why = "SLURM_CONF is not set (start the test cluster: eval \"$(bash slurm/cluster.sh env)\")"
    elif not os.path.exists(conf):
        why = f"SLURM_CONF={conf} does not exist"
    elif shutil.which("sbatch") is None:
        why = "sbatch is not on PATH"
    else:
        ping = subprocess.run(["scontrol", "ping"], capture_output=True, text=True)
        if ping.returncode != 0 or "UP" not in ping.stdout:
            why = f"the Slurm controller does not answer: {(ping.stdout + ping.stderr).strip()}"
    if why:
        if REQUIRED:
            pytest.fail(f"Slurm required (CS_SYNC_REQUIRE_SLURM=1) but {why}")
        pytest.skip(f"no Slurm cluster: {why}")
    return {"SLURM_CONF": conf}
