"""What cs-sync index does with each set: pure decisions over a classified listing."""

from cs_sync.archive.sidecar import MemberInfo, PartInfo, SetSidecar
from cs_sync.core.errors import SidecarInvalid
from cs_sync.index.plan import Action, decide, plan_index, shard_plan
from cs_sync.remote.sets import RemoteFile, classify_listing, group_listing

SHA = "ab" * 32


def _listing(files, sidecars=None, damaged=None):
    return classify_listing(group_listing("v1", [RemoteFile(p, s) for p, s in files]), sidecars or {}, damaged)


def _index_sc(fault, dtype, parts, hashed=False):
    return SetSidecar(fault, dtype, "v1", origin="index",
                      parts=[PartInfo(n, s, SHA if hashed else None) for n, s in parts],
                      members=[MemberInfo("m", parts[0][0], 512, 1, 0.0, SHA if hashed else None, "")])


def test_each_kind_of_set():
    files = [("A/A_BB_0.tar", 10), ("A/A_BB_1f.tar", 10), ("A/A_IM.tar", 5), ("A/A_REL01_BB.bin", 3),
             ("B/B_BB_0.tar", 10), ("B/B_BB_2f.tar", 10), ("C/C_BB.tar", 7), ("C/C_IM.tar", 8), ("D/D_BB.tar", 9),
             ("E/E_BB.tar", 4)]
    upload = SetSidecar("C", "BB", "v1", parts=[PartInfo("C_BB.tar", 7, SHA)])
    listing = _listing(files, {("C", "BB"): upload, ("C", "IM"): _index_sc("C", "IM", [("C_IM.tar", 8)]),
                               ("D", "BB"): _index_sc("D", "BB", [("D_BB.tar", 99)])},
                       {"E_BB.json": SidecarInvalid("sidecar invalid: bad")})
    got = {(t.rs.fault, t.rs.dtype): t for t in plan_index(listing).tasks}
    assert got[("A", "BB")].action == Action.INDEX and got[("A", "IM")].action == Action.INDEX
    assert got[("A", "SAMPLE_BB")].action == Action.SAMPLE
    assert got[("B", "BB")].action == Action.REFUSE and "missing part _1" in got[("B", "BB")].reason
    assert got[("C", "BB")].action == Action.DONE and "upload" in got[("C", "BB")].reason
    assert got[("C", "IM")].action == Action.DONE
    assert got[("D", "BB")].action == Action.REFUSE and "changed since they were indexed" in got[("D", "BB")].reason
    assert got[("E", "BB")].action == Action.REFUSE and "damaged" in got[("E", "BB")].reason
    again = {(t.rs.fault, t.rs.dtype): t.action for t in plan_index(listing, hash_members=True, reindex=True).tasks}
    assert again[("C", "BB")] == Action.DONE  # never re-indexes what upload wrote
    assert again[("C", "IM")] == Action.REINDEX and again[("D", "BB")] == Action.REINDEX


def test_hash_members_upgrades_only_indexes_without_sha256():
    files = [("C/C_IM.tar", 8), ("D/D_IM.tar", 8)]
    listing = _listing(files, {("C", "IM"): _index_sc("C", "IM", [("C_IM.tar", 8)]),
                               ("D", "IM"): _index_sc("D", "IM", [("D_IM.tar", 8)], hashed=True)})
    acts = {t.rs.fault: t.action for t in plan_index(listing, hash_members=True).tasks}
    assert acts == {"C": Action.UPGRADE, "D": Action.DONE}
    assert decide(listing.get("C", "IM")).action == Action.DONE


def test_selection_and_shards_are_stable():
    files = [(f"F{i}/F{i}_BB.tar", 100 * (i + 1)) for i in range(6)] + [(f"F{i}/F{i}_IM.tar", 5) for i in range(6)]
    listing = _listing(files)
    plan = plan_index(listing, types=["bb"], inc_faults=["F1", "F2", "F3", "Nope"], exc_faults=["F3"])
    assert [t.key for t in plan.tasks] == [("F1", "BB"), ("F2", "BB")]
    assert plan.unmatched == ["--inc_fault Nope: no such fault in v1"]
    full = plan_index(listing)
    shards = [shard_plan(full, i, 3) for i in range(3)]
    keys = [t.key for s in shards for t in s.tasks]
    assert sorted(keys) == sorted(t.key for t in full.tasks) and len(keys) == len(set(keys))
    # the weights do not depend on what is indexed already: the same shards after indexing
    indexed = _listing(files, {("F5", "BB"): _index_sc("F5", "BB", [("F5_BB.tar", 600)])})
    assert [sorted(t.key for t in shard_plan(plan_index(indexed), i, 3).tasks) for i in range(3)] == \
        [sorted(t.key for t in s.tasks) for s in shards]


def test_types_are_read_as_everywhere_vm_selects_source_and_a_wrong_one_is_named():
    files = [("F/F_Source.tar", 5), ("F/F_BB.tar", 5)]
    plan = plan_index(_listing(files), types=["vm", "bb"])
    assert [t.key for t in plan.tasks] == [("F", "Source"), ("F", "BB")] and not plan.unknown_types  # as given
    plan = plan_index(_listing(files), types=["XX"])
    assert plan.unknown_types == ["-t 'XX' is not a data type of v1 on the remote (there: BB, Source)"]
