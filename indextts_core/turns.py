"""Sharing one engine between takes segment by segment, first come first served.

A device runs one take at a time well; several at once share its memory and only slow each
other down. Holding the engine for a whole take, though, makes a short take wait for a long one
to end (minutes for a long text). So work holds the engine for one step at a time (a segment)
with :func:`in_turns`, and the engine's :class:`FairLock` gives it, between two steps, to whoever
has waited longest: takes waiting together advance in turn, one segment each. A one-segment
take sent while a long one runs waits for at most one segment of each take ahead of it, and
two long takes share the device evenly. (A queue ordered by size would serve the short take
even sooner, but can starve a long one as long as short ones keep coming; turns cannot.)

Each take keeps its own state (the engine holds nothing of a take between its steps), so the
order in which turns interleave changes no output.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import Any, TypeVar

T = TypeVar("T")
Session = Callable[[], AbstractContextManager[Any]]


class FairLock:
    """A lock granted in the order it was asked for.

    ``threading.Lock`` is not: a thread that releases it and asks again at once nearly always
    gets it back, so a take letting go between its segments would never let a waiting one in.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[object] = deque()
        self._held = False

    def acquire(self, timeout: float | None = None) -> bool:
        """Wait for the lock (at most ``timeout`` seconds); False when it did not come in time."""
        ticket = object()
        with self._cond:
            self._queue.append(ticket)
            got = False
            try:
                got = self._cond.wait_for(lambda: not self._held and self._queue[0] is ticket, timeout)
            finally:
                if not got:  # timed out or interrupted: the next in line may go
                    self._queue.remove(ticket)
                    self._cond.notify_all()
            if not got:
                return False
            self._queue.popleft()
            self._held = True
            return True

    def release(self) -> None:
        with self._cond:
            if not self._held:
                raise RuntimeError("release of a FairLock that is not held")
            self._held = False
            self._cond.notify_all()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    @property
    def waiting(self) -> int:
        """How many are waiting for the lock (not counting its holder)."""
        with self._cond:
            return len(self._queue)

    def locked(self) -> bool:
        with self._cond:
            return self._held


def in_turns(session: Session, start: Callable[[Any], Iterable[T]], *,
             resume: Session | None = None) -> Generator[T, None, None]:
    """Iterate ``start(engine)`` holding a ``session()`` for one item at a time.

    ``start`` is called in the first session; every later item is computed in a session of its
    own (``resume()``, default ``session()``), and the engine is free between two items.
    Closing the returned generator (Stop) closes ``start``'s iterator too, outside any session:
    the work ends after the item being computed.
    """
    resume = resume or session
    it: Iterator[T] | None = None
    try:
        while True:
            with (session if it is None else resume)() as engine:
                if it is None:
                    it = iter(start(engine))
                try:
                    item = next(it)
                except StopIteration:
                    return
            yield item
    finally:
        close = getattr(it, "close", None)
        if close is not None:
            close()
