"""The byte-counting proxy under its older name: :class:`throttle_proxy.ThrottleProxy` without limits.

Selective-retrieval tests put it between rclone and ``rclone serve webdav`` to check
that only byte ranges were read, independently of what rclone itself reports.
"""

from __future__ import annotations

from throttle_proxy import ThrottleProxy as CountingProxy

__all__ = ["CountingProxy"]
