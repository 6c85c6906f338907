"""What every entry point shares: option spelling, --debug, and the error-to-exit-code edge."""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from cs_sync.core.errors import CsSyncError, ExitCode, InputError
from cs_sync.core.naming import DEFAULT_REMOTE, REMOTE_ENV
from cs_sync.core.safe_names import is_flat_name
from cs_sync.remote.redact import redact


class Parser(argparse.ArgumentParser):
    """ArgumentParser whose long options answer to both ``--out_file`` and ``--out-file``."""

    def add_argument(self, *names, **kwargs):  # type: ignore[override]
        spelled = list(names)
        for n in names:
            if n.startswith("--"):
                for alt in (n.replace("_", "-"), n[:2] + n[2:].replace("-", "_")):
                    if alt not in spelled:
                        spelled.append(alt)
        return super().add_argument(*spelled, **kwargs)

    def error(self, message: str) -> None:  # one line, exit 2
        self.print_usage(sys.stderr)
        self.exit(int(ExitCode.USAGE), f"{self.prog}: error: {message}\n")


def positive_int(text: str) -> int:
    """argparse type for counts such as --transfers and --threads (at least 1)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


MIN_PART_ENV = "CS_SYNC_TEST_MIN_PART_SIZE"  # for tests and demos of tiny trees only
MIN_MAX_SIZE = 1024**2  # a --max-size below this is refused: nearly every file would get a part of its own


def rate(text: str) -> float:
    """argparse type for --bwlimit: bytes/s from ``20M`` (20 MiB/s), ``500K``, ``8M/s``, ``100MB``."""
    from cs_sync.core.sizes import parse_rate

    try:
        return parse_rate(text, option="--bwlimit")
    except InputError:
        raise argparse.ArgumentTypeError(f"cannot read rate {text!r} (use e.g. 20M = 20 MiB/s, 500K, 100MB)") from None


def min_part_size() -> int:
    """The smallest --max-size accepted (1 MiB; tests of tiny trees lower it with CS_SYNC_TEST_MIN_PART_SIZE)."""
    try:
        return int(os.environ.get(MIN_PART_ENV) or MIN_MAX_SIZE)
    except ValueError:
        return MIN_MAX_SIZE


def add_types_option(p: argparse.ArgumentParser, help_text: str) -> None:
    """-t the same way in every command: several values after one -t, or -t repeated; names
    are read ignoring case, and a wrong one is answered with the known names."""
    p.add_argument("-t", "--data_types", "--types", dest="types", action="extend", nargs="+", default=[],
                   metavar="TYPE", help=help_text + " (several allowed: -t BB IM or -t BB -t IM; case does not matter)")


def add_bwlimit_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--bwlimit", type=rate, default=None, metavar="RATE",
                   help="limit the run's total transfer rate, e.g. 20M (20 MiB/s) or 500K: divided evenly among the "
                        "rclone processes the run has transferring at once, so the run stays under RATE (it may "
                        "use less while fewer are running). rclone's own --bwlimit and RCLONE_BWLIMIT apply to each "
                        "rclone process separately; under Slurm each task gets RATE")


def add_version_view_options(p: argparse.ArgumentParser) -> None:
    """CS_VER (optional), --remote and --manifest as cs-sync status and cs-sync report both read them."""
    p.add_argument("cs_ver", nargs="?", default=None, metavar="CS_VER", help="a version folder, e.g. v22p12")
    p.add_argument("--remote", default=None, metavar="ROOT",
                   help="remote root holding the versions (default: $CS_SYNC_REMOTE, else dropbox:/QuakeCoRE/Public/Cybershake)")
    p.add_argument("--manifest", "--files_to_sync", type=Path, default=None, metavar="FILES_TO_SYNC",
                   help="files_to_sync.yaml of this version: also show stale and not-uploaded sets")


def finish_run(lines: list[str], err: CsSyncError | None) -> int:
    """Print a run's summary lines; raise its error (the edge prints it and exits with its code), else 0."""
    for line in lines:
        print(line)
    if err is not None:
        raise err
    return 0


def resolve_remote(given: str | None) -> str:
    """--remote, else $CS_SYNC_REMOTE, else the QuakeCoRE Dropbox folder.

    A blank --remote or $CS_SYNC_REMOTE (``--remote "$R"`` with R unset, an empty remote
    file read by a Slurm script) is refused: taking the default then would read or write
    the shared archive instead of the remote meant.
    """
    if given is not None:
        if not given.strip():
            raise InputError(f"--remote {given!r} is empty", hint="give a remote root, e.g. dropbox:/QuakeCoRE/Public/Cybershake")
        return given
    env = os.environ.get(REMOTE_ENV)
    if env is not None:
        if not env.strip():
            raise InputError(f"${REMOTE_ENV} is set but empty ({env!r})",
                             hint=f"set it to a remote root, or unset it to use {DEFAULT_REMOTE}")
        return env
    return DEFAULT_REMOTE


def version_arg(text: str) -> str:
    """CS_VER as given (a trailing '/' dropped), once checked to be one folder name: ``v22p12``,
    not ``v22p12/AlpineK2T``, '..' or '' (each of which would name another folder of the remote)."""
    name = text.rstrip("/")
    if not is_flat_name(name) or name.startswith("_"):
        raise InputError(f"CS_VER {text!r} is not a version name",
                         hint="give one version folder, e.g. v22p12; choose faults with --inc_fault")
    return name


def positive_seconds(text: str) -> float:
    """argparse type for intervals such as --progress-interval: a number of seconds above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a number of seconds above 0, got {text!r}")
    return value


def make_parser(prog: str, description: str) -> Parser:
    p = Parser(prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--debug", action="store_true", help="show tracebacks and rclone commands")
    return p


def _on_sigterm(signum, frame):
    """Slurm's time limit (SIGTERM), a closed screen window or ssh session (SIGHUP): stop as Ctrl-C
    does, so the lock is released and the journals closed; killed outright, the run would leave
    its lock for a re-run from another login node to trip over."""
    raise KeyboardInterrupt


def run(prog: str, fn: Callable[[], int], debug: bool) -> int:
    """Call ``fn``; turn our errors into one stderr line and an exit code."""
    if os.name == "posix":
        signal.signal(signal.SIGTERM, _on_sigterm)
        if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:  # nohup: keep ignoring it
            signal.signal(signal.SIGHUP, _on_sigterm)
    try:
        return int(fn())
    except CsSyncError as exc:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {redact(exc.one_line())}", file=sys.stderr)
        return int(exc.exit_code)
    except KeyboardInterrupt:
        try:
            print(f"{prog}: interrupted; re-run the same command to continue", file=sys.stderr)
        except OSError:  # the terminal went away with the SIGHUP
            pass
        return int(ExitCode.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitCode.OK)
    except Exception as exc:  # a bug: say so plainly
        if debug:
            traceback.print_exc()
        print(
            f"{prog}: internal error: {type(exc).__name__}: {redact(str(exc))} (re-run with --debug and report it)",
            file=sys.stderr,
        )
        return int(ExitCode.INTERNAL)


def main_wrapper(prog: str, body: Callable[[argparse.Namespace], int], parser: argparse.ArgumentParser,
                 argv: Sequence[str] | None) -> int:
    args = parser.parse_args(argv)
    return run(prog, lambda: body(args), getattr(args, "debug", False))
