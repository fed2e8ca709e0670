"""What a caller can ask of the engine, and what it gets back.

These small frozen dataclasses are the engine's public vocabulary: the web UI and the CLI
build them, :class:`indextts_core.IndexTTS2` consumes them. Each validates itself on
construction and raises :class:`InvalidOptionError` with a sentence a user can act on.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

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
    trace: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

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
