"""What a caller can ask of the engine, and what it gets back.

These small frozen dataclasses are the engine's public vocabulary: the web UI and the CLI
build them, :class:`indextts_core.IndexTTS2` consumes them. Each validates itself on
construction and raises :class:`InvalidOptionError` with a sentence a user can act on.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InvalidOptionError

SAMPLE_RATE = 22050
EMOTIONS = ("happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm")
EMOTION_MODES = ("speaker", "audio", "vector", "text")
DURATION_MODES = ("free", "speed", "seconds", "tokens")

# The largest per-emotion value the reference accepts (its text-emotion parser clamps to it).
MAX_EMOTION_VALUE = 1.2
SPEED_RANGE = (0.5, 2.0)
MAX_TARGET_SECONDS = 600.0
MAX_SEED = 2**63 - 1_000_000  # noise seeds count up from it (see indextts_core.seeds)
SEGMENT_TOKENS_RANGE = (1, 600)  # a model may allow fewer (its config's max_text_tokens)
GAP_MS_RANGE = (0.0, 5000.0)
QUICK_STREAMING_TOKENS_RANGE = (0, 100_000)
DIFFUSION_STEPS_RANGE = (1, 200)
CFG_RATE_RANGE = (0.0, 3.0)

AudioSource = str | Path | tuple[int, np.ndarray]


def _check(cond: bool, message: str) -> None:
    if not cond:
        raise InvalidOptionError(message)


def _finite(x: float) -> bool:
    return isinstance(x, int | float) and math.isfinite(x)


@dataclass(frozen=True)
class Emotion:
    """How the line should feel. Build it with one of the ``from_*`` constructors.

    - ``speaker``: the emotion heard in the voice clip itself (the reference default).
    - ``audio``: the emotion of another clip, blended with the speaker's by ``weight``
      (0 = speaker only, 1 = emotion clip only).
    - ``vector``: 8 intensities in :data:`EMOTIONS` order, each in [0, 1.2]; ``weight``
      scales them first (the reference's ``emo_alpha``).
    - ``text``: a description ("she is furious") that the Qwen emotion model turns into
      the 8 intensities; ``text=None`` uses the line being spoken.
    """

    mode: str = "speaker"
    audio: AudioSource | None = None
    weight: float = 1.0
    vector: tuple[float, ...] | None = None
    text: str | None = None
    use_random: bool = False
    apply_ui_bias: bool = False
    text_max_tokens: int | None = None

    def __post_init__(self) -> None:
        _check(self.mode in EMOTION_MODES, f"unknown emotion mode {self.mode!r}: use one of {EMOTION_MODES}")
        _check(_finite(self.weight) and 0.0 <= self.weight <= 1.0,
               f"emotion weight must be between 0 and 1, got {self.weight}")
        if self.mode == "audio":
            _check(self.audio is not None, "emotion mode 'audio' needs an emotion reference clip")
        if self.mode == "vector":
            _check(self.vector is not None and len(self.vector) == len(EMOTIONS),
                   f"an emotion vector needs {len(EMOTIONS)} values ({', '.join(EMOTIONS)})")
            for name, v in zip(EMOTIONS, self.vector, strict=True):
                _check(_finite(v) and 0.0 <= v <= MAX_EMOTION_VALUE,
                       f"emotion '{name}' must be between 0 and {MAX_EMOTION_VALUE}, got {v}")
        if self.text_max_tokens is not None:
            _check(isinstance(self.text_max_tokens, int) and 1 <= self.text_max_tokens <= 32768,
                   f"emotion text max tokens must be 1..32768, got {self.text_max_tokens}")

    @classmethod
    def from_speaker(cls) -> Emotion:
        return cls()

    @classmethod
    def from_audio(cls, audio: AudioSource, weight: float = 1.0) -> Emotion:
        return cls(mode="audio", audio=audio, weight=weight)

    @classmethod
    def from_vector(cls, values: Sequence[float] | dict[str, float], weight: float = 1.0, *,
                    use_random: bool = False, apply_ui_bias: bool = False) -> Emotion:
        if isinstance(values, dict):
            unknown = set(values) - set(EMOTIONS)
            _check(not unknown, f"unknown emotion names {sorted(unknown)}: use {', '.join(EMOTIONS)}")
            values = [float(values.get(name, 0.0)) for name in EMOTIONS]
        try:
            vector = tuple(float(v) for v in values)
        except (TypeError, ValueError):
            raise InvalidOptionError(f"an emotion vector holds {len(EMOTIONS)} numbers "
                                     f"({', '.join(EMOTIONS)})") from None
        return cls(mode="vector", vector=vector, weight=weight,
                   use_random=use_random, apply_ui_bias=apply_ui_bias)

    @classmethod
    def from_label(cls, label: str, intensity: float = 1.0, **kwargs) -> Emotion:
        """One named emotion at ``intensity`` (0..1.2), the others 0."""
        _check(label in EMOTIONS, f"unknown emotion {label!r}: use one of {', '.join(EMOTIONS)}")
        return cls.from_vector({label: intensity}, **kwargs)

    @classmethod
    def from_text(cls, text: str | None = None, weight: float = 1.0, *,
                  max_tokens: int | None = None, use_random: bool = False) -> Emotion:
        return cls(mode="text", text=text, weight=weight, text_max_tokens=max_tokens, use_random=use_random)


@dataclass(frozen=True)
class Duration:
    """How long the result should be.

    - ``free``: as long as the model's natural delivery.
    - ``speed``: ``value`` in [0.5, 2.0]; 2.0 is twice as fast (half the free length).
    - ``seconds``: ``value`` is the target length of the whole output, gaps included;
      the result has exactly ``round(value * 22050)`` samples.
    - ``tokens``: ``value`` semantic codes for the whole text (about 50 per second).
    """

    mode: str = "free"
    value: float | None = None

    def __post_init__(self) -> None:
        _check(self.mode in DURATION_MODES, f"unknown duration mode {self.mode!r}: use one of {DURATION_MODES}")
        if self.mode == "free":
            _check(self.value is None, "duration mode 'free' takes no value")
            return
        _check(self.value is not None and _finite(self.value), f"duration mode '{self.mode}' needs a number")
        v = float(self.value)
        if self.mode == "speed":
            _check(SPEED_RANGE[0] <= v <= SPEED_RANGE[1],
                   f"speed must be between {SPEED_RANGE[0]} and {SPEED_RANGE[1]}, got {v}")
        elif self.mode == "seconds":
            _check(0.0 < v <= MAX_TARGET_SECONDS,
                   f"target length must be between 0 and {MAX_TARGET_SECONDS:g} seconds, got {v}")
        else:
            _check(v == int(v) and v >= 1, f"token count must be a whole number >= 1, got {v}")

    @classmethod
    def free(cls) -> Duration:
        return cls()

    @classmethod
    def speed(cls, ratio: float) -> Duration:
        return cls("speed", ratio)

    @classmethod
    def seconds(cls, seconds: float) -> Duration:
        return cls("seconds", seconds)

    @classmethod
    def tokens(cls, count: int) -> Duration:
        return cls("tokens", count)


@dataclass(frozen=True)
class Sampling:
    """GPT decoding settings. The defaults are the reference's (3-beam sampling)."""

    do_sample: bool = True
    temperature: float = 0.8
    top_p: float = 0.8
    top_k: int = 30
    num_beams: int = 3
    repetition_penalty: float = 10.0
    length_penalty: float = 0.0
    max_mel_tokens: int = 1500

    def __post_init__(self) -> None:
        _check(_finite(self.temperature) and 0.0 < self.temperature <= 5.0,
               f"temperature must be in (0, 5], got {self.temperature}")
        _check(_finite(self.top_p) and 0.0 < self.top_p <= 1.0, f"top-p must be in (0, 1], got {self.top_p}")
        _check(isinstance(self.top_k, int) and self.top_k >= 0, f"top-k must be 0 (off) or more, got {self.top_k}")
        _check(isinstance(self.num_beams, int) and 1 <= self.num_beams <= 16,
               f"beams must be 1..16, got {self.num_beams}")
        _check(_finite(self.repetition_penalty) and 0.0 < self.repetition_penalty <= 100.0,
               f"repetition penalty must be in (0, 100], got {self.repetition_penalty}")
        _check(_finite(self.length_penalty), "length penalty must be a number")
        _check(isinstance(self.max_mel_tokens, int) and self.max_mel_tokens >= 1,
               f"max mel tokens must be >= 1, got {self.max_mel_tokens}")

    @classmethod
    def greedy(cls, repetition_penalty: float = 10.0, max_mel_tokens: int = 1500) -> Sampling:
        """Deterministic decoding: no sampling, one beam, repetition penalty kept."""
        return cls(do_sample=False, num_beams=1, repetition_penalty=repetition_penalty,
                   max_mel_tokens=max_mel_tokens)


def _whole(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


@dataclass(frozen=True)
class SynthesisOptions:
    """Everything a take is made from except the text and the voice: one value for the UI, the
    CLI, HTTP requests and job items alike. It validates on construction (every range of the
    engine lives in this module) and round-trips through JSON (:meth:`to_dict` / :meth:`from_dict`).

    ``seed=None`` draws a fresh seed per take; the result reports the one used.
    ``segment_tokens``: most text tokens per segment; ``quick_streaming_tokens`` (0: off): no
    sentences are packed into a segment beyond half of ``segment_tokens`` until this many text
    tokens have been read, so the first segments are short and a stream's first audio comes
    sooner (the reference's streaming option);
    ``gap_ms``: silence between segments;
    ``diffusion_steps`` and ``cfg_rate`` (guidance): the flow-matching sampler.
    """

    emotion: Emotion = Emotion()
    duration: Duration = Duration()
    sampling: Sampling = Sampling()
    seed: int | None = None
    segment_tokens: int = 120
    quick_streaming_tokens: int = 0
    gap_ms: float = 200.0
    diffusion_steps: int = 25
    cfg_rate: float = 0.7

    def __post_init__(self) -> None:
        for name, kind in (("emotion", Emotion), ("duration", Duration), ("sampling", Sampling)):
            _check(isinstance(getattr(self, name), kind),
                   f"{name} must be an {kind.__name__} value, got {type(getattr(self, name)).__name__}")
        _check(self.seed is None or (_whole(self.seed) and 0 <= self.seed <= MAX_SEED),
               f"seed must be a whole number from 0 to {MAX_SEED}, got {self.seed!r}")
        lo, hi = SEGMENT_TOKENS_RANGE
        _check(_whole(self.segment_tokens) and lo <= self.segment_tokens <= hi,
               f"segment_tokens (tokens per segment) must be a whole number {lo}..{hi}, got {self.segment_tokens!r}")
        lo, hi = QUICK_STREAMING_TOKENS_RANGE
        _check(_whole(self.quick_streaming_tokens) and lo <= self.quick_streaming_tokens <= hi,
               f"quick_streaming_tokens must be a whole number {lo}..{hi}, got {self.quick_streaming_tokens!r}")
        lo, hi = GAP_MS_RANGE
        _check(_finite(self.gap_ms) and not isinstance(self.gap_ms, bool) and lo <= self.gap_ms <= hi,
               f"gap_ms (the gap between segments) must be {lo:g}..{hi:g} ms, got {self.gap_ms!r}")
        lo, hi = DIFFUSION_STEPS_RANGE
        _check(_whole(self.diffusion_steps) and lo <= self.diffusion_steps <= hi,
               f"diffusion_steps must be a whole number {lo}..{hi}, got {self.diffusion_steps!r}")
        lo, hi = CFG_RATE_RANGE
        _check(_finite(self.cfg_rate) and not isinstance(self.cfg_rate, bool) and lo <= self.cfg_rate <= hi,
               f"cfg_rate (guidance) must be {lo:g}..{hi:g}, got {self.cfg_rate!r}")

    def replace(self, **changes: Any) -> SynthesisOptions:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON types only. An emotion clip given as an in-memory array cannot be stored."""
        emo = self.emotion
        if isinstance(emo.audio, tuple):
            raise InvalidOptionError("emotion.audio: an in-memory clip cannot be serialised; save it to a file")
        return {
            "emotion": {"mode": emo.mode, "audio": None if emo.audio is None else str(emo.audio),
                        "weight": emo.weight, "vector": None if emo.vector is None else list(emo.vector),
                        "text": emo.text, "use_random": emo.use_random, "apply_ui_bias": emo.apply_ui_bias,
                        "text_max_tokens": emo.text_max_tokens},
            "duration": {"mode": self.duration.mode, "value": self.duration.value},
            "sampling": {f.name: getattr(self.sampling, f.name) for f in fields(Sampling)},
            "seed": self.seed, "segment_tokens": self.segment_tokens,
            "quick_streaming_tokens": self.quick_streaming_tokens, "gap_ms": self.gap_ms,
            "diffusion_steps": self.diffusion_steps, "cfg_rate": self.cfg_rate,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SynthesisOptions:
        """The inverse of :meth:`to_dict`; missing fields take defaults, unknown ones are refused by name."""
        _check(isinstance(data, dict), f"options must be a JSON object, got {type(data).__name__}")
        top = {f.name for f in fields(cls)}
        _known(data, top, "")
        kwargs: dict[str, Any] = {k: v for k, v in data.items() if k not in ("emotion", "duration", "sampling")}
        for name, kind in (("emotion", Emotion), ("duration", Duration), ("sampling", Sampling)):
            part = data.get(name)
            if part is None:
                continue
            _check(isinstance(part, dict), f"{name} must be a JSON object, got {type(part).__name__}")
            _known(part, {f.name for f in fields(kind)}, name + ".")
            if name == "emotion" and part.get("vector") is not None:
                try:
                    part = {**part, "vector": tuple(float(v) for v in part["vector"])}
                except (TypeError, ValueError):
                    raise InvalidOptionError(f"emotion.vector holds {len(EMOTIONS)} numbers "
                                             f"({', '.join(EMOTIONS)})") from None
            try:
                kwargs[name] = kind(**part)
            except InvalidOptionError as e:
                raise InvalidOptionError(f"{name}: {e}") from None
        return cls(**kwargs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> SynthesisOptions:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise InvalidOptionError(f"options are not valid JSON: {e}") from None
        return cls.from_dict(data)


def _known(data: dict[str, Any], names: set[str], prefix: str) -> None:
    unknown = sorted(set(data) - names)
    _check(not unknown, f"unknown option {', '.join(prefix + u for u in unknown)}: "
                        f"use {', '.join(prefix + n for n in sorted(names))}")


@dataclass(frozen=True)
class SegmentInfo:
    """One text segment's outcome."""

    index: int
    text: str
    num_tokens: int
    num_codes: int
    stopped_naturally: bool
    num_samples: int


@dataclass(frozen=True)
class SegmentAudio:
    """A piece of a streamed synthesis: one segment's audio, with the gap before it."""

    index: int
    audio: np.ndarray
    sample_rate: int
    info: SegmentInfo
    is_last: bool


@dataclass
class SynthesisResult:
    """A finished take. ``audio`` is float32 mono in [-1, 1] at ``sample_rate``."""

    audio: np.ndarray
    sample_rate: int
    segments: list[SegmentInfo]
    timings: dict[str, float]
    seed: int
    requested_seconds: float | None = None
    emotion_vector: tuple[float, ...] | None = None
    is_test_model: bool = False
    # Sentences about what may make the take worse than asked: the voice clip (too short, cut
    # to 15 s, clipped, ...) and the text (pieces read as <unk>, words that look like pinyin).
    warnings: tuple[str, ...] = ()

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sample_rate

    @property
    def rtf(self) -> float:
        """Real-time factor: generation time over audio length (below 1 is faster than real time)."""
        return self.timings.get("total", 0.0) / max(self.seconds, 1e-9)

    def to_int16(self) -> np.ndarray:
        """PCM samples as the reference returns them: scale by 32767, clamp, truncate."""
        return to_pcm16(self.audio)

    def save_wav(self, path: str | Path) -> Path:
        """Write a 16-bit mono WAV; never overwrites through a partial file."""
        import soundfile as sf

        path = Path(path)
        tmp = path.with_name(path.name + ".part")
        sf.write(tmp, self.to_int16(), self.sample_rate, subtype="PCM_16", format="WAV")
        tmp.replace(path)
        return path


def to_pcm16(audio: np.ndarray) -> np.ndarray:
    """float [-1, 1] → int16 the reference's way (``clamp(32767·x)`` then truncation toward zero)."""
    scaled = np.clip(np.asarray(audio, dtype=np.float32) * np.float32(32767.0), -32767.0, 32767.0)
    return scaled.astype(np.int16)
