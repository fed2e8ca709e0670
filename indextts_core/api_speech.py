"""The speech request of the HTTP API: its JSON shape, how it becomes :class:`SynthesisOptions`,
and how a take is encoded in the format the client asked for.

The shape is OpenAI's ``POST /v1/audio/speech`` (``model``, ``input``, ``voice``,
``response_format``, ``speed``, ``instructions``, ``stream_format``) so existing clients work
unchanged; our own features are extra fields (``emotion``, ``duration_seconds``, ``seed``,
``options``). Everything a take is made from ends up in the one options object; this module
only translates and never adds settings of its own.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from .errors import InvalidOptionError
from .options import EMOTIONS, SAMPLE_RATE, SPEED_RANGE, Duration, Emotion, SynthesisOptions, to_pcm16

RESPONSE_FORMATS = ("mp3", "opus", "flac", "wav", "pcm")
# OpenAI's raw PCM is 24 kHz 16-bit mono; clients that play it assume that rate.
PCM_RATE = 24000
OUTPUT_RATES = (16000, 22050, 24000, 44100, 48000)
MEDIA_TYPES = {"mp3": "audio/mpeg", "opus": "audio/ogg", "flac": "audio/flac", "wav": "audio/wav",
               "pcm": "audio/pcm"}
# response_format -> the export module's format name (libsndfile container and subtype)
_EXPORT_NAMES = {"mp3": "mp3", "opus": "opus", "flac": "flac"}


class EmotionRequest(BaseModel):
    """One emotion source: a ``label`` (with ``intensity``), a ``vector``, a saved ``voice`` whose
    clip carries the emotion, or a ``description`` in words. ``weight`` (0..1) blends or scales it."""

    model_config = ConfigDict(extra="forbid")

    label: Literal[EMOTIONS] | None = Field(None, description="one named emotion")  # type: ignore[valid-type]
    intensity: float = Field(1.0, description="strength of `label`, 0..1.2")
    vector: list[float] | dict[str, float] | None = Field(
        None, description=f"8 intensities ({', '.join(EMOTIONS)}) as a list or by name, each 0..1.2")
    voice: str | None = Field(None, description="a saved voice whose clip gives the emotion")
    description: str | None = Field(None, max_length=1000, description="the emotion in words")
    weight: float | None = Field(None, description="0..1 (default 1): blend toward the emotion clip, "
                                                   "or scale the label/vector/description emotion")


class VoiceRef(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str


class SpeechRequest(BaseModel):
    """``POST /v1/audio/speech``: OpenAI's fields, then IndexTTS's own."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field("indextts-2", max_length=100, description="accepted for compatibility; one model is served")
    input: str = Field(..., description="the text to speak")
    voice: str | VoiceRef = Field(..., description="a saved voice's name (see GET /v1/audio/voices)")
    response_format: Literal[RESPONSE_FORMATS] = "mp3"  # type: ignore[valid-type]
    speed: float = Field(1.0, description=f"{SPEED_RANGE[0]}..{SPEED_RANGE[1]}; 2 is twice as fast")
    instructions: str | None = Field(None, max_length=1000,
                                     description="how to speak, in words: read as the emotion description")
    stream_format: Literal["audio", "sse"] = Field(
        "audio", description="`sse`: server-sent events with base64 audio as each segment is ready")
    # -- IndexTTS's own fields ------------------------------------------------------------------
    emotion: Literal[EMOTIONS] | EmotionRequest | None = Field(  # type: ignore[valid-type]
        None, description="an emotion name, or an object (default: the saved voice's emotion, else its clip's)")
    duration_seconds: float | None = Field(None, description="exact length of the whole take in seconds")
    seed: int | None = Field(None, description="the same seed and settings give the same take")
    stream: bool = Field(False, description="`wav` only: send segments as they are ready (the header then has "
                                            "no length); `pcm` is always sent that way")
    sample_rate: int | None = Field(None, description=f"output rate, one of {OUTPUT_RATES} (default: 24000 for "
                                                      "pcm, 48000 for opus, else the model's 22050)")
    options: dict[str, Any] | None = Field(
        None, description="any other SynthesisOptions field in its JSON form: sampling, segment_tokens, "
                          "quick_streaming_tokens, gap_ms, diffusion_steps, cfg_rate, duration "
                          "(e.g. {\"mode\": \"tokens\", \"value\": 200})")


VoiceLookup = Callable[[str], Any]  # saved-voice name -> an object with .clip and .emotion


def voice_name(voice: str | VoiceRef) -> str:
    return voice.id if isinstance(voice, VoiceRef) else voice


def emotion_from_request(req: SpeechRequest, lookup: VoiceLookup) -> Emotion | None:
    """The emotion a request asks for (``emotion`` or ``instructions``), or ``None`` for the default."""
    if req.instructions is not None and req.emotion is not None:
        raise InvalidOptionError("give the emotion with `emotion` or `instructions`, not both")
    if req.instructions is not None:
        return Emotion.from_text(req.instructions)
    e = req.emotion
    if e is None:
        return None
    if isinstance(e, str):
        return Emotion.from_label(e)
    given = [n for n in ("label", "vector", "voice", "description") if getattr(e, n) is not None]
    if len(given) != 1:
        raise InvalidOptionError("an emotion object names one source: label, vector, voice or description"
                                 + (f" (got {', '.join(given)})" if given else ""))
    weight = 1.0 if e.weight is None else e.weight
    if e.label is not None:
        return Emotion.from_label(e.label, e.intensity, weight=weight)
    if e.vector is not None:
        return Emotion.from_vector(e.vector, weight)
    if e.voice is not None:
        return Emotion.from_audio(str(lookup(e.voice).clip), weight)
    return Emotion.from_text(e.description, weight)


def _merged(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``changes`` over ``base``: sampling settings one by one, an emotion or duration as a whole
    (their fields only make sense together)."""
    out = {**base, **changes}
    if isinstance(changes.get("sampling"), dict):
        out["sampling"] = {**base["sampling"], **changes["sampling"]}
    return out


def options_from_json(data: dict[str, Any] | None, base: SynthesisOptions | None = None) -> SynthesisOptions:
    """A client's ``options`` object (SynthesisOptions' JSON form, any fields) over ``base``.

    A client may not name files on this machine: an emotion clip comes from a saved voice.
    """
    data = dict(data or {})
    emotion = data.get("emotion")
    if isinstance(emotion, dict) and emotion.get("audio") is not None:
        raise InvalidOptionError("options.emotion.audio cannot name a file; use emotion.voice with a saved voice")
    try:
        return SynthesisOptions.from_dict(_merged(base.to_dict(), data) if base is not None else data)
    except InvalidOptionError as e:
        raise InvalidOptionError(f"options: {e}") from None


def to_options(req: SpeechRequest, lookup: VoiceLookup, default_emotion: Emotion | None = None,
               seed: int | None = None, base: SynthesisOptions | None = None) -> SynthesisOptions:
    """The request as the one options object (over ``base``, a job's common options); a field
    given twice (top level and ``options``) is refused."""
    data = dict(req.options or {})
    options = options_from_json(data, base)
    changes: dict[str, Any] = {}

    def take(name: str, value: Any, field: str) -> None:
        if name in data:
            raise InvalidOptionError(f"{field} and options.{name} both set the {name}; give one")
        changes[name] = value

    emotion = emotion_from_request(req, lookup)
    if emotion is not None:
        take("emotion", emotion, "instructions" if req.instructions is not None else "emotion")
    elif "emotion" not in data and default_emotion is not None:
        changes["emotion"] = default_emotion
    if req.duration_seconds is not None and req.speed != 1.0:
        raise InvalidOptionError("give speed or duration_seconds, not both")
    if req.duration_seconds is not None:
        take("duration", Duration.seconds(req.duration_seconds), "duration_seconds")
    elif req.speed != 1.0:
        take("duration", Duration.speed(req.speed), "speed")
    if req.seed is not None:
        take("seed", req.seed, "seed")
    elif options.seed is None and seed is not None:
        changes["seed"] = seed
    return options.replace(**changes) if changes else options


# -- encoding --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class OutputFormat:
    """What the client gets: container, rate, and whether it can be sent segment by segment."""

    name: str
    sample_rate: int
    streamed: bool

    @property
    def media_type(self) -> str:
        return MEDIA_TYPES[self.name]


def output_format(req: SpeechRequest) -> OutputFormat:
    name = req.response_format
    default = PCM_RATE if name == "pcm" else 48000 if name == "opus" else SAMPLE_RATE
    rate = default if req.sample_rate is None else req.sample_rate
    if rate not in OUTPUT_RATES:
        raise InvalidOptionError(f"sample_rate must be one of {OUTPUT_RATES}, got {rate}")
    if name == "opus" and rate != 48000:
        raise InvalidOptionError("opus is sent at 48000 Hz only")
    if name in _EXPORT_NAMES and rate not in (22050, 44100, 48000):
        raise InvalidOptionError(f"{name} is sent at 22050, 44100 or 48000 Hz")
    streamed = name == "pcm" or (name == "wav" and req.stream) or req.stream_format == "sse"
    if req.stream and name not in ("wav", "pcm"):
        raise InvalidOptionError(f"stream is for wav and pcm; {name} is sent when the take is finished")
    if req.stream_format == "sse" and name not in ("wav", "pcm"):
        raise InvalidOptionError("stream_format 'sse' sends wav or pcm audio; choose one of them")
    return OutputFormat(name, rate, streamed)


def wav_header(sample_rate: int, data_bytes: int | None = None) -> bytes:
    """A 16-bit mono RIFF header; ``None``: length unknown (streaming), sizes set to the maximum."""
    size = 0xFFFFFFFF if data_bytes is None else data_bytes
    riff = 0xFFFFFFFF if data_bytes is None else 36 + data_bytes
    return (b"RIFF" + struct.pack("<I", riff) + b"WAVE" + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, sample_rate,
                                                                                   sample_rate * 2, 2, 16)
            + b"data" + struct.pack("<I", size))


class PcmEncoder:
    """float32 segments at the model's rate in, 16-bit little-endian PCM at ``rate`` out.

    Resampling runs as one continuous stream (soxr), so the segment boundaries leave no seam
    and the bytes are the same however the take is cut into segments.
    """

    def __init__(self, rate: int) -> None:
        self.rate = rate
        self._resampler = None
        if rate != SAMPLE_RATE:
            import soxr

            self._resampler = soxr.ResampleStream(SAMPLE_RATE, rate, 1, dtype="float32", quality="VHQ")

    def encode(self, audio: np.ndarray, last: bool = False) -> bytes:
        x = np.asarray(audio, dtype=np.float32)
        if self._resampler is not None:
            x = self._resampler.resample_chunk(x, last=last)
        return to_pcm16(x).astype("<i2").tobytes()


def encode_take(audio: np.ndarray, fmt: OutputFormat) -> bytes:
    """A whole take as one file of ``fmt``. WAV and PCM carry the engine's samples unchanged at
    its own rate; MP3, FLAC and Opus go through :mod:`indextts_core.export` (peak ceiling -1 dBTP)."""
    if fmt.name in ("wav", "pcm"):
        pcm = PcmEncoder(fmt.sample_rate).encode(audio, last=True)
        return pcm if fmt.name == "pcm" else wav_header(fmt.sample_rate, len(pcm)) + pcm
    import soundfile as sf

    from . import export

    options = export.ExportOptions(format=_EXPORT_NAMES[fmt.name], sample_rate=fmt.sample_rate)
    container, subtype, _ = export.FORMATS[options.format]
    buf = io.BytesIO()
    sf.write(buf, export.prepare(audio, SAMPLE_RATE, options), fmt.sample_rate, format=container, subtype=subtype)
    return buf.getvalue()
