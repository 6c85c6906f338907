"""Which sets, parts and members a download wants: table-driven, no rclone, no disk."""

import pytest

from cs_sync.archive.sidecar import MemberInfo, PartInfo, SetSidecar
from cs_sync.core.errors import InputError
from cs_sync.download.selection import (
    MemberFilter,
    member_event,
    parse_rel,
    select,
    shard_selection,
)
from cs_sync.remote.sets import RemoteFile, classify_listing, group_listing


@pytest.mark.parametrize(
    "text,rel,fault",
    [("7", 7, None), ("07", 7, None), ("REL07", 7, None), ("rel7", 7, None), ("AlpineK2T_REL07", 7, "AlpineK2T"),
     ("My_Fault_REL12", 12, "My_Fault"), ("median", None, None), ("MEDIAN", None, None)],
)
def test_parse_rel(text, rel, fault):
    spec = parse_rel(text)
    assert (spec.rel, spec.fault) == (rel, fault)


@pytest.mark.parametrize("text", ["", "x", "REL", "Alpine_7", "7a", "-1"])
def test_parse_rel_rejects(text):
    with pytest.raises(InputError, match="is not a realisation"):
        parse_rel(text)


@pytest.mark.parametrize(
    "name,event",
    [("F_REL07_BB.bin", "F_REL07"), ("F_BB.bin", "F"), ("F_REL02.csv", "F_REL02"), ("F.csv", "F"),
     ("F_REL03.pertb.csv", "F_REL03"), ("vm_params.yaml", None), ("F_REL01/BB/Acc/BB.bin", "F_REL01"),
     ("F/BB/Acc/BB.bin", "F"), ("nzvm.cfg", None), ("G_REL01_BB.bin", None),
     # older archives with paths from the version's root: the first 'F' folder is the fault's
     ("Runs/F/F/BB/Acc/BB.bin", "F"), ("Runs/F/F_REL03/BB/Acc/BB.bin", "F_REL03"),
     ("Runs/F/F_REL03/IM_calc/F_REL03.csv", "F_REL03"), ("Data/VMs/F/vm_params.yaml", None),
     ("Data/VMs/F/F_REL02.pertb.csv", "F_REL02"), ("Data/Sources/F/Srf/F.info", "F"),
     ("Data/Sources/F/Sim_params/F_REL04.yaml", "F_REL04"), ("F/vm_params.yaml", None)],
)
def test_member_event(name, event):
    assert member_event("F", name) == event


def test_filter_rel_and_member_combine():
    flt = MemberFilter.from_options(["7", "median"], [])
    assert flt.wants("F", "F_REL07_BB.bin") and flt.wants("F", "F_BB.bin") and flt.wants("F", "F.csv")
    assert not flt.wants("F", "F_REL08_BB.bin") and not flt.wants("F", "vm_params.yaml")
    qualified = MemberFilter.from_options(["G_REL07"], [])
    assert not qualified.wants("F", "F_REL07_BB.bin") and qualified.wants("G", "G_REL07_BB.bin")
    both = MemberFilter.from_options(["7"], ["*.csv"])
    assert both.wants("F", "F_REL07.csv") and not both.wants("F", "F_REL07_BB.bin") and not both.wants("F", "F_REL08.csv")
    glob = MemberFilter.from_options([], ["*_REL01_BB.bin", "vm_*"])
    assert glob.wants("F", "F_REL01_BB.bin") and glob.wants("F", "vm_params.yaml") and not glob.wants("F", "F_BB.bin")
    assert glob.wants("F", "dir/vm_params.yaml")  # basename matches too
    assert MemberFilter().signature() == "*" and not MemberFilter().active
    assert MemberFilter.from_options(["7", "8"]).signature() == MemberFilter.from_options(["8", "7"]).signature()
    assert MemberFilter.from_options(["7"]).signature() != MemberFilter.from_options(["8"]).signature()


def _sidecar(fault, dtype, parts):
    """parts: {part name: [(member, size)]}; offsets as a TAR would have them (512-byte headers)."""
    pinfos, members = [], []
    for pname, mems in parts.items():
        off = 0
        for name, size in mems:
            off += 512
            members.append(MemberInfo(name=name, part=pname, offset=off, size=size, mtime=0.0, sha256="s" + name,
                                      source=f"Runs/{fault}/{name}"))
            off += (size + 511) // 512 * 512
        pinfos.append(PartInfo(pname, off + 1024, "p" + pname))
    return SetSidecar(fault, dtype, "v1", parts=pinfos, members=members)


def _listing(with_sidecar=True):
    bb = _sidecar("F", "BB", {"F_BB_0.tar": [("F_BB.bin", 1000), ("F_REL01_BB.bin", 1000)],
                              "F_BB_1f.tar": [("F_REL02_BB.bin", 1000)]})
    im = _sidecar("F", "IM", {"F_IM.tar": [("F.csv", 10), ("F_REL01.csv", 10), ("F_REL02.csv", 10)]})
    g = _sidecar("G", "BB", {"G_BB.tar": [("G_REL07_BB.bin", 50)]})
    files = [RemoteFile(f"{sc.fault}/{p.name}", p.size) for sc in (bb, im, g) for p in sc.parts]
    files += [RemoteFile("F/F_BB.bin", 1000), RemoteFile("H/H_BB_0.tar", 10), RemoteFile("H/H_BB_2f.tar", 10),
              RemoteFile("K/K_IM_0f.tar", 5), RemoteFile("K/K_IM_1f.tar", 5)]
    sidecars = {(sc.fault, sc.dtype): sc for sc in (bb, im, g)} if with_sidecar else {}
    return classify_listing(group_listing("v1", files), sidecars)


def test_select_everything_complete_and_refuses_broken_sets():
    sel = select(_listing())
    got = sorted((s.fault, s.dtype) for s in sel.sets)
    assert got == [("F", "BB"), ("F", "IM"), ("F", "SAMPLE_BB"), ("G", "BB")]
    refused = {(r.fault, r.dtype): r for r in sel.refused}
    assert set(refused) == {("H", "BB"), ("K", "IM")}
    assert "missing part _1" in refused[("H", "BB")].problems[0]
    assert "two final parts" in refused[("K", "IM")].problems[0]
    assert not sel.unmatched
    assert all(p.whole for s in sel.sets for p in s.parts)
    forced = select(_listing(), allow_incomplete=True)
    assert not forced.refused
    h = next(s for s in forced.sets if s.fault == "H")
    assert h.forced and not h.verified and [p.name for p in h.parts] == ["H_BB_0.tar", "H_BB_2f.tar"]


def test_select_faults_types_and_unmatched_names():
    sel = select(_listing(), types=["bb", "Nope"], inc_faults=["F", "G", "Typo"], exc_faults=["G", "Other"])
    assert [(s.fault, s.dtype) for s in sel.sets] == [("F", "BB")]
    text = " | ".join(sel.unmatched)
    assert "--inc_fault Typo" in text and "--exc_fault Other" in text and "-t 'Nope'" in text
    assert "-t bb" not in text


def test_select_rel_ranges_members_and_reports_unmatched():
    sel = select(_listing(), types=["BB", "IM", "SAMPLE_BB"], inc_faults=["F"],
                 member_filter=MemberFilter.from_options(["1", "33"], []))
    by = {(s.fault, s.dtype): s for s in sel.sets}
    assert set(by) == {("F", "BB"), ("F", "IM")}  # the sample is the median's: not wanted
    bb = by[("F", "BB")]
    [p0] = bb.parts  # F_BB_1f.tar holds only REL02: not fetched at all
    assert p0.name == "F_BB_0.tar" and not p0.whole and [m.name for m in p0.ranged] == ["F_REL01_BB.bin"]
    assert p0.fetch_size == 1000 and bb.fetch_size == 1000 and bb.full_size > 3000
    assert [m.name for m in by[("F", "IM")].parts[0].ranged] == ["F_REL01.csv"]
    assert sel.unmatched == ["--rel 33: matches no member of the selected sets"]
    assert [r.dtype for r in sel.nothing_wanted] == ["SAMPLE_BB"]


def test_select_whole_part_when_every_member_is_wanted_and_median_sample():
    sel = select(_listing(), inc_faults=["F"], member_filter=MemberFilter.from_options([], ["F_REL02_BB.bin", "F_BB.bin"]))
    by = {(s.fault, s.dtype): s for s in sel.sets}
    parts = {p.name: p for p in by[("F", "BB")].parts}
    assert not parts["F_BB_0.tar"].whole and parts["F_BB_1f.tar"].whole
    assert by[("F", "SAMPLE_BB")].parts[0].plain


def test_select_without_sidecar_defers_member_matching_to_extraction():
    sel = select(_listing(with_sidecar=False), inc_faults=["F"], member_filter=MemberFilter.from_options(["99"], []))
    assert sel.filter_unknown and not sel.unmatched
    bb = next(s for s in sel.sets if s.dtype == "BB")
    assert not bb.verified and all(p.whole and p.sha256 is None for p in bb.parts)


def test_shards_cover_every_fault_once_and_are_stable():
    sel = select(_listing(), allow_incomplete=True)
    shards = [shard_selection(sel, i, 2) for i in range(2)]
    faults = [sorted({s.fault for s in sh.sets}) for sh in shards]
    assert sorted(faults[0] + faults[1]) == ["F", "G", "H", "K"]
    assert not set(faults[0]) & set(faults[1])
    again = [sorted({s.fault for s in shard_selection(sel, i, 2).sets}) for i in range(2)]
    assert again == faults


def test_shard_weights_agree_with_the_slurm_plan():
    """``cs-sync slurm download`` plans shards with its own weights; each task's --shard must agree."""
    from pathlib import Path

    from cs_sync.download.engine import DownloadSettings
    from cs_sync.slurm.submit import download_weights

    for opts in ({}, {"types": ["BB"]}, {"inc_faults": ["F", "H"]}, {"exc_faults": ["G"], "types": ["BB", "IM"]}):
        sel = select(_listing(), member_filter=MemberFilter.from_options(["1"]), **opts)
        settings = DownloadSettings(version="v1", remote="r:", download_dir=Path("d"), rels=("1",),
                                    **{k: tuple(v) for k, v in opts.items()})
        assert sel.weights == download_weights(_listing(), settings)
