"""cs_sync.preprocess.stocktake: expected counts, in-range selection, samples, problems and the CSV table."""

from __future__ import annotations

import pytest

from cs_sync.inputs.config import load_config, parse_config
from cs_sync.inputs.faultlist import FaultEntry
from cs_sync.preprocess.stocktake import Hit, cell_text, check_fault, column_names, problems, stocktake_frame

CFG = load_config(None)
ALL = CFG.names()  # BB, IM, Source, VM, SAMPLE_BB
WHERE = {"BB": "Runs/{f}", "IM": "Runs/{f}", "Source": "Data/Sources/{f}", "VM": "Data/VMs/{f}"}


def tree_hits(fault: str, events: list[str], *, pertb: list[str] | None = None, drop: tuple[str, ...] = (),
              add: dict[str, list[str]] | None = None) -> dict[str, dict[int, list[Hit]]]:
    """What a scan of a v22p12-layout fault would return, per type and pattern index."""
    rel: dict[str, dict[int, list[str]]] = {
        "BB": {0: [f"{e}/BB/Acc/BB.bin" for e in events]},
        "IM": {0: [f"{e}/IM_calc/{e}.csv" for e in events]},
        "Source": {0: [f"Srf/{e}.info" for e in events], 1: [f"Srf/{e}.csv" for e in events],
                   2: [f"Sim_params/{e}.yaml" for e in events]},
        "VM": {0: ["vm_params.yaml"], 1: ["nzvm.cfg"], 2: [f"{e}.pertb.csv" for e in (pertb or [])]},
    }
    for key, paths in (add or {}).items():
        t, i = key.split(":")
        rel[t][int(i)] += paths
    out: dict[str, dict[int, list[Hit]]] = {}
    for t, per in rel.items():
        base = WHERE[t].format(f=fault)
        out[t] = {i: [Hit(f"{base}/{p}", p, 10) for p in ps if f"{t}:{p}" not in drop] for i, ps in per.items()}
    return out


def evs(fault: str, rels, median: bool) -> list[str]:
    return ([fault] if median else []) + [f"{fault}_REL{r:02d}" for r in rels]


def flags(fc) -> dict[str, bool]:
    return {t: tc.ok for t, tc in fc.types.items()}


def counts(fc, t) -> list[tuple[int, int]]:
    return [(p.found, p.expected) for p in fc.types[t].patterns]


ALL_OK = {t: True for t in ALL}


@pytest.mark.parametrize(
    "name,entry,hits,want_flags,want_counts",
    [
        ("median, perturbed",
         FaultEntry("F", 3), tree_hits("F", evs("F", [1, 2, 3], True), pertb=evs("F", [1, 2, 3], False)),
         ALL_OK, {"BB": [(4, 4)], "Source": [(4, 4)] * 3, "VM": [(1, 1), (1, 1), (3, 3)]}),
        ("no median, unperturbed",
         FaultEntry("F", 3), tree_hits("F", evs("F", [1, 2, 3], False)),
         ALL_OK, {"BB": [(3, 3)], "IM": [(3, 3)], "VM": [(1, 1), (1, 1), (0, 3)]}),
        ("perturbed, one .pertb.csv missing",
         FaultEntry("F", 3), tree_hits("F", evs("F", [1, 2, 3], True), pertb=evs("F", [1, 3], False)),
         {**ALL_OK, "VM": False}, {"VM": [(1, 1), (1, 1), (2, 3)]}),
        ("one BB.bin missing",
         FaultEntry("F", 3), tree_hits("F", evs("F", [1, 2, 3], True), drop=("BB:F_REL02/BB/Acc/BB.bin",)),
         {**ALL_OK, "BB": False}, {"BB": [(3, 4)], "IM": [(4, 4)]}),
        ("median in IM only: BB must have it too",
         FaultEntry("F", 2), tree_hits("F", evs("F", [1, 2], True), drop=("BB:F/BB/Acc/BB.bin",)),
         {**ALL_OK, "BB": False}, {"BB": [(2, 3)]}),
        ("vm_params.yaml missing",
         FaultEntry("F", 2), tree_hits("F", evs("F", [1, 2], False), drop=("VM:vm_params.yaml",)),
         {**ALL_OK, "VM": False}, {"VM": [(0, 1), (1, 1), (0, 2)]}),
        ("three columns: REL01-02 skipped, present on disk",
         FaultEntry("F", 5, 2), tree_hits("F", evs("F", range(1, 6), True), pertb=evs("F", range(1, 6), False)),
         ALL_OK, {"BB": [(4, 4)], "VM": [(1, 1), (1, 1), (3, 3)]}),
        ("realisation folders beyond the list",
         FaultEntry("F", 2), tree_hits("F", evs("F", [1, 2, 3, 4], False)),
         ALL_OK, {"BB": [(2, 2)], "Source": [(2, 2)] * 3}),
        ("an extra file is a failure",
         FaultEntry("F", 2), tree_hits("F", evs("F", [1, 2], False), add={"IM:0": ["F_REL01/IM_calc/F_REL01_old.csv"]}),
         {**ALL_OK, "IM": False}, {"IM": [(3, 2)]}),
        ("nothing at all",
         FaultEntry("F", 2), {t: {i: [] for i in range(len(CFG.types[t].patterns))} for t in WHERE},
         {"BB": False, "IM": False, "Source": False, "VM": False, "SAMPLE_BB": False},
         {"BB": [(0, 2)], "VM": [(0, 1), (0, 1), (0, 2)]}),
    ],
)
def test_check_fault(name, entry, hits, want_flags, want_counts):
    fc = check_fault(entry, CFG, ALL, hits)
    assert flags(fc) == want_flags
    for t, c in want_counts.items():
        assert counts(fc, t) == c, t
    assert fc.ok == all(want_flags.values())


def test_only_in_range_files_are_selected_and_the_rest_reported():
    fc = check_fault(FaultEntry("F", 5, 2), CFG, ALL,
                     tree_hits("F", evs("F", range(1, 8), True), pertb=evs("F", range(1, 8), False)))
    bb = sorted(fc.types["BB"].files)
    assert bb == [f"Runs/F/{e}/BB/Acc/BB.bin" for e in ["F", "F_REL03", "F_REL04", "F_REL05"]]
    assert sorted(fc.types["VM"].files) == ["Data/VMs/F/F_REL03.pertb.csv", "Data/VMs/F/F_REL04.pertb.csv",
                                            "Data/VMs/F/F_REL05.pertb.csv", "Data/VMs/F/nzvm.cfg",
                                            "Data/VMs/F/vm_params.yaml"]
    unlisted_events = sorted({u.event for u in fc.unlisted})
    assert unlisted_events == ["F_REL01", "F_REL02", "F_REL06", "F_REL07"]
    assert len(fc.unlisted) == 4 * 6  # BB, IM, 3 Source, pertb per event
    notes = [p for p in problems([fc]) if not p.failed]
    assert len(notes) == 1 and "REL01, REL02, REL06, REL07" in notes[0].text and "REL03..REL05" in notes[0].text
    assert fc.ok


def test_missing_events_are_named():
    fc = check_fault(FaultEntry("F", 4), CFG, ALL,
                     tree_hits("F", evs("F", [1, 2, 3, 4], True), pertb=evs("F", [1, 2, 4], False),
                               drop=("BB:F_REL02/BB/Acc/BB.bin", "BB:F/BB/Acc/BB.bin")))
    # the median is still seen in IM and Source, so BB must have it
    assert fc.types["BB"].patterns[0].missing == ("F", "F_REL02")
    assert fc.types["VM"].patterns[2].missing == ("F_REL03",)
    assert cell_text("F", fc.types["BB"]) == "BB.bin: missing median, REL02"
    assert cell_text("F", fc.types["VM"]) == "$*_REL*.pertb.csv: missing REL03"
    texts = [p.text for p in problems([fc]) if p.failed]
    assert texts == [
        "F BB: */BB/Acc/BB.bin: found 3, expected 5; missing median, REL02",
        "F VM: $*_REL*.pertb.csv: found 3, expected 4; missing REL03",
    ]


@pytest.mark.parametrize(
    "entry,events,want",
    [
        (FaultEntry("F", 3), evs("F", [1, 2, 3], True), "F"),  # the median's
        (FaultEntry("F", 3), evs("F", [2, 3], False), "F_REL02"),  # else the lowest listed realisation's
        (FaultEntry("F", 5, 2), evs("F", [1, 2, 4, 5], False), "F_REL04"),  # never an unlisted one
        (FaultEntry("F", 3), [], None),
    ],
)
def test_sample_bb(entry, events, want):
    fc = check_fault(entry, CFG, ["SAMPLE_BB"], {"BB": tree_hits("F", events)["BB"]})
    tc = fc.types["SAMPLE_BB"]
    assert list(fc.types) == ["SAMPLE_BB"]
    assert tc.sample_event == want
    assert tc.ok == (want is not None)
    assert list(tc.files) == ([f"Runs/F/{want}/BB/Acc/BB.bin"] if want else [])


def test_expect_overrides_and_optional_literal():
    cfg = parse_config({
        "D": {"where": "d/{fault_name}", "pattern": [
            {"glob": "*.dat", "expect": 1}, {"glob": "x_*.b", "expect": "rels"}, "$opt.cfg", {"glob": "*.n", "expect": 2},
        ]},
    })
    hits = {"D": {0: [Hit("d/F/a.dat", "a.dat", 1)],
                  1: [Hit("d/F/x_F_REL01.b", "x_F_REL01.b", 1), Hit("d/F/x_F_REL02.b", "x_F_REL02.b", 1)],
                  2: [], 3: [Hit("d/F/a.n", "a.n", 1)]}}
    fc = check_fault(FaultEntry("F", 2), cfg, ["D"], hits)
    assert counts(fc, "D") == [(1, 1), (2, 2), (0, 1), (1, 2)]
    assert [p.ok for p in fc.types["D"].patterns] == [True, True, True, False]
    # x_F_REL01.b names its realisation in a way the event finder does not read: with no file of the
    # pattern naming an event, the count alone decides (and 'missing' is not held against it)
    assert fc.types["D"].patterns[1].missing == ("F_REL01", "F_REL02")


def test_frame_columns_and_values_match_the_older_scripts_names():
    checks = [
        check_fault(FaultEntry("A", 2), CFG, ALL, tree_hits("A", evs("A", [1, 2], True), pertb=evs("A", [1, 2], False))),
        check_fault(FaultEntry("B", 4, 1), CFG, ALL,
                    tree_hits("B", evs("B", [1, 2, 3, 4], False), drop=("BB:B_REL03/BB/Acc/BB.bin",))),
    ]
    df = stocktake_frame(checks, CFG, ALL)
    assert list(df.columns) == column_names(CFG, ALL) == [
        "rel_nums", "rel_start",
        "BB_ok", "num(BB_*/BB/Acc/BB.bin)", "OK(BB_*/BB/Acc/BB.bin)",
        "IM_ok", "num(IM_*/IM_calc/**.csv)", "OK(IM_*/IM_calc/**.csv)",
        "Source_ok", "num(Source_Srf/**.info)", "OK(Source_Srf/**.info)", "num(Source_Srf/**.csv)",
        "OK(Source_Srf/**.csv)", "num(Source_Sim_params/**.yaml)", "OK(Source_Sim_params/**.yaml)",
        "VM_ok", "num(VM_vm_params.yaml)", "OK(VM_vm_params.yaml)", "num(VM_nzvm.cfg)", "OK(VM_nzvm.cfg)",
        "num(VM_$*_REL*.pertb.csv)", "OK(VM_$*_REL*.pertb.csv)",
        "SAMPLE_BB_ok", "num(SAMPLE_BB)", "OK(SAMPLE_BB)",
        "median", "unlisted_files",
    ]
    assert list(df.index) == ["A", "B"]
    a, b = df.loc["A"], df.loc["B"]
    assert (a["rel_nums"], a["rel_start"], b["rel_nums"], b["rel_start"]) == (2, 1, 3, 2)
    assert a["BB_ok"] and a["num(BB_*/BB/Acc/BB.bin)"] == 3 and a["num(VM_$*_REL*.pertb.csv)"] == 2
    assert not b["BB_ok"] and b["num(BB_*/BB/Acc/BB.bin)"] == 2 and not b["OK(BB_*/BB/Acc/BB.bin)"]
    assert b["IM_ok"] and b["num(IM_*/IM_calc/**.csv)"] == 3 and b["unlisted_files"] == 5  # REL01: BB, IM, 3 Source
    assert (a["median"], b["median"]) == (True, False)
    assert df.to_csv().splitlines()[1].startswith("A,2,1,True,3,True,")


def test_frame_has_only_the_selected_types():
    fc = check_fault(FaultEntry("A", 2), CFG, ["Source", "VM"], tree_hits("A", evs("A", [1, 2], False)))
    df = stocktake_frame([fc], CFG, ["Source", "VM"])
    assert [c for c in df.columns if c.endswith("_ok")] == ["Source_ok", "VM_ok"]


def test_unreadable_folder_fails_the_fault():
    fc = check_fault(FaultEntry("F", 2), CFG, ALL, tree_hits("F", evs("F", [1, 2], False)),
                     errors=["cannot list /v/Runs/F/F_REL02: Permission denied"])
    assert all(tc.ok for tc in fc.types.values()) and not fc.ok
    assert [p.text for p in problems([fc])] == ["F: cannot list /v/Runs/F/F_REL02: Permission denied"]


def test_realisations_named_with_other_zero_padding_are_not_reported_missing():
    """REL1, REL01 and REL001 are realisation 1: a fault whose folders use three digits is
    selected and counted by number, so 'missing' must compare numbers too, not names."""
    three = ["F"] + [f"F_REL{r:03d}" for r in range(1, 13) if r != 5]
    fc = check_fault(FaultEntry("F", 12), CFG, ["BB"], {"BB": tree_hits("F", three)["BB"]})
    bb = fc.types["BB"].patterns[0]
    assert (bb.found, bb.expected, bb.missing) == (12, 13, ("F_REL05",))
    assert [p.text for p in problems([fc])] == ["F BB: */BB/Acc/BB.bin: found 12, expected 13; missing REL05"]


def test_two_folders_of_one_realisation_are_named():
    """F_REL1 beside F_REL01 (a copy under another name): both are selected, the count is one
    over, and the line names the realisation and both folders rather than a 'missing REL01'."""
    events = ["F", "F_REL1", "F_REL01", "F_REL02", "F_REL03"]
    fc = check_fault(FaultEntry("F", 3), CFG, ["BB"], {"BB": tree_hits("F", events)["BB"]})
    bb = fc.types["BB"].patterns[0]
    assert (bb.found, bb.expected, bb.missing) == (5, 4, ())
    assert [p.text for p in problems([fc])] == [
        "F BB: */BB/Acc/BB.bin: found 5, expected 4; 1 more than expected; REL01 twice (F_REL01, F_REL1)"]


def test_a_file_of_no_event_in_a_per_event_pattern_is_named():
    """A copy such as F_REL01_old/ beside F_REL01/ matches */BB/Acc/BB.bin but names no event:
    the count is one over, and the line says which file it is."""
    fc = check_fault(FaultEntry("F", 2), CFG, ["BB"],
                     {"BB": tree_hits("F", ["F", "F_REL01", "F_REL01_old", "F_REL02"])["BB"]})
    assert [p.text for p in problems([fc])] == [
        "F BB: */BB/Acc/BB.bin: found 4, expected 3; 1 more than expected; of no event: F_REL01_old/BB/Acc/BB.bin"]


@pytest.mark.parametrize("events", [
    ["F", "F_REL01", "F_REL02_old", "F_REL03"],  # REL02's folder renamed: its BB.bin names no event
    ["F", "F_REL1", "F_REL01", "F_REL03"],  # REL01 twice, REL02 missing
])
def test_a_missing_realisation_fails_even_when_another_file_makes_the_count(events):
    """The count alone matched (4 of 4), so the check said OK while REL02 had no BB.bin."""
    fc = check_fault(FaultEntry("F", 3), CFG, ["BB"], {"BB": tree_hits("F", events)["BB"]})
    bb = fc.types["BB"].patterns[0]
    assert (bb.found, bb.expected, bb.missing) == (4, 4, ("F_REL02",))
    assert not bb.ok and not fc.ok
    assert cell_text("F", fc.types["BB"]) == "BB.bin: missing REL02"
    assert problems([fc])[0].text.startswith("F BB: */BB/Acc/BB.bin: found 4, expected 4; missing REL02; ")


def test_empty_selected_files_are_a_note():
    """A 0-byte BB.bin is what a job writing to a full scratch leaves: selected (the data is what
    it is), but named in one note so it is seen before it is archived as if complete."""
    hits = tree_hits("F", evs("F", [1, 2], True))
    hits["BB"][0] = [h._replace(size=0) if "REL01" in h.path else h for h in hits["BB"][0]]
    hits["VM"][1] = [h._replace(size=0) for h in hits["VM"][1]]
    fc = check_fault(FaultEntry("F", 2), CFG, ALL, hits)
    assert fc.ok and fc.types["BB"].files["Runs/F/F_REL01/BB/Acc/BB.bin"].size == 0
    notes = [p for p in problems([fc]) if not p.failed]
    assert [p.text for p in notes] == [
        "F: 2 empty files (0 bytes), selected: Data/VMs/F/nzvm.cfg, Runs/F/F_REL01/BB/Acc/BB.bin"]
