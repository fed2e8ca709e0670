"""One engine shared segment by segment (indextts_core.turns): the lock's order, turns, Stop."""

from __future__ import annotations

import itertools
import threading
import time

import pytest

from indextts_core.turns import FairLock, in_turns


def test_fair_lock_is_granted_in_the_order_asked() -> None:
    lock = FairLock()
    order: list[int] = []
    lock.acquire()
    threads = []
    for i in range(5):
        t = threading.Thread(target=lambda i=i: (lock.acquire(), order.append(i), lock.release()))
        t.start()
        threads.append(t)
        while lock.waiting < i + 1:  # each waits before the next one asks
            time.sleep(0.001)
    lock.release()
    for t in threads:
        t.join(10)
    assert order == [0, 1, 2, 3, 4]
    assert not lock.locked()


def test_fair_lock_timeout_lets_the_next_one_go() -> None:
    lock = FairLock()
    lock.acquire()
    assert lock.acquire(timeout=0.05) is False
    assert lock.waiting == 0
    lock.release()
    assert lock.acquire(timeout=1) is True
    lock.release()
    with pytest.raises(RuntimeError, match="not held"):
        lock.release()


class Source:
    """An engine source whose sessions are counted."""

    def __init__(self) -> None:
        self.lock = FairLock()
        self.sessions = 0

    def session(self):
        import contextlib

        @contextlib.contextmanager
        def hold():
            with self.lock:
                self.sessions += 1
                yield "engine"

        return hold()


def test_two_works_take_turns_item_by_item() -> None:
    source = Source()
    log: list[str] = []
    gate = threading.Barrier(2)

    def work(name: str, n: int):
        def start(engine: str):
            assert engine == "engine"
            for i in range(n):
                log.append(f"{name}{i}")
                time.sleep(0.01)
                yield i
        return start

    def run(name: str, n: int) -> None:
        gate.wait()
        assert list(in_turns(source.session, work(name, n))) == list(range(n))

    threads = [threading.Thread(target=run, args=(name, 6)) for name in "ab"]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(log) == sorted(f"{x}{i}" for x in "ab" for i in range(6))
    # While both run, neither makes two items in a row (the engine goes to the one waiting).
    middle = log[1:-1]
    assert sum(a[0] == b[0] for a, b in itertools.pairwise(middle)) <= 1
    assert source.sessions == 2 * 7  # one per item and one to learn each work has ended


def test_closing_stops_the_work_and_frees_the_engine() -> None:
    source = Source()
    closed = []

    def start(engine: str):
        try:
            yield from range(100)
        finally:
            closed.append(True)

    it = in_turns(source.session, start)
    assert [next(it), next(it)] == [0, 1]
    it.close()
    assert closed == [True]
    assert not source.lock.locked()


def test_resume_session_is_used_after_the_first_item() -> None:
    first, later = Source(), Source()
    assert list(in_turns(first.session, lambda e: iter(range(3)), resume=later.session)) == [0, 1, 2]
    assert (first.sessions, later.sessions) == (1, 3)
