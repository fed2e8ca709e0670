"""Writing takes, dubbing tracks and batches in the format a creator's editor wants.

Resampling uses soxr (very high quality); loudness is measured with pyloudnorm (ITU-R
BS.1770-4). After normalising, the true peak (estimated on a 4x oversampled copy) is kept
at or below ``peak_dbtp``, so a loud target never clips in a lossy encoder downstream.
Without a target the level is left as made.
Every format goes through libsndfile (soundfile); MP3 and Ogg/Opus need libsndfile 1.1+.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from .errors import InvalidOptionError
from .options import SAMPLE_RATE

# format name -> (libsndfile format, subtype, file suffix)
FORMATS = {
    "wav16": ("WAV", "PCM_16", ".wav"),
    "wav24": ("WAV", "PCM_24", ".wav"),
    "flac": ("FLAC", "PCM_24", ".flac"),
    "mp3": ("MP3", "MPEG_LAYER_III", ".mp3"),
    "opus": ("OGG", "OPUS", ".opus"),
}
SAMPLE_RATES = (22050, 44100, 48000)
# Opus only runs at these rates; libsndfile refuses others.
_OPUS_RATES = (8000, 12000, 16000, 24000, 48000)
LUFS_RANGE = (-40.0, -5.0)


def available_formats() -> list[str]:
    """The formats this machine's libsndfile can write."""
    out = []
    for name, (fmt, subtype, _) in FORMATS.items():
        if fmt in sf.available_formats() and subtype in sf.available_subtypes(fmt):
            out.append(name)
    return out


@dataclass(frozen=True)
class ExportOptions:
    format: str = "wav16"
    sample_rate: int = SAMPLE_RATE
    loudness_lufs: float | None = None  # None: keep the level as made
    peak_dbtp: float = -1.0

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise InvalidOptionError(f"unknown export format {self.format!r}: use one of {', '.join(FORMATS)}")
        if self.format not in available_formats():
            raise InvalidOptionError(f"this machine's libsndfile ({sf.__libsndfile_version__}) cannot write "
                                     f"{self.format}; update libsndfile (soundfile) or pick another format")
        if self.sample_rate not in SAMPLE_RATES:
            raise InvalidOptionError(f"export sample rate must be one of {SAMPLE_RATES}, got {self.sample_rate}")
        if self.format == "opus" and self.sample_rate not in _OPUS_RATES:
            raise InvalidOptionError("Opus is written at 48000 Hz only (of the rates offered); pick 48000")
        if self.loudness_lufs is not None and not (
                isinstance(self.loudness_lufs, int | float) and LUFS_RANGE[0] <= self.loudness_lufs <= LUFS_RANGE[1]):
            raise InvalidOptionError(f"loudness target must be {LUFS_RANGE[0]:g} to {LUFS_RANGE[1]:g} LUFS, "
                                     f"got {self.loudness_lufs}")
        if not (isinstance(self.peak_dbtp, int | float) and -20.0 <= self.peak_dbtp <= 0.0):
            raise InvalidOptionError(f"peak ceiling must be -20 to 0 dBTP, got {self.peak_dbtp}")

    @property
    def suffix(self) -> str:
        return FORMATS[self.format][2]


def resample(audio: np.ndarray, sr: int, new_sr: int) -> np.ndarray:
    if sr == new_sr:
        return np.asarray(audio, np.float32)
    return soxr.resample(np.asarray(audio, np.float32), sr, new_sr, quality="VHQ").astype(np.float32)


def true_peak(audio: np.ndarray, sr: int) -> float:
    """Peak of the signal between samples too, from a 4x oversampled copy (linear, not dB)."""
    if len(audio) == 0:
        return 0.0
    return float(np.max(np.abs(soxr.resample(np.asarray(audio, np.float64), sr, sr * 4, quality="VHQ"))))


def loudness(audio: np.ndarray, sr: int) -> float:
    """Integrated loudness in LUFS; ``-inf`` for silence or a clip shorter than one 400 ms block."""
    import pyloudnorm

    if len(audio) < int(0.4 * sr):
        return -math.inf
    return float(pyloudnorm.Meter(sr).integrated_loudness(np.asarray(audio, np.float64)))


def prepare(audio: np.ndarray, sr: int, options: ExportOptions) -> np.ndarray:
    """Resample; with a loudness target, normalise to it and keep the true peak under the ceiling."""
    out = resample(audio, sr, options.sample_rate)
    sr = options.sample_rate
    if options.loudness_lufs is None:
        # The level stays as made (so a track matches its per-cue files sample for sample);
        # only a resampler's overshoot past full scale is pulled back, since it would clip.
        peak = float(np.max(np.abs(out))) if len(out) else 0.0
        return (out / np.float32(peak) if peak > 1.0 else out).astype(np.float32)
    measured = loudness(out, sr)
    if math.isfinite(measured):
        out = out * np.float32(10 ** ((options.loudness_lufs - measured) / 20))
    ceiling = 10 ** (options.peak_dbtp / 20)
    peak = true_peak(out, sr)
    if peak > ceiling:
        out = out * np.float32(ceiling / peak)
    return out.astype(np.float32)


def write(path: str | Path, audio: np.ndarray, sr: int, options: ExportOptions) -> Path:
    """Write ``audio`` (float32 mono at ``sr``) to ``path`` with the export options; atomic."""
    path = Path(path).with_suffix(options.suffix)
    fmt, subtype, _ = FORMATS[options.format]
    data = prepare(audio, sr, options)
    tmp = path.with_name(path.name + ".part")
    sf.write(str(tmp), data, options.sample_rate, format=fmt, subtype=subtype)
    tmp.replace(path)
    return path
