"""Hostile or damaged remote content: forged sidecars never steer a download outside its
folder, and a damaged sidecar is never silently taken as "made by the older scripts".

Each case goes through status and download with the real rclone and a local-folder
remote, asserting the documented exit code, one line naming the file, no traceback,
and nothing written outside the download folder.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import stat
import tarfile
from pathlib import Path

import pytest

from archive_builder import flip_byte, sha256_file, write_version
from dl_helpers import assert_one_line_error, make_remote, run_cs_sync, run_download

V = "v22p12"


def _sidecar(remote, fault, dtype):
    return remote.folder / V / "_cs_sync" / f"{fault}_{dtype}.json"


def _dl(remote, ddir, *args):
    return run_download(V, "--remote", remote.root, "--download_dir", str(ddir), *args)


def _outside(tmp_path, ddir):
    """Every path under tmp_path but the download folder (compare before and after a run)."""
    return {p for p in tmp_path.rglob("*") if p != ddir and ddir not in p.parents}


@pytest.mark.parametrize("forged", ["../../../../../../{escape}/AlpineK2T_REL02.csv", "{escape}/AlpineK2T_REL02.csv",
                                    "sub/AlpineK2T_REL02.csv", ".."])
@pytest.mark.parametrize("how", [("-t", "IM", "--rel", "2"), ("-t", "IM")], ids=["rel", "full"])
def test_forged_member_name_in_sidecar_is_refused_exit_8(tree, tmp_path, forged, how):
    remote = make_remote("local", tmp_path)
    write_version(tree, remote.folder, V, ["AlpineK2T"], types=["IM"])
    path = _sidecar(remote, "AlpineK2T", "IM")
    doc = json.loads(path.read_text())
    escape = tmp_path / "escape"
    forged = forged.format(escape=str(escape).lstrip("/"))
    target = next(m for m in doc["members"] if m["name"] == "AlpineK2T_REL02.csv")
    target["name"] = forged  # offset and SHA-256 stay right for the bytes
    path.write_text(json.dumps(doc))
    ddir = tmp_path / "dl"
    before = _outside(tmp_path, ddir)
    code, out, err = _dl(remote, ddir, *how)
    assert code == 8, out + err
    assert "_cs_sync/AlpineK2T_IM.json" in out and repr(forged) in out
    assert "Traceback" not in err
    assert not escape.exists()
    assert not (tmp_path / "sub").exists()
    assert _outside(tmp_path, ddir) - before == set()
    assert not (ddir / "AlpineK2T" / "IM").exists()
    # --allow-incomplete does not open the door either
    code, out, err = _dl(remote, ddir, *how, "--allow-incomplete")
    assert code == 8 and not escape.exists()
    # status names the set as damaged
    code, out, err = run_cs_sync("status", V, "--remote", remote.root)
    assert code == 7
    assert "damaged sidecar" in out


def test_forged_part_name_in_sidecar_is_refused(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    write_version(tree, remote.folder, V, ["AlpineK2T"], types=["IM"])
    path = _sidecar(remote, "AlpineK2T", "IM")
    doc = json.loads(path.read_text())
    doc["parts"][0]["name"] = "../../x.tar"
    path.write_text(json.dumps(doc))
    code, out, err = _dl(remote, tmp_path / "dl")
    assert code == 8
    assert "parts[0].name" in out and "'../../x.tar'" in out
    assert not (tmp_path / "x.tar").exists()


@pytest.mark.parametrize("damage", ["cut", "members-null", "size-string", "unknown-member-key"])
def test_damaged_sidecar_with_a_flipped_byte_never_passes(tree, tmp_path, damage):
    remote = make_remote("local", tmp_path)
    built = write_version(tree, remote.folder, V, ["AlpineK2T"], types=["BB"], max_part=250_000)
    path = _sidecar(remote, "AlpineK2T", "BB")
    text = path.read_text()
    doc = json.loads(text)
    if damage == "cut":
        path.write_text(text[: len(text) // 2])
    else:
        if damage == "members-null":
            doc["members"] = None
        elif damage == "size-string":
            doc["members"][0]["size"] = str(doc["members"][0]["size"])
        else:
            doc["members"][0]["colour"] = "red"
        path.write_text(json.dumps(doc))
    flip_byte(remote.folder / V / "AlpineK2T" / built.parts[("AlpineK2T", "BB")][0])  # same size
    code, out, err = run_cs_sync("status", V, "--remote", remote.root)
    assert code == 7, out + err
    assert "damaged sidecar" in out
    assert "sidecar invalid" in out and "_cs_sync/AlpineK2T_BB.json" in out
    assert "MISMATCH" not in out.upper().replace("MISMATCHED", "")
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir)
    assert code == 7, out + err
    assert "Traceback" not in err
    assert_one_line_error(err, "refused")
    assert not (ddir / "AlpineK2T" / "BB").exists()


# -- the matrix: every forged or damaged remote through status, full download (kept TARs and
# --cleanup, which extracts as parts arrive), --rel and --member --
#
# Each case builds AlpineK2T's IM set (one TAR of five small CSV members, median and REL01-04)
# and then forges or damages it. Every case runs through the five commands users run, and each
# run must: exit with the documented code, name the file at fault, print no traceback, write
# nothing outside the download folder (and only plain files and folders inside it), and leave
# no IM folder that looks complete unless the run exited 0 with every written byte verified.

F = "AlpineK2T"
PART = f"{F}_IM.tar"
MODES = {
    "status": None,
    "full": ("-t", "IM"),
    "rel": ("-t", "IM", "--rel", "1"),
    "member": ("-t", "IM", "--member", "*_REL01*"),
    "cleanup": ("-t", "IM", "--cleanup"),  # parts of sets with a sidecar extracted as they arrive
}


def _im(tree, remote, *, sidecar=True):
    return write_version(tree, remote.folder, V, [F], types=["IM"], sidecar=sidecar)


def _edit(remote, fn):
    path = _sidecar(remote, F, "IM")
    doc = json.loads(path.read_text())
    fn(doc)
    path.write_text(json.dumps(doc))


def _member(remote, name):
    doc = json.loads(_sidecar(remote, F, "IM").read_text())
    return next(m for m in doc["members"] if m["name"] == name)


def _forge_tar(remote, built, evil: list[tuple[tarfile.TarInfo, bytes]], *, first: bool = True) -> Path:
    """Rewrite the set's TAR: the real members plus ``evil`` entries (before them, or after)."""
    part = remote.folder / V / F / PART
    real = []
    for f in built.sets[(F, "IM")]:
        ti = tarfile.TarInfo(f.member)
        data = f.path.read_bytes()
        ti.size, ti.mtime, ti.mode = len(data), 1_700_000_000, 0o644
        real.append((ti, data))
    entries = [*evil, *real] if first else [*real, *evil]
    with open(part, "wb") as fh:
        for ti, data in entries:
            fh.write(ti.tobuf(format=tarfile.PAX_FORMAT))
            fh.write(data)
            if len(data) % 512:
                fh.write(b"\0" * (512 - len(data) % 512))
        fh.write(b"\0" * 1024)
    return part


def _entry(name, kind=tarfile.REGTYPE, data=b"", linkname="", size=None):
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mtime, ti.mode = kind, linkname, 1_700_000_000, 0o644
    ti.size = len(data) if size is None else size
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        ti.devmajor, ti.devminor = 1, 3
    return ti, data


def _resync_sidecar(remote):
    """Make the sidecar agree with the (forged) TAR: part size and SHA-256, member offsets."""
    part = remote.folder / V / F / PART
    with tarfile.open(part) as tar:
        offsets = {ti.name: ti.offset_data for ti in tar if ti.isreg()}

    def fix(d):
        d["parts"][0].update(size=part.stat().st_size, sha256=sha256_file(part))
        for m in d["members"]:
            m["offset"] = offsets[m["name"]]

    _edit(remote, fix)


def _case_sidecar_member_traversal(tree, remote, tmp):
    _im(tree, remote)
    _edit(remote, lambda d: d["members"][2].update(name=f"../../../../{tmp}/escape/x.csv".replace("//", "/")))


def _case_sidecar_member_absolute(tree, remote, tmp):
    _im(tree, remote)
    _edit(remote, lambda d: d["members"][2].update(name=f"/{tmp}/escape/x.csv"))


def _case_sidecar_part_traversal(tree, remote, tmp):
    _im(tree, remote)
    _edit(remote, lambda d: d["parts"][0].update(name="../../escape.tar"))


def _case_sidecar_cut(tree, remote, tmp):
    _im(tree, remote)
    path = _sidecar(remote, F, "IM")
    path.write_text(path.read_text()[:300])


def _case_sidecar_mistyped(tree, remote, tmp):
    _im(tree, remote)
    _edit(remote, lambda d: d["members"][1].update(offset=str(d["members"][1]["offset"])))


def _case_sidecar_members_null(tree, remote, tmp):
    _im(tree, remote)
    _edit(remote, lambda d: d.update(members=None))


def _case_sidecar_huge_member_size(tree, remote, tmp):
    _im(tree, remote)
    _edit(remote, lambda d: d["members"][1].update(size=10**15))


def _case_sidecar_huge_part_size(tree, remote, tmp):
    _im(tree, remote)
    _edit(remote, lambda d: d["parts"][0].update(size=10**15))


def _case_tar_traversal(tree, remote, tmp):
    _forge_tar(remote, _im(tree, remote, sidecar=False), [_entry(f"../../../../{tmp}/escape/x.csv", data=b"x")])


def _case_tar_absolute(tree, remote, tmp):
    _forge_tar(remote, _im(tree, remote, sidecar=False), [_entry(f"/{tmp}/escape/x.csv", data=b"x")])


def _case_tar_symlink(tree, remote, tmp):
    _forge_tar(remote, _im(tree, remote, sidecar=False),
               [_entry(f"{F}_REL01.csv", tarfile.SYMTYPE, linkname=f"{tmp}/escape/target")])


def _case_tar_hardlink(tree, remote, tmp):
    _forge_tar(remote, _im(tree, remote, sidecar=False),
               [_entry(f"{F}_REL01.csv", tarfile.LNKTYPE, linkname="../../../../etc/passwd")])


def _case_tar_chardev(tree, remote, tmp):
    _forge_tar(remote, _im(tree, remote, sidecar=False), [_entry(f"{F}_REL01.csv", tarfile.CHRTYPE)])


def _case_tar_fifo(tree, remote, tmp):
    _forge_tar(remote, _im(tree, remote, sidecar=False), [_entry(f"{F}_REL01.csv", tarfile.FIFOTYPE)])


def _case_tar_huge_member(tree, remote, tmp):
    """A header declaring 1 TB at the end of the TAR (only a few bytes follow it)."""
    _forge_tar(remote, _im(tree, remote, sidecar=False), [_entry(f"{F}_REL09.csv", data=b"x" * 700, size=10**12)],
               first=False)


def _case_tar_not_a_tar(tree, remote, tmp):
    _im(tree, remote, sidecar=False)
    part = remote.folder / V / F / PART
    part.write_bytes(random.Random(7).randbytes(part.stat().st_size))


def _case_tar_symlink_with_consistent_sidecar(tree, remote, tmp):
    """The forger rewrote both: a link after the real members, the sidecar's part hash updated."""
    built = _im(tree, remote)
    _forge_tar(remote, built, [_entry("evil.csv", tarfile.SYMTYPE, linkname=f"{tmp}/escape/target")], first=False)
    _resync_sidecar(remote)


def _case_part_name_oddities(tree, remote, tmp):
    _im(tree, remote)
    for odd in (f"{F}_IM_-1.tar", f"{F}_IM_3ff.tar", f"{F}_IM_01.tar"):
        shutil.copy(remote.folder / V / F / PART, remote.folder / V / F / odd)


def _case_same_size_flip_with_sidecar(tree, remote, tmp):
    _im(tree, remote)
    m = _member(remote, f"{F}_REL01.csv")
    flip_byte(remote.folder / V / F / PART, m["offset"] + 5)


def _case_same_size_header_flip_without_sidecar(tree, remote, tmp):
    _im(tree, remote, sidecar=False)
    flip_byte(remote.folder / V / F / PART, 100)  # inside the first header: its checksum no longer holds


# name -> (builder, {mode: exit code}, text naming the file at fault)
CASES = {
    "sidecar-member-traversal": (_case_sidecar_member_traversal, dict(status=7, full=8, rel=8, member=8),
                                 "_cs_sync/AlpineK2T_IM.json: members[2].name"),
    "sidecar-member-absolute": (_case_sidecar_member_absolute, dict(status=7, full=8, rel=8, member=8),
                                "_cs_sync/AlpineK2T_IM.json: members[2].name"),
    "sidecar-part-traversal": (_case_sidecar_part_traversal, dict(status=7, full=8, rel=8, member=8),
                               "_cs_sync/AlpineK2T_IM.json: parts[0].name"),
    "sidecar-cut": (_case_sidecar_cut, dict(status=7, full=7, rel=7, member=7), "_cs_sync/AlpineK2T_IM.json: file"),
    "sidecar-mistyped": (_case_sidecar_mistyped, dict(status=7, full=7, rel=7, member=7),
                         "_cs_sync/AlpineK2T_IM.json: members[1].offset: expected an integer, got str"),
    "sidecar-members-null": (_case_sidecar_members_null, dict(status=7, full=7, rel=7, member=7),
                             "_cs_sync/AlpineK2T_IM.json: members: expected a list"),
    "sidecar-huge-member-size": (_case_sidecar_huge_member_size, dict(status=7, full=7, rel=7, member=7),
                                 "_cs_sync/AlpineK2T_IM.json: members[1]: member runs past the end"),
    "sidecar-huge-part-size": (_case_sidecar_huge_part_size, dict(status=7, full=7, rel=7, member=7),
                               f"{PART} is "),
    "tar-traversal": (_case_tar_traversal, dict(status=0, full=8, rel=8, member=8), f"{F}/{PART}: refused member"),
    "tar-absolute": (_case_tar_absolute, dict(status=0, full=8, rel=8, member=8), f"{F}/{PART}: refused member"),
    "tar-symlink": (_case_tar_symlink, dict(status=0, full=8, rel=8, member=8), f"{F}/{PART}: refused member"),
    "tar-hardlink": (_case_tar_hardlink, dict(status=0, full=8, rel=8, member=8), f"{F}/{PART}: refused member"),
    "tar-chardev": (_case_tar_chardev, dict(status=0, full=8, rel=8, member=8), "not a regular file"),
    "tar-fifo": (_case_tar_fifo, dict(status=0, full=8, rel=8, member=8), "not a regular file"),
    "tar-huge-member": (_case_tar_huge_member, dict(status=0, full=8, rel=8, member=8),
                        f"{F}/{PART}: member 'AlpineK2T_REL09.csv' declares 1000000000000 bytes, past the end"),
    "tar-not-a-tar": (_case_tar_not_a_tar, dict(status=0, full=8, rel=8, member=8), f"{F}/{PART}: not a readable TAR"),
    "tar-symlink-with-consistent-sidecar": (_case_tar_symlink_with_consistent_sidecar,
                                            dict(status=0, full=8, rel=0, member=0), f"{F}/{PART}: refused member"),
    "part-name-oddities": (_case_part_name_oddities, dict(status=7, full=7, rel=7, member=7), f"{F}_IM_-1.tar"),
    "same-size-flip-with-sidecar": (_case_same_size_flip_with_sidecar, dict(status=0, full=8, rel=8, member=8),
                                    f"{F}/{PART}"),
    "same-size-header-flip-without-sidecar": (_case_same_size_header_flip_without_sidecar,
                                              dict(status=0, full=8, rel=8, member=8), f"{F}/{PART}"),
}


def _assert_clean_download_dir(ddir):
    for dirpath, dirs, files in os.walk(ddir):
        for n in dirs + files:
            st = os.lstat(os.path.join(dirpath, n))
            assert stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode), os.path.join(dirpath, n)


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case", list(CASES))
def test_hostile_remote_matrix(tree, tmp_path, case, mode):
    build, codes, needle = CASES[case]
    remote = make_remote("local", tmp_path)
    build(tree, remote, str(tmp_path).lstrip("/"))
    ddir = tmp_path / "dl"
    before = _outside(tmp_path, ddir)
    if MODES[mode] is None:
        code, out, err = run_cs_sync("status", V, "--remote", remote.root)
    else:
        code, out, err = _dl(remote, ddir, *MODES[mode])
    assert code == codes["full" if mode == "cleanup" else mode], out + err  # the same verdicts, streamed
    assert "Traceback" not in out + err and "internal error" not in err
    if code != 0:
        assert needle in out + err, out + err
    if "_cs_sync/" in needle:  # a sidecar that does not validate is said to be invalid, nothing else
        assert "MISMATCH" not in (out + err).upper() and "corrupted" not in out + err, out + err
    if mode != "status" and code != 0:
        assert_one_line_error(err)
        assert not (ddir / F / "IM").exists()  # nothing that looks done
    assert _outside(tmp_path, ddir) - before == set()
    assert not (tmp_path / "escape").exists()
    if ddir.exists():
        _assert_clean_download_dir(ddir)
        assert not [p for p in (ddir / F).glob("IM_*")] if (ddir / F).exists() else True  # no odd types
    if mode in ("rel", "member") and code == 0:  # only the wanted member, byte for byte
        src = tree / f"Runs/{F}/{F}_REL01/IM_calc/{F}_REL01.csv"
        assert (ddir / F / "IM" / f"{F}_REL01.csv").read_bytes() == src.read_bytes()
        assert [p.name for p in (ddir / F / "IM").iterdir()] == [f"{F}_REL01.csv"]


def test_odd_part_names_are_never_fetched_even_with_allow_incomplete(tree, tmp_path):
    remote = make_remote("local", tmp_path)
    _case_part_name_oddities(tree, remote, "")
    ddir = tmp_path / "dl"
    code, out, err = _dl(remote, ddir, "-t", "IM", "--allow-incomplete")
    assert code == 0, out + err
    assert sorted(p.name for p in (ddir / F).iterdir() if not p.name.startswith(".")) == [PART, "IM"]
    assert len(list((ddir / F / "IM").iterdir())) == 5


def test_same_size_data_flip_without_sidecar_is_verified_against_the_remote_only(tree, tmp_path):
    """Without a sidecar the remote's own copy is the only reference: the summary says so."""
    remote = make_remote("local", tmp_path)
    _im(tree, remote, sidecar=False)
    flip_byte(remote.folder / V / F / PART, 2000)
    code, out, err = _dl(remote, tmp_path / "dl", "-t", "IM")
    assert code == 0, out + err
    assert "verified: 1 by rclone comparing the remote's hash" in out
    assert "SHA-256 from the sidecar" not in out
