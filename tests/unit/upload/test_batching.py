"""Batches and budgets of the upload pipeline."""

import threading

from cs_sync.upload.batching import Batcher, Budget


def test_batcher_groups_what_queued_while_busy_and_reports_each_item():
    gate = threading.Event()
    calls, done = [], []

    def fn(items):
        calls.append(list(items))
        gate.wait(5)
        return [ValueError(i) if i == 3 else None for i in items]

    b = Batcher("t", fn, lambda item, err: done.append((item, err)))
    b.put(1)
    while not calls:  # the first call is running, alone
        pass
    for i in (2, 3, 4):
        b.put(i)
    gate.set()
    b.close()
    assert calls == [[1], [2, 3, 4]]
    assert [(i, type(e).__name__ if e else None) for i, e in done] == [(1, None), (2, None), (3, "ValueError"), (4, None)]


def test_batcher_call_failing_fails_every_item():
    done = []
    b = Batcher("t", lambda items: 1 / 0, lambda item, err: done.append((item, type(err).__name__)))
    b.put("a")
    b.close()
    assert done == [("a", "ZeroDivisionError")]


def test_budget_bounds_bytes_and_files_but_lets_a_big_file_through_alone():
    bud = Budget(max_files=3, max_bytes=100)
    assert bud.acquire(60, timeout=0)
    assert not bud.acquire(50, timeout=0)  # 110 bytes would be over
    assert bud.acquire(40, timeout=0)
    assert bud.acquire(0, timeout=0)
    assert not bud.acquire(0, timeout=0)  # 3 files in flight
    for n in (60, 40, 0):
        bud.release(n)
    assert bud.acquire(500, timeout=0)  # bigger than the budget: goes when nothing else holds bytes
    assert not bud.acquire(1, timeout=0)
