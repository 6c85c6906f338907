import pytest

from cs_sync.core.errors import FaultListError
from cs_sync.inputs.faultlist import parse_fault_list


def test_three_forms_and_comments():
    entries = parse_fault_list("# header\n\nAlpineK2T 31r\nHope 31\nWairau 50 10r  # skip ten\n")
    assert [(e.name, e.n_rels, e.first, e.last) for e in entries] == [
        ("AlpineK2T", 31, 1, 31),
        ("Hope", 31, 1, 31),
        ("Wairau", 40, 11, 50),
    ]


@pytest.mark.parametrize(
    "text,needle",
    [
        ("A xr\n", "'xr' is not a number"),
        ("A -3\n", "negative"),
        ("A 10 10r\n", "skip 10 must be less"),
        ("A 10\nA 12\n", "listed twice"),
        ("A\n", "expected 'FAULT COUNT [SKIP]'"),
        ("\n# only comments\n", "no faults listed"),
    ],
)
def test_bad_lines_name_file_and_line(text, needle):
    with pytest.raises(FaultListError) as ei:
        parse_fault_list(text, "my/list.txt")
    msg = ei.value.one_line()
    assert needle in msg
    assert msg.startswith("my/list.txt")


def test_line_number_reported():
    with pytest.raises(FaultListError, match=r"list.txt:3: .*'Bad 1 x'"):
        parse_fault_list("A 3\n\nBad 1 x\n", "list.txt")


def test_entries_remember_their_line():
    entries = parse_fault_list("# h\n\nA 3\nB 4 1r\n")
    assert [(e.name, e.line) for e in entries] == [("A", 3), ("B", 4)]
    assert entries[0] == parse_fault_list("A 3\n")[0]  # the line is not part of equality


def test_a_byte_order_mark_is_not_part_of_the_first_fault():
    assert [e.name for e in parse_fault_list("\ufeffAlpineK2T 2r\r\nHope1888\t2\r\n")] == ["AlpineK2T", "Hope1888"]


def test_a_count_far_above_any_version_is_a_typo():
    with pytest.raises(FaultListError, match=r"list.txt:1: realisation count '311111111r' is more than 9999"):
        parse_fault_list("AlpineK2T 311111111r\n")
    assert parse_fault_list("AlpineK2T 9999\n")[0].count == 9999
