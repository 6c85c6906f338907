"""The exit code and the one error line of a run over sets (download, index, verify).

Each stage keeps its own set states and words; what they share is the precedence of the
exit codes and the shape of the line printed on stderr, kept here so they cannot drift.
"""

from __future__ import annotations

from collections.abc import Iterable

from cs_sync.core.errors import CsSyncError, ExitCode


def sets_exit_code(failed_codes: list[set[int]], *, refused: int, good: int, unmatched: int) -> int:
    """The exit code of a run that was not stopped early, from the exit codes of each failed
    (or not attempted) set, and how many sets were refused, went through, or option values
    matched nothing: 0 when nothing failed; the one failure code when every set failed the
    same way; 7 when anything was refused, matched nothing or failed other than by a bad
    checksum or size; else 8 (only corrupted data)."""
    if not failed_codes and not refused and not unmatched:
        return int(ExitCode.OK)
    codes = set().union(*failed_codes) if failed_codes else set()
    if failed_codes and not good and not refused and not unmatched and len(codes) == 1:
        return next(iter(codes))
    if refused or unmatched or codes - {int(ExitCode.VERIFY)}:
        return int(ExitCode.INCOMPLETE)
    return int(ExitCode.VERIFY)


def set_counts(counts: Iterable[tuple[int, str]], total: int) -> list[str]:
    """``"3 of 10 sets failed"`` for each (count, word) whose count is not 0."""
    return [f"{n} of {total} sets {word}" for n, word in counts if n]


def run_error(code: int, bits: list[str], *, unmatched: int, hint: str, tail: str = "") -> CsSyncError:
    """The one line printed on stderr: the findings joined, option values that matched nothing
    last, carrying the run's exit code."""
    if unmatched:
        bits = [*bits, f"{unmatched} option value(s) matched nothing"]
    err = CsSyncError("; ".join(bits) + tail, hint=hint)
    err.exit_code = ExitCode(code)
    return err
