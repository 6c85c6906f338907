"""The report's view-model: states and totals, fix commands, chart geometry, stocktake and overview."""

from __future__ import annotations

import shlex

from cs_sync.ui import report_view as rv

from report_helpers import big_status_doc


def _doc(cells, faults=("A", "B"), types=("BB", "IM"), **extra):
    by_state = {s: 0 for s in ["complete", "incomplete", "ambiguous", "mismatch", "stale", "not uploaded"]}
    for c in cells:
        by_state[c["state"]] += 1
    doc = {"version": "v1", "root": "remote:/cs", "manifest": None, "cs_root": None, "has_list": True,
           "has_stocktake": True, "faults": list(faults), "types": list(types), "cells": cells, "other_files": [],
           "stocktake": None, "totals": {"sets": by_state, "bytes": sum(c.get("size", 0) for c in cells),
                                         "parts": sum(c.get("parts", 0) for c in cells), "faults": len(faults),
                                         "bytes_by_type": {}, "checks": {}, "uploaded": {}}, "exit_code": 0}
    doc.update(extra)
    return doc


def _cell(fault, dtype, state, size=100, parts=1, **kw):
    return {"fault": fault, "type": dtype, "state": state, "parts": parts, "size": size, "problems": [],
            "verified": True, **kw}


def test_state_counts_include_absent_and_follow_the_status_words():
    doc = _doc([_cell("A", "BB", "complete"), _cell("A", "IM", "incomplete"), _cell("B", "BB", "stale")])
    counts = {c["state"]: c["n"] for c in rv.state_counts(doc)}
    assert counts == {"incomplete": 1, "mismatch": 0, "damaged sidecar": 0, "ambiguous": 0, "stale": 1, "not uploaded": 0,
                      "complete": 1, "absent": 1}
    assert [c["state"] for c in rv.state_counts(doc)] == rv.STATE_ORDER


def test_grid_rows_rank_by_worst_state_and_mark_problems():
    cells = {("A", "BB"): _cell("A", "BB", "complete", size=10), ("A", "IM"): _cell("A", "IM", "ambiguous", size=5),
             ("B", "BB"): _cell("B", "BB", "complete", size=7, check="no sidecar")}
    a, b = rv.grid_rows(["A", "B"], ["BB", "IM"], cells)
    assert a["problem"] and not b["problem"]
    assert a["rank"] == rv.STATE_ORDER.index("ambiguous") and b["rank"] == rv.STATE_ORDER.index("complete")
    assert (a["size"], b["size"]) == (15, 7)
    assert b["cells"][1]["state"] == "absent" and b["cells"][1]["word"] == "-"
    assert "legacy" in b["cells"][0]["cls"] and "legacy" not in a["cells"][0]["cls"]
    assert a["cells"][0]["word"] == "ok" and a["cells"][1]["word"] == "ambiguous"


def test_cell_tooltip_has_parts_size_check_time_and_problems():
    c = rv.cell_view("A", "BB", _cell("A", "BB", "incomplete", size=2048, parts=3, check="size",
                                      uploaded="2024-03-01T10:00:00+00:00", problems=["missing part _1"]))
    assert c["title"].splitlines() == ["A BB: incomplete", "3 parts, 2.0 KiB (2,048 bytes)",
                                       "checked by size only", "uploaded 2024-03-01 10:00:00 UTC",
                                       "missing part _1"]


def test_fix_commands_use_real_upload_options_per_state():
    doc = _doc([_cell("A", "BB", "incomplete"), _cell("A", "IM", "stale"), _cell("B", "BB", "ambiguous"),
                _cell("B", "IM", "mismatch")], manifest="/m/files_to_sync.yaml", cs_root="/s/v1")
    by = {(p["fault"], p["type"]): shlex.split(p["command"]) for p in rv.problems(doc)}
    base = ["cs-sync-upload", "/s/v1", "/m/files_to_sync.yaml", "--remote", "remote:/cs"]
    assert by[("A", "BB")] == base + ["-t", "BB", "--inc_fault", "A"]
    assert by[("A", "IM")] == base + ["-t", "IM", "--update", "--inc_fault", "A"]
    assert by[("B", "BB")] == base + ["-t", "BB", "--overwrite", "--inc_fault", "B"]
    assert by[("B", "IM")] == base + ["-t", "IM", "--inc_fault", "B"]
    # every option named exists in cs-sync-upload's parser, and the line parses there
    from cs_sync.cli.upload import build_parser

    for argv in by.values():
        args = build_parser().parse_args(argv[1:])
        assert args.inc_fault and args.types
    assert [p["state"] for p in rv.problems(doc)] == ["incomplete", "mismatch", "ambiguous", "stale"]


def test_fix_commands_quote_hostile_fault_names_and_say_placeholders_without_manifest():
    evil = "X'; rm -rf ~ #"
    doc = _doc([_cell(evil, "BB", "incomplete")], faults=(evil,))
    [p] = rv.problems(doc)
    argv = shlex.split(p["command"])
    assert argv[1:3] == ["CS_ROOT", "FILES_TO_SYNC"] and argv[-1] == evil


def test_fix_all_groups_faults_by_state_and_types():
    cells = [_cell("K", t, "not uploaded") for t in ("BB", "IM")] + [_cell("L", t, "not uploaded") for t in ("BB", "IM")]
    cells += [_cell("A", "BB", "incomplete"), _cell("B", "BB", "incomplete"), _cell("C", "IM", "stale")]
    doc = _doc(cells, faults=("A", "B", "C", "K", "L"))
    groups = [(g["state"], g["types"], shlex.split(g["command"])[5:]) for g in rv.fix_all(doc)]
    assert groups == [
        ("incomplete", "BB", ["-t", "BB", "--inc_fault", "A", "B"]),
        ("stale", "IM", ["-t", "IM", "--update", "--inc_fault", "C"]),
        ("not uploaded", "BB IM", ["-t", "BB", "IM", "--inc_fault", "K", "L"]),
    ]


def test_missing_root_files_are_problems_with_a_plain_rerun():
    doc = _doc([_cell("A", "BB", "complete")], has_list=False, has_stocktake=False)
    probs = rv.problems(doc)
    assert [p["why"] for p in probs] == ["list.txt is not on the remote", "stocktake.csv is not on the remote"]
    assert "--inc_fault" not in probs[0]["command"] and "-t" not in shlex.split(probs[0]["command"])


def test_ticks_are_round_steps_of_one_unit_covering_the_top():
    assert rv.ticks(0) == [(0, "0 B")]
    t = rv.ticks(1_900_000)
    assert [x for _, x in t] == ["0", "0.5 MiB", "1 MiB", "1.5 MiB", "2 MiB"] and t[-1][0] >= 1_900_000
    t = rv.ticks(7 * 2**40)
    assert t[-1][0] >= 7 * 2**40 and 3 <= len(t) <= 7 and t[1][1] == "2 TiB"


def test_chart_stacks_types_largest_fault_first_within_the_plot():
    sizes = {("A", "BB"): 100, ("A", "IM"): 50, ("B", "BB"): 300}
    ch = rv.chart(["A", "B"], ["BB", "IM"], lambda f, t: sizes.get((f, t), 0))
    assert [b["fault"] for b in ch["bars"]] == ["B", "A"]
    a = ch["bars"][1]
    assert [r["cls"] for r in a["rects"]] == ["t0", "t1"]
    # stacked: IM's rectangle sits on top of BB's, heights proportional to bytes
    bb, im = a["rects"]
    assert abs(im["y"] + im["h"] - bb["y"]) < 0.02 and abs(bb["h"] / im["h"] - 2) < 0.01
    assert all(ch["left"] <= b["x"] and b["x"] + b["w"] <= ch["right"] + 0.01 for b in ch["bars"])
    assert all(r["y"] >= 0 for b in ch["bars"] for r in b["rects"])
    assert ch["labels"]
    big = rv.chart([f"F{i}" for i in range(500)], ["BB"], lambda f, t: 1)
    assert not big["labels"] and big["bars"][-1]["x"] + big["bars"][-1]["w"] <= big["right"] + 0.01


def test_stocktake_view_marks_failures_and_groups_patterns_by_type():
    st = {"source": "s.csv", "types": ["BB", "Source"],
          "patterns": [{"type": "BB", "pattern": "a"}, {"type": "Source", "pattern": "b"},
                       {"type": "Source", "pattern": "c"}],
          "rows": [{"fault": "A", "rels": 4, "rel_start": 1, "median": True, "unlisted": 0, "ok": False, "types": {},
                    "cells": [{"found": 5, "expected": 5, "ok": True, "missing": ""},
                              {"found": 3, "expected": 5, "ok": False, "missing": "REL02, REL03"},
                              {"found": 2, "expected": None, "ok": True, "missing": ""}]}],
          "failed_faults": 1}
    v = rv.stocktake_view(st)
    assert v["groups"] == [{"type": "BB", "span": 1}, {"type": "Source", "span": 2}]
    [row] = v["rows"]
    assert [c["text"] for c in row["cells"]] == ["5/5", "3/5", "2"]
    assert [c["ok"] for c in row["cells"]] == [True, False, True]
    assert "missing REL02, REL03" in row["cells"][1]["title"]
    assert v["failed"] == 1 and rv.stocktake_view(None) is None
    assert rv.stocktake_view({"source": "x", "error": "bad"})["error"] == "bad"


def test_version_view_header_totals_and_data_is_the_status_document():
    doc = big_status_doc(20)
    v = rv.version_view(doc, made="now")
    assert v["data"] is doc and v["faults"] == 20 and v["types"] == doc["types"]
    assert sum(s["n"] for s in v["states"]) == 20 * 4
    assert {c["key"]: c["n"] for c in v["checks"]}["content"] == 80
    assert v["oldest"] == "2024-03-01 10:00:00 UTC"
    assert len(v["rows"]) == 20 and v["problems"] and v["stocktake"]["total"] == 20


def test_versions_view_completeness_and_links():
    doc = {"root": "r:", "versions": [{"name": "v1", "faults": 2, "sets": 8, "size": 10, "problem_sets": 2},
                                      {"name": "v2", "faults": 1, "sets": 4, "size": 5, "problem_sets": 0}]}
    v = rv.versions_view(doc, made="now", links={"v2": "v2_report.html"})
    assert [(r["name"], r["complete_pct"], r["href"]) for r in v["rows"]] == [("v1", 75.0, None),
                                                                              ("v2", 100.0, "v2_report.html")]


def test_every_status_state_has_a_place_and_every_problem_a_fix():
    from cs_sync.status import BAD_STATES, CellState
    from cs_sync.ui import report_view

    assert set(report_view.STATE_ORDER) == {s.value for s in CellState}
    assert {s.value for s in BAD_STATES} <= set(report_view.FIX_FLAGS) == set(report_view.FIX_WHY)


def test_the_header_says_what_list_txt_names_that_the_remote_lacks_and_the_reverse():
    doc = _doc([_cell("A", "BB", "complete"), _cell("K", "BB", "not uploaded", size=0, parts=0)],
               list_faults=2, list_missing=["K"], unlisted=["B"])
    assert rv.version_view(doc, made="now")["list_text"] == (
        "yes (2 faults, 1 with nothing on the remote; on the remote, not in it: B)")
    assert rv.list_text(_doc([], has_list=False)) == "MISSING"
    assert rv.list_text(_doc([])) == "yes"  # a status JSON saved before list.txt was read
