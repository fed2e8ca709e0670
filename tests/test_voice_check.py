"""indextts_core.voice_check: measurements and the sentences it writes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

from indextts_core import AudioError
from indextts_core.voice_check import MODEL_SECONDS, VoiceReport, check_voice, load_clip
from tests.golden import GOLDEN_DIR

SPEAKER = GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav"


def tone(seconds: float, sr: int = 22050, amp: float = 0.3, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = (amp * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return x if channels == 1 else np.stack([x] * channels, axis=1)


def test_real_speech_clip_is_clean() -> None:
    r = check_voice(SPEAKER)
    assert isinstance(r, VoiceReport)
    assert r.sample_rate == 22050 and r.channels == 1
    assert r.duration == pytest.approx(sf.info(str(SPEAKER)).duration)
    assert r.used_seconds == pytest.approx(r.duration)
    assert not r.silent and r.usable and not r.trimmed
    assert 0.0 < r.rms < r.peak <= 1.0
    assert r.clipped_fraction == 0.0
    assert r.warnings == ()


def test_file_and_tuple_give_the_same_numbers() -> None:
    data, sr = sf.read(str(SPEAKER), dtype="int16")
    a = check_voice(SPEAKER)
    b = check_voice((sr, data))
    assert a.peak == pytest.approx(b.peak) and a.rms == pytest.approx(b.rms)
    assert a.duration == pytest.approx(b.duration)


def test_long_clip_is_trimmed_to_model_length(tmp_path) -> None:
    path = tmp_path / "long.wav"
    sf.write(path, tone(20.0), 22050)
    r = check_voice(path)
    assert r.duration == pytest.approx(20.0)
    assert r.used_seconds == pytest.approx(MODEL_SECONDS)
    assert r.trimmed
    assert any("only the first 15 s" in n for n in r.notes)


def test_short_low_rate_stereo_clip() -> None:
    r = check_voice((8000, tone(1.0, sr=8000, channels=2)))
    assert r.channels == 2 and r.sample_rate == 8000
    assert any("too short" in w for w in r.warnings)
    assert any("8000 Hz" in w for w in r.warnings)
    assert any("2 channels" in n for n in r.notes)


def test_silent_clip() -> None:
    r = check_voice((22050, np.zeros(22050 * 6, dtype=np.int16)))
    assert r.silent and not r.usable
    assert r.peak == 0.0 and r.rms_db == -math.inf
    assert any("silent" in w for w in r.warnings)


def test_clipped_clip() -> None:
    x = np.clip(tone(6.0, amp=3.0), -1.0, 1.0)
    r = check_voice((22050, x))
    assert r.clipped_fraction > 0.1
    assert any("clipped" in w for w in r.warnings)


def test_quiet_and_mostly_silent_clip() -> None:
    x = np.zeros(22050 * 10, dtype=np.float32)
    x[:22050] = tone(1.0, amp=0.005)
    r = check_voice((22050, x))
    assert not r.silent
    assert any("very quiet" in w for w in r.warnings)
    assert any("has sound" in w for w in r.warnings)
    assert r.active_fraction < 0.3


def test_flac_and_ogg_are_read(tmp_path) -> None:
    for ext in ("flac", "ogg"):
        path = tmp_path / f"voice.{ext}"
        sf.write(path, tone(6.0), 22050)
        r = check_voice(path)
        assert r.duration == pytest.approx(6.0, abs=0.01)
        assert not r.silent


def test_channels_first_arrays_are_understood() -> None:
    audio, sr = load_clip((16000, tone(6.0, sr=16000, channels=2).T.copy()))
    assert audio.shape == (96000, 2) and sr == 16000


@pytest.mark.parametrize("source, needle", [
    ("/nonexistent/voice.wav", "not found"),
    ((22050, np.zeros(0, dtype=np.float32)), "empty"),
    ((0, np.zeros(10, dtype=np.float32)), "sample rate"),
    ((22050, np.array([0.1, np.nan], dtype=np.float32)), "invalid samples"),
])
def test_unusable_inputs_raise_audio_error(source, needle) -> None:
    with pytest.raises(AudioError, match=needle):
        check_voice(source)


def test_undecodable_file_says_what_to_do(tmp_path) -> None:
    path = tmp_path / "voice.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A not really audio")
    with pytest.raises(AudioError, match="convert"):
        check_voice(path)


@pytest.mark.parametrize("ffmpeg, advice", [("/usr/bin/ffmpeg", "ffmpeg cannot decode either"),
                                            (None, "install ffmpeg")])
def test_ffmpeg_is_advised_only_when_missing(tmp_path, monkeypatch, ffmpeg, advice) -> None:
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: ffmpeg if name == "ffmpeg" else None)
    path = tmp_path / "voice.m4a"
    path.write_bytes(b"\x00\x00\x00\x18ftypM4A not really audio")
    with pytest.raises(AudioError, match=advice):
        check_voice(path)
