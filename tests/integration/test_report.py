"""`cs-sync report` end to end (real rclone, real remote), and its pages in real headless Chromium."""

from __future__ import annotations

import json
import shutil
import subprocess
import time

import pytest

from archive_builder import write_version
from browser import colours, dump_dom, read_png, screenshot
from dl_helpers import assert_one_line_error, run_cs_sync, script
from html_checks import Tags, assert_self_contained
from report_helpers import EXPECTED, TYPES, V, big_status_doc, make_report_version

EVIL = "Evil<img src=x onerror=document.body.setAttribute('data-pwned',1)>"


@pytest.fixture
def version(tmp_path):
    """The small version of report_helpers (every state), and its stocktake from the real preprocess."""
    rv = make_report_version(tmp_path)
    out = tmp_path / "pre"
    proc = subprocess.run([script("cs-sync-preprocess"), str(rv.tree), str(rv.tree / "list.txt"), "--out_file",
                           str(out / "files_to_sync.yaml"), "--stocktake_csv", str(out / "stocktake.csv")],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rv.stocktake = out / "stocktake.csv"
    return rv


def _report(rv, *args):
    return run_cs_sync("report", V, "--remote", str(rv.remote), "--manifest", str(rv.manifest), *args)


def grid_states(html: str) -> dict[tuple[str, str], str]:
    """(fault, type) -> the state of each grid cell, from the page's markup (or its DOM)."""
    in_grid, out, fault, col = False, {}, None, 0
    for tag, a in Tags(html).tags:
        if tag == "table":
            in_grid = a.get("id") == "grid"
        elif in_grid and tag == "tr" and "data-fault" in a:
            fault, col = a["data-fault"], 0
        elif in_grid and tag == "td" and "data-state" in a and fault is not None:
            out[(fault, TYPES[col])] = a["data-state"]
            col += 1
    return out


def visible_faults(dom: str) -> list[str]:
    return [a["data-fault"] for t, a in Tags(dom).tags
            if t == "tr" and "data-fault" in a and "data-problem" in a and "data-rank" in a and "hidden" not in a]


@pytest.mark.browser
def test_report_page_grid_totals_and_problems_in_chromium(version, tmp_path):
    page = tmp_path / "out" / "page.html"
    code, out, err = _report(version, "--stocktake", str(version.stocktake), "-o", str(page))
    assert code == 0, err
    assert out.strip() == str(page)
    html = page.read_text()
    assert_self_contained(html)
    # one model, two views: the page's data is exactly what status --json prints
    code, sj, err = run_cs_sync("status", V, "--remote", str(version.remote), "--manifest", str(version.manifest),
                                "--stocktake", str(version.stocktake), "--json")
    assert code == 7, err
    assert json.loads(Tags(html).data) == json.loads(sj)

    dom = dump_dom(page)
    tags = Tags(dom)
    assert tags.find("html", **{"data-ready": "1"}), "the page's script ran"
    assert grid_states(dom) == EXPECTED
    cards = {a["data-state"]: t for t, a in tags.tags if t == "div" and "data-state" in a}
    assert set(cards) == {"incomplete", "mismatch", "damaged sidecar", "ambiguous", "stale", "not uploaded", "complete", "absent"}
    counts = _card_numbers(dom)
    assert counts == {"incomplete": 1, "mismatch": 0, "damaged sidecar": 0, "ambiguous": 1, "stale": 1, "not uploaded": 4,
                      "complete": 9, "absent": 0}
    assert ">4 checked by content at upload" in dom and ">4 checked by size only at upload" in dom
    assert ">4 from the older scripts, without a sidecar or index" in dom
    assert "oldest 2024-03-01 10:00:00 UTC, newest 2025-01-02 08:30:00 UTC" in dom
    assert "4 of 4 faults shown" in dom
    # problems: each with the command that fixes it
    problems = [a for t, a in tags.tags if t == "tr" and a.get("class") == "problem"]
    assert sorted((p["data-fault"], p["data-state"]) for p in problems) == [
        ("", "missing"), ("AlpineK2T", "incomplete"), ("Hope1888", "ambiguous"), ("Hope1888", "stale"),
        *[("Kelly", "not uploaded")] * 4]
    assert f"--remote {version.remote} -t BB --update --inc_fault Hope1888" in dom
    assert "-t IM --overwrite --inc_fault Hope1888" in dom
    assert f"cs-sync-upload {version.tree} {version.manifest} --remote {version.remote} -t BB --inc_fault AlpineK2T" in dom
    # the stocktake per fault and pattern (all passed here)
    st_rows = [a for t, a in tags.tags if t == "tr" and a.get("class", "").startswith("st-row")]
    assert {a["data-fault"] for a in st_rows} == {"AlpineK2T", "Hope1888", "Wairau", "Kelly"}
    assert "0 of 4 faults with a failed check" in dom
    # the chart: a column per fault with a tooltip, stacked by type
    assert dom.count("<rect ") == 12 and "AlpineK2T: 259.3 KiB" in dom


def _card_numbers(dom: str) -> dict[str, int]:
    import re

    return {m.group(1): int(m.group(2)) for m in
            re.finditer(r'<div class="card [^"]*" data-state="([^"]+)"><b>(\d+)</b>', dom)}


@pytest.mark.browser
def test_filter_problems_and_sort_work_from_the_fragment_and_the_controls(version, tmp_path):
    page = tmp_path / "page.html"
    code, out, err = _report(version, "-o", str(page))
    assert code == 0, err
    dom = dump_dom(page, "filter=alp")
    assert visible_faults(dom) == ["AlpineK2T"] and "1 of 4 faults shown" in dom
    dom = dump_dom(page, "problems=1&sort=-size")
    assert visible_faults(dom) == ["AlpineK2T", "Hope1888", "Kelly"]  # Wairau is complete; largest first
    dom = dump_dom(page, "sort=state")
    assert visible_faults(dom)[-1] == "Wairau"
    # the controls themselves: type in the box, press "only problems", click "size"
    driven = tmp_path / "driven.html"
    driven.write_text(page.read_text().replace("</body>", """<script>
var box = document.getElementById("filter");
box.value = "o"; box.dispatchEvent(new Event("input"));
document.getElementById("only-problems").click();
document.querySelector("button[data-sort=size]").click();
document.body.setAttribute("data-test", location.hash);
</script></body>"""))
    dom = dump_dom(driven)
    assert visible_faults(dom) == ["Hope1888"]  # 'o' matches Hope1888 and Wairau; only Hope1888 has problems
    assert 'data-test="#filter=o&amp;problems=1&amp;sort=-size"' in dom
    assert 'data-sort="-size"' in dom


@pytest.mark.browser
def test_screenshot_at_1400_px_is_not_blank(version, tmp_path):
    page = tmp_path / "page.html"
    assert _report(version, "-o", str(page))[0] == 0
    png = screenshot(page, tmp_path / "shot.png")
    width, height, _ = read_png(png)
    assert (width, height) == (1400, 900)
    seen = colours(png)
    assert len(seen) > 50, len(seen)
    white = seen.get((255, 255, 255), 0)
    assert white < 0.95 * sum(seen.values())
    # the state colours of the grid are on screen: complete (green), incomplete (red), ambiguous, stale
    for rgb in [(0xc9, 0xec, 0xd0), (0xff, 0xd0, 0xcc), (0xee, 0xd3, 0xf5), (0xff, 0xf0, 0xa8)]:
        assert seen.get(rgb, 0) > 20, rgb


@pytest.mark.browser
def test_a_hostile_fault_name_from_the_remote_is_text_not_markup(tmp_path):
    remote = tmp_path / "remote"
    fdir = remote / V / EVIL
    fdir.mkdir(parents=True)
    (fdir / f"{EVIL}_BB.tar").write_bytes(b"\0" * 1024)
    (remote / V / "Hope1888").mkdir()
    (remote / V / "Hope1888" / "Hope1888_BB_0.tar").write_bytes(b"\0" * 512)
    page = tmp_path / "evil.html"
    code, out, err = run_cs_sync("report", V, "--remote", str(remote), "-o", str(page))
    assert code == 0, err
    dom = dump_dom(page, "filter=evil")
    tags = Tags(dom)
    assert not tags.find("img"), "an element injected by a fault name"
    assert not [a for t, a in tags.tags if t == "body" and "data-pwned" in a]
    assert visible_faults(dom) == [EVIL]
    assert "--inc_fault 'Hope1888'" not in dom and "--inc_fault Hope1888" in dom
    assert "--inc_fault &#39;Evil" not in dom  # (the hostile one is complete: no command for it)


@pytest.mark.browser
def test_page_for_500_faults_by_4_types_is_small_and_interactive(tmp_path):
    doc = big_status_doc(500)
    saved = tmp_path / "status.json"
    saved.write_text(json.dumps(doc))
    page = tmp_path / "big.html"
    code, out, err = run_cs_sync("report", "--from_json", str(saved), "-o", str(page))
    assert code == 0, err
    size = page.stat().st_size
    assert size < 2_000_000, size
    t0 = time.monotonic()
    dom = dump_dom(page, "filter=Alpine")
    took = time.monotonic() - t0
    shown = visible_faults(dom)
    assert shown == [f for f in doc["faults"] if "Alpine" in f] and len(shown) == 10
    assert "10 of 500 faults shown" in dom
    dom = dump_dom(page, "problems=1&sort=-size")
    shown = visible_faults(dom)
    assert len(shown) == 50 and shown[0] == "Fault493"  # the largest fault with a problem first
    print(f"500 x 4 page: {size / 1e6:.2f} MB, filtered DOM dump in {took:.1f} s")


def test_overview_of_every_version_and_all_pages(tmp_path):
    from dl_helpers import make_source_tree

    tree = make_source_tree(tmp_path)
    remote = tmp_path / "remote"
    write_version(tree, remote, V, ["AlpineK2T", "Hope1888"], max_part=50_000)
    write_version(tree, remote, "v19p5", ["Hope1888"], sidecar=False)
    (remote / "v19p5" / "Hope1888" / "Hope1888_BB.tar").unlink()
    (remote / "v19p5" / "Hope1888" / "Hope1888_BB_0.tar").write_bytes(b"\0" * 512)
    alone = tmp_path / "alone" / "versions.html"
    code, out, err = run_cs_sync("report", "--remote", str(remote), "-o", str(alone))
    assert code == 0, err
    tags = Tags(alone.read_text())
    assert [a["data-version"] for t, a in tags.tags if t == "tr" and "data-version" in a] == ["v19p5", V]
    assert not tags.find("a"), "no pages alongside: nothing to link"
    assert "75.0%" in alone.read_text()  # v19p5: 3 of 4 sets complete by their names
    folder = tmp_path / "all"
    code, out, err = run_cs_sync("report", "--all", "--remote", str(remote), "-o", str(folder))
    assert code == 0, err
    assert sorted(p.name for p in folder.iterdir()) == ["index.html", "v19p5_report.html", f"{V}_report.html"]
    index = Tags((folder / "index.html").read_text())
    assert [a["href"] for t, a in index.tags if t == "a"] == ["v19p5_report.html", f"{V}_report.html"]
    for p in folder.iterdir():
        assert_self_contained(p.read_text())
    v19 = grid_states((folder / "v19p5_report.html").read_text())
    assert v19[("Hope1888", "BB")] == "incomplete" and v19[("Hope1888", "IM")] == "complete"
    assert out.split() == [str(folder / "v19p5_report.html"), str(folder / f"{V}_report.html"),
                           str(folder / "index.html")]


def test_report_from_saved_status_json_and_default_output(version, tmp_path):
    code, sj, err = run_cs_sync("status", V, "--remote", str(version.remote), "--json")
    saved = tmp_path / "status.json"
    saved.write_text(sj)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    proc = subprocess.run([script("cs-sync"), "report", "--from_json", str(saved)], cwd=cwd, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    page = cwd / f"{V}_report.html"
    assert proc.stdout.strip() == f"{V}_report.html" and page.is_file()
    assert json.loads(Tags(page.read_text()).data) == json.loads(sj)
    # without a manifest: no stale sets; Kelly, in the remote's list.txt with nothing on the remote, is
    # not uploaded; the fix commands say CS_ROOT FILES_TO_SYNC
    states = grid_states(page.read_text())
    assert {states[("Kelly", t)] for t in TYPES} == {"not uploaded"} and states[("Hope1888", "BB")] == "complete"
    assert "cs-sync-upload CS_ROOT FILES_TO_SYNC --remote" in page.read_text()


@pytest.mark.parametrize("kind", ["local", "webdav"])
def test_remote_stocktake_is_read_by_default(kind, version, tmp_path, request):
    shutil.copy(version.stocktake, version.remote / V / "stocktake.csv")
    page = tmp_path / "p.html"
    if kind == "webdav":  # the same version served by a loopback WebDAV server (no hashes there)
        srv = request.getfixturevalue("webdav")
        shutil.copytree(version.remote / V, srv.root / V)
        code, out, err = run_cs_sync("report", V, "--remote", srv.remote, "-o", str(page))
        assert code == 0, err
        doc = json.loads(Tags(page.read_text()).data)
        assert doc["stocktake"]["rows"][0]["fault"] == "AlpineK2T" and doc["root"] == srv.remote
        assert grid_states(page.read_text())[("Hope1888", "IM")] == "ambiguous"
        return
    assert _report(version, "-o", str(page))[0] == 0
    doc = json.loads(Tags(page.read_text()).data)
    assert doc["stocktake"]["source"].endswith(f"{V}/stocktake.csv")
    assert [r["fault"] for r in doc["stocktake"]["rows"]] == ["AlpineK2T", "Hope1888", "Wairau", "Kelly"]
    assert _report(version, "-o", str(page), "--stocktake", "none")[0] == 0
    assert json.loads(Tags(page.read_text()).data)["stocktake"] is None
    # a damaged one on the remote does not stop the page: it says why
    (version.remote / V / "stocktake.csv").write_text(",rel_nums,num(BB_x),OK(BB_x)\nA,3,three,True\n")
    assert _report(version, "-o", str(page))[0] == 0
    assert "could not read" in page.read_text() and "line 2: num(BB_x) is &#39;three&#39;" in page.read_text()


def test_report_errors_are_one_line(version, tmp_path):
    code, out, err = run_cs_sync("report", "v9", "--remote", str(version.remote), "-o", str(tmp_path / "x.html"))
    assert code == 6
    assert_one_line_error(err, "version 'v9' not found")
    assert not (tmp_path / "x.html").exists()
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, out, err = run_cs_sync("report", "--from_json", str(bad))
    assert code == 3
    assert_one_line_error(err, "bad.json: not readable as JSON")
    bad.write_text('{"root": "x", "versions": []}')
    code, out, err = run_cs_sync("report", "--from_json", str(bad))
    assert code == 3
    assert_one_line_error(err, "not the status of one version")
    code, out, err = run_cs_sync("report", V, "--all", "--remote", str(version.remote))
    assert code == 2
    assert_one_line_error(err, "--all writes every version")
    code, out, err = _report(version, "--stocktake", str(tmp_path / "nope.csv"))
    assert code == 3
    assert_one_line_error(err, "nope.csv: stocktake not found")
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, out, err = _report(version, "-o", str(blocker / "p.html"))
    assert code == 9
    assert_one_line_error(err, "cannot write")
