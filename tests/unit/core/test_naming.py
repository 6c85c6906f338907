import pytest

from cs_sync.core import naming


@pytest.mark.parametrize(
    "index,count,expected",
    [(0, 1, "F_BB.tar"), (0, 3, "F_BB_0.tar"), (1, 3, "F_BB_1.tar"), (2, 3, "F_BB_2f.tar")],
)
def test_part_name(index, count, expected):
    assert naming.part_name("F", "BB", index, count) == expected


@pytest.mark.parametrize(
    "fault,name,parsed",
    [
        ("F", "F_BB.tar", ("BB", None, True)),
        ("F", "F_BB_0.tar", ("BB", 0, False)),
        ("F", "F_BB_12f.tar", ("BB", 12, True)),
        ("My_Fault", "My_Fault_Source_1.tar", ("Source", 1, False)),
        ("F", "F_SAMPLE_BB.tar", ("SAMPLE_BB", None, True)),
        ("F", "G_BB.tar", None),
        ("F", "F_BB.tar.partial", None),
        ("F", "F_BB_-1.tar", None),
        ("F", "F_BB_3ff.tar", None),
        ("F", "F_BB_01.tar", None),
        ("F", "F_BB_.tar", None),
        ("F", "F_BB.old.tar", None),
        ("F", "F__3.tar", None),
    ],
)
def test_parse_part_name(fault, name, parsed):
    got = naming.parse_part_name(fault, name)
    if parsed is None:
        assert got is None
    else:
        assert (got.dtype, got.index, got.final) == parsed
        assert got.name == name  # a parsed name always formats back to itself


@pytest.mark.parametrize(
    "name,claimed",
    [
        ("F_BB_-1.tar", "BB"), ("F_BB_3ff.tar", "BB"), ("F_BB_01.tar", "BB"), ("F_BB_00f.tar", "BB"),
        ("F_BB_.tar", "BB"), ("F_BB_1.5.tar", "BB"), ("F_BB_+2.tar", "BB"), ("F_BB_3x_2f.tar", "BB"),
        ("F_SAMPLE_BB_7F.tar", "SAMPLE_BB"),
        # parts, or not part-like at all: no claim
        ("F_BB.tar", None), ("F_BB_2f.tar", None), ("F_IM_calc_1.tar", None), ("F_BB.old.tar", None),
        ("G_BB_-1.tar", None), ("F_BB_-1.tar.partial", None),
    ],
)
def test_malformed_part_names_claim_their_type(name, claimed):
    assert naming.malformed_part_type("F", name) == claimed
    if claimed is not None:
        assert naming.parse_part_name("F", name) is None


@pytest.mark.parametrize(
    "rel,member",
    [
        ("F_REL01/BB/Acc/BB.bin", "F_REL01_BB.bin"),
        ("F/BB/Acc/BB.bin", "F_BB.bin"),
        ("F_REL01/IM_calc/F_REL01.csv", "F_REL01.csv"),
        ("Srf/F_REL03.info", "F_REL03.info"),
        ("vm_params.yaml", "vm_params.yaml"),
        ("F_REL02.pertb.csv", "F_REL02.pertb.csv"),
    ],
)
def test_member_name(rel, member):
    assert naming.member_name("F", rel) == member


def test_event_detection_does_not_confuse_prefix_faults():
    assert naming.find_event("Alpine", "AlpineK2T_REL01/BB/Acc/BB.bin") is None
    assert naming.event_rel("F", "F_REL07") == 7
    assert naming.event_rel("F", "F") is None


def test_sample_names():
    assert naming.parse_sample_name("F", "F_REL01_BB.bin") == "F_REL01"
    assert naming.parse_sample_name("F", "F_BB.bin") == "F"
    assert naming.parse_sample_name("F", "G_BB.bin") is None
