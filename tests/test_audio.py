"""Reference-audio front end vs the golden trace: loading, resampling, mel, fbank, w2v-BERT input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from indextts_core import audio
from indextts_core.config import PreprocessParams, SpectParams
from indextts_core.errors import AudioError

from .golden import load_case
from .parity import assert_stage


@pytest.fixture(scope="module")
def spk():
    return load_case("spk_only")


@pytest.fixture(scope="module")
def emo():
    return load_case("emo_audio")


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(a)


def max_diff(x: torch.Tensor, ref: np.ndarray) -> float:
    assert tuple(x.shape) == ref.shape
    return float(np.abs(x.detach().cpu().numpy().astype(np.float64) - ref).max())


# --------------------------------------------------------------------------- loading

def test_speaker_path_matches_golden(spk):
    a22, a16 = audio.load_speaker_audio(spk.speaker_path)
    assert a22.dtype == torch.float32 and a16.dtype == torch.float32
    assert max_diff(a22, spk.trace["A_spk_audio_22k"]) == 0.0  # librosa itself: exact
    assert_stage("A_spk_audio_16k", a16, spk.trace["A_spk_audio_16k"])


def test_emotion_path_matches_golden(spk, emo):
    # spk_only: the speaker file re-read through the emotion path; emo_audio: its own clip.
    # librosa resamples with soxr, whose SIMD paths may differ in the last bits between CPUs.
    assert_stage("A_emo_audio_16k", audio.load_emotion_audio(spk.speaker_path), spk.trace["A_emo_audio_16k"])
    assert_stage("A_emo_audio_16k", audio.load_emotion_audio(emo.emotion_path), emo.trace["A_emo_audio_16k"])


def test_prompts_are_cut_to_15_seconds(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "long.wav"
    sf.write(path, (0.1 * rng.standard_normal(16000 * 17)).astype(np.float32), 16000)
    a22, a16 = audio.load_speaker_audio(path)
    assert a22.shape == (1, 330_750)
    assert a16.shape == (1, math.ceil(330_750 * 320 / 441))
    assert audio.load_emotion_audio(path).shape == (1, 240_000)


def test_recorded_tuple_equals_the_same_audio_read_from_a_file(tmp_path):
    rng = np.random.default_rng(1)
    stereo = (3000 * rng.standard_normal((44100, 2))).astype(np.int16)  # (N, C) as a microphone gives
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo, 44100, subtype="PCM_16")
    for sr in (22050, 16000):
        from_file = audio.load_audio(path, sr)
        assert np.array_equal(audio.load_audio((44100, stereo), sr), from_file)
        assert np.array_equal(audio.load_audio((44100, stereo.T.copy()), sr), from_file)  # (C, N)
    mono = stereo[:, 0].astype(np.float32) / 32768
    assert audio.load_audio((22050, mono), 22050).shape == (44100,)  # same rate: untouched


@pytest.mark.parametrize("name", ["a.flac", "a.ogg", "a.mp3"])
def test_common_formats_load(tmp_path, name):
    rng = np.random.default_rng(2)
    x = (0.2 * rng.standard_normal(8000)).astype(np.float32)
    sf.write(tmp_path / name, x, 8000)
    y = audio.load_audio(tmp_path / name, 16000)
    assert y.dtype == np.float32 and abs(len(y) - 16000) <= 1200  # mp3 adds encoder padding


def test_audio_errors(tmp_path):
    missing = tmp_path / "nope.wav"
    with pytest.raises(AudioError, match=r"nope\.wav"):
        audio.load_audio(missing, 16000)

    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"this is not a RIFF file at all" * 10)
    with pytest.raises(AudioError, match=r"garbage\.wav.*cannot be read"):
        audio.load_audio(garbage, 16000)

    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"empty\.wav.*empty"):
        audio.load_audio(empty, 16000)

    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(16000, dtype=np.float32), 16000)
    with pytest.raises(AudioError, match=r"silent\.wav.*silent"):
        audio.load_speaker_audio(silent)

    with pytest.raises(AudioError, match="empty"):
        audio.load_audio((16000, np.zeros(0, dtype=np.int16)), 16000)
    with pytest.raises(AudioError, match="silent"):
        audio.load_audio((16000, np.zeros(4000, dtype=np.int16)), 16000)


# --------------------------------------------------------------------------- resampling

def test_resample_from_recorded_22k(spk):
    y = audio.resample(t(spk.trace["A_spk_audio_22k"]), 22050, 16000)
    assert_stage("A_spk_audio_16k", y, spk.trace["A_spk_audio_16k"])


@pytest.mark.parametrize(("orig", "new"), [(22050, 16000), (44100, 16000), (16000, 22050), (48000, 22050)])
def test_resample_keeps_a_band_limited_tone(orig, new):
    # A 440 Hz tone resampled must be the same tone sampled at the new rate (away from the edges).
    n = orig  # one second
    x = torch.sin(2 * math.pi * 440 * torch.arange(n, dtype=torch.float64) / orig).float()
    y = audio.resample(x[None], orig, new)[0]
    assert y.shape[0] == math.ceil(n * new / orig)
    ref = torch.sin(2 * math.pi * 440 * torch.arange(y.shape[0], dtype=torch.float64) / new).float()
    core = slice(new // 10, -new // 10)
    assert float((y[core] - ref[core]).abs().max()) < 2e-3
    assert audio.resample(x, orig, orig) is x


def test_resample_length_rounds_like_torchaudio():
    # torchaudio takes ceil() of new·N/orig held in a float32 scalar: for this N the exact
    # value is 160119.0023, which float32 rounds to 160119 (a Python ceil would give 160120).
    n = pow(320, -1, 441) + 441 * 500
    assert audio.resample(torch.zeros(1, n), 22050, 16000).shape == (1, 160_119)
    assert audio.resample(torch.zeros(2, 3, 441), 22050, 16000).shape == (2, 3, 320)


# --------------------------------------------------------------------------- features

def test_ref_mel_matches_golden(spk):
    mel = audio.mel_spectrogram(t(spk.trace["A_spk_audio_22k"]))
    assert mel.shape == (1, 80, spk.trace["A_spk_audio_22k"].shape[1] // 256)
    assert_stage("A_ref_mel", mel, spk.trace["A_ref_mel"])


def test_mel_fmax_follows_the_reference_rule(spk):
    x = t(spk.trace["A_spk_audio_22k"])[:, :22050]
    default = audio.MelSpectrogram()(x)
    released = audio.MelSpectrogram(PreprocessParams(spect_params=SpectParams(fmax="None")))(x)
    other = audio.MelSpectrogram(PreprocessParams(spect_params=SpectParams(fmax=11025)))(x)
    assert torch.equal(default, released)
    assert not torch.equal(default, other)  # infer_v2 turns any other value into 8000 Hz


def test_campplus_fbank_matches_golden(spk):
    fb = audio.kaldi_fbank(t(spk.trace["A_spk_audio_16k"]))
    assert_stage("A_campplus_fbank", fb, spk.trace["A_campplus_fbank"])
    feat = (fb - fb.mean(dim=0, keepdim=True)).unsqueeze(0)
    assert_stage("A_campplus_feat", feat, spk.trace["A_campplus_feat"])


@pytest.mark.parametrize(("case", "prefix"), [("spk_only", "A_spk"), ("spk_only", "A_emo"),
                                              ("emo_audio", "A_emo")])
def test_seamless_features_match_golden(case, prefix):
    tr = load_case(case).trace
    feats, mask = audio.seamless_features(t(tr[f"{prefix}_audio_16k"]))
    assert_stage(f"{prefix}_fe_features", feats, tr[f"{prefix}_fe_features"])
    assert np.array_equal(mask.numpy(), tr[f"{prefix}_fe_mask"])


def test_seamless_odd_frame_count_masks_the_last_pair():
    rng = np.random.default_rng(3)
    for n_frames in (7, 8):
        x = (0.1 * rng.standard_normal(400 + 160 * (n_frames - 1))).astype(np.float32)
        feats, mask = audio.seamless_features(x)
        assert feats.shape == (1, math.ceil(n_frames / 2), 160)
        assert mask.tolist() == [[1] * (n_frames // 2) + [0] * (n_frames % 2)]
        if n_frames % 2:
            assert torch.all(feats[0, -1, 80:] == 1.0)  # the pad frame holds the padding value
