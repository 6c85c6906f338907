"""Planning is pure: manifests and remote listings in, sets, parts and decisions out."""

import pytest

from cs_sync.archive.sidecar import MemberInfo, PartInfo, SetSidecar
from cs_sync.archive.tar_write import tar_size
from cs_sync.core.errors import PlanError
from cs_sync.core.naming import parse_part_name
from cs_sync.inputs.config import load_config, parse_config
from cs_sync.inputs.manifest import FileRecord, Manifest
from cs_sync.remote.sets import RemoteFile, RemoteSet, classify_set
from cs_sync.upload import planning
from cs_sync.upload.planning import decide_set, plan_upload, stale_reasons

CFG = load_config()
K = 1024


def manifest(faults: dict) -> Manifest:
    """``{fault: {type: {path: size}}}`` -> Manifest (mtime = size, so tests can change it)."""
    m = Manifest(version="v1")
    for fault, types in faults.items():
        m.faults[fault] = {
            t: {p: FileRecord(p, s, 1_000_000_000 + s) for p, s in files.items()} for t, files in types.items()
        }
    return m


def bb(fault, events_sizes):
    return {f"Runs/{fault}/{ev}/BB/Acc/BB.bin": size for ev, size in events_sizes}


def test_one_part_when_under_the_cap():
    m = manifest({"F": {"BB": bb("F", [("F", 1000), ("F_REL01", 1000)])}})
    plan = plan_upload(m, CFG, types=["BB"], max_size=100 * K, hard_limit=1 << 40)
    [sp] = plan.sets
    assert sp.name == "F_BB" and [p.name for p in sp.parts] == ["F_BB.tar"]
    assert [x.name for x in sp.parts[0].members] == ["F_BB.bin", "F_REL01_BB.bin"]
    assert sp.parts[0].size == tar_size([("F_BB.bin", 1000), ("F_REL01_BB.bin", 1000)])


def test_greedy_parts_in_sorted_member_order_never_split_and_within_the_cap():
    sizes = [("F_REL03", 30 * K), ("F_REL01", 30 * K), ("F_REL02", 30 * K), ("F_REL04", 30 * K), ("F", 30 * K)]
    m = manifest({"F": {"BB": bb("F", sizes)}})
    cap = 70 * K
    [sp] = plan_upload(m, CFG, types=["BB"], max_size=cap, hard_limit=1 << 40).sets
    names = [p.name for p in sp.parts]
    assert names == ["F_BB_0.tar", "F_BB_1.tar", "F_BB_2f.tar"]
    members = [x.name for p in sp.parts for x in p.members]
    assert members == sorted(members)  # stable order
    assert all(p.size <= cap for p in sp.parts)
    # greedy: adding the next part's first member would have crossed the cap
    for a, b in zip(sp.parts, sp.parts[1:]):
        with_next = tar_size([(x.name, x.size) for x in a.members] + [(b.members[0].name, b.members[0].size)])
        assert with_next > cap
    assert sp.parts[-1].final and not sp.parts[0].final


def test_a_file_larger_than_the_cap_gets_its_own_part_and_a_warning():
    m = manifest({"F": {"BB": bb("F", [("F_REL01", 10 * K), ("F_REL02", 500 * K), ("F_REL03", 10 * K)])}})
    plan = plan_upload(m, CFG, types=["BB"], max_size=100 * K, hard_limit=1 << 40)
    [sp] = plan.sets
    assert [[x.name for x in p.members] for p in sp.parts] == [
        ["F_REL01_BB.bin"], ["F_REL02_BB.bin"], ["F_REL03_BB.bin"]]
    assert len(plan.warnings) == 1 and "Runs/F/F_REL02/BB/Acc/BB.bin" in str(plan.warnings[0])
    assert not plan.refused


def test_a_part_above_the_hard_limit_is_refused_naming_the_file():
    m = manifest({"F": {"BB": bb("F", [("F_REL01", 10 * K), ("F_REL02", 500 * K)])}})
    plan = plan_upload(m, CFG, types=["BB"], max_size=100 * K, hard_limit=200 * K)
    [r] = plan.refused
    assert r.set_name == "F_BB" and "Runs/F/F_REL02/BB/Acc/BB.bin" in r.message and "F_BB_1f.tar" in r.message


def test_member_name_clash_stops_the_plan_naming_both_files():
    cfg = parse_config({"X": {"where": "Runs/{fault_name}", "pattern": ["*/a/*.csv"], "member": "{name}"}})
    m = manifest({"F": {"X": {"Runs/F/F_REL01/a/x.csv": 1, "Runs/F/F_REL02/a/x.csv": 1}}})
    with pytest.raises(PlanError) as exc:
        plan_upload(m, cfg, max_size=1 << 30, hard_limit=1 << 40)
    assert "Runs/F/F_REL01/a/x.csv" in exc.value.message and "Runs/F/F_REL02/a/x.csv" in exc.value.message


def test_vm_goes_into_the_source_tar_and_t_vm_selects_source():
    m = manifest({"F": {
        "Source": {"Data/Sources/F/Srf/F_REL01.info": 10},
        "VM": {"Data/VMs/F/vm_params.yaml": 5, "Data/VMs/F/F_REL01.pertb.csv": 7},
    }})
    plan = plan_upload(m, CFG, max_size=1 << 30, hard_limit=1 << 40)
    assert [s.name for s in plan.sets] == ["F_Source"]
    members = {x.name: x.dtype for x in plan.sets[0].members}
    assert members == {"F_REL01.info": "Source", "vm_params.yaml": "VM", "F_REL01.pertb.csv": "VM"}
    assert planning.selected_sets(CFG, ["VM"]) == ["Source"]


def test_sample_is_the_median_event_else_the_first_realisation():
    m = manifest({
        "A": {"BB": bb("A", [("A_REL02", 5), ("A", 6), ("A_REL01", 7)])},
        "B": {"BB": bb("B", [("B_REL12", 5), ("B_REL03", 6)])},
    })
    plan = plan_upload(m, CFG, types=["SAMPLE_BB"], max_size=1 << 30, hard_limit=1 << 40)
    by = {s.fault: s for s in plan.sets}
    assert all(s.sample and s.dtype == "SAMPLE_BB" for s in plan.sets)
    assert [(p.name, p.members[0].source, p.size) for p in by["A"].parts] == [
        ("A_BB.bin", "Runs/A/A/BB/Acc/BB.bin", 6)]
    assert [p.name for p in by["B"].parts] == ["B_REL03_BB.bin"]


def test_faults_filter_and_only_faults():
    m = manifest({"A": {"BB": bb("A", [("A", 5)])}, "B": {"BB": bb("B", [("B", 5)])}})
    plan = plan_upload(m, CFG, types=["BB"], max_size=1 << 30, hard_limit=1 << 40)
    assert [s.fault for s in plan.only_faults(["B"]).sets] == ["B"]


# -- decisions ------------------------------------------------------------------------


def planned(n_parts_cap=None):
    sizes = [(f"F_REL0{i}", 30 * K) for i in range(1, 5)]
    m = manifest({"F": {"BB": bb("F", sizes)}})
    [sp] = plan_upload(m, CFG, types=["BB"], max_size=n_parts_cap or (1 << 30), hard_limit=1 << 40).sets
    return sp


def sidecar_for(sp, *, size_delta=0):
    return SetSidecar(
        fault=sp.fault, dtype=sp.dtype, version="v1",
        parts=[PartInfo(p.name, p.size, "0" * 64) for p in sp.parts],
        members=[MemberInfo(x.name, p.name, 512, x.size + size_delta, x.mtime_ns / 1e9, "0" * 64, x.source, x.mtime_ns)
                 for p in sp.parts for x in p.members],
    )


def remote(sp_or_names, sizes=None, sidecar=None):
    names = sp_or_names
    rs = RemoteSet("F", "BB")
    for n in names:
        rs.parts.append(parse_part_name("F", n))
        rs.files[n] = RemoteFile(f"F/{n}", (sizes or {}).get(n, 1))
    rs.sidecar = sidecar
    return classify_set(rs)


def test_absent_set_is_uploaded_final_last():
    sp = planned(70 * K)
    d = decide_set(sp, None)
    assert d.action == planning.UPLOAD and d.todo == tuple(p.name for p in sp.parts)
    assert d.todo[-1].endswith("f.tar") and not d.delete and not d.delete_sidecar


def test_complete_with_sidecar_is_skipped_and_stale_when_sources_changed():
    sp = planned()
    sizes = {p.name: p.size for p in sp.parts}
    rs = remote(sizes, sizes, sidecar_for(sp))
    assert decide_set(sp, rs).action == planning.SKIP
    stale = remote(sizes, sizes, sidecar_for(sp, size_delta=1))
    d = decide_set(sp, stale)
    assert d.action == planning.STALE and "bytes, uploaded" in d.reason and not d.redo
    d = decide_set(sp, stale, update=True)
    assert d.action == planning.UPDATE and d.delete_sidecar and d.delete == ("F_BB.tar",)


def test_indexed_older_set_is_unverified_not_stale():
    """An index sidecar (cs-sync index) records no sources: staleness is unknown, never 'everything new'."""
    sp = planned()
    sizes = {p.name: p.size for p in sp.parts}
    sc = SetSidecar(fault="F", dtype="BB", version="v1", origin="index",
                    parts=[PartInfo(p.name, p.size, None) for p in sp.parts],
                    members=[MemberInfo(x.name, p.name, 512, x.size, 0.0, None, "") for p in sp.parts for x in p.members])
    d = decide_set(sp, remote(sizes, sizes, sc))
    assert d.action == planning.UNVERIFIED and "indexed" in d.reason
    d = decide_set(sp, remote(sizes, sizes, sc), overwrite=True)
    assert d.action == planning.REPLACE and d.delete_sidecar


def test_stale_reasons_name_new_gone_and_modified_files():
    sp = planned()
    sc = sidecar_for(sp)
    sc.members[0] = MemberInfo(**{**sc.members[0].__dict__, "mtime_ns": sc.members[0].mtime_ns + 1})
    sc.members.append(MemberInfo("old.bin", "F_BB.tar", 0, 1, 0.0, "0" * 64, "Runs/F/old.bin", 1))
    sc.members.pop(1)
    reasons = stale_reasons(sp, sc)
    assert any("modified after upload" in r for r in reasons)
    assert any("Runs/F/old.bin is gone" in r for r in reasons)
    assert any("is new" in r for r in reasons)


def test_older_script_set_is_unverified_unless_overwrite():
    sp = planned(70 * K)
    rs = remote(["F_BB_0.tar", "F_BB_1f.tar"])
    assert decide_set(sp, rs).action == planning.UNVERIFIED
    d = decide_set(sp, rs, overwrite=True)
    assert d.action == planning.REPLACE and not d.delete_sidecar
    # the old final goes before anything is uploaded; _1f is not a name of the new plan
    assert "F_BB_1f.tar" in d.delete


def test_overwrite_with_fewer_parts_deletes_sidecar_then_old_parts_and_finals():
    sp = planned(70 * K)  # 2 parts now: _0, _1f
    old = ["F_BB_0.tar", "F_BB_1.tar", "F_BB_2.tar", "F_BB_3f.tar"]
    sc = sidecar_for(sp)
    sc.parts = [PartInfo(n, 1, "0") for n in old]
    rs = remote(old, {n: 1 for n in old}, sc)
    d = decide_set(sp, rs, overwrite=True)
    assert d.action == planning.REPLACE and d.delete_sidecar
    assert set(d.delete) == {"F_BB_1.tar", "F_BB_2.tar", "F_BB_3f.tar"}
    assert d.todo == ("F_BB_0.tar", "F_BB_1f.tar")


def test_incomplete_set_with_parts_the_plan_does_not_make_needs_overwrite():
    sp = planned()  # one part: F_BB.tar
    rs = remote(["F_BB_0.tar"])
    d = decide_set(sp, rs)
    assert d.action == planning.REFUSE and "F_BB_0.tar" in d.reason and "--overwrite" in d.reason
    d = decide_set(sp, rs, overwrite=True)
    assert d.action == planning.REPLACE and d.delete == ("F_BB_0.tar",)


def test_ambiguous_set_needs_overwrite():
    sp = planned(70 * K)
    rs = remote(["F_BB_0.tar", "F_BB_1f.tar", "F_BB.tar"])
    assert decide_set(sp, rs).action == planning.REFUSE


def test_resume_keeps_checked_parts_that_are_still_there_with_their_size():
    sp = planned(40 * K)
    names = [p.name for p in sp.parts]
    assert len(names) >= 3
    sizes = {p.name: p.size for p in sp.parts}
    rs = remote(names[:2], sizes)
    d = decide_set(sp, rs, checked=frozenset(names[:2]))
    assert d.action == planning.RESUME and d.todo == tuple(names[2:]) and not d.delete
    # a checked part whose remote size changed is redone
    rs = remote(names[:2], {**sizes, names[1]: 5})
    d = decide_set(sp, rs, checked=frozenset(names[:2]))
    assert d.todo == tuple(names[1:])


def test_interrupted_set_complete_by_names_without_sidecar_is_resumed_not_unverified():
    sp = planned(70 * K)
    names = [p.name for p in sp.parts]
    sizes = {p.name: p.size for p in sp.parts}
    rs = remote(names, sizes)
    # the journal says only part 0 was checked: the final (uploaded, not checked) goes first
    d = decide_set(sp, rs, checked=frozenset(names[:1]))
    assert d.action == planning.RESUME and d.delete == (names[-1],) and d.todo == tuple(names[1:])
    d = decide_set(sp, rs, checked=frozenset(names))
    assert d.action == planning.RESUME and d.todo == () and not d.delete


def test_overwrite_interrupted_run_does_not_replace_a_set_it_already_replaced():
    sp = planned()
    sizes = {p.name: p.size for p in sp.parts}
    rs = remote(sizes, sizes, sidecar_for(sp))
    assert decide_set(sp, rs, overwrite=True).action == planning.REPLACE
    assert decide_set(sp, rs, overwrite=True, done_before=True).action == planning.SKIP


def test_a_single_part_copied_but_not_checked_before_a_kill_is_resumed_not_unverified():
    sp = planned()  # one part: F_BB.tar, on the remote, no sidecar, journal says packed (not checked)
    rs = remote(["F_BB.tar"], {"F_BB.tar": sp.parts[0].size})
    assert decide_set(sp, rs).action == planning.UNVERIFIED  # no journal: nothing says it is ours
    d = decide_set(sp, rs, started=True)
    assert d.action == planning.RESUME and d.delete == ("F_BB.tar",) and d.todo == ("F_BB.tar",)


def test_parts_an_earlier_plan_of_ours_left_are_removed_not_refused():
    sp = planned(70 * K)  # 2 parts now: _0, _1f (the cap changed, or a source was deleted)
    rs = remote(["F_BB_0.tar", "F_BB_2.tar"])  # left by a stopped run of the earlier plan
    assert decide_set(sp, rs).action == planning.REFUSE  # nothing says they are ours
    d = decide_set(sp, rs, started=True, ours=frozenset({"F_BB_0.tar", "F_BB_1.tar", "F_BB_2.tar"}))
    assert d.action == planning.REPAIR and d.delete == ("F_BB_2.tar",) and d.todo == ("F_BB_0.tar", "F_BB_1f.tar")
    # a file no run of ours sent is still refused, with only that file named
    rs = remote(["F_BB_0.tar", "F_BB_2.tar", "F_BB_3.tar"])
    d = decide_set(sp, rs, started=True, ours=frozenset({"F_BB_2.tar"}))
    assert d.action == planning.REFUSE and "F_BB_3.tar" in d.reason and "F_BB_2.tar" not in d.reason


def test_a_single_part_of_an_earlier_plan_of_ours_is_resumed_not_unverified():
    sp = planned(70 * K)
    rs = remote(["F_BB.tar"])  # whole and checked at the earlier cap, killed before its sidecar
    assert decide_set(sp, rs).action == planning.UNVERIFIED
    d = decide_set(sp, rs, started=True, ours=frozenset({"F_BB.tar"}))
    assert d.action == planning.RESUME and d.delete == ("F_BB.tar",) and d.todo == tuple(p.name for p in sp.parts)


def test_a_damaged_sidecar_of_a_set_a_run_of_ours_was_finishing_is_rewritten():
    from cs_sync.core.errors import SidecarInvalid

    sp = planned(70 * K)
    names = [p.name for p in sp.parts]
    rs = RemoteSet("F", "BB")
    for n in names:
        rs.parts.append(parse_part_name("F", n))
        rs.files[n] = RemoteFile(f"F/{n}", next(p.size for p in sp.parts if p.name == n))
    rs.damage = SidecarInvalid("sidecar invalid: _cs_sync/F_BB.json: file: not JSON")
    classify_set(rs)
    assert decide_set(sp, rs, sidecar_present=True).action == planning.REFUSE  # not known to be ours
    d = decide_set(sp, rs, sidecar_present=True, started=True, checked=frozenset(names), ours=frozenset(names))
    assert d.action == planning.RESUME and d.delete_sidecar and not d.delete and d.todo == ()
