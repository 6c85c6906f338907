"""The upload's scratch folder (``--tmp_dir``): per user and private by default.

A login node's ``/tmp`` is shared by every user. Parts, journals and logs written
there under one fixed name would be readable by all, and a second user's run would
find (and trust, or fail on) the first one's files. So the default is
``$CS_SYNC_TMP``, else ``{$TMPDIR or /tmp}/cs_sync-{user}``, created with mode 0700,
and a tmp dir that belongs to another user is refused.
"""

from __future__ import annotations

import getpass
import os
import stat
import tempfile
from pathlib import Path

from cs_sync.core.errors import LocalIOError, from_os_error

TMP_ENV = "CS_SYNC_TMP"


def user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        return str(os.getuid())


def default_tmp_dir() -> Path:
    """``$CS_SYNC_TMP``, else ``{system temp folder}/cs_sync-{user}``."""
    env = os.environ.get(TMP_ENV)
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / f"cs_sync-{user_name()}"


def _owner(uid: int) -> str:
    try:
        import pwd

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return f"uid {uid}"


def prepare_tmp_dir(path: Path | str) -> Path:
    """Create ``path`` (mode 0700) or check it: it must be a folder of this user's.

    The default folder (:func:`default_tmp_dir` without ``$CS_SYNC_TMP``) must not be a
    symbolic link and is made private (0700) if it is not. A folder given by the
    user keeps its permissions (a project may share one on purpose). Raises
    LocalIOError (exit 9) naming the folder and its owner.
    """
    path = Path(path)
    is_default = path == default_tmp_dir() and not os.environ.get(TMP_ENV)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            if is_default:
                raise LocalIOError(f"tmp dir {path} is a symbolic link (owned by {_owner(st.st_uid)})",
                                   hint=f"remove it, or give a folder of your own with --tmp_dir or {TMP_ENV}")
            st = os.stat(path)
    except OSError as exc:
        raise from_os_error(exc, f"cannot use tmp dir {path}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise LocalIOError(f"tmp dir {path} is not a folder", hint=f"give a folder with --tmp_dir or {TMP_ENV}")
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        raise LocalIOError(
            f"tmp dir {path} belongs to {_owner(st.st_uid)}, not to you ({user_name()})",
            hint=f"give a folder of your own with --tmp_dir or {TMP_ENV}, e.g. {Path(tempfile.gettempdir()) / ('cs_sync-' + user_name())}",
        )
    if is_default and st.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError as exc:
            raise from_os_error(exc, f"cannot make tmp dir {path} private") from None
    return path
