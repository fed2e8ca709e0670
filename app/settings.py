"""Everything a take is made from, as one plain record.

:class:`TakeSettings` is what the form holds, what History stores (so a take can be
repeated) and what the API accepts. It turns itself into the engine's option types;
those validate and raise :class:`indextts_core.InvalidOptionError` with a sentence.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from indextts_core.errors import InvalidOptionError
from indextts_core.options import DURATION_MODES, EMOTION_MODES, EMOTIONS, Duration, Emotion, Sampling, SynthesisOptions

VARIANT_CHOICES = ("speaker", *EMOTIONS)
DEFAULT_VARIANTS = ("calm", "happy", "sad", "angry")

_DEFAULT_SAMPLING = Sampling()


@dataclass
class TakeSettings:
    """One take's inputs except the voice clip itself (kept as a path beside it)."""

    text: str = ""
    emotion_mode: str = "speaker"
    emotion_audio: str | None = None
    emotion_weight: float = 0.65
    emotion_label: str = "happy"
    emotion_intensity: float = 0.8
    emotion_vector: tuple[float, ...] = (0.0,) * len(EMOTIONS)
    emotion_text: str = ""
    # True when the 8 sliders hold the analysis of ``emotion_text`` (maybe adjusted by the
    # user): text mode then uses the sliders instead of asking the emotion model again.
    emotion_text_analyzed: bool = False
    emotion_random: bool = False
    emotion_balance: bool = True
    duration_mode: str = "free"
    speed: float = 1.0
    target_seconds: float = 5.0
    target_tokens: int = 250
    do_sample: bool = _DEFAULT_SAMPLING.do_sample
    temperature: float = _DEFAULT_SAMPLING.temperature
    top_p: float = _DEFAULT_SAMPLING.top_p
    top_k: int = _DEFAULT_SAMPLING.top_k
    num_beams: int = _DEFAULT_SAMPLING.num_beams
    repetition_penalty: float = _DEFAULT_SAMPLING.repetition_penalty
    max_mel_tokens: int = _DEFAULT_SAMPLING.max_mel_tokens
    segment_tokens: int = 120
    gap_ms: int = 200
    diffusion_steps: int = 25
    cfg_rate: float = 0.7
    seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    # -- engine options ---------------------------------------------------------------
    def emotion(self) -> Emotion:
        mode = self.emotion_mode
        if mode == "speaker":
            return Emotion.from_speaker()
        if mode == "audio":
            if not self.emotion_audio:
                raise InvalidOptionError("Emotion from a clip needs an emotion clip: upload one or pick "
                                         "another emotion mode.")
            return Emotion.from_audio(self.emotion_audio, float(self.emotion_weight))
        if mode == "vector":
            return Emotion.from_vector(self.vector(), 1.0, use_random=self.emotion_random,
                                       apply_ui_bias=self.emotion_balance)
        if mode == "text":
            if self.emotion_text_analyzed:
                return Emotion.from_vector(self.vector(), float(self.emotion_weight), use_random=self.emotion_random)
            return Emotion.from_text(self.emotion_text.strip() or None, float(self.emotion_weight),
                                     use_random=self.emotion_random)
        raise InvalidOptionError(f"Unknown emotion mode {mode!r}; use one of {', '.join(EMOTION_MODES)}.")

    def vector(self) -> tuple[float, ...]:
        values = tuple(float(v) for v in self.emotion_vector)
        if len(values) != len(EMOTIONS):
            raise InvalidOptionError(f"The emotion mix needs {len(EMOTIONS)} values, got {len(values)}.")
        return values

    def duration(self) -> Duration:
        mode = self.duration_mode
        if mode == "free":
            return Duration.free()
        if mode == "speed":
            return Duration.speed(_number(self.speed, "speed"))
        if mode == "seconds":
            return Duration.seconds(_number(self.target_seconds, "target length"))
        if mode == "tokens":
            n = _number(self.target_tokens, "token count")
            if n != int(n):
                raise InvalidOptionError(f"The token count must be a whole number, got {n}.")
            return Duration.tokens(int(n))
        raise InvalidOptionError(f"Unknown length mode {mode!r}; use one of {', '.join(DURATION_MODES)}.")

    def sampling(self) -> Sampling:
        return Sampling(do_sample=bool(self.do_sample), temperature=float(self.temperature),
                        top_p=float(self.top_p), top_k=_whole(self.top_k, "top-k"),
                        num_beams=_whole(self.num_beams, "beams"),
                        repetition_penalty=float(self.repetition_penalty),
                        max_mel_tokens=_whole(self.max_mel_tokens, "max tokens"))

    def options(self) -> SynthesisOptions:
        """The engine's options for this take; :class:`SynthesisOptions` holds every range."""
        return SynthesisOptions(emotion=self.emotion(), duration=self.duration(), sampling=self.sampling(),
                                seed=self.seed_value(), segment_tokens=_whole(self.segment_tokens, "segment size"),
                                gap_ms=_number(self.gap_ms, "gap between segments"),
                                diffusion_steps=_whole(self.diffusion_steps, "diffusion steps"),
                                cfg_rate=_number(self.cfg_rate, "guidance"))

    def seed_value(self) -> int | None:
        """``None`` (a fresh random seed) for an empty or negative seed field."""
        if self.seed is None or self.seed == "":
            return None
        s = _whole(self.seed, "seed")
        return None if s < 0 else s

    def with_emotion_label(self, label: str) -> TakeSettings:
        """A copy that renders one named emotion (or the voice's own when ``label == 'speaker'``)."""
        if label == "speaker":
            return dataclasses.replace(self, emotion_mode="speaker")
        if label not in EMOTIONS:
            raise InvalidOptionError(f"Unknown emotion {label!r}; use one of {', '.join(VARIANT_CHOICES)}.")
        vec = tuple(float(self.emotion_intensity) if e == label else 0.0 for e in EMOTIONS)
        return dataclasses.replace(self, emotion_mode="vector", emotion_label=label, emotion_vector=vec)

    # -- storage ----------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["emotion_vector"] = list(self.emotion_vector)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TakeSettings:
        """Tolerant: unknown keys are ignored and missing ones take defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in d.items() if k in names}
        if "emotion_vector" in kwargs and kwargs["emotion_vector"] is not None:
            kwargs["emotion_vector"] = tuple(float(v) for v in kwargs["emotion_vector"])
        return cls(**kwargs)


def label_vector(label: str, intensity: float) -> list[float]:
    """The 8 slider values for one named emotion at ``intensity``."""
    return [float(intensity) if e == label else 0.0 for e in EMOTIONS]


def _number(x: Any, name: str) -> float:
    try:
        v = float(x)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"The {name} must be a number, got {x!r}.") from None
    return v


def _whole(x: Any, name: str) -> int:
    v = _number(x, name)
    if v != int(v):
        raise InvalidOptionError(f"The {name} must be a whole number, got {x!r}.")
    return int(v)
