"""Export: formats, sample rates, loudness within 0.5 LU of the target, true peak under the ceiling."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from indextts_core import export
from indextts_core.errors import InvalidOptionError
from indextts_core.options import SAMPLE_RATE


def _speechlike(seconds=3.0, sr=SAMPLE_RATE):
    t = np.arange(int(seconds * sr)) / sr
    env = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    rng = np.random.default_rng(0)
    return (0.2 * env * (np.sin(2 * np.pi * 220 * t) + 0.3 * rng.standard_normal(len(t)))).astype(np.float32)


@pytest.mark.parametrize("fmt", ["mp3", "flac", "opus"])
def test_mp3_flac_and_opus_at_48k_are_normalised_within_half_a_lu(tmp_path, fmt):
    opts = export.ExportOptions(fmt, 48000, loudness_lufs=-16.0)
    path = export.write(tmp_path / "take", _speechlike(), SAMPLE_RATE, opts)
    assert path.suffix == f".{fmt}"
    data, sr = sf.read(path, dtype="float32")
    assert sr == 48000
    assert abs(len(data) / sr - 3.0) < 0.1  # MP3 frames pad a little
    assert abs(export.loudness(data, sr) - -16.0) <= 0.5


def test_a_loud_target_is_held_under_the_true_peak_ceiling(tmp_path):
    path = export.write(tmp_path / "x", _speechlike(), SAMPLE_RATE, export.ExportOptions("wav24", 44100,
                                                                                         loudness_lufs=-6.0))
    data, sr = sf.read(path, dtype="float32")
    assert sr == 44100 and export.true_peak(data, sr) <= 10 ** (-1 / 20) + 1e-3


def test_wav16_at_the_model_rate_is_the_take_unchanged(tmp_path):
    audio = _speechlike(1.0)
    path = export.write(tmp_path / "x.wav", audio, SAMPLE_RATE, export.ExportOptions())
    data, sr = sf.read(path, dtype="float32")
    assert sr == SAMPLE_RATE and len(data) == len(audio)
    assert np.max(np.abs(data - audio)) < 1 / 32767 * 1.01


def test_without_a_target_a_loud_take_keeps_its_level(tmp_path):
    audio = np.full(2000, 0.99, np.float32) * np.sign(np.sin(np.arange(2000) / 7)).astype(np.float32)
    data = sf.read(export.write(tmp_path / "x", audio, SAMPLE_RATE, export.ExportOptions("wav24")), dtype="float32")[0]
    assert np.max(np.abs(data - audio)) < 1e-6
    louder = export.prepare(audio, SAMPLE_RATE, export.ExportOptions(sample_rate=48000))
    assert np.max(np.abs(louder)) <= 1.0


def test_this_machine_writes_every_format():
    assert export.available_formats() == list(export.FORMATS)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"format": "aac"}, "unknown export format"),
    ({"sample_rate": 16000}, "must be one of"),
    ({"format": "opus", "sample_rate": 44100}, "48000"),
    ({"loudness_lufs": 3.0}, "loudness target must be"),
    ({"peak_dbtp": 1.0}, "peak ceiling"),
])
def test_bad_export_options_are_clear(kwargs, message):
    with pytest.raises(InvalidOptionError, match=message):
        export.ExportOptions(**kwargs)
