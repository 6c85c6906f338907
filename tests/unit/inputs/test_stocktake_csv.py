"""Reading a stocktake.csv back for the report: this tool's, the older scripts', and bad ones."""

import pytest

from cs_sync.core.errors import InputError
from cs_sync.inputs.config import load_config
from cs_sync.inputs.stocktake_csv import parse_stocktake_csv

OURS = """\
,rel_nums,rel_start,BB_ok,num(BB_*/BB/Acc/BB.bin),OK(BB_*/BB/Acc/BB.bin),VM_ok,num(VM_vm_params.yaml),OK(VM_vm_params.yaml),num(VM_$*_REL*.pertb.csv),OK(VM_$*_REL*.pertb.csv),SAMPLE_BB_ok,num(SAMPLE_BB),OK(SAMPLE_BB),median,unlisted_files
AlpineK2T,4,1,True,5,True,True,1,True,4,True,True,1,True,True,0
Wairau,40,11,False,39,False,True,1,True,0,True,True,1,True,False,3
"""
# the older scripts: no per-type verdicts, no median column
OLDER = """\
,rel_nums,num(BB_*/BB/Acc/BB.bin),OK(BB_*/BB/Acc/BB.bin),num(IM_*/IM_calc/**.csv),OK(IM_*/IM_calc/**.csv)
Hope1888,3,3,True,2,False
"""


def test_this_tools_stocktake_found_expected_and_verdicts():
    doc = parse_stocktake_csv(OURS, load_config(), "s.csv")
    assert doc["types"] == ["BB", "VM", "SAMPLE_BB"]
    assert [(p["type"], p["pattern"]) for p in doc["patterns"]] == [
        ("BB", "*/BB/Acc/BB.bin"), ("VM", "vm_params.yaml"), ("VM", "$*_REL*.pertb.csv"), ("SAMPLE_BB", "SAMPLE_BB")]
    a, w = doc["rows"]
    assert a["fault"] == "AlpineK2T" and a["ok"] and a["median"] is True and a["rels"] == 4
    assert [(c["found"], c["expected"]) for c in a["cells"]] == [(5, 5), (1, 1), (4, 4), (1, None)]
    assert not w["ok"] and not w["types"]["BB"]["ok"] and w["types"]["VM"]["ok"]
    assert (w["cells"][0]["found"], w["cells"][0]["expected"], w["cells"][0]["ok"]) == (39, 40, False)
    assert w["rel_start"] == 11 and w["unlisted"] == 3 and w["median"] is False
    assert w["cells"][2] == {"found": 0, "expected": 40, "ok": True, "missing": ""}  # optional ($): none is fine
    assert doc["failed_faults"] == 1


def test_older_scripts_stocktake_without_median_leaves_event_counts_unknown():
    doc = parse_stocktake_csv(OLDER, load_config(), "old.csv")
    [h] = doc["rows"]
    assert h["median"] is None and h["types"]["IM"]["ok"] is False and not h["ok"]
    assert [c["expected"] for c in h["cells"]] == [None, None]  # BB/IM count events: median unknown
    assert [c["ok"] for c in h["cells"]] == [True, False]


@pytest.mark.parametrize("text,where", [
    ("", "empty stocktake"),
    ("a,b\n1,2\n", "line 1: no num(...) columns"),
    (",rel_nums,num(BB_x),OK(BB_x)\nA,3,three,True\n", "line 2: num(BB_x) is 'three', not a number"),
])
def test_bad_stocktakes_name_the_line(text, where):
    with pytest.raises(InputError) as exc:
        parse_stocktake_csv(text, load_config(), "s.csv")
    assert where in exc.value.message and exc.value.message.startswith("s.csv: ")
