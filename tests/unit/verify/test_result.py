"""verify's result: what the summary and the error count."""

from cs_sync.verify.result import Finding, VerifyResult, summary_lines


def test_a_set_with_several_missing_parts_counts_as_one_incomplete_set():
    r = VerifyResult(version="v22p12", remote="dbx:cs", sets_checked=3)
    r.missing += [Finding("F", "BB", "F_BB_0.tar", "listed in the sidecar, not on the remote"),
                  Finding("F", "BB", "F_BB_2.tar", "listed in the sidecar, not on the remote"),
                  Finding("G", "IM", "", "incomplete: missing part _1")]
    assert r.sets_incomplete == 2
    assert "3 checked, 0 unindexed (no sidecar: cs-sync index records one), 2 incomplete" in summary_lines(r)[1]
    err = r.error()
    assert err is not None and "2 set(s) missing or incomplete" in err.message
    assert sum(line.startswith("  missing: ") for line in summary_lines(r)) == 3  # every finding still listed
