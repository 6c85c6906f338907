from cs_sync.archive.sidecar import PartInfo, SetSidecar
from cs_sync.core.naming import parse_part_name
from cs_sync.remote.sets import (
    RemoteFile,
    SetState,
    classify_listing,
    classify_parts,
    group_listing,
)


def parts(*names):
    return [parse_part_name("F", n) for n in names]


def test_single_and_split_complete():
    assert classify_parts(parts("F_BB.tar"))[0] == SetState.COMPLETE
    assert classify_parts(parts("F_BB_0.tar", "F_BB_1.tar", "F_BB_2f.tar"))[0] == SetState.COMPLETE


def test_incomplete_names_what_is_missing():
    state, problems = classify_parts(parts("F_BB_0.tar", "F_BB_2f.tar"))
    assert state == SetState.INCOMPLETE and "missing part _1" in problems[0]
    state, problems = classify_parts(parts("F_BB_0.tar", "F_BB_1.tar"))
    assert state == SetState.INCOMPLETE and "no final part" in problems[0]


def test_ambiguous():
    assert classify_parts(parts("F_BB_0.tar", "F_BB_1f.tar", "F_BB_2f.tar"))[0] == SetState.AMBIGUOUS
    assert classify_parts(parts("F_BB.tar", "F_BB_0.tar", "F_BB_1f.tar"))[0] == SetState.AMBIGUOUS
    assert classify_parts(parts("F_BB_0.tar", "F_BB_1f.tar", "F_BB_2.tar"))[0] == SetState.AMBIGUOUS


def test_group_listing_ignores_underscore_folders_and_finds_samples():
    files = [
        RemoteFile("list.txt", 10),
        RemoteFile("stocktake.csv", 10),
        RemoteFile("F/F_BB_0.tar", 100),
        RemoteFile("F/F_BB_1f.tar", 50),
        RemoteFile("F/F_REL01_BB.bin", 7),
        RemoteFile("_cs_sync/F_BB.json", 3),
        RemoteFile("_old/F/F_IM.tar", 3),
        RemoteFile("F/_junk/F_IM.tar", 3),
    ]
    lst = group_listing("v1", files)
    assert lst.has_list and lst.has_stocktake
    assert sorted(lst.sets) == [("F", "BB"), ("F", "SAMPLE_BB")]
    assert "F_BB.json" in lst.sidecar_files
    classify_listing(lst, {})
    assert lst.get("F", "BB").state == SetState.COMPLETE
    assert lst.get("F", "BB").size == 150
    assert lst.get("F", "SAMPLE_BB").state == SetState.COMPLETE


def test_sidecar_size_mismatch_and_missing():
    sc = SetSidecar("F", "BB", "v1", parts=[PartInfo("F_BB_0.tar", 100, "x"), PartInfo("F_BB_1f.tar", 50, "y")])
    lst = group_listing("v1", [RemoteFile("F/F_BB_0.tar", 100), RemoteFile("F/F_BB_1f.tar", 49)])
    classify_listing(lst, {("F", "BB"): sc})
    assert lst.get("F", "BB").state == SetState.MISMATCH
    lst = group_listing("v1", [RemoteFile("F/F_BB_0.tar", 100)])
    classify_listing(lst, {("F", "BB"): sc})
    rs = lst.get("F", "BB")
    assert rs.state == SetState.INCOMPLETE and "F_BB_1f.tar" in rs.problems[0]


def _sample_sidecar(part="F_REL01_BB.bin", size=7):
    from cs_sync.archive.sidecar import MemberInfo

    return SetSidecar("F", "SAMPLE_BB", "v1", parts=[], members=[
        MemberInfo(name=part, part=part, offset=0, size=size, mtime=0.0, sha256="x", source="Runs/F/F_REL01/BB/Acc/BB.bin")
    ])


def test_sample_with_sidecar_complete_missing_and_mismatch():
    lst = classify_listing(group_listing("v1", [RemoteFile("F/F_REL01_BB.bin", 7)]), {("F", "SAMPLE_BB"): _sample_sidecar()})
    assert lst.get("F", "SAMPLE_BB").state == SetState.COMPLETE
    lst = classify_listing(group_listing("v1", [RemoteFile("F/F_BB.tar", 7)]), {("F", "SAMPLE_BB"): _sample_sidecar()})
    rs = lst.get("F", "SAMPLE_BB")
    assert rs.is_sample and rs.state == SetState.INCOMPLETE and "F_REL01_BB.bin" in rs.problems[0]
    lst = classify_listing(group_listing("v1", [RemoteFile("F/F_REL01_BB.bin", 8)]), {("F", "SAMPLE_BB"): _sample_sidecar()})
    assert lst.get("F", "SAMPLE_BB").state == SetState.MISMATCH
    lst = classify_listing(group_listing("v1", [RemoteFile("F/F_BB.bin", 7)]), {("F", "SAMPLE_BB"): _sample_sidecar()})
    assert lst.get("F", "SAMPLE_BB").state == SetState.INCOMPLETE


def test_malformed_part_names_are_unexpected_files_of_their_set_not_types():
    files = [RemoteFile("F/F_BB_0.tar", 100), RemoteFile("F/F_BB_1f.tar", 50), RemoteFile("F/F_BB_-1.tar", 9),
             RemoteFile("F/F_BB_3ff.tar", 9), RemoteFile("G/G_IM_01.tar", 5), RemoteFile("F/F_BB.old.tar", 1)]
    lst = classify_listing(group_listing("v1", files), {})
    assert sorted(lst.sets) == [("F", "BB"), ("G", "IM")]  # no BB_-1, BB_3ff or IM_01 types
    bb = lst.get("F", "BB")
    assert bb.state == SetState.AMBIGUOUS
    assert "F_BB_-1.tar" in bb.problems[-1] and "F_BB_3ff.tar" in bb.problems[-1]
    assert bb.ordered_part_names() == ["F_BB_0.tar", "F_BB_1f.tar"]  # never fetched as parts
    assert lst.get("G", "IM").state == SetState.AMBIGUOUS and not lst.get("G", "IM").parts
    assert lst.other_files == ["F/F_BB.old.tar"]


def test_malformed_name_beside_a_sidecar_is_reported_once():
    sc = SetSidecar("F", "BB", "v1", parts=[PartInfo("F_BB.tar", 100, "x")])
    lst = group_listing("v1", [RemoteFile("F/F_BB.tar", 100), RemoteFile("F/F_BB_-1.tar", 3)])
    classify_listing(lst, {("F", "BB"): sc})
    rs = lst.get("F", "BB")
    assert rs.state == SetState.AMBIGUOUS
    assert rs.problems == ["not valid part names (left alone): F_BB_-1.tar"]
