"""Download progress tells the truth: totals are the run's from the start, no row stays behind
when its transfer ends, and plain lines carry totals."""

from __future__ import annotations

import io

from rich.console import Console

from cs_sync.download.engine import DownloadSettings, download
from cs_sync.remote.rclone import Rclone
from cs_sync.ui.progress_display import PlainProgress, RichProgress

from archive_builder import assert_tree_matches, write_version
from cybershake_tree import FaultSpec
from dl_helpers import make_remote, make_source_tree

V = "v22p12"
FAULTS = [FaultSpec("Big", rels=2, median=True, bb_size=8_700_000),  # BB: one ~25 MB part
          FaultSpec("Hope1888", rels=2, median=False, bb_size=20_000)]


class Watched(RichProgress):
    """The real live display (to a string), remembering what its bars said when each kind began."""

    def __init__(self) -> None:
        super().__init__(console=Console(file=io.StringIO(), force_terminal=True, width=150))
        self.first_totals: dict[str, int] = {}

    def task_started(self, key, label, total, kind=""):
        if kind not in self.first_totals:  # what the kind's bar said when its first task began
            self.first_totals[kind] = self.totals().get(kind, (0, 0, 0, 0))[1]
        super().task_started(key, label, total, kind)


def test_totals_from_the_plan_and_no_row_left_behind(tmp_path, monkeypatch):
    remote = make_remote("local", tmp_path)
    built = write_version(make_source_tree(tmp_path, FAULTS), remote.folder, V, ["Big", "Hope1888"])
    parts = sorted((remote.folder / V).glob("*/*.tar"))
    samples = sorted((remote.folder / V).glob("*/*_BB.bin"))
    monkeypatch.setenv("RCLONE_BWLIMIT_FILE", "8M")  # slow enough for several stats reports per part
    ddir = tmp_path / "dl"
    settings = DownloadSettings(version=V, remote=remote.root, download_dir=ddir)
    with Watched() as progress:
        result = download(settings, Rclone(), progress)
        rows = [t.description.strip() for t in progress._bars.tasks]
        kinds = {k.kind: k for k in progress.kinds()}
    assert result.exit_code() == 0
    assert assert_tree_matches(ddir, built) > 0
    assert rows == ["[bold]download", "[bold]extract"], rows  # every transfer's row went when it ended
    size = sum(p.stat().st_size for p in parts + samples)
    # the bars' totals were the run's from its first task on, and ended equal to it
    assert progress.first_totals["download"] == size == kinds["download"].total == kinds["download"].done
    assert kinds["download"].finished == kinds["download"].count == len(parts) + len(samples)
    assert progress.first_totals["extract"] == kinds["extract"].total == size


def test_plain_lines_of_a_download_carry_totals_rate_and_eta(tmp_path):
    remote = make_remote("local", tmp_path)
    write_version(make_source_tree(tmp_path, FAULTS[1:]), remote.folder, V, ["Hope1888"])
    out = io.StringIO()
    settings = DownloadSettings(version=V, remote=remote.root, download_dir=tmp_path / "dl")
    with PlainProgress(out, interval=3600) as progress:
        download(settings, Rclone(), progress)
        line = progress.status_line()
    assert "download 4/4, 99.5 KiB/99.5 KiB (100%), done; extract 4/4" in line, line  # BB, IM, Source, sample
