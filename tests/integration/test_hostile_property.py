"""Property-style: random and mutated TAR bytes and sidecar JSON (seeded, bounded) never crash,
never write outside the target, and never succeed unless every byte written was verified.

The engine functions a download uses are driven directly (a subprocess per case would be
too slow for hundreds of cases): ``parse_sidecar`` and the listing classification for the
JSON, ``extract_part`` in its three modes (sidecar hash checked in the read pass; members
hashed one by one; no sidecar, the part verified by the caller) and the ranged-read write
for the TAR bytes. A handful of mutations then go through the real command.

``CS_SYNC_FUZZ_SEED`` replays another seed; the failing case's seed and index are in the
assertion message.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import random
import shutil
import stat
import tarfile
import time
from pathlib import Path

import pytest

from cs_sync.archive.sidecar import MemberInfo, PartInfo, SetSidecar, parse_sidecar
from cs_sync.archive.tar_read import extract_part, write_verified
from cs_sync.core.atomic import TMP_SUFFIX
from cs_sync.core.errors import CsSyncError, SidecarInvalid
from cs_sync.core.safe_names import is_flat_name, local_path, safe_relpath
from cs_sync.download.stream_extract import extract_stream
from cs_sync.remote.sets import RemoteFile, SetState, classify_listing, group_listing

from archive_builder import write_version
from dl_helpers import make_remote, run_cs_sync, run_download

SEED = int(os.environ.get("CS_SYNC_FUZZ_SEED", "20261201"))
N_TAR = 240  # mutated TARs, each extracted in four modes
N_JSON = 400  # mutated sidecars
BUDGET_S = 20.0  # a guard, not a target: the loops normally take a few seconds
PART = "F_IM.tar"


def _sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def _base_tar(rng: random.Random) -> tuple[bytes, list[MemberInfo]]:
    """A part as this tool writes one: flat members, PAX headers, and its sidecar members."""
    buf = io.BytesIO()
    datas = {f"F_REL{i:02d}.csv": rng.randbytes(rng.choice([0, 1, 511, 512, 513, 2000])) for i in range(1, 5)}
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in datas.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(ti, io.BytesIO(data))
    raw = buf.getvalue()
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = [MemberInfo(name=ti.name, part=PART, offset=ti.offset_data, size=ti.size, mtime=1_700_000_000.0,
                              sha256=_sha(datas[ti.name]), source=f"Runs/F/{ti.name}") for ti in tar]
    return raw, members


def _mutate_bytes(rng: random.Random, raw: bytes) -> bytes:
    b = bytearray(raw)
    how = rng.randrange(10)
    if how == 8:  # a PAX header that overrides what the plain header says
        key, value = rng.choice([("mtime", "nan"), ("mtime", "1e300"), ("mtime", "-1e300"), ("path", "../../escape"),
                                 ("path", "/abs/x"), ("size", "99999999999"), ("size", "-5"), ("linkpath", "/etc"),
                                 ("path", "F_REL01.csv\x00x"), ("GNU.sparse.map", "0,10")])
        ti = tarfile.TarInfo("F_REL09.csv")
        ti.size, ti.mtime, ti.pax_headers = 3, 1_700_000_000, {key: value}
        extra = ti.tobuf(format=tarfile.PAX_FORMAT) + b"abc".ljust(512, b"\0")
        at = 512 * rng.randrange(len(b) // 512)
        return bytes(b[:at] + extra + b[at:])
    if how == 0:  # a few flipped bytes anywhere
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif how == 1:  # cut short
        del b[rng.randrange(len(b)):]
    elif how == 2:  # a header's size field rewritten (checksum fixed, so tarfile believes it)
        start = 512 * rng.randrange(len(b) // 512)
        b[start + 124:start + 136] = f"{rng.choice([0, 7, 10**6, 8**11 - 1]):011o}\0".encode()
        b[start + 148:start + 156] = b"        "
        b[start + 148:start + 156] = f"{sum(b[start:start + 512]):06o}\0 ".encode()
    elif how == 3:  # a header's type and name rewritten: links, devices, FIFOs, traversal
        start = 512 * rng.randrange(len(b) // 512)
        name = rng.choice([b"../../../escape", b"/abs/escape", b"a/../../x", b"F_REL01.csv", b"d/", b""])
        b[start:start + 100] = name.ljust(100, b"\0")
        b[start + 156] = rng.choice(b"0123456xKLgS")
        b[start + 157:start + 257] = rng.choice([b"/etc/passwd", b"../../x", b""]).ljust(100, b"\0")
        b[start + 148:start + 156] = b"        "
        b[start + 148:start + 156] = f"{sum(b[start:start + 512]):06o}\0 ".encode()
    elif how == 4:  # a block of random bytes
        start = 512 * rng.randrange(len(b) // 512)
        b[start:start + 512] = rng.randbytes(512)
    elif how == 5:  # garbage inserted
        at = rng.randrange(len(b))
        b[at:at] = rng.randbytes(rng.choice([1, 100, 512]))
    elif how == 6:  # a header block duplicated
        start = 512 * rng.randrange(len(b) // 512)
        b[start:start] = b[start:start + 512]
    elif how == 7:  # nothing but random bytes
        b = bytearray(rng.randbytes(rng.choice([0, 10, 512, 1024, len(raw)])))
    else:  # unchanged: the control (must succeed everywhere)
        pass
    return bytes(b)


def _tree_state(box: Path) -> dict[str, tuple[int, int]]:
    out = {}
    for dirpath, dirs, files in os.walk(box):
        for n in dirs + files:
            p = os.path.join(dirpath, n)
            st = os.lstat(p)
            out[os.path.relpath(p, box)] = (st.st_mode, st.st_size)
    return out


def _assert_contained(box: Path, dest: Path, before: dict, where: str) -> None:
    """Nothing new outside ``dest``; inside it only plain files and folders."""
    after = _tree_state(box)
    rel_dest = os.path.relpath(dest, box)
    for p, (mode, _size) in after.items():
        inside = p == rel_dest or p.startswith(rel_dest + os.sep)
        if not inside:
            assert p in before, f"{where}: wrote {p} outside the target"
        else:
            assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), f"{where}: {p} is neither a file nor a folder"
    assert not os.path.exists(box.parent / "escape"), where


def _written(dest: Path) -> dict[str, bytes]:
    return {str(p.relative_to(dest)): p.read_bytes() for p in dest.rglob("*") if p.is_file()
            and not p.name.endswith(TMP_SUFFIX)}


def test_mutated_tars_never_crash_escape_or_pass_unverified(tmp_path):
    rng = random.Random(SEED)
    raw, members = _base_tar(rng)
    truth = {m.name: raw[m.offset:m.offset + m.size] for m in members}
    box = tmp_path / "box"
    box.mkdir()
    part = box / PART
    t0 = time.monotonic()
    outcomes = {"ok": 0, "refused": 0}
    for i in range(N_TAR):
        data = _mutate_bytes(rng, raw)
        part.write_bytes(data)
        for mode in ("sidecar", "stream", "members", "none"):
            where = f"seed {SEED} case {i} mode {mode}"
            dest = box / f"dest{i}_{mode}"
            before = _tree_state(box)
            try:
                if mode == "sidecar":  # the sidecar's part hash checked while reading
                    extract_part(part, dest, label=PART, expected=members, part_sha256=_sha(raw))
                elif mode == "stream":  # --cleanup: extracted as it arrives, from a pipe-like reader
                    extract_stream(io.BufferedReader(io.BytesIO(data)), dest, label=PART, expected=members,
                                   part_sha256=_sha(raw), size=len(raw))
                elif mode == "members":  # each member hashed on its own
                    extract_part(part, dest, label=PART, expected=members)
                else:  # an older archive: the part was checked against the remote; the TAR is the authority
                    wanted = None if i % 2 else (lambda n: n.endswith("1.csv"))
                    extract_part(part, dest, label=PART, wanted=wanted, part_verified=True)
                ok = True
            except CsSyncError:
                ok = False
            except Exception as exc:  # noqa: BLE001 - the property: nothing but our one-line errors
                pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
            _assert_contained(box, dest, before, where)
            outcomes["ok" if ok else "refused"] += 1
            got = _written(dest) if ok else {}
            shutil.rmtree(dest, ignore_errors=True)  # keeps each check's walk small
            if not ok:
                continue
            if mode in ("sidecar", "stream"):
                assert _sha(data) == _sha(raw), f"{where}: passed with bytes that are not the sidecar's"
                assert got == truth, where
            elif mode == "members":
                assert got == truth, f"{where}: a member that is not the sidecar's passed"
            else:  # exactly what the archive's headers say, nothing else
                with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                    regs = {safe_relpath(ti.name): data[ti.offset_data:ti.offset_data + ti.size]
                            for ti in tar if ti.isreg()}  # the last of a name wins, as with tar
                for name, content in got.items():
                    assert regs.get(name) == content, f"{where}: {name} is not the archive's bytes"
        assert time.monotonic() - t0 < BUDGET_S, f"too slow after {i} cases"
    assert outcomes["ok"] and outcomes["refused"], outcomes  # the mutations do exercise both outcomes


def _mutate_doc(rng: random.Random, doc: dict) -> str:
    d = copy.deepcopy(doc)
    how = rng.randrange(8)
    odd = rng.choice([None, "", "x", -1, 2**70, 1.5, True, [], {}, "../../escape", "/abs", "a/b", "..", "\x00",
                      float("nan"), "7"])
    if how == 0:  # a top-level value
        d[rng.choice(list(d))] = odd
    elif how in (1, 2):  # a member or part field
        items = d["members"] if how == 1 else d["parts"]
        if items:
            item = rng.choice(items)
            item[rng.choice(list(item))] = odd
    elif how == 3:  # a key dropped or added
        items = rng.choice([d, *d["members"], *d["parts"]])
        if rng.random() < 0.5 and items:
            del items[rng.choice(list(items))]
        else:
            items[rng.choice(["colour", "size2", "Name"])] = 1
    elif how == 4:  # a member duplicated, or pointing at another part
        m = copy.deepcopy(rng.choice(d["members"]))
        m[rng.choice(["part", "offset", "name"])] = rng.choice(["F_IM_1.tar", 10**9, m["name"]])
        d["members"].append(m)
    text = json.dumps(d)
    if how == 5:  # the text cut
        text = text[: rng.randrange(len(text))]
    elif how == 6:  # characters flipped
        chars = list(text)
        for _ in range(rng.randint(1, 5)):
            chars[rng.randrange(len(chars))] = rng.choice('{}[]",:0a\\')
        text = "".join(chars)
    return text  # how == 7: unchanged (the control)


def test_mutated_sidecars_never_crash_escape_or_vouch_for_wrong_bytes(tmp_path):
    rng = random.Random(SEED + 1)
    raw, members = _base_tar(rng)
    sc = SetSidecar("F", "IM", "v1", parts=[PartInfo(PART, len(raw), _sha(raw))], members=members)
    doc = json.loads(sc.to_json())
    box = tmp_path / "box"
    box.mkdir()
    part = box / PART
    part.write_bytes(raw)
    truth = {m.name: raw[m.offset:m.offset + m.size] for m in members}
    parsed = 0
    for i in range(N_JSON):
        where = f"seed {SEED + 1} case {i}"
        text = _mutate_doc(rng, doc)
        try:
            got = parse_sidecar(text, where="_cs_sync/F_IM.json")
        except SidecarInvalid as exc:
            assert "_cs_sync/F_IM.json" in exc.message, where
            listing = classify_listing(group_listing("v1", [RemoteFile(f"F/{PART}", len(raw))]), {},
                                       {"F_IM.json": exc})
            assert listing.get("F", "IM").state == SetState.DAMAGED, where  # never silently unverified
            continue
        except Exception as exc:  # noqa: BLE001
            pytest.fail(f"{where}: {type(exc).__name__}: {exc}")
        parsed += 1
        for p in got.parts:
            assert is_flat_name(p.name) and isinstance(p.size, int) and p.size >= 0, where
        for m in got.members:
            assert is_flat_name(m.name) and is_flat_name(m.part), where
            assert isinstance(m.offset, int) and isinstance(m.size, int) and m.offset >= 0 and m.size >= 0, where
        state = classify_listing(group_listing("v1", [RemoteFile(f"F/{PART}", len(raw))]),
                                 {(got.fault, got.dtype): got}).get("F", "IM").state
        assert isinstance(state, SetState), where
        # what download does with it: the part extracted against it, one member by byte range
        dest = box / f"dest{i}"
        before = _tree_state(box)
        mine = [m for m in got.members if m.part == PART]
        try:
            sha = got.part_sizes() and next((p.sha256 for p in got.parts if p.name == PART), None)
            extract_part(part, dest, label=PART, expected=mine, part_sha256=sha or None, part_verified=False)
            ok = True
        except CsSyncError:
            ok = False
        _assert_contained(box, dest, before, where)
        written = _written(dest) if ok else {}
        shutil.rmtree(dest, ignore_errors=True)
        if ok:
            for name, content in written.items():
                assert content == truth[name], f"{where}: {name} passed with bytes the sidecar did not vouch for"
                m = next(m for m in mine if m.name == name)
                assert sha == _sha(raw) or _sha(content) == m.sha256, where
        for m in mine[:1]:
            staging = box / f"ranged{i}"
            target = local_path(staging, m.name, flat=True, what=where)
            chunk = raw[m.offset:m.offset + m.size]
            try:
                write_verified(iter([chunk]), target, size=m.size, sha256=m.sha256, what=where)
            except CsSyncError:
                assert not target.exists(), where
            else:
                assert _sha(target.read_bytes()) == m.sha256, where
            shutil.rmtree(staging, ignore_errors=True)
    assert parsed, "no mutation parsed: the control cases are missing"


@pytest.mark.parametrize("i", range(6))
def test_mutated_remote_through_the_command(tree, tmp_path, i):
    """A few mutations end to end: documented exit codes only, no traceback, nothing outside,
    and exit 0 only with the sources' bytes."""
    rng = random.Random(SEED + 100 + i)
    remote = make_remote("local", tmp_path)
    write_version(tree, remote.folder, "v1", ["AlpineK2T"], types=["IM"], sidecar=i % 3 != 2)
    part = remote.folder / "v1" / "AlpineK2T" / "AlpineK2T_IM.tar"
    sidecar = remote.folder / "v1" / "_cs_sync" / "AlpineK2T_IM.json"
    if i % 3 == 0:
        sidecar.write_text(_mutate_doc(rng, json.loads(sidecar.read_text())))
    else:
        part.write_bytes(_mutate_bytes(rng, part.read_bytes()))
    outside = {p for p in tmp_path.rglob("*") if "dl" not in p.relative_to(tmp_path).parts}
    code, out, err = run_cs_sync("status", "v1", "--remote", remote.root)
    assert code in (0, 7) and "Traceback" not in err, out + err
    args = ("--rel", "1") if i % 2 else ()
    code, out, err = run_download("v1", "--remote", remote.root, "--download_dir", str(tmp_path / "dl"), *args)
    assert code in (0, 7, 8), out + err
    assert "Traceback" not in err and "internal error" not in err, err
    assert {p for p in tmp_path.rglob("*") if "dl" not in p.relative_to(tmp_path).parts} == outside
    if code == 0 and (sidecar.exists() or not args):
        im = tmp_path / "dl" / "AlpineK2T" / "IM"
        for f in im.iterdir():
            src = next(tree.rglob(f"IM_calc/{f.name}"))
            if sidecar.exists():  # a sidecar vouches for the sources' bytes
                assert f.read_bytes() == src.read_bytes(), f
