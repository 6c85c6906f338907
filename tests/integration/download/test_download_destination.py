"""Downloads into a folder that already holds some of the files: what is replaced, what stops
one set (and only that set), and that nothing lands outside the folder or half over old files."""

from __future__ import annotations

import os

from archive_builder import assert_tree_matches, write_version
from dl_helpers import FAULT_NAMES, MAX_PART, files_under, make_source_tree, run_download

V = "v22p12"
BB = ("AlpineK2T", "BB")
HOPE = ("Hope1888", "BB")


def _dl(remote, ddir, *args):
    return run_download(V, "--remote", str(remote), "--download_dir", str(ddir), "-t", "BB", *args)


def test_files_already_there_are_replaced_and_links_are_not_followed(tmp_path):
    """Same bytes, other bytes, a read-only file and a link to a file outside: each is replaced by
    the set's file; the file the link pointed at is untouched."""
    tree = make_source_tree(tmp_path)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, FAULT_NAMES, max_part=MAX_PART)
    ddir, outside = tmp_path / "dl", tmp_path / "outside"
    final = ddir / "AlpineK2T" / "BB"
    final.mkdir(parents=True)
    outside.mkdir()
    (outside / "victim").write_bytes(b"precious")
    files = sorted(built.sets[BB], key=lambda f: f.member)
    names = [f.member for f in files]
    (final / names[0]).write_bytes(files[0].path.read_bytes())  # the same bytes
    (final / names[1]).write_bytes(b"other bytes")
    (final / names[2]).write_bytes(b"read-only")
    os.chmod(final / names[2], 0o444)
    os.symlink(outside / "victim", final / names[3])
    (final / "mine.txt").write_bytes(b"the user's own file")
    code, out, err = _dl(remote, ddir, "--inc_fault", "AlpineK2T")
    assert code == 0, out + err
    assert assert_tree_matches(ddir, built, keys={BB}) == len(names)
    assert not (final / names[3]).is_symlink()
    assert (outside / "victim").read_bytes() == b"precious" and os.listdir(outside) == ["victim"]
    assert (final / "mine.txt").read_bytes() == b"the user's own file"


def test_a_folder_where_a_file_goes_stops_that_set_only_and_moves_none_of_it(tmp_path):
    """Before: the run stopped at the first file it could not move (exit 9 as a disk error, the
    other sets not attempted), naming the hidden staging file, with part of the set already
    moved over the old files. Now the set is checked before anything moves, the message names
    the folder in the way, the other sets come down, and a re-run after moving it finishes."""
    tree = make_source_tree(tmp_path)
    remote = tmp_path / "remote"
    built = write_version(tree, remote, V, FAULT_NAMES, max_part=MAX_PART)
    ddir = tmp_path / "dl"
    final = ddir / "AlpineK2T" / "BB"
    names = sorted(f.member for f in built.sets[BB])
    (final / names[-1]).mkdir(parents=True)  # sorted last: os.walk meets the other files first
    (final / names[-1] / "notes.txt").write_bytes(b"mine")
    (final / names[0]).write_bytes(b"an older copy")
    code, out, err = _dl(remote, ddir)
    assert code == 7, out + err  # one set failed, another went through
    assert f"{final / names[-1]} is a folder, where a file of the set goes" in out, out
    assert "move it out of the way" in err + out and "Traceback" not in err
    assert (final / names[0]).read_bytes() == b"an older copy"  # nothing of the set moved over it
    assert assert_tree_matches(ddir, built, keys={HOPE}) > 0  # the other set came down
    assert "1 fetched" in out and "1 failed" in out, out
    os.rename(final / names[-1], tmp_path / "moved")
    code, out, err = _dl(remote, ddir)
    assert code == 0, out + err
    assert assert_tree_matches(ddir, built, keys={BB, HOPE}) == len(names) + len(built.sets[HOPE])
    assert not any(".cs_sync_partial" in p for p in files_under(ddir))


def test_a_file_where_the_sets_folder_goes_names_it(tmp_path):
    tree = make_source_tree(tmp_path)
    remote = tmp_path / "remote"
    write_version(tree, remote, V, FAULT_NAMES, max_part=MAX_PART)
    ddir = tmp_path / "dl"
    (ddir / "AlpineK2T").mkdir(parents=True)
    (ddir / "AlpineK2T" / "BB").write_bytes(b"not a folder")
    code, out, err = _dl(remote, ddir)
    assert code == 7, out + err
    assert f"{ddir / 'AlpineK2T' / 'BB'} is a file, where the set's folder goes" in out, out
    assert (ddir / "AlpineK2T" / "BB").read_bytes() == b"not a folder"
    assert "1 fetched" in out, out  # Hope1888's set was not stopped by it
