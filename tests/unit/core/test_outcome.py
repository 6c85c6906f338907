"""The exit-code precedence and error line shared by download, index and verify."""

from cs_sync.core.errors import ExitCode
from cs_sync.core.outcome import run_error, set_counts, sets_exit_code


def test_nothing_failed_is_ok():
    assert sets_exit_code([], refused=0, good=3, unmatched=0) == 0


def test_every_set_failed_the_same_way_gives_that_code():
    assert sets_exit_code([{6}, {6}], refused=0, good=0, unmatched=0) == 6


def test_only_corrupted_data_is_8_even_with_good_sets():
    assert sets_exit_code([{8}], refused=0, good=2, unmatched=0) == 8


def test_refused_unmatched_or_other_failures_are_7():
    assert sets_exit_code([], refused=1, good=2, unmatched=0) == 7
    assert sets_exit_code([], refused=0, good=2, unmatched=1) == 7
    assert sets_exit_code([{6}], refused=0, good=1, unmatched=0) == 7
    assert sets_exit_code([{6}, {8}], refused=0, good=0, unmatched=0) == 7


def test_error_line_counts_sets_and_unmatched_last():
    bits = set_counts(((2, "failed"), (0, "refused"), (1, "not attempted")), 5)
    err = run_error(7, bits, unmatched=1, hint="re-run", tail="; details above")
    assert err.message == "2 of 5 sets failed; 1 of 5 sets not attempted; 1 option value(s) matched nothing; details above"
    assert err.exit_code == ExitCode.INCOMPLETE and err.hint == "re-run"
    assert bits == ["2 of 5 sets failed", "1 of 5 sets not attempted"]  # not changed in place
