"""Batches of the upload: grouping, one outcome per item."""

import threading

from cs_sync.upload.batching import Batcher


def test_batcher_groups_what_queued_while_busy_and_reports_each_item():
    gate, running = threading.Event(), threading.Event()
    calls, done = [], []

    def fn(items):
        calls.append(list(items))
        running.set()
        gate.wait(5)
        return [ValueError(i) if i == 3 else None for i in items]

    b = Batcher("t", fn, lambda item, err: done.append((item, err)))
    b.put(1)
    assert running.wait(5)  # the first call is running, alone
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
