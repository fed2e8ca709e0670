"""What the buttons do, without any Gradio: validation, engine calls, saving takes.

:class:`Studio` methods take plain values and return or yield plain events; the layout
turns those into component updates. Every failure becomes an :class:`Failed` event with a
sentence in the interface language; inputs are never touched here.
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from indextts_core.errors import AudioError, InvalidOptionError, TextError
from indextts_core.serve import MAX_TEXT_CHARS
from indextts_core.voice_check import VoiceReport, check_voice

from . import controller as ctl
from .history import History, Take
from .i18n import emotion_name, t
from .i18n_engine import engine_text
from .paths import AppDirs
from .settings import TakeSettings
from .text_tools import TextTools
from .voices import SilentVoiceError, Voice, VoiceLibrary

if TYPE_CHECKING:
    from indextts_core import IndexTTS2
    from indextts_core.options import SynthesisResult
    from indextts_core.text import TextPreview

log = logging.getLogger(__name__)

# The longest text one take from the page or /synthesize may have: the HTTP API's limit of one
# request (OpenAI's). Longer texts go to the Batch tab, a job, where each line is a take.
MAX_TAKE_CHARS = MAX_TEXT_CHARS


# -- events ---------------------------------------------------------------------------
@dataclass
class Progress:
    text: str
    fraction: float | None = None


@dataclass
class Chunk:
    """One finished segment (the gap before it included) for live playback."""

    audio: np.ndarray
    sample_rate: int
    index: int
    total: int


@dataclass
class Finished:
    take: Take
    path: Path
    info: str
    label: str = ""
    segments: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    warnings: tuple[str, ...] = ()  # the engine's, about the voice clip and the text


@dataclass
class Failed:
    text: str


@dataclass
class Stopped:
    """The take ended on the user's Stop; nothing of it is saved."""

    text: str


class StopSwitch:
    """The page's Stop button, per browser session.

    Stop marks the session's running takes; each ends at its next heartbeat (a quarter of a
    second) with a :class:`Stopped` event as its own last frame. Gradio's ``cancels`` would
    race the take's last frames: the page could end on a stale progress line or "Error".
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[str, set[threading.Event]] = {}

    @contextmanager
    def running(self, session: str) -> Iterator[threading.Event]:
        """An event set by :meth:`stop` for ``session`` while the block runs."""
        flag = threading.Event()
        with self._lock:
            self._running.setdefault(session, set()).add(flag)
        try:
            yield flag
        finally:
            with self._lock:
                flags = self._running.get(session, set())
                flags.discard(flag)
                if not flags:
                    self._running.pop(session, None)

    def stop(self, session: str) -> int:
        """Stop the session's running takes; how many there were."""
        with self._lock:
            flags = list(self._running.get(session, ()))
        for flag in flags:
            flag.set()
        return len(flags)


@dataclass
class AppContext:
    """Everything the handlers need; built once by :func:`app.webui.create_app`."""

    dirs: AppDirs
    controller: ctl.EngineController
    history: History
    voices: VoiceLibrary
    emotion_clips: VoiceLibrary
    text: TextTools
    streaming: bool = False

    @classmethod
    def create(cls, dirs: AppDirs, controller: ctl.EngineController, *, text: TextTools | None = None,
               streaming: bool = False) -> AppContext:
        """``text``: the page's text tools (by default new ones for the controller's model folder)."""
        dirs.create()
        return cls(dirs=dirs, controller=controller, history=History(dirs.takes_dir, dirs.history_file),
                   voices=VoiceLibrary(dirs.voices_dir), emotion_clips=VoiceLibrary(dirs.voices_dir / "emotion"),
                   text=text or TextTools(controller.model_dir), streaming=streaming)


HEARTBEAT = object()
HEARTBEAT_S = 0.25


class StopRequested(Exception):
    """Raised by :class:`EngineThread`'s items once the user's ``stop`` event is set."""


class EngineThread:
    """Runs one piece of streaming engine work on its own worker thread.

    ``work(engine)`` is iterated on the worker in :meth:`EngineController.turns`: the engine is
    held for one item (a segment) at a time, and other takes waiting for it go in between.
    Items reach the consumer through a queue. The point is Stop: a generator can only be
    closed between two of its steps, and one engine step is a whole segment. Closing the
    consumer (Stop, a closed tab, an API client's cancel) only raises a flag and returns at
    once: the worker finishes the item being computed, closes the engine's stream and computes
    nothing more, so the next take waits at most for that one segment.

    ``stop`` (the page's Stop, :class:`StopSwitch`): once set, the worker takes no further turn
    (none at all when it was set before the first) and iterating raises :class:`StopRequested`
    within a heartbeat, so the consumer can still send its own last frame.
    """

    def __init__(self, controller: ctl.EngineController, work: Callable[[IndexTTS2], Iterable[Any]],
                 stop: threading.Event | None = None) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()  # the consumer is gone
        self._user_stop = stop or threading.Event()
        self._thread = threading.Thread(target=self._work, args=(controller, work), name="engine-run",
                                        daemon=True)
        self._thread.start()

    def _stopping(self) -> bool:
        return self._stop.is_set() or self._user_stop.is_set()

    def _work(self, controller: ctl.EngineController, work: Callable[[IndexTTS2], Iterable[Any]]) -> None:
        if self._stopping():
            self._queue.put(("stopped", None))
            return
        turns = controller.turns(work)
        try:
            for item in turns:
                self._queue.put(("item", item))
                if self._stopping():
                    log.info("stopped: the rest of the work is dropped")
                    self._queue.put(("stopped", None))
                    return
            self._queue.put(("done", None))
        except BaseException as e:
            self._queue.put(("error", e))
        finally:
            turns.close()  # closes the engine's stream on this thread

    def __iter__(self) -> Iterator[Any]:
        """The work's items; :data:`HEARTBEAT` every ``HEARTBEAT_S`` while waiting for one.

        The heartbeats let the consumer yield often: a generator can only be closed between
        two of its steps, so Gradio's Stop takes effect within a heartbeat, not a segment.
        """
        try:
            while True:
                if self._user_stop.is_set():
                    raise StopRequested
                try:
                    kind, value = self._queue.get(timeout=HEARTBEAT_S)
                except queue.Empty:
                    yield HEARTBEAT
                    continue
                if kind == "item":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            self._stop.set()

    def join(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()


def engine_failure(lang: str, exc: BaseException) -> str:
    """The sentence shown for an exception raised while using the engine."""
    if isinstance(exc, ctl.EngineBusyError):
        try:
            state = t(lang, f"state.{exc.state}")
            hint = t(lang, f"hint.{exc.state}")
        except KeyError:
            state, hint = exc.state, ""
        return t(lang, "error.not_ready", state=state, hint=hint)
    key, fields = ctl.classify_error(exc)
    if key == "error.unexpected":
        log.error("engine call failed", exc_info=exc)
    elif "detail" in fields:
        fields["detail"] = engine_text(lang, fields["detail"])
    return t(lang, key, **fields)


class Studio:
    """The app's actions."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.stops = StopSwitch()

    # -- voice ------------------------------------------------------------------------
    def add_voice(self, path: str | None, lang: str = "en") -> tuple[Voice | None, VoiceReport | None, str | None]:
        """Check and store an uploaded/recorded clip. Returns (voice, report, error sentence)."""
        if not path:
            return None, None, None
        try:
            voice, report = self.ctx.voices.add(path)
        except SilentVoiceError:
            return None, None, t(lang, "error.silent_voice")
        except AudioError as e:
            return None, None, engine_text(lang, str(e))
        return voice, report, None

    def check_voice(self, path: str | None, lang: str = "en") -> tuple[VoiceReport | None, str | None]:
        """(report, error sentence) for the clip at ``path``, storing nothing (None, None without one)."""
        if not path:
            return None, None
        try:
            report = check_voice(path)
        except AudioError as e:
            return None, engine_text(lang, str(e))
        return (None, t(lang, "error.silent_voice")) if report.silent else (report, None)

    def voice_path(self, voice: Voice) -> Path:
        return self.ctx.voices.path_of(voice)

    # -- text -------------------------------------------------------------------------
    def estimate_seconds(self, preview: TextPreview | None) -> float | None:
        """Seconds of engine work the previewed text will take, at the speed measured so far."""
        if preview is None:
            return None
        return self.ctx.controller.estimate.seconds(len(preview.ids))

    def preview(self, text: str, segment_tokens: int) -> tuple[TextPreview | None, list[str], str | None]:
        """(TextPreview or None when the model folder has no text files yet, invalid pinyin, error sentence)."""
        text = text or ""
        invalid = self.ctx.text.invalid_pinyin(text)
        if not text.strip():
            return None, invalid, None
        try:
            return self.ctx.text.preview(text, max(1, int(segment_tokens or 120))), invalid, None
        except (TextError, InvalidOptionError) as e:
            return None, invalid, str(e)
        except Exception as e:  # the preview must never break typing
            log.warning("text preview failed: %s", e)
            return None, invalid, None

    # -- emotion ----------------------------------------------------------------------
    def analyze_emotion(self, lang: str, description: str, text: str) -> tuple[list[float] | None, str | None]:
        source = (description or "").strip() or (text or "").strip()
        if not source:
            return None, t(lang, "error.emotion_text")
        try:
            with self.ctx.controller.session() as tts:
                values = tts.analyze_emotion_text(source)
        except Exception as e:
            return None, engine_failure(lang, e)
        from indextts_core.options import EMOTIONS

        return [float(values[name]) for name in EMOTIONS], None

    # -- generation -------------------------------------------------------------------
    def _validate(self, lang: str, voice_path: str | None, s: TakeSettings
                  ) -> tuple[Voice, TakeSettings, dict[str, Any], tuple[str, ...]] | Failed:
        """(the stored voice, the settings, the engine's options, the uploaded clip's warnings) or
        Failed. The clip is stored cut to what the model uses, so the engine never sees that a
        long one was cut: its warnings come from the upload."""
        if not voice_path:
            return Failed(t(lang, "error.no_voice"))
        if not (s.text or "").strip():
            return Failed(t(lang, "error.no_text"))
        if len(s.text) > MAX_TAKE_CHARS:
            return Failed(t(lang, "error.too_long", n=len(s.text), limit=MAX_TAKE_CHARS))
        bad = self.ctx.text.invalid_pinyin(s.text)
        if bad:
            return Failed(t(lang, "error.invalid_pinyin", words=", ".join(bad)))
        try:
            voice, report = self.ctx.voices.add(voice_path)
        except SilentVoiceError:
            return Failed(t(lang, "error.silent_voice"))
        except AudioError as e:
            return Failed(t(lang, "error.audio", detail=engine_text(lang, str(e))))
        if s.emotion_mode == "audio":
            if not s.emotion_audio:
                return Failed(t(lang, "error.no_emotion_clip"))
            if not self._own_file(s.emotion_audio):
                # One answer whether the path exists or not: no file-existence oracle.
                return Failed(t(lang, "error.not_uploaded"))
            try:
                clip, _ = self.ctx.emotion_clips.add(s.emotion_audio)
            except AudioError as e:
                return Failed(t(lang, "error.audio", detail=engine_text(lang, str(e))))
            s = dataclasses.replace(s, emotion_audio=str(self.ctx.emotion_clips.path_of(clip)))
        try:
            options = s.options()
        except InvalidOptionError as e:
            return Failed(t(lang, "error.option", detail=engine_text(lang, str(e))))
        return voice, s, options, report.take_warnings

    def _own_file(self, path: str) -> bool:
        """True for files in Gradio's upload folder: what clients uploaded and copies of what the
        app showed them (the page's clips always arrive as such copies)."""
        try:
            return Path(path).resolve().is_relative_to(self.ctx.dirs.uploads_dir.resolve())
        except (OSError, ValueError):
            return False

    def _save(self, lang: str, result: SynthesisResult, voice: Voice, s: TakeSettings, *, kind: str = "take",
              variant: str | None = None, started: float, clip_warnings: tuple[str, ...] = ()) -> Finished:
        path = self.ctx.history.reserve_path(s.text, int(result.seed), variant or "")
        result.save_wav(path)
        gen = float(result.timings.get("total", time.perf_counter() - started))
        settings = dataclasses.replace(s, seed=int(result.seed)).to_dict()
        take = Take(id=History.new_id(), created=datetime.now().isoformat(timespec="seconds"), wav=path.name,
                    text=s.text, voice_name=voice.name, voice_path=str(self.ctx.voices.path_of(voice)),
                    settings=settings, seed=int(result.seed), seconds=float(result.seconds),
                    requested_seconds=result.requested_seconds, generation_seconds=gen,
                    rtf=float(gen / max(result.seconds, 1e-9)),
                    emotion_vector=list(result.emotion_vector) if result.emotion_vector is not None else None,
                    is_test_model=bool(result.is_test_model), kind=kind, variant=variant)
        self.ctx.history.add(take)
        from .views import take_info

        warnings = tuple(dict.fromkeys((*clip_warnings, *result.warnings)))  # the stored clip repeats some
        info = take_info(lang, seconds=take.seconds, requested=take.requested_seconds, gen=gen, rtf=take.rtf,
                         seed=take.seed, segments=len(result.segments), path=str(path),
                         is_test_model=take.is_test_model, warnings=warnings)
        label = emotion_name(lang, variant) if variant else ""
        segments = [dataclasses.asdict(seg) for seg in result.segments]
        return Finished(take=take, path=path, info=info, label=label, segments=segments, warnings=warnings)

    def generate(self, lang: str, voice_path: str | None, s: TakeSettings, stop: threading.Event | None = None
                 ) -> Iterator[Progress | Chunk | Finished | Failed | Stopped]:
        """Stream one take: Progress and Chunk events, then Finished (or Failed, or Stopped once
        ``stop`` is set)."""
        checked = self._validate(lang, voice_path, s)
        if isinstance(checked, Failed):
            yield checked
            return
        voice, s, options, clip_warnings = checked
        yield Progress(t(lang, "progress.waiting"), 0.0)
        started = time.perf_counter()
        speaker = str(self.ctx.voices.path_of(voice))

        latest: list[Any] = [None]  # the engine's newest SynthesisProgress, written on its thread

        def on_progress(p: Any) -> None:
            latest[0] = p

        def work(tts: IndexTTS2) -> Iterator[tuple[str, Any]]:
            seg = tts.preview_text(s.text, options.segment_tokens, options.quick_streaming_tokens).segments
            yield "total", len(seg) or 1
            stream = tts.stream(s.text, speaker, options, progress=on_progress)
            for chunk in stream:
                yield "chunk", chunk
            yield "result", stream.result

        total, announced = 1, 1  # segments in the take, and the one the line has announced (1-based)
        waiting = Progress(t(lang, "progress.waiting"), None)
        runner = iter(EngineThread(self.ctx.controller, work, stop))
        try:
            for item in runner:
                if item is HEARTBEAT:
                    # The engine's last event may still be the finished segment's, after the next
                    # one was announced: the line never goes back to it.
                    current = latest[0]
                    yield waiting if current is None or current.segment + 1 < announced \
                        else inside_segment(lang, current)
                    continue
                kind, value = item
                if kind == "total":
                    total, announced = value, 1
                    waiting = Progress(t(lang, "progress.segment", n=1, total=total), 0.0)
                    yield waiting
                elif kind == "chunk":
                    n = value.index + 1
                    yield Chunk(np.asarray(value.audio, dtype=np.float32), int(value.sample_rate), value.index,
                                total)
                    if not value.is_last:
                        # The engine's own fraction (segments weigh by their share of the text), so
                        # the bar never jumps back to an equal-shares value between two segments.
                        done = n / total if latest[0] is None else latest[0].fraction
                        announced = n + 1
                        waiting = Progress(t(lang, "progress.segment", n=n + 1, total=total), done)
                        yield waiting
                else:
                    self._measure(value)
                    yield Progress(t(lang, "progress.saving"), 1.0)
                    yield self._save(lang, value, voice, s, started=started, clip_warnings=clip_warnings)
        except StopRequested:
            yield Stopped(t(lang, "stopped"))
        except Exception as e:
            yield Failed(engine_failure(lang, e))
        finally:
            runner.close()  # the engine stops after the segment it is making

    def _measure(self, result: Any) -> None:
        """Feed the take's engine time (its stages, not the turns it waited) to the estimate."""
        stages = {k: v for k, v in dict(result.timings).items() if k != "total"}
        seconds = sum(stages.values()) if stages else float(result.timings.get("total", 0.0))
        self.ctx.controller.estimate.record(sum(seg.num_tokens for seg in result.segments), seconds)

    def variants(self, lang: str, voice_path: str | None, s: TakeSettings, labels: list[str],
                 stop: threading.Event | None = None) -> Iterator[Progress | Finished | Failed | Stopped]:
        """Render the same line once per emotion label (same seed for all); the variants
        finished before ``stop`` is set are kept."""
        if not labels:
            yield Failed(t(lang, "variants.none"))
            return
        checked = self._validate(lang, voice_path, s)
        if isinstance(checked, Failed):
            yield checked
            return
        voice, s, _, clip_warnings = checked
        seed = s.seed_value()
        if seed is None:
            seed = secrets.randbelow(2**31)
        s = dataclasses.replace(s, seed=seed)
        speaker = str(self.ctx.voices.path_of(voice))

        def work(tts: IndexTTS2) -> Iterator[tuple[int, str, TakeSettings, SynthesisResult, float] | None]:
            for i, label in enumerate(labels):
                sv = s.with_emotion_label(label)
                started = time.perf_counter()
                stream = tts.stream(sv.text, speaker, sv.options())
                for _ in stream:
                    yield None  # one turn per segment: Stop and other takes get in between
                yield i, label, sv, stream.result, started

        waiting = Progress(t(lang, "progress.waiting"), 0.0)
        yield waiting
        runner = iter(EngineThread(self.ctx.controller, work, stop))
        try:
            started_label = 0
            for item in runner:
                if item is HEARTBEAT or item is None:
                    if started_label < len(labels):
                        name = emotion_name(lang, labels[started_label])
                        waiting = Progress(t(lang, "progress.variant", n=started_label + 1, total=len(labels),
                                             name=name), started_label / len(labels))
                    yield waiting
                    continue
                i, label, sv, result, started = item
                started_label = i + 1
                yield self._save(lang, result, voice, sv, kind="variant", variant=label, started=started,
                                 clip_warnings=clip_warnings)
        except StopRequested:
            yield Stopped(t(lang, "stopped"))
        except Exception as e:
            yield Failed(engine_failure(lang, e))
        finally:
            runner.close()

    # -- history ----------------------------------------------------------------------
    def reuse(self, take_id: str) -> tuple[TakeSettings, Path | None] | None:
        take = self.ctx.history.get(take_id)
        if take is None:
            return None
        settings = TakeSettings.from_dict(take.settings)
        voice = Path(take.voice_path) if take.voice_path and Path(take.voice_path).is_file() else None
        if settings.emotion_audio and not Path(settings.emotion_audio).is_file():
            settings = dataclasses.replace(settings, emotion_audio=None)
        return settings, voice

    # -- status -----------------------------------------------------------------------
    def unload(self) -> bool:
        return self.ctx.controller.unload()


def inside_segment(lang: str, p: Any) -> Progress:
    """The progress line and bar for the engine's :class:`~indextts_core.progress.SynthesisProgress`."""
    stage = t(lang, f"progress.stage.{p.stage}", step=p.step, steps=p.steps)
    left = p.seconds_left
    text = t(lang, "progress.inside", n=p.segment + 1, total=p.segments, stage=stage,
             left="" if left is None else t(lang, "progress.left", seconds=max(1, round(left))))
    return Progress(text, p.fraction)


def random_seed() -> int:
    return secrets.randbelow(2**31)


__all__ = ["AppContext", "Chunk", "EngineThread", "Failed", "Finished", "Progress", "StopRequested", "StopSwitch",
           "Stopped", "Studio", "random_seed"]
