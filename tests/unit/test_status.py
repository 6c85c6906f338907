"""Status cells from a listing, and the comparison with a manifest (stale / not uploaded)."""

from cs_sync.archive.sidecar import MemberInfo, PartInfo, SetSidecar
from cs_sync.inputs.manifest import FileRecord, Manifest
from cs_sync.remote.sets import RemoteFile, classify_listing, group_listing
from cs_sync.status import CellState, compare_manifest, status_from_listing, summarize_versions


def _m(name, source, size=10, mtime_ns=1_000_000_000, part="F_Source.tar"):
    return MemberInfo(name=name, part=part, offset=512, size=size, mtime=mtime_ns / 1e9, sha256="x", source=source,
                      mtime_ns=mtime_ns)


def _listing():
    src = SetSidecar("F", "Source", "v1", parts=[PartInfo("F_Source.tar", 3000, "p")], members=[
        _m("F_REL01.info", "Data/Sources/F/Srf/F_REL01.info"),
        _m("vm_params.yaml", "Data/VMs/F/vm_params.yaml"),
    ])
    sample = SetSidecar("F", "SAMPLE_BB", "v1", parts=[], members=[
        _m("F_REL01_BB.bin", "Runs/F/F_REL01/BB/Acc/BB.bin", size=7, part="F_REL01_BB.bin")])
    files = [RemoteFile("F/F_Source.tar", 3000), RemoteFile("F/F_REL01_BB.bin", 7), RemoteFile("F/F_BB_0.tar", 5),
             RemoteFile("G/G_IM.tar", 4), RemoteFile("list.txt", 1)]
    return classify_listing(group_listing("v1", files), {("F", "Source"): src, ("F", "SAMPLE_BB"): sample})


def _manifest(**changes):
    recs = {
        "Source": {"Data/Sources/F/Srf/F_REL01.info": FileRecord("Data/Sources/F/Srf/F_REL01.info", 10, 1_000_000_000)},
        "VM": {"Data/VMs/F/vm_params.yaml": FileRecord("Data/VMs/F/vm_params.yaml", 10, 1_000_000_000)},
        "BB": {"Runs/F/F_REL01/BB/Acc/BB.bin": FileRecord("Runs/F/F_REL01/BB/Acc/BB.bin", 7, 1_000_000_000)},
        "IM": {"Runs/F/F_REL01/IM_calc/F_REL01.csv": FileRecord("Runs/F/F_REL01/IM_calc/F_REL01.csv", 3, None)},
    }
    for dtype, (path, rec) in changes.items():
        recs[dtype][path] = rec
    return Manifest(faults={"F": recs, "G": {"IM": {"Runs/G/x.csv": FileRecord("Runs/G/x.csv", 4, None)}}})


def test_cells_from_listing():
    st = status_from_listing(_listing(), "root")
    assert st.types == ["BB", "IM", "Source", "SAMPLE_BB"]
    assert st.cell("F", "BB").state == CellState.INCOMPLETE and "no final part" in st.cell("F", "BB").problems[0]
    assert st.cell("F", "Source").state == CellState.COMPLETE and st.cell("F", "Source").verified
    assert st.cell("G", "BB").state == CellState.ABSENT
    assert st.exit_code() == 7
    t = st.totals()
    assert t["sets"]["complete"] == 3 and t["sets"]["incomplete"] == 1 and t["bytes"] == 3016


def test_manifest_unchanged_packed_vm_counts_for_source():
    st = compare_manifest(status_from_listing(_listing(), "root"), _listing(), _manifest())
    assert st.cell("F", "Source").state == CellState.COMPLETE
    assert st.cell("F", "SAMPLE_BB").state == CellState.COMPLETE
    assert st.cell("F", "IM").state == CellState.NOT_UPLOADED
    assert "no sidecar" in st.cell("G", "IM").problems[0] and st.cell("G", "IM").state == CellState.COMPLETE


def test_manifest_changes_make_sets_stale():
    touched = FileRecord("Data/VMs/F/vm_params.yaml", 10, 2_000_000_000)
    st = compare_manifest(status_from_listing(_listing(), "root"), _listing(), _manifest(VM=(touched.path, touched)))
    assert st.cell("F", "Source").state == CellState.STALE and "modified since upload" in st.cell("F", "Source").problems[0]
    new = FileRecord("Data/Sources/F/Srf/F_REL02.info", 10, 1)
    st = compare_manifest(status_from_listing(_listing(), "root"), _listing(), _manifest(Source=(new.path, new)))
    assert "is new" in " ".join(st.cell("F", "Source").problems)
    bigger = FileRecord("Runs/F/F_REL01/BB/Acc/BB.bin", 8, 1_000_000_000)
    st = compare_manifest(status_from_listing(_listing(), "root"), _listing(), _manifest(BB=(bigger.path, bigger)))
    assert st.cell("F", "SAMPLE_BB").state == CellState.STALE
    m = _manifest()
    del m.faults["F"]["VM"]
    st = compare_manifest(status_from_listing(_listing(), "root"), _listing(), m)
    assert "no longer in the manifest" in " ".join(st.cell("F", "Source").problems)


def test_summarize_versions_skips_hidden_and_counts_problems():
    files = [RemoteFile("v1/F/F_BB.tar", 10), RemoteFile("v1/F/F_IM_0.tar", 5), RemoteFile("v2/G/G_BB.tar", 1),
             RemoteFile("_trash/F/F_BB.tar", 99), RemoteFile("README", 3), RemoteFile("v1/_cs_sync/F_BB.json", 2)]
    out = {v.name: v for v in summarize_versions(files)}
    assert set(out) == {"v1", "v2"}
    assert (out["v1"].faults, out["v1"].sets, out["v1"].size, out["v1"].problem_sets) == (1, 2, 15, 1)


def _stamped(sc: SetSidecar, created: str, check: str) -> SetSidecar:
    sc.created, sc.check = created, check
    return sc


def test_cells_say_what_vouches_for_them_and_when_they_were_uploaded():
    src = _stamped(SetSidecar("F", "Source", "v1", parts=[PartInfo("F_Source.tar", 3000, "p")]),
                   "2025-02-01T00:00:00+00:00", "content")
    im = _stamped(SetSidecar("F", "IM", "v1", parts=[PartInfo("F_IM.tar", 4, "p")]), "2024-01-01T00:00:00+00:00", "size")
    bb = SetSidecar("F", "BB", "v1", parts=[PartInfo("F_BB.tar", 5, "p")])  # an older sidecar: no check
    files = [RemoteFile("F/F_Source.tar", 3000), RemoteFile("F/F_IM.tar", 4), RemoteFile("F/F_BB.tar", 5),
             RemoteFile("G/G_IM.tar", 4)]
    listing = classify_listing(group_listing("v1", files), {("F", "Source"): src, ("F", "IM"): im, ("F", "BB"): bb})
    st = status_from_listing(listing, "root")
    assert [st.cell("F", t).check for t in ("Source", "IM", "BB")] == ["content", "size", "unrecorded"]
    assert st.cell("G", "IM").check == "no sidecar" and st.cell("G", "IM").uploaded is None
    assert st.cell("F", "Source").uploaded == "2025-02-01T00:00:00+00:00"
    assert st.cell("G", "BB").check is None  # absent: nothing vouches, nothing to vouch for
    t = st.totals()
    assert t["checks"] == {"content": 1, "size": 1, "unrecorded": 1, "indexed with SHA-256": 0, "indexed": 0,
                           "no sidecar": 1}
    assert t["uploaded"] == {"oldest": "2024-01-01T00:00:00+00:00", "newest": "2025-02-01T00:00:00+00:00"}
    d = st.to_dict()
    assert d["stocktake"] is None and d["cs_root"] is None
    assert {(c["fault"], c["type"]): c["check"] for c in d["cells"]}[("G", "IM")] == "no sidecar"


def test_not_uploaded_sets_have_no_check_and_no_time():
    st = compare_manifest(status_from_listing(_listing(), "root"), _listing(), _manifest())
    g = st.cell("G", "IM")
    assert g.state == CellState.COMPLETE and g.check == "no sidecar"
    nu = [c for c in st.cells.values() if c.state == CellState.NOT_UPLOADED]
    assert nu and all(c.check is None and c.uploaded is None for c in nu)
    assert st.totals()["uploaded"] == {"oldest": None, "newest": None}


def test_an_indexed_older_set_is_not_stale_staleness_is_unknown():
    idx = SetSidecar("G", "IM", "v1", origin="index", parts=[PartInfo("G_IM.tar", 4, None)],
                     members=[MemberInfo("x.csv", "G_IM.tar", 512, 4, 0.0, None, "")])
    listing = classify_listing(group_listing("v1", [RemoteFile("G/G_IM.tar", 4)]), {("G", "IM"): idx})
    st = status_from_listing(listing, "root")
    compare_manifest(st, listing, Manifest(faults={"G": {"IM": {"Runs/G/x.csv": FileRecord("Runs/G/x.csv", 4, None)}}}))
    cell = st.cell("G", "IM")
    assert cell.state == CellState.COMPLETE and cell.check == "indexed"
    assert cell.problems == ["indexed older archive: no sources recorded: cannot tell whether the sources changed"]


def test_summarize_versions_counts_a_set_of_which_only_the_sidecar_is_left():
    """A fault folder deleted by hand leaves its sidecars: the versions list must not read clean."""
    files = [RemoteFile("v1/F/F_BB.tar", 10), RemoteFile("v1/_cs_sync/F_BB.json", 2),
             RemoteFile("v1/_cs_sync/G_BB.json", 2), RemoteFile("v1/_cs_sync/G_SAMPLE_BB.json", 2)]
    (v1,) = summarize_versions(files)
    assert (v1.faults, v1.sets, v1.size, v1.problem_sets) == (2, 3, 10, 2)
