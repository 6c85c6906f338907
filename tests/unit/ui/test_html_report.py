"""Rendering the report pages (no browser): self-contained, escaped, the status data embedded, small."""

from __future__ import annotations

import json

from cs_sync.ui.html_report import render_run, render_stocktake, render_version, render_versions

from html_checks import Tags, assert_self_contained
from report_helpers import big_status_doc

EVIL = '<img src=x onerror="document.body.dataset.pwned=1">'


def test_page_for_500_faults_by_4_types_is_small_self_contained_and_complete():
    doc = big_status_doc(500)
    html = render_version(doc, made="2025-01-01 00:00 UTC")
    assert len(html.encode()) < 2_000_000, len(html.encode())
    assert_self_contained(html)
    tags = Tags(html)
    assert len(tags.find("tr", **{"data-problem": "1"})) >= 50
    cells = [a for t, a in tags.tags if t == "td" and "data-state" in a]
    assert len(cells) == 500 * 4
    assert json.loads(tags.data) == doc  # the page's data is the status document, unchanged
    assert len(tags.find("rect")) == 500 * 4


def test_hostile_fault_names_are_escaped_everywhere():
    doc = big_status_doc(3)
    doc["faults"][1] = EVIL
    for c in doc["cells"]:
        if c["fault"] == "Fault001":
            c["fault"] = EVIL
            c["problems"] = ["</script><script>document.body.dataset.pwned=2</script>"]
            c["state"] = "incomplete"
    doc["stocktake"]["rows"][1]["fault"] = EVIL
    html = render_version(doc)
    tags = Tags(html)
    assert not tags.find("img"), "an injected element"
    assert len([a for t, a in tags.tags if t == "script"]) == 2  # the data and the page's own script
    assert EVIL in [a.get("data-fault") for t, a in tags.tags if t == "tr"]  # kept as text, intact
    assert json.loads(tags.data) == doc


def test_stocktake_page_from_a_preprocess_run():
    pdoc = {"version": "v1", "cs_root": "/data/v1", "fault_list": "/data/v1/list.txt", "ok": False,
            "stocktake": {"source": "stocktake.csv", "types": ["BB"], "patterns": [{"type": "BB", "pattern": "p"}],
                          "rows": [{"fault": "A", "rels": 2, "rel_start": 1, "median": True, "unlisted": 0, "ok": True,
                                    "types": {"BB": {"ok": True, "files": 3, "bytes": 300}},
                                    "cells": [{"found": 3, "expected": 3, "ok": True, "missing": ""}]},
                                   {"fault": "B", "rels": 2, "rel_start": 1, "median": False, "unlisted": 0,
                                    "ok": False, "types": {"BB": {"ok": False, "files": 1, "bytes": 100}},
                                    "cells": [{"found": 1, "expected": 2, "ok": False, "missing": "REL02"}]}],
                          "failed_faults": 1},
            "problems": [{"fault": "B", "type": "BB", "failed": True, "text": "B BB: p: found 1, expected 2"}],
            "totals": {"BB": {"files": 4, "bytes": 400}}}
    html = render_stocktake(pdoc, made="now")
    assert_self_contained(html)
    tags = Tags(html)
    assert [a["data-state"] for t, a in tags.tags if t == "td" and "data-state" in a] == ["OK", "failed"]
    assert len(tags.find("td", **{"class": "bad"})) == 1
    assert "cs-sync-preprocess /data/v1 /data/v1/list.txt" in html
    assert json.loads(tags.data) == pdoc


def test_run_page_and_versions_overview():
    html = render_run("download", "v1", ["cs-sync slurm download of v1: 1 of 2 shard(s) finished cleanly"], False)
    assert_self_contained(html)
    assert "INCOMPLETE" in html and "1 of 2 shard(s)" in html
    doc = {"root": "r:/cs", "versions": [{"name": "v1", "faults": 2, "sets": 8, "size": 10, "problem_sets": 2},
                                         {"name": EVIL, "faults": 1, "sets": 4, "size": 5, "problem_sets": 0}]}
    html = render_versions(doc, links={"v1": "v1_report.html"})
    assert_self_contained(html)
    tags = Tags(html)
    assert tags.find("a", href="v1_report.html") and not tags.find("img")
    assert [a["data-version"] for t, a in tags.tags if t == "tr" and "data-version" in a] == ["v1", EVIL]
