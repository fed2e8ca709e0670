"""Jobs: lists of takes that survive a restart.

A job is stored in one SQLite file in the output folder (standard library ``sqlite3``), so the
app, the CLI and the Python API share it and a crash or Stop loses nothing: an item is marked
``done`` only after its WAV is fully on disk, and a finished item is never run again unless the
user asks to regenerate it. Workers only see :class:`JobStore` and the engine's public
``stream``; :class:`LocalWorker` runs items one by one in the caller's thread, and other
workers (a cluster) implement the same :class:`Worker` protocol.
"""

from __future__ import annotations

import json
import logging
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from .errors import IndexTTSError, InvalidOptionError
from .options import SynthesisOptions
from .pipeline import Synthesis
from .turns import in_turns

log = logging.getLogger(__name__)

DB_NAME = "jobs.sqlite3"
MAX_ITEMS = 5000
# Seeds chosen for the user stay small enough to read out and type back in.
SEED_LIMIT = 2**31

PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
STATES = (PENDING, RUNNING, DONE, FAILED, CANCELLED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    meta TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS items (
    job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
    idx INTEGER NOT NULL,
    name TEXT NOT NULL,
    request TEXT NOT NULL,
    state TEXT NOT NULL,
    output TEXT,
    error TEXT,
    seconds REAL,
    elapsed REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    result TEXT,
    updated REAL NOT NULL,
    PRIMARY KEY (job_id, idx)
);
"""


class JobError(IndexTTSError):
    """A job or item does not exist, or the operation does not fit its state."""


@dataclass(frozen=True)
class TakeRequest:
    """One take of a job: the text, the voice and the engine's own :class:`SynthesisOptions`,
    so the UI, the CLI, the HTTP API and jobs all mean the same thing by a take.

    ``voice`` is a path to the speaker clip (in-memory audio cannot be stored in a job);
    the seed in ``options`` is fixed when the item is created so a resumed job makes the same take.
    """

    text: str
    voice: str
    options: SynthesisOptions = field(default_factory=SynthesisOptions)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidOptionError("a job item needs text to speak")
        if not isinstance(self.voice, str | Path) or not str(self.voice):
            raise InvalidOptionError("a job item needs a voice file path")
        if not isinstance(self.options, SynthesisOptions):
            raise InvalidOptionError(f"a job item's options must be a SynthesisOptions, "
                                     f"got {type(self.options).__name__}")
        if self.options.emotion.audio is not None and not isinstance(self.options.emotion.audio, str | Path):
            raise InvalidOptionError("a job's emotion clip must be a file path, not audio in memory")

    def with_options(self, **changes: Any) -> TakeRequest:
        """A copy whose options have some fields changed (validated again)."""
        return replace(self, options=self.options.replace(**changes))

    def to_json(self) -> str:
        return json.dumps({"text": self.text, "voice": str(self.voice), "options": self.options.to_dict()},
                          ensure_ascii=False)

    @classmethod
    def from_json(cls, raw: str) -> TakeRequest:
        d = json.loads(raw)
        return cls(text=d["text"], voice=d["voice"], options=SynthesisOptions.from_dict(d["options"]))


@dataclass(frozen=True)
class Item:
    job_id: int
    index: int
    name: str
    request: TakeRequest
    state: str
    output: Path | None
    error: str | None
    seconds: float | None
    elapsed: float | None
    attempts: int
    result: dict[str, Any]


@dataclass(frozen=True)
class Progress:
    job_id: int
    total: int
    counts: dict[str, int]
    elapsed: float
    seconds_left: float | None

    @property
    def finished(self) -> int:
        return self.counts[DONE]

    @property
    def is_complete(self) -> bool:
        """Nothing left to run (some items may have failed or been cancelled)."""
        return self.counts[PENDING] == 0 and self.counts[RUNNING] == 0


def _fresh_seed() -> int:
    return secrets.randbelow(SEED_LIMIT)


def _seeded(req: TakeRequest) -> TakeRequest:
    return req if req.options.seed is not None else req.with_options(seed=_fresh_seed())


def _safe_name(name: str) -> str:
    keep = "".join(c if c.isalnum() or c in "-_." else "_" for c in name).strip("._")
    return keep[:80] or "take"


class JobStore:
    """All jobs of one output folder. Safe to use from several threads (one connection per call)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.path = self.folder / DB_NAME
        with self._db() as db:
            db.executescript(_SCHEMA)
            # An item left "running" was interrupted by a crash or kill: it runs again, nothing else does.
            n = db.execute("UPDATE items SET state=?, updated=? WHERE state=?",
                           (PENDING, time.time(), RUNNING)).rowcount
        if n:
            log.info("resuming %d interrupted job item(s) in %s", n, self.path)

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        with closing(sqlite3.connect(self.path, timeout=30)) as db:
            db.execute("PRAGMA foreign_keys = ON")
            with db:
                yield db

    # -- creating and reading ---------------------------------------------------------
    def create(self, kind: str, title: str, items: list[tuple[str, TakeRequest]],
               meta: dict[str, Any] | None = None, max_items: int = MAX_ITEMS) -> int:
        """Store a job of ``(name, request)`` items; returns its id. Requests without a seed get one now."""
        if not items:
            raise JobError("a job needs at least one item")
        if len(items) > max_items:
            raise JobError(f"a job holds at most {max_items} items; this one has {len(items)}. Split it up.")
        now = time.time()
        names = _unique_names([name for name, _ in items])
        with self._db() as db:
            job_id = db.execute("INSERT INTO jobs (kind, title, created, meta) VALUES (?, ?, ?, ?)",
                                (kind, title, now, json.dumps(meta or {}, ensure_ascii=False))).lastrowid
            db.executemany(
                "INSERT INTO items (job_id, idx, name, request, state, updated) VALUES (?, ?, ?, ?, ?, ?)",
                [(job_id, i, name, _seeded(req).to_json(), PENDING, now)
                 for i, (name, (_, req)) in enumerate(zip(names, items, strict=True))])
        assert job_id is not None
        return job_id

    def jobs(self) -> list[dict[str, Any]]:
        with self._db() as db:
            rows = db.execute("SELECT id, kind, title, created, meta FROM jobs ORDER BY id").fetchall()
        return [{"id": r[0], "kind": r[1], "title": r[2], "created": r[3], "meta": json.loads(r[4])} for r in rows]

    def job(self, job_id: int) -> dict[str, Any]:
        for j in self.jobs():
            if j["id"] == job_id:
                return j
        raise JobError(f"there is no job {job_id} in {self.folder}")

    def items(self, job_id: int, states: tuple[str, ...] = STATES) -> list[Item]:
        self.job(job_id)
        marks = ",".join("?" * len(states))
        with self._db() as db:
            rows = db.execute(
                "SELECT job_id, idx, name, request, state, output, error, seconds, elapsed, attempts, result "
                f"FROM items WHERE job_id=? AND state IN ({marks}) ORDER BY idx", (job_id, *states)).fetchall()
        return [Item(r[0], r[1], r[2], TakeRequest.from_json(r[3]), r[4], Path(r[5]) if r[5] else None, r[6],
                     r[7], r[8], r[9], json.loads(r[10]) if r[10] else {}) for r in rows]

    def item(self, job_id: int, index: int) -> Item:
        for it in self.items(job_id):
            if it.index == index:
                return it
        raise JobError(f"job {job_id} has no item {index}")

    def progress(self, job_id: int) -> Progress:
        items = self.items(job_id)
        counts = dict.fromkeys(STATES, 0)
        for it in items:
            counts[it.state] += 1
        times = [it.elapsed for it in items if it.state == DONE and it.elapsed is not None]
        left = counts[PENDING] + counts[RUNNING]
        eta = (sum(times) / len(times)) * left if times else None
        return Progress(job_id, len(items), counts, sum(times), eta)

    def job_folder(self, job_id: int) -> Path:
        return self.folder / f"job-{job_id:05d}"

    # -- operations the user asks for -------------------------------------------------
    def cancel(self, job_id: int) -> int:
        """Stop items that have not run yet; finished ones stay. Returns how many were cancelled."""
        return self._move(job_id, (PENDING,), CANCELLED)

    def resume(self, job_id: int) -> int:
        """Put cancelled items back in the queue."""
        return self._move(job_id, (CANCELLED,), PENDING)

    def retry_failed(self, job_id: int) -> int:
        return self._move(job_id, (FAILED,), PENDING)

    def regenerate(self, job_id: int, index: int, *, text: str | None = None, seed: int | None = None,
                   request: TakeRequest | None = None) -> Item:
        """Queue one item again: with edited text, a given seed, or (by default) a fresh seed."""
        old = self.item(job_id, index)
        if old.state == RUNNING:
            raise JobError(f"item {index} of job {job_id} is being made right now; wait for it to finish")
        req = request or old.request
        if text is not None:
            req = replace(req, text=text)
        req = req.with_options(seed=seed if seed is not None else _fresh_seed())
        with self._db() as db:
            db.execute("UPDATE items SET request=?, state=?, error=NULL, updated=? WHERE job_id=? AND idx=?",
                       (req.to_json(), PENDING, time.time(), job_id, index))
        return self.item(job_id, index)

    def delete(self, job_id: int) -> None:
        """Forget a job; its audio files stay in its folder."""
        self.job(job_id)
        with self._db() as db:
            db.execute("DELETE FROM jobs WHERE id=?", (job_id,))

    def _move(self, job_id: int, from_states: tuple[str, ...], to: str) -> int:
        self.job(job_id)
        marks = ",".join("?" * len(from_states))
        with self._db() as db:
            return db.execute(f"UPDATE items SET state=?, updated=? WHERE job_id=? AND state IN ({marks})",
                              (to, time.time(), job_id, *from_states)).rowcount

    # -- what workers use ---------------------------------------------------------------
    def claim(self, job_id: int) -> Item | None:
        """Take the next pending item (marks it running), or ``None`` when nothing is left."""
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            row = db.execute("SELECT idx FROM items WHERE job_id=? AND state=? ORDER BY idx LIMIT 1",
                             (job_id, PENDING)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE items SET state=?, attempts=attempts+1, updated=? WHERE job_id=? AND idx=?",
                       (RUNNING, time.time(), job_id, row[0]))
        return self.item(job_id, row[0])

    def finish(self, item: Item, output: Path, seconds: float, elapsed: float, result: dict[str, Any]) -> None:
        with self._db() as db:
            db.execute("UPDATE items SET state=?, output=?, error=NULL, seconds=?, elapsed=?, result=?, updated=? "
                       "WHERE job_id=? AND idx=?", (DONE, str(output), seconds, elapsed, json.dumps(result),
                                                    time.time(), item.job_id, item.index))

    def fail(self, item: Item, error: str) -> None:
        with self._db() as db:
            db.execute("UPDATE items SET state=?, error=?, updated=? WHERE job_id=? AND idx=?",
                       (FAILED, error, time.time(), item.job_id, item.index))

    def release(self, item: Item) -> None:
        """Hand an item back unfinished (the worker was stopped)."""
        self._move_one(item, PENDING)

    def _move_one(self, item: Item, to: str) -> None:
        with self._db() as db:
            db.execute("UPDATE items SET state=?, updated=? WHERE job_id=? AND idx=?",
                       (to, time.time(), item.job_id, item.index))


def _unique_names(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for i, raw in enumerate(names):
        base = _safe_name(raw or f"{i + 1:04d}")
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.append(base if n == 0 else f"{base}-{n + 1}")
    return out


ProgressCallback = Callable[[Progress, Item | None], None]


class Worker(Protocol):
    """Runs the pending items of a job until none is left or ``stop`` is set."""

    def run(self, store: JobStore, job_id: int, stop: threading.Event | None = None,
            on_progress: ProgressCallback | None = None) -> Progress: ...


class LocalWorker:
    """Runs items one after another through an engine's public ``stream``.

    ``stop`` is looked at between two segments: a stopped item is handed back unfinished (it
    runs again from the start on resume), so Stop ends the work within one segment. An engine
    error fails that item (with its message) and the job carries on; any other exception is a
    bug, so the item is handed back and the exception propagates.
    """

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def run(self, store: JobStore, job_id: int, stop: threading.Event | None = None,
            on_progress: ProgressCallback | None = None) -> Progress:
        folder = store.job_folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        while stop is None or not stop.is_set():
            item = store.claim(job_id)
            if item is None:
                break
            t0 = time.perf_counter()
            try:
                result = self._make(item, stop)
                if result is None:
                    store.release(item)
                    break
                out = result.save_wav(folder / f"{item.name}.wav")
            except IndexTTSError as e:
                log.warning("job %d item %d failed: %s", job_id, item.index, e)
                store.fail(item, str(e))
            except BaseException:
                store.release(item)
                raise
            else:
                store.finish(item, out, result.seconds, time.perf_counter() - t0,
                             {"seed": result.seed, "segments": len(result.segments),
                              "requested_seconds": result.requested_seconds})
            if on_progress is not None:
                on_progress(store.progress(job_id), store.item(job_id, item.index))
        return store.progress(job_id)

    def _make(self, item: Item, stop: threading.Event | None) -> Any:
        """The item's take, or ``None`` when ``stop`` was set before its last segment."""
        run = self.engine.stream(item.request.text, item.request.voice, item.request.options)
        try:
            for segment in run:
                if stop is not None and stop.is_set() and not segment.is_last:
                    return None
        finally:
            close = getattr(run, "close", None)
            if close is not None:
                close()
        return run.result


class SessionEngine:
    """An engine source (anything with ``session()``, such as the app's controller or the
    server's engine) as a worker's engine: a take holds the engine one segment at a time
    (:func:`~indextts_core.turns.in_turns`), so other work (a take from the page, a speech
    request) goes between two segments instead of waiting for the item to end."""

    def __init__(self, source: Any) -> None:
        self.source = source

    def stream(self, text: str, voice: str, options: SynthesisOptions | None = None, **kwargs: Any) -> Synthesis:
        """The engine's ``stream``, one segment per session; ``kwargs``: its other arguments (progress)."""
        runs: list[Any] = []

        def start(engine: Any) -> Any:
            runs.append(engine.stream(text, voice, options, **kwargs))
            return runs[0]

        def relay() -> Generator[Any, None, Any]:
            yield from in_turns(self.source.session, start)
            return runs[0].result

        return Synthesis(relay())

    def synthesize(self, text: str, voice: str, options: SynthesisOptions | None = None, **kwargs: Any) -> Any:
        return self.stream(text, voice, options, **kwargs).run()


class JobRunner:
    """Runs a store's jobs one after another on one background thread, in the order submitted.

    The thread starts when there is work and ends when there is none. A job whose run stops on
    an error keeps its unfinished items (they are handed back) and gets ``errors[job_id]``; the
    runner goes on with the next job. ``expected`` are the errors that say the engine cannot
    be used now (not ready, busy): they are reported without a traceback.
    """

    def __init__(self, store: JobStore, worker: Worker,
                 expected: tuple[type[BaseException], ...] = (IndexTTSError,)) -> None:
        self.store = store
        self.worker = worker
        self.expected = expected
        self.errors: dict[int, str] = {}
        self._lock = threading.Lock()
        self._queue: list[int] = []
        self._current: int | None = None
        self._stop = threading.Event()
        self._cancel: set[int] = set()  # stopped jobs whose unfinished items are to be cancelled
        self._closed = False
        self._thread: threading.Thread | None = None
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, job_id: int) -> None:
        """Queue ``job_id`` (again) unless it is queued or running."""
        with self._lock:
            if self._closed:
                raise InvalidOptionError("the job runner was closed")
            self.errors.pop(job_id, None)
            # A job being stopped ends its run after the current take: work handed to it now
            # (Resume, a regenerated item) needs a run of its own, or it would wait forever.
            self._cancel.discard(job_id)
            stopping = job_id == self._current and self._stop.is_set()
            if (job_id != self._current or stopping) and job_id not in self._queue:
                self._queue.append(job_id)
            if self._thread is None:
                self._idle.clear()
                self._thread = threading.Thread(target=self._loop, name="job-runner", daemon=True)
                self._thread.start()

    def resume_interrupted(self) -> list[int]:
        """Queue every job that still has items to make (the process stopped or crashed mid-job)."""
        waiting = [j["id"] for j in self.store.jobs() if not self.store.progress(j["id"]).is_complete]
        for job_id in waiting:
            self.submit(job_id)
        return waiting

    def stop(self, job_id: int, *, cancel: bool = False) -> None:
        """Stop ``job_id`` after the segment being made; the item it belonged to is handed back.

        ``cancel``: that item is then cancelled with the job's other unfinished ones (Resume
        puts them back), so the job is not taken up again by itself at the next start.
        """
        with self._lock:
            if job_id in self._queue:
                self._queue.remove(job_id)
            if self._current == job_id:
                self._stop.set()
                if cancel:
                    self._cancel.add(job_id)

    def is_active(self, job_id: int) -> bool:
        with self._lock:
            return job_id == self._current or job_id in self._queue

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is left to run; False when ``timeout`` passed first."""
        return self._idle.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Stop after the take being made and run nothing more (shutdown)."""
        with self._lock:
            self._closed = True
            self._queue.clear()
            self._stop.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._thread = None
                    self._idle.set()
                    return
                job_id = self._current = self._queue.pop(0)
                if not self._closed:
                    self._stop.clear()
            try:
                self.worker.run(self.store, job_id, self._stop)
            except self.expected as e:
                self.errors[job_id] = str(e) or type(e).__name__
            except Exception as e:  # a bug in one job must not stop the others
                log.exception("job %d stopped by an unexpected error", job_id)
                self.errors[job_id] = f"{type(e).__name__}: {e}"
            finally:
                with self._lock:
                    self._current = None
                    cancel = job_id in self._cancel
                    self._cancel.discard(job_id)
                if cancel:
                    self.store.cancel(job_id)
