"""The one place where the app talks to the engine.

:class:`EngineController` owns the :class:`indextts_core.IndexTTS2` instance: it loads it
(in the background at start-up, so the page opens at once), unloads it on request, and turns
failures into message keys for the UI (:func:`classify_error`). The engine itself is safe to
share; the controller runs one step of work at a time because every take of the app competes
for the same device's memory, and hands the engine out in the order it was asked for: takes
that hold it one segment at a time (:meth:`EngineController.turns`) advance in turn, so a
short take never waits for a long one to end (:mod:`indextts_core.turns`). It uses only the
engine's public API (README, "Python API").
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from indextts_core.errors import (
    AudioError,
    IndexTTSError,
    InvalidOptionError,
    ModelNotFoundError,
    TextError,
)
from indextts_core.text import TextFrontend
from indextts_core.turns import FairLock, in_turns

from . import models

if TYPE_CHECKING:  # the engine (and torch) is imported when it loads, not with the app
    from indextts_core import IndexTTS2

log = logging.getLogger(__name__)

EngineFactory = Callable[..., "IndexTTS2"]

# Engine states shown in the UI.
NO_ENGINE = "no_engine"  # this installation has no synthesis engine (import failed)
MISSING = "missing"  # weights are not (completely) on disk
DOWNLOADING = "downloading"
LOADING = "loading"
READY = "ready"
UNLOADED = "unloaded"  # the user freed the memory; loads again on the next use
FAILED = "failed"


def default_factory() -> EngineFactory:
    """``IndexTTS2.from_pretrained``; raises ImportError when the engine is not installed."""
    from indextts_core import IndexTTS2

    return IndexTTS2.from_pretrained


def is_out_of_memory(exc: BaseException) -> bool:
    oom_type = getattr(__import__("torch"), "OutOfMemoryError", None)
    if oom_type is not None and isinstance(exc, oom_type):
        return True
    return isinstance(exc, RuntimeError | MemoryError) and "out of memory" in str(exc).lower()


def classify_error(exc: BaseException) -> tuple[str, dict[str, str]]:
    """A message key of :mod:`app.i18n` and its fields for an exception from the engine."""
    detail = str(exc).strip() or type(exc).__name__
    if is_out_of_memory(exc) or isinstance(exc, MemoryError):
        return "error.oom", {}
    if isinstance(exc, ModelNotFoundError):
        return "error.model_missing", {"detail": detail}
    if isinstance(exc, TextError):
        return "error.text", {"detail": detail}
    if isinstance(exc, AudioError):
        return "error.audio", {"detail": detail}
    if isinstance(exc, InvalidOptionError):
        return "error.option", {"detail": detail}
    if isinstance(exc, IndexTTSError):
        return "error.engine", {"detail": detail}
    return "error.unexpected", {"detail": f"{type(exc).__name__}: {detail}"}


class EngineBusyError(RuntimeError):
    """Raised by :meth:`EngineController.session` when the engine cannot be used right now."""

    def __init__(self, state: str, detail: str = "") -> None:
        super().__init__(detail or state)
        self.state = state
        self.detail = detail


@dataclass
class EngineStatus:
    """A snapshot for the status panel."""

    state: str
    model_dir: Path
    device: str
    precision: str
    is_test_model: bool
    detail: str = ""
    memory: dict[str, Any] = field(default_factory=dict)
    load_seconds: float | None = None
    download: models.DownloadSnapshot | None = None
    files: models.ModelFiles | None = None


class WorkEstimate:
    """Seconds of engine work a text will take, from this engine's measured speed.

    A simple model: work grows with the text tokens; the seconds per token are a running
    average over the takes made since the engine loaded (they depend on the device, the model
    and the settings, so nothing is guessed before the first take).
    """

    WEIGHT = 0.3  # of the newest take in the running average

    def __init__(self) -> None:
        self._per_token: float | None = None
        self._lock = threading.Lock()

    def record(self, tokens: int, seconds: float) -> None:
        if tokens <= 0 or not seconds > 0:
            return
        rate = seconds / tokens
        with self._lock:
            self._per_token = rate if self._per_token is None else (
                self.WEIGHT * rate + (1 - self.WEIGHT) * self._per_token)

    def seconds(self, tokens: int) -> float | None:
        """Estimated seconds for ``tokens`` text tokens; ``None`` before any take was measured."""
        with self._lock:
            return None if self._per_token is None else self._per_token * max(0, tokens)

    def reset(self) -> None:
        with self._lock:
            self._per_token = None


class EngineController:
    """Loads, guards and frees the engine. All engine calls go through :meth:`session`."""

    def __init__(self, model_dir: Path, *, device: str = "auto", precision: str = "auto",
                 factory: EngineFactory | None = None, allow_download: bool = True,
                 text_frontend: Callable[[], TextFrontend | None] | None = None) -> None:
        self.model_dir = Path(model_dir)
        self.device = device
        self.precision = precision
        self.allow_download = allow_download
        self._factory = factory
        self._text_frontend = text_frontend  # the page's front end, handed to the engine to share
        self._engine: IndexTTS2 | None = None
        self._lock = FairLock()  # one step of engine work at a time, in turn (see the module docstring)
        self.estimate = WorkEstimate()
        self._state_lock = threading.Lock()
        self._state = LOADING
        self._detail = ""
        self._load_seconds: float | None = None
        self._download: models.DownloadManager | None = None
        self._loader: threading.Thread | None = None
        self._settled = threading.Event()  # set once the first load attempt has ended
        self._loaded_on: tuple[str, str] | None = None  # (device, dtype) of the last loaded engine

    # -- state ------------------------------------------------------------------------
    def _set(self, state: str, detail: str = "") -> None:
        with self._state_lock:
            self._state, self._detail = state, detail
        log.info("engine state: %s %s", state, detail)

    @property
    def state(self) -> str:
        with self._state_lock:
            return self._state

    @property
    def is_test_model(self) -> bool:
        engine = self._engine
        if engine is not None:
            return engine.is_test_model
        return models.is_test_model(self.model_dir)

    def _resolve_factory(self) -> EngineFactory | None:
        if self._factory is None:
            try:
                self._factory = default_factory()
            except ImportError as e:
                self._set(NO_ENGINE, str(e))
                return None
        return self._factory

    # -- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Begin downloading (if allowed and needed) and loading in the background."""
        if self._loader is not None and self._loader.is_alive():
            return
        self._loader = threading.Thread(target=self._prepare, name="engine-loader", daemon=True)
        self._loader.start()

    def wait_ready(self, timeout: float | None = None) -> str:
        """Block until the engine is loaded or cannot be (missing weights, failure); returns the state."""
        self._settled.wait(timeout)
        return self.state

    def _prepare(self) -> None:
        try:
            self._prepare_and_load()
        finally:
            self._settled.set()

    def _prepare_and_load(self) -> None:
        if self._resolve_factory() is None:
            return
        files = models.model_files(self.model_dir)
        if not files.core_complete:
            if not self.allow_download:
                self._set(MISSING, "downloads are turned off (--no-download)")
                return
            if not self._download_weights():
                return
        with self._lock:
            self._load_locked()
        self._settled.set()
        if not files.complete and self.allow_download and not files.is_test_model:
            # The describe-in-words emotion model is optional: fetch it after the voice works.
            self._download_weights(keep_state=True)

    def _download_weights(self, keep_state: bool = False) -> bool:
        manager = models.DownloadManager(self.model_dir)
        self._download = manager
        if not keep_state:
            self._set(DOWNLOADING)
        ok = manager.run()
        if not ok and not keep_state:
            self._set(MISSING, manager.error or "download failed")
        return ok

    def start_download(self) -> None:
        """The status panel's download button: fetch what is missing, then load."""
        if self.state in (DOWNLOADING, LOADING) or (self._loader is not None and self._loader.is_alive()):
            return
        self.allow_download = True
        self.start()

    def _load_locked(self) -> None:
        if self._engine is not None:
            return
        factory = self._resolve_factory()
        if factory is None:
            return
        self._set(LOADING)
        t0 = time.perf_counter()
        try:
            dtype = None if self.precision in (None, "", "auto") else self.precision
            text = self._text_frontend() if self._text_frontend is not None else None
            self._engine = factory(self.model_dir, device=self.device, dtype=dtype, download=False, text=text)
        except ModelNotFoundError as e:
            self._set(MISSING, str(e))
            return
        except Exception as e:
            log.exception("loading the engine failed")
            key, fields = classify_error(e)
            self._set(FAILED, fields.get("detail", key))
            return
        self._load_seconds = time.perf_counter() - t0
        self._loaded_on = (str(self._engine.device), str(self._engine.dtype).replace("torch.", ""))
        self._set(READY)

    @contextlib.contextmanager
    def session(self, *, load: bool = True) -> Iterator[IndexTTS2]:
        """Hold the engine for one piece of work (waits for work already running).

        Raises :class:`EngineBusyError` when there is no usable engine.
        """
        if self._engine is None and self.state == LOADING and self._loader is not None:
            self._settled.wait()  # the first load is under way: wait for it rather than fail
        with self._lock:
            if self._engine is None and load and self.state in (READY, UNLOADED, FAILED):
                self._load_locked()
            if self._engine is None:
                raise EngineBusyError(self.state, self._detail)
            try:
                yield self._engine
            except BaseException as e:
                if is_out_of_memory(e):
                    _free_cuda_cache()
                raise

    def turns(self, start: Callable[[Any], Iterable[Any]]) -> Generator[Any, None, None]:
        """Iterate ``start(engine)`` holding the engine for one item at a time (a segment), so
        that other waiting work gets it between two items; closing the iterator stops the work.

        Between two items the engine is not loaded again: if it was unloaded meanwhile, the
        next item raises :class:`EngineBusyError` instead of loading the models back.
        """
        return in_turns(self.session, start, resume=lambda: self.session(load=False))

    @property
    def waiting(self) -> int:
        """How many pieces of work wait for the engine now."""
        return self._lock.waiting

    @property
    def loaded(self) -> bool:
        return self._engine is not None

    def unload(self) -> bool:
        """Free all models (waits for running work). Returns False when nothing was loaded."""
        with self._lock:
            engine, self._engine = self._engine, None
            if engine is None:
                return False
            try:
                engine.close()
            finally:
                _free_cuda_cache()
                self.estimate.reset()  # the next load may use another device or precision
                self._set(UNLOADED)
        return True

    def status(self) -> EngineStatus:
        engine = self._engine
        memory: dict[str, Any] = {}
        device, precision = self._loaded_on or (self.device, self.precision)
        if engine is not None:
            with contextlib.suppress(Exception):
                memory = dict(engine.memory_info())
        if memory.get("allocated_mb") is None:
            memory["process_mb"] = process_memory_mb()
        with self._state_lock:
            state, detail = self._state, self._detail
        download = self._download.snapshot() if self._download is not None else None
        try:
            files = models.model_files(self.model_dir)
        except Exception as e:  # a status query must never break the page
            log.warning("model status of %s failed: %s", self.model_dir, e)
            files = None
        return EngineStatus(state=state, model_dir=self.model_dir, device=device, precision=precision,
                            is_test_model=self.is_test_model, detail=detail, memory=memory,
                            load_seconds=self._load_seconds, download=download, files=files)


def process_memory_mb() -> float | None:
    """This process's resident memory (Linux; None elsewhere): what the models use on the CPU."""
    try:
        import os

        with open("/proc/self/statm", encoding="ascii") as f:
            pages = int(f.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, AttributeError):
        return None


def _free_cuda_cache() -> None:
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
