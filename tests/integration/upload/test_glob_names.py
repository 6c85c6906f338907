"""Names holding rclone's glob characters (``[ ] { } * ?``) are matched literally.

Upload, check, move and listing calls select files by ``--include`` rules built from
part names; unescaped, ``Odd[1]{a}*`` would be a pattern that matches the decoy fault
``Odd1a`` and not itself. Both faults go up, are verified on the remote, come back.
"""

from __future__ import annotations

import pytest

from cs_sync.cli.download import main as download_main
from cs_sync.cli.upload import main as upload_main
from cs_sync.remote.rclone import Rclone, escape_filter, filter_literal

from cybershake_tree import FaultSpec
from manifests import write_tree_manifest
from upload_checks import verify_version

ODD = "Odd[1]{a}*"
DECOY = "Odd1a"  # what ODD matches when taken as a pattern
CAP = 64 * 1024


def test_escape_filter_escapes_every_glob_character():
    assert escape_filter("a[1]{b}*?\\c") == "a\\[1\\]\\{b\\}\\*\\?\\\\c"
    assert filter_literal("F/x.tar") == "/F/x.tar" and filter_literal("/F/x.tar") == "/F/x.tar"


def test_includes_match_names_literally(tmp_path, rclone_bin):
    src = tmp_path / "src"
    names = ["a[1].bin", "b*.bin", "c{x}.bin", "d?.bin"]
    decoys = ["a1.bin", "bXX.bin", "cx.bin", "dZ.bin"]
    src.mkdir()
    for n in names + decoys:
        (src / n).write_text(n)
    rc = Rclone(rclone_bin)
    rc.copy(str(src), str(tmp_path / "dst"), includes=names)
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == sorted(names)
    assert sorted(f.path for f in rc.lsjson(str(src), includes=names)) == sorted(names)
    res = rc.check(str(src), str(tmp_path / "dst"), files=names)
    assert res.ok and sorted(res.matched) == sorted(names)
    rc.move(str(tmp_path / "dst"), str(tmp_path / "moved"), files=names[:2])
    assert sorted(p.name for p in (tmp_path / "moved").iterdir()) == sorted(names[:2])


@pytest.mark.parametrize("kind", ["local", "webdav"])
def test_fault_with_glob_characters_round_trip(kind, make_tree, tmp_path, capsys, request):
    if kind == "webdav":
        remote = request.getfixturevalue("webdav").remote + "archive"
    else:
        remote = str(tmp_path / "remote")
    root, _ = make_tree([FaultSpec(ODD, rels=2, median=True, bb_size=30_000), FaultSpec(DECOY, rels=1, bb_size=20_000)])
    man = write_tree_manifest(root)
    code = upload_main([str(root), str(man), "--remote", remote, "--tmp_dir", str(tmp_path / "s"), "--max-size", str(CAP)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    base = request.getfixturevalue("webdav").root / "archive" if kind == "webdav" else tmp_path / "remote"
    sidecars = verify_version(base, root, man, CAP)
    assert {sc.fault for sc in sidecars.values()} == {ODD, DECOY}
    ddir = tmp_path / "d"
    code = download_main([root.name, "--remote", remote, "--download_dir", str(ddir)])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    n = 0
    for sc in sidecars.values():  # every member of every set came back with its source's bytes
        for m in sc.members:
            assert (ddir / sc.fault / sc.dtype / m.name).read_bytes() == (root / m.source).read_bytes(), m.name
            n += 1
    assert n > 10
