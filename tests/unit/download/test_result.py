"""Exit-code precedence of a download run (documented in the README)."""

import pytest

from cs_sync.core.errors import LocalIOError
from cs_sync.download.engine import DownloadResult, SetOutcome, SetStatus

OK, SKIP, BAD, REF, NOT = SetStatus.FETCHED, SetStatus.SKIPPED, SetStatus.FAILED, SetStatus.INCOMPLETE, SetStatus.NOT_ATTEMPTED


def _result(*sets, unmatched=(), fatal=None):
    r = DownloadResult("v1", "r", "d", unmatched=list(unmatched), fatal=fatal)
    for i, (status, codes) in enumerate(sets):
        r.sets.append(SetOutcome(f"F{i}", "BB", status, codes=set(codes)))
    return r


@pytest.mark.parametrize(
    "sets,unmatched,code",
    [
        ([(OK, ()), (SKIP, ())], (), 0),
        ([(OK, ()), (BAD, {8})], (), 8),  # only corrupted data
        ([(BAD, {8}), (BAD, {8})], (), 8),
        ([(OK, ()), (BAD, {8}), (BAD, {6})], (), 7),  # mixed kinds of failure
        ([(OK, ()), (REF, ())], (), 7),  # an incomplete set refused
        ([(OK, ()), (BAD, {8}), (REF, ())], (), 7),
        ([(OK, ())], ["--inc_fault X"], 7),  # a name that matched nothing
        ([(BAD, {6}), (BAD, {6})], (), 6),  # every set failed the same way: the remote went away
        ([(OK, ()), (BAD, {6})], (), 7),
    ],
)
def test_exit_code_precedence(sets, unmatched, code):
    r = _result(*sets, unmatched=unmatched)
    assert r.exit_code() == code
    err = r.error()
    assert (err is None) == (code == 0)
    if err is not None:
        assert int(err.exit_code) == code and "\n" not in err.one_line()


def test_local_disk_error_wins():
    r = _result((OK, ()), (NOT, ()), fatal=LocalIOError("no space left on device while writing x"))
    assert r.exit_code() == 9 and "no space left" in r.error().one_line()
