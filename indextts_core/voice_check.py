"""Checking a voice clip before it is used as the speaker reference.

The engine reads the first 15 s of the clip (``MODEL_SECONDS``); everything after that is
ignored. :func:`check_voice` measures what matters about those seconds (length, sample
rate, channels, level, clipping, silence) and says in plain sentences what is wrong and
what to do. It never changes the clip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .audio import array_to_float
from .errors import AudioError
from .options import AudioSource

MODEL_SECONDS = 15.0
"""How much of a voice clip the model uses (the reference keeps ``int(15 * 22050)`` samples)."""

MIN_SECONDS = 3.0
IDEAL_SECONDS = (5.0, 15.0)
LOW_SAMPLE_RATE = 16000
GOOD_SAMPLE_RATE = 22050
SILENT_DBFS = -60.0
QUIET_DBFS = -40.0
CLIP_LEVEL = 0.999
CLIPPED_WARN_FRACTION = 0.001
FRAME_SECONDS = 0.05
ACTIVE_FRAME_DBFS = -45.0
MIN_ACTIVE_FRACTION = 0.3


@dataclass(frozen=True)
class VoiceReport:
    """What :func:`check_voice` found. Levels are linear (0..1 = full scale) unless named ``*_db``.

    ``peak``, ``rms``, ``clipped_fraction``, ``active_fraction`` and ``silent`` describe the part
    the model uses (the first ``used_seconds``); ``duration`` is the whole clip.
    ``notes`` are neutral facts, ``warnings`` are problems worth fixing; both are sentences.
    """

    duration: float
    sample_rate: int
    channels: int
    peak: float
    rms: float
    clipped_fraction: float
    active_fraction: float
    silent: bool
    used_seconds: float
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    @property
    def peak_db(self) -> float:
        return _db(self.peak)

    @property
    def rms_db(self) -> float:
        return _db(self.rms)

    @property
    def trimmed(self) -> bool:
        """True when the clip is longer than the part the model uses."""
        return self.duration > self.used_seconds + 1e-9

    @property
    def take_warnings(self) -> tuple[str, ...]:
        """What a take made from this clip carries: the warnings, and that a long clip is cut
        (the take is still made)."""
        cut = f"The voice clip is {self.duration:.1f} s long; only its first {self.used_seconds:g} s are used."
        return self.warnings + ((cut,) if self.trimmed else ())

    @property
    def usable(self) -> bool:
        """False when the model would get nothing useful (silent clip)."""
        return not self.silent


def _db(x: float) -> float:
    return 20.0 * math.log10(x) if x > 0 else -math.inf


def load_clip(source: AudioSource) -> tuple[np.ndarray, int]:
    """Read a clip as float32 samples ``(T, C)`` at its own sample rate.

    ``source`` is a file path (anything libsndfile reads: WAV, FLAC, OGG, MP3 with a recent
    libsndfile; other formats through librosa's fallback decoder if one is installed) or a
    ``(sample_rate, samples)`` tuple as Gradio's numpy audio gives. Raises :class:`AudioError`.
    """
    if isinstance(source, tuple):
        if len(source) != 2:
            raise AudioError("Audio given as a tuple must be (sample_rate, samples).")
        sr, data = source
        y = array_to_float(sr, data, "recorded audio")
        return (y[:, None] if y.ndim == 1 else y.T), int(sr)
    path = Path(source)
    if not path.is_file():
        raise AudioError(f"The voice file {path.name} was not found; upload the clip again.")
    import soundfile as sf

    try:
        audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        audio, sr = _decode_with_librosa(path)
    return np.asarray(audio, dtype=np.float32), int(sr)


def _decode_with_librosa(path: Path) -> tuple[np.ndarray, int]:
    import warnings

    import librosa

    try:
        with warnings.catch_warnings():  # librosa warns before its audioread fallback; we report below
            warnings.simplefilter("ignore")
            audio, sr = librosa.load(str(path), sr=None, mono=False)
    except Exception as e:  # audioread raises many unrelated types for "no backend"
        import shutil

        # Advising to install ffmpeg when it is installed sends the user in circles.
        advice = ("the file may be damaged or in a format ffmpeg cannot decode either; convert it to WAV"
                  if shutil.which("ffmpeg") else
                  "convert other formats (for example M4A) to WAV, or install ffmpeg so they can be decoded")
        raise AudioError(
            f"Could not read {path.name} ({path.suffix or 'no extension'}). WAV, FLAC, OGG and MP3 work; {advice}."
        ) from e
    audio = np.asarray(audio, dtype=np.float32)
    return (audio[:, None] if audio.ndim == 1 else audio.T), int(sr)


def _active_fraction(mono: np.ndarray, sr: int) -> float:
    """Share of 50 ms frames louder than ``ACTIVE_FRAME_DBFS`` (a cheap speech-presence proxy)."""
    hop = max(1, int(sr * FRAME_SECONDS))
    n = len(mono) // hop
    if n == 0:
        return 1.0 if len(mono) and np.sqrt(np.mean(mono**2)) > 10 ** (ACTIVE_FRAME_DBFS / 20) else 0.0
    frames = mono[: n * hop].reshape(n, hop)
    rms = np.sqrt(np.mean(frames.astype(np.float64) ** 2, axis=1))
    return float(np.mean(rms > 10 ** (ACTIVE_FRAME_DBFS / 20)))


def check_voice(source: AudioSource) -> VoiceReport:
    """Measure a voice clip and describe its problems.

    Raises :class:`AudioError` when the clip cannot be read or holds no samples.
    """
    audio, sr = load_clip(source)
    total, channels = audio.shape
    if total == 0 or channels == 0:
        raise AudioError("The voice clip is empty; upload or record 5 to 15 seconds of speech.")
    if not np.all(np.isfinite(audio)):
        raise AudioError("The voice clip contains invalid samples (NaN or infinity); export it again as WAV.")
    duration = total / sr
    used = audio[: int(MODEL_SECONDS * sr)]
    used_seconds = len(used) / sr
    mono = used.mean(axis=1)

    peak = float(np.max(np.abs(used)))
    rms = float(np.sqrt(np.mean(mono.astype(np.float64) ** 2)))
    clipped = float(np.mean(np.any(np.abs(used) >= CLIP_LEVEL, axis=1)))
    active = _active_fraction(mono, sr)
    silent = peak < 10 ** (SILENT_DBFS / 20) or _db(rms) < SILENT_DBFS

    notes: list[str] = []
    warnings: list[str] = []
    if duration < MIN_SECONDS:
        warnings.append(f"The clip is only {duration:.1f} s long, too short to capture the voice well; "
                        f"record {IDEAL_SECONDS[0]:g} to {IDEAL_SECONDS[1]:g} seconds of clear speech.")
    elif duration < IDEAL_SECONDS[0]:
        notes.append(f"The clip is {duration:.1f} s long; {IDEAL_SECONDS[0]:g} to {IDEAL_SECONDS[1]:g} "
                     "seconds of speech work best.")
    if duration > MODEL_SECONDS:
        notes.append(f"The clip is {duration:.1f} s long; only the first {MODEL_SECONDS:g} s are used.")
    if sr < LOW_SAMPLE_RATE:
        warnings.append(f"The sample rate is {sr} Hz, which sounds muffled; use a recording made at "
                        f"{GOOD_SAMPLE_RATE} Hz or more.")
    elif sr < GOOD_SAMPLE_RATE:
        notes.append(f"The sample rate is {sr} Hz; recordings at {GOOD_SAMPLE_RATE} Hz or more keep more detail.")
    if channels > 1:
        notes.append(f"The clip has {channels} channels; they are mixed to mono.")
    if silent:
        warnings.append("The clip is silent; upload or record a clip in which the voice can be heard.")
    else:
        if _db(rms) < QUIET_DBFS:
            warnings.append(f"The clip is very quiet (average level {_db(rms):.0f} dBFS); "
                            "record closer to the microphone or raise the input level.")
        if clipped > CLIPPED_WARN_FRACTION:
            warnings.append(f"{clipped * 100:.1f}% of the samples are clipped, which sounds distorted; "
                            "record again with a lower input level.")
        if active < MIN_ACTIVE_FRACTION:
            warnings.append(f"Only {active * 100:.0f}% of the clip has sound; cut the silence so that "
                            "mostly speech remains.")
    return VoiceReport(duration=duration, sample_rate=sr, channels=channels, peak=peak, rms=rms,
                       clipped_fraction=clipped, active_fraction=active, silent=silent,
                       used_seconds=used_seconds, notes=tuple(notes), warnings=tuple(warnings))
