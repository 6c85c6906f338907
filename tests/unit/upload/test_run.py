"""The ready queue hands out the largest part first and stops cleanly."""

import threading

from cs_sync.upload.run import ReadyQueue
from cs_sync.upload.tracker import Job


def test_largest_first_and_ties_in_order():
    q = ReadyQueue()
    for name, size in (("a", 10), ("b", 300), ("c", 20), ("d", 300)):
        q.put(Job(relpath=name, size=size, members=(), plain=True))
    assert [q.get()[0].relpath for _ in range(4)] == ["b", "d", "c", "a"]


def test_close_wakes_waiters_and_returns_what_was_never_handed_out():
    q = ReadyQueue()
    got = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    assert q.close() == []
    t.join(5)
    assert got == [None] and not q.put(Job(relpath="x", size=1, members=(), plain=True))
    q2 = ReadyQueue()
    q2.put(Job(relpath="y", size=1, members=(), plain=True))
    assert [j.relpath for j in q2.close()] == ["y"]


def test_small_files_have_a_lane_of_their_own_smallest_first():
    q = ReadyQueue(small=100)
    for name, size in (("big", 5000), ("s50", 50), ("s5", 5), ("huge", 9000)):
        q.put(Job(relpath=name, size=size, members=(), plain=True))
    assert [j.relpath for j in q.get(small_only=True)] == ["s5"]  # the small lane never takes a big part
    assert [q.get()[0].relpath for _ in range(3)] == ["huge", "big", "s50"]  # big workers: big first, then the rest


def test_small_files_come_in_batches_bounded_by_bytes_and_count():
    from cs_sync.upload.run import MAX_BATCH
    from cs_sync.upload.sender import RAM_BATCH

    q = ReadyQueue(small=RAM_BATCH)
    for i in range(MAX_BATCH + 5):
        q.put(Job(relpath=f"s{i}", size=10, members=(), plain=True))
    q.put(Job(relpath="half", size=RAM_BATCH // 2 + 1, members=(), plain=True))
    first = q.get(small_only=True, batch=True)
    assert len(first) == MAX_BATCH and all(j.size == 10 for j in first)
    rest = q.get(small_only=True, batch=True)
    assert [j.relpath for j in rest][-1] != "half" or sum(j.size for j in rest) <= RAM_BATCH
    assert sum(j.size for j in rest) <= RAM_BATCH


def test_incoming_leftovers_are_the_files_of_the_runs_own_sets_only():
    from cs_sync.remote.sets import RemoteFile
    from cs_sync.upload.engine import incoming_leftovers

    names = ["F/F_BB_3f.tar", "F/F_BB.tar", "F/F_BB_01.tar", "F/F_IM_0.tar", "F/F_REL01_BB.bin", "F/notes.txt",
             "G/G_BB.tar", "list.txt", "stocktake.csv", "other.txt", "F/.F_BB.tar", "F/sub/F_BB.tar"]
    files = [RemoteFile(n, 10) for n in names]
    owned = {("F", "BB"), ("F", "SAMPLE_BB")}
    assert incoming_leftovers(files, owned, root_files=False) == ["F/F_BB.tar", "F/F_BB_3f.tar", "F/F_REL01_BB.bin"]
    assert incoming_leftovers(files, owned, root_files=True) == [
        "F/F_BB.tar", "F/F_BB_3f.tar", "F/F_REL01_BB.bin", "list.txt", "stocktake.csv"]
    assert incoming_leftovers(files, set(), root_files=False) == []
