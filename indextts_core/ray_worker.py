"""Jobs spread over a Ray cluster: one actor per GPU, each holding a warm engine.

:class:`RayWorker` is a :class:`indextts_core.jobs.Worker`: it claims items from the job
store on the machine that owns it (the app or ``serve``), sends each to an idle actor, and
writes every result there itself. So the store stays in one place, an item is written at
most once, and an actor that dies mid-item loses nothing: its item goes back to the queue
(the store counts the attempt) and runs on another actor, while a fresh actor is started
in its place. The same seed gives the same take as in-process, because every actor runs
the same engine on the same inputs: clips are shipped as their bytes and read from a
file on the actor, exactly as the local worker reads them.

Ray is optional (``requirements-ray.txt``); nothing imports this module unless asked to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import Any

from .errors import IndexTTSError
from .jobs import Item, JobStore, Progress, ProgressCallback

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3


class RayUnavailableError(IndexTTSError):
    """Ray is not installed, the cluster cannot be reached, or no worker is left."""


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError("running jobs on Ray needs Ray: pip install -r requirements-ray.txt") from None
    return ray


class EngineActor:
    """What runs inside one Ray actor: an engine loaded once, and the clips it was sent."""

    def __init__(self, model_dir: str | None, device: str, dtype: str | None, threads: int | None,
                 download: bool) -> None:
        import tempfile

        import torch

        from .pipeline import IndexTTS2

        if threads is not None:
            torch.set_num_threads(threads)
        self.tts = IndexTTS2.from_pretrained(model_dir, device=device, dtype=dtype, download=download)
        self.folder = Path(tempfile.mkdtemp(prefix="indextts-ray-"))

    def ready(self) -> str:
        return str(self.tts.device)

    def _clip(self, digest: str, suffix: str, data: bytes) -> str:
        path = self.folder / f"{digest}{suffix}"
        if not path.exists():
            tmp = path.with_name(path.name + ".part")
            tmp.write_bytes(data)
            tmp.replace(path)
        return str(path)

    def synthesize(self, text: str, options: Any, voice: tuple[str, str], voice_data: bytes,
                   emotion: tuple[str, str] | None, emotion_data: bytes | None) -> Any:
        voice_path = self._clip(*voice, voice_data)
        if emotion is not None and emotion_data is not None:
            options = options.replace(emotion=dataclasses.replace(options.emotion,
                                                                  audio=self._clip(*emotion, emotion_data)))
        return self.tts.synthesize(text, voice_path, options)


@dataclasses.dataclass
class _Slot:
    actor: Any
    ready: Any = None  # the start-up call of an actor not known to be up yet
    busy: Any = None  # the running call


class RayWorker:
    """Runs a job's items on ``workers`` Ray actors (one GPU each when ``gpus_per_worker`` is 1).

    ``threads`` sets each actor's CPU threads (Ray gives an actor one by default).
    """

    def __init__(self, model_dir: str | Path | None, *, workers: int, device: str = "cuda", dtype: str | None = None,
                 gpus_per_worker: float = 1.0, cpus_per_worker: float = 1.0, threads: int | None = None,
                 download: bool = True, max_attempts: int = MAX_ATTEMPTS) -> None:
        ray = _ray()
        if not ray.is_initialized():
            raise RayUnavailableError("connect to Ray first (ray.init, or RayWorker.connect)")
        if workers < 1:
            raise RayUnavailableError("a Ray worker pool needs at least one worker")
        self._remote = ray.remote(num_gpus=gpus_per_worker, num_cpus=cpus_per_worker, max_restarts=0,
                                  max_task_retries=0)(EngineActor)
        self._args = (None if model_dir is None else str(model_dir), device, dtype, threads, download)
        self.max_attempts = max_attempts
        self._lock = threading.Lock()
        self._slots = [self._start() for _ in range(workers)]
        self._clips: dict[str, tuple[tuple[str, str], Any]] = {}

    @classmethod
    def connect(cls, address: str, model_dir: str | Path | None, **kwargs: Any) -> RayWorker:
        """Join the cluster at ``address`` (``auto``: the one this machine belongs to) with one
        worker per GPU (one CPU worker when it has none). This package is shipped to the workers."""
        ray = _ray()
        import indextts_core

        try:
            ray.init(address=address, runtime_env={"py_modules": [str(Path(indextts_core.__file__).parent)]},
                     ignore_reinit_error=True)
        except (ConnectionError, RuntimeError) as e:
            raise RayUnavailableError(f"cannot reach the Ray cluster at {address}: {e}") from None
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if gpus:
            return cls(model_dir, workers=gpus, device="cuda", gpus_per_worker=1.0, **kwargs)
        return cls(model_dir, workers=1, device="cpu", gpus_per_worker=0.0, **kwargs)

    def _start(self) -> _Slot:
        actor = self._remote.remote(*self._args)
        return _Slot(actor, ready=actor.ready.remote())

    # -- what tests and status displays look at ---------------------------------------------------------
    def busy_actors(self) -> list[Any]:
        """The actors running an item right now."""
        with self._lock:
            return [s.actor for s in self._slots if s.busy is not None]

    def close(self) -> None:
        ray = _ray()
        for slot in self._slots:
            ray.kill(slot.actor)
        self._slots = []

    # -- the Worker protocol ----------------------------------------------------------------------------
    def _shipped(self, path: str) -> tuple[tuple[str, str], Any]:
        """A clip's name on the actors (its content hash) and its bytes in Ray's object store, once."""
        data = Path(path).read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest not in self._clips:
            self._clips[digest] = ((digest, Path(path).suffix.lower() or ".wav"), _ray().put(data))
        return self._clips[digest]

    def _send(self, slot: _Slot, item: Item) -> Any:
        req = item.request
        voice, voice_ref = self._shipped(req.voice)
        emotion = emotion_ref = None
        if req.options.emotion.mode == "audio":
            emotion, emotion_ref = self._shipped(str(req.options.emotion.audio))
        return slot.actor.synthesize.remote(req.text, req.options, voice, voice_ref, emotion, emotion_ref)

    def run(self, store: JobStore, job_id: int, stop: threading.Event | None = None,
            on_progress: ProgressCallback | None = None) -> Progress:
        ray = _ray()
        folder = store.job_folder(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        running: dict[Any, tuple[_Slot, Item, float]] = {}
        out_of_items = False
        while True:
            stopping = stop is not None and stop.is_set()
            with self._lock:
                for slot in self._slots:
                    if slot.ready is None and slot.busy is None and not (out_of_items or stopping):
                        item = store.claim(job_id)
                        if item is None:
                            out_of_items = True
                            break
                        try:
                            slot.busy = self._send(slot, item)
                        except OSError as e:  # the clip went missing from the output folder
                            store.fail(item, f"cannot read this take's clip ({e.strerror})")
                            continue
                        running[slot.busy] = (slot, item, time.perf_counter())
                starting = {s.ready: s for s in self._slots if s.ready is not None}
            if not running and (out_of_items or stopping):
                break
            if not running and not starting:
                raise RayUnavailableError("no Ray worker is left to run this job")
            done, _ = ray.wait([*running, *starting], num_returns=1, timeout=1.0)
            for ref in done:
                if ref in starting:
                    self._started(starting[ref], ref)
                else:
                    slot, item, t0 = running.pop(ref)
                    self._finished(store, slot, item, ref, t0)
                    if on_progress is not None:
                        on_progress(store.progress(job_id), store.item(job_id, item.index))
        return store.progress(job_id)

    def _started(self, slot: _Slot, ref: Any) -> None:
        ray = _ray()
        try:
            log.info("Ray worker up on %s", ray.get(ref))
            slot.ready = None
        except ray.exceptions.RayActorError:
            log.warning("a Ray worker died while loading the model")
            with self._lock:
                self._slots.remove(slot)
        except ray.exceptions.RayTaskError as e:
            with self._lock:
                self._slots.remove(slot)
            raise RayUnavailableError(f"a Ray worker could not load the model: {e.cause}") from None

    def _finished(self, store: JobStore, slot: _Slot, item: Item, ref: Any, t0: float) -> None:
        ray = _ray()
        with self._lock:
            slot.busy = None
        try:
            result = ray.get(ref)
        except ray.exceptions.RayActorError:
            self._replace(slot)
            if item.attempts >= self.max_attempts:
                store.fail(item, f"the worker running this take died {item.attempts} times")
            else:
                log.warning("the Ray worker running job %d item %d died; it runs again on another",
                            item.job_id, item.index)
                store.release(item)
            return
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, IndexTTSError):
                store.fail(item, str(e.cause))
                return
            store.release(item)
            raise
        out = result.save_wav(store.job_folder(item.job_id) / f"{item.name}.wav")
        store.finish(item, out, result.seconds, time.perf_counter() - t0,
                     {"seed": result.seed, "segments": len(result.segments),
                      "requested_seconds": result.requested_seconds})

    def _replace(self, slot: _Slot) -> None:
        with self._lock:
            self._slots[self._slots.index(slot)] = self._start()
