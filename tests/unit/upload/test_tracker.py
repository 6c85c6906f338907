"""The per-set order rules: the final part after the others, the sidecar after all, nothing after a failure."""

from cs_sync.upload.journal import Journal
from cs_sync.upload.planning import Decision, PartPlan, PlannedMember, SetPlan
from cs_sync.upload.results import SetOutcome, SetStatus
from cs_sync.upload.tracker import SetTracker


def make_set(n: int, sample: bool = False) -> SetPlan:
    parts = []
    for i in range(n):
        name = f"F_BB_{i}{'f' if i == n - 1 else ''}.tar" if n > 1 else "F_BB.tar"
        m = PlannedMember(f"m{i}", f"src/m{i}", 100 * (i + 1), None, "BB")
        parts.append(PartPlan(name, i, n, (m,), 1024 * (i + 1)))
    return SetPlan("F", "BB", tuple(parts), sample=sample)


def tracker(sp: SetPlan, todo=None, tmp_path=None) -> SetTracker:
    todo = tuple(p.name for p in sp.parts) if todo is None else todo
    d = Decision("upload", todo=todo)
    return SetTracker(sp, d, Journal(tmp_path / "j.json", sp.name, "k"), SetOutcome("F", "BB", "upload", SetStatus.PENDING))


def test_final_part_waits_for_every_other_part(tmp_path):
    t = tracker(make_set(3), tmp_path=tmp_path)
    assert [j.relpath for j in t.first_jobs()] == ["F/F_BB_0.tar", "F/F_BB_1.tar"]
    assert t.checked("F_BB_1.tar") == (None, False)
    release, sidecar = t.checked("F_BB_0.tar")
    assert release is not None and release.relpath == "F/F_BB_2f.tar" and not sidecar
    assert release.size == 3072 and release.members[0].source == "src/m2"
    assert t.checked("F_BB_2f.tar") == (None, True)
    assert t.sidecar_due


def test_single_part_and_sample_sets_go_at_once(tmp_path):
    t = tracker(make_set(1), tmp_path=tmp_path)
    assert [j.relpath for j in t.first_jobs()] == ["F/F_BB.tar"]
    s = tracker(make_set(2, sample=True), tmp_path=tmp_path)  # plain files: no order between them
    assert len(s.first_jobs()) == 2 and all(j.plain for j in s.first_jobs())


def test_resume_with_the_others_checked_sends_the_final_part_now(tmp_path):
    t = tracker(make_set(3), todo=("F_BB_2f.tar",), tmp_path=tmp_path)
    assert [j.relpath for j in t.first_jobs()] == ["F/F_BB_2f.tar"]
    done = tracker(make_set(3), todo=(), tmp_path=tmp_path)  # everything checked: only the sidecar is missing
    assert done.first_jobs() == [] and done.sidecar_due


def test_a_failed_set_never_releases_its_final_part_or_its_sidecar(tmp_path):
    t = tracker(make_set(3), tmp_path=tmp_path)
    t.first_jobs()
    assert t.fail("boom") and not t.fail("again")
    t.checked("F_BB_0.tar")
    assert t.checked("F_BB_1.tar") == (None, False)
    assert not t.sidecar_due and t.failed == "boom"
