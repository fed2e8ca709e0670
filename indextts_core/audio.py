"""Reference-audio front end: loading, resampling and the three spectral features.

Everything here reproduces the numbers of the official IndexTTS-2 pipeline without
torchaudio or transformers:

* :func:`load_audio` is ``librosa.load`` (soxr_hq), so it is bit-exact by construction.
* :func:`resample` is torchaudio's windowed-sinc ``Resample`` (Hann, width 6, rolloff 0.99).
* :func:`mel_spectrogram` is the s2mel / BigVGAN 22.05 kHz log-mel.
* :func:`kaldi_fbank` is Kaldi's ``compute-fbank-feats`` as torchaudio computes it (CAM++ input).
* :func:`seamless_features` is the SeamlessM4T feature extractor (w2v-BERT input).

The two ways the reference loads a prompt (trap 1 of the spec) are
:func:`load_speaker_audio` and :func:`load_emotion_audio`.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .config import PreprocessParams, SpectParams
from .errors import AudioError
from .options import AudioSource

log = logging.getLogger(__name__)

SPEAKER_SR = 22050
EMOTION_SR = 16000
W2V_SR = 16000
MAX_PROMPT_SECONDS = 15
# Peak amplitude below which a prompt counts as silent (-80 dBFS): nothing to clone.
SILENCE_PEAK = 1e-4


# --------------------------------------------------------------------------- loading

def _int_to_float(a: np.ndarray) -> np.ndarray:
    """Integer PCM to float32 in [-1, 1), scaled as libsndfile does when reading files."""
    if a.dtype == np.uint8:
        return ((a.astype(np.float32) - 128.0) / 128.0).astype(np.float32)
    bits = 8 * a.dtype.itemsize
    return (a.astype(np.float32) / np.float32(2 ** (bits - 1))).astype(np.float32)


def array_to_float(sr: int, data: np.ndarray, where: str) -> np.ndarray:
    """A ``(sample_rate, samples)`` pair (e.g. from a microphone widget) as librosa holds it.

    Accepts mono ``(N,)`` or multichannel ``(N, C)`` / ``(C, N)`` (the channel axis is the
    short one), integer PCM or float. Returns float32 ``(N,)`` or ``(C, N)``.
    """
    a = np.asarray(data)
    if a.dtype.kind in "iu":
        a = _int_to_float(a)
    elif a.dtype.kind == "f":
        a = a.astype(np.float32, copy=False)
    else:
        raise AudioError(f"{where}: unsupported sample type {a.dtype}")
    if a.ndim == 2:
        if a.shape[0] > a.shape[1]:
            a = a.T  # (N, C) -> (C, N), librosa's channel-first layout
        if a.shape[0] == 1:
            a = a[0]
    elif a.ndim != 1:
        raise AudioError(f"{where}: expected a 1-D or 2-D sample array, got shape {a.shape}")
    if not isinstance(sr, int | np.integer) or sr <= 0:
        raise AudioError(f"{where}: invalid sample rate {sr!r}")
    return np.ascontiguousarray(a)


def load_audio(source: AudioSource, sr: int) -> np.ndarray:
    """Mono float32 samples of ``source`` at ``sr`` Hz, exactly as ``librosa.load(path, sr=sr)``.

    ``source`` is a file path (wav, flac, ogg, mp3; m4a/aac when an audioread back end such
    as ffmpeg is installed) or a ``(sample_rate, array)`` pair, which is mixed down and
    resampled the same way (soxr "HQ"). Raises :class:`AudioError` for an unreadable,
    empty or silent input, naming it.
    """
    import librosa

    if isinstance(source, tuple):
        where = "recorded audio"
        if len(source) != 2:
            raise AudioError(f"{where}: expected a (sample_rate, samples) pair")
        native_sr, data = source
        y = array_to_float(native_sr, data, where)
        if y.size == 0:
            raise AudioError(f"{where}: the recording is empty")
        if y.ndim > 1:
            y = librosa.to_mono(y)
        y = librosa.resample(y, orig_sr=int(native_sr), target_sr=sr, res_type="soxr_hq")
    else:
        path = Path(source)
        where = str(path)
        if not path.is_file():
            raise AudioError(f"{where}: audio file not found")
        try:
            y, _ = librosa.load(path, sr=sr)
        except Exception as e:  # soundfile, audioread and decoder errors have no common base
            raise AudioError(f"{where}: cannot be read as audio ({type(e).__name__}: {e}). "
                             "Use a wav, flac, ogg or mp3 file.") from e
    y = np.asarray(y, dtype=np.float32)
    if y.size == 0:
        raise AudioError(f"{where}: the audio is empty (no samples)")
    if not np.isfinite(y).all():
        raise AudioError(f"{where}: the audio contains NaN or infinite samples")
    peak = float(np.abs(y).max())
    if peak < SILENCE_PEAK:
        raise AudioError(f"{where}: the audio is silent (peak {peak:.1e}); use a recording of a voice")
    log.debug("%s: %d samples at %d Hz (%.2f s), peak %.3f", where, y.size, sr, y.size / sr, peak)
    return y


def load_speaker_audio(source: AudioSource) -> tuple[Tensor, Tensor]:
    """The speaker prompt as the reference reads it: ``(audio_22k (1, N22), audio_16k (1, N16))``.

    librosa at 22.05 kHz, cut to 15 s (330 750 samples), then the sinc resampler to 16 kHz.
    """
    y = load_audio(source, SPEAKER_SR)[: int(MAX_PROMPT_SECONDS * SPEAKER_SR)]
    audio_22k = torch.from_numpy(y).unsqueeze(0)
    return audio_22k, resample(audio_22k, SPEAKER_SR, W2V_SR)


def load_emotion_audio(source: AudioSource) -> Tensor:
    """The emotion prompt as the reference reads it: librosa straight to 16 kHz, cut to 15 s.

    Returns ``(1, N)`` float32 with N ≤ 240 000. Note this differs numerically from the
    speaker path's 16 kHz audio even for the same file.
    """
    y = load_audio(source, EMOTION_SR)[: int(MAX_PROMPT_SECONDS * EMOTION_SR)]
    return torch.from_numpy(y).unsqueeze(0)


# --------------------------------------------------------------------------- resampling

def _sinc_kernel(orig: int, new: int, zeros: int, rolloff: float) -> tuple[Tensor, int]:
    """Polyphase windowed-sinc filters ``(new, 1, 2·width + orig)`` (float32) and ``width``.

    ``orig``/``new`` are already divided by their gcd. Built in float64 and rounded once,
    with the phase offsets ``j/new`` rounded to float32 first: that is how torchaudio's
    ``transforms.Resample`` builds its kernel, and it changes the last bits.
    """
    cutoff = min(orig, new) * rolloff
    width = math.ceil(zeros * orig / cutoff)
    taps = torch.arange(-width, width + orig, dtype=torch.float64) / orig
    phase = torch.arange(0, -new, -1, dtype=torch.float32) / new
    t = (phase.to(torch.float64)[:, None] + taps[None, :]) * cutoff
    t = t.clamp(-zeros, zeros)  # in units of zero crossings of the sinc
    window = torch.cos(t * math.pi / zeros / 2).square()
    t = t * math.pi
    sinc = torch.where(t == 0, torch.ones((), dtype=t.dtype), torch.sin(t) / t)
    kernel = sinc * (window * (cutoff / orig))
    return kernel.to(torch.float32).unsqueeze(1), width


def resample(x: Tensor, orig_sr: int, new_sr: int, lowpass_filter_width: int = 6,
             rolloff: float = 0.99) -> Tensor:
    """Band-limited resampling of ``x (..., N)`` to ``(..., ceil(N·new/orig))``.

    Same filters and output length as ``torchaudio.transforms.Resample(orig_sr, new_sr)``
    (Hann-windowed sinc), computed with one strided convolution.
    """
    if orig_sr <= 0 or new_sr <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_sr} -> {new_sr}")
    if orig_sr == new_sr:
        return x
    if not x.is_floating_point():
        raise TypeError(f"resample expects a floating-point tensor, got {x.dtype}")
    g = math.gcd(int(orig_sr), int(new_sr))
    orig, new = int(orig_sr) // g, int(new_sr) // g
    kernel, width = _sinc_kernel(orig, new, lowpass_filter_width, float(rolloff))
    shape = x.shape
    n = shape[-1]
    flat = F.pad(x.reshape(-1, 1, n), (width, width + orig))
    y = F.conv1d(flat, kernel.to(device=x.device, dtype=x.dtype), stride=orig)  # (B, new, frames)
    y = y.transpose(1, 2).reshape(flat.shape[0], -1)
    # torchaudio rounds the target length through a float32 scalar before ceil().
    length = math.ceil(float(np.float32(new * n / orig)))
    return y[:, :length].reshape(*shape[:-1], -1)


# --------------------------------------------------------------------------- 22.05 kHz log-mel

def _resolve_fmax(fmax: object) -> float | None:
    # infer_v2 maps a missing fmax or the YAML string "None" (the release's value) to None,
    # i.e. Nyquist, and *any other value* to 8000 Hz, whatever the number written.
    return None if fmax is None or fmax == "None" else 8000.0


def _slaney_mel_basis(sr: int, n_fft: int, n_mels: int, fmin: float, fmax: float | None) -> Tensor:
    import librosa

    return torch.from_numpy(librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax))


class MelSpectrogram:
    """The s2mel log-mel ``(B, N) -> (B, n_mels, N // hop)`` with its filterbank cached per device.

    Reflect-pad ``(n_fft − hop)/2`` on both sides, STFT without centring (periodic Hann),
    magnitude ``sqrt(|X|² + 1e-9)``, librosa's Slaney mel, ``log(max(·, 1e-5))``. Computed in
    float32 whatever the input dtype.
    """

    def __init__(self, params: PreprocessParams | None = None):
        params = params or PreprocessParams()
        sp: SpectParams = params.spect_params
        self.sample_rate = int(params.sr)
        self.n_fft = int(sp.n_fft)
        self.win_length = int(sp.win_length)
        self.hop_length = int(sp.hop_length)
        self.n_mels = int(sp.n_mels)
        self.fmin = float(sp.fmin or 0)
        self.fmax = _resolve_fmax(sp.fmax)
        self._cache: dict[torch.device, tuple[Tensor, Tensor]] = {}

    def _constants(self, device: torch.device) -> tuple[Tensor, Tensor]:
        if device not in self._cache:
            basis = _slaney_mel_basis(self.sample_rate, self.n_fft, self.n_mels, self.fmin, self.fmax)
            window = torch.hann_window(self.win_length, dtype=torch.float32, device=device)
            self._cache[device] = (basis.to(device), window)
        return self._cache[device]

    def __call__(self, x: Tensor) -> Tensor:
        if x.dim() == 1:
            x = x.unsqueeze(0)
        x = x.float()
        basis, window = self._constants(x.device)
        pad = (self.n_fft - self.hop_length) // 2
        x = F.pad(x.unsqueeze(1), (pad, pad), mode="reflect").squeeze(1)
        spec = torch.stft(x, self.n_fft, hop_length=self.hop_length, win_length=self.win_length,
                          window=window, center=False, normalized=False, onesided=True, return_complex=True)
        mag = torch.sqrt(torch.view_as_real(spec).pow(2).sum(-1) + 1e-9)
        return torch.log(torch.clamp(torch.matmul(basis, mag), min=1e-5))


def mel_spectrogram(x: Tensor, params: PreprocessParams | None = None) -> Tensor:
    """One-off :class:`MelSpectrogram`: ``(B, N) -> (B, 80, T)``, T = N // 256 for the release."""
    return MelSpectrogram(params)(x)


# --------------------------------------------------------------------------- Kaldi fbank (CAM++)

def _kaldi_mel(x: Tensor) -> Tensor:
    return 1127.0 * (1.0 + x / 700.0).log()


def _kaldi_mel_banks(num_bins: int, padded: int, sample_rate: float, low: float, high: float) -> Tensor:
    """Kaldi's triangular filters, ``(num_bins, padded // 2 + 1)`` float32, last column zero."""
    nyquist = 0.5 * sample_rate
    if high <= 0.0:
        high += nyquist
    mel_low = 1127.0 * math.log(1.0 + low / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high / 700.0)
    delta = (mel_high - mel_low) / (num_bins + 1)
    k = torch.arange(num_bins).unsqueeze(1)
    left = mel_low + k * delta
    centre = mel_low + (k + 1.0) * delta
    right = mel_low + (k + 2.0) * delta
    mel = _kaldi_mel(sample_rate / padded * torch.arange(padded // 2, dtype=torch.float32)).unsqueeze(0)
    rising = (mel - left) / (centre - left)
    falling = (right - mel) / (right - centre)
    banks = torch.clamp(torch.minimum(rising, falling), min=0.0)
    return F.pad(banks, (0, 1))


def kaldi_fbank(x: Tensor, sample_rate: int = 16000, num_mel_bins: int = 80) -> Tensor:
    """Log mel filterbank energies ``(T, num_mel_bins)`` of ``x (N,)`` or ``(1, N)`` in [-1, 1].

    Kaldi defaults as CAM++ is fed: 25 ms Povey windows every 10 ms (snip edges), per-frame
    DC removal, pre-emphasis 0.97, FFT size rounded up to a power of two, power spectrum,
    filters from 20 Hz to Nyquist, ``log(max(·, float32 eps))``, no dither.
    """
    if x.dim() == 2:
        x = x[0]
    window_size = int(sample_rate * 0.025)
    shift = int(sample_rate * 0.010)
    padded = 1 << (window_size - 1).bit_length()
    n = x.shape[0]
    if n < window_size:
        raise AudioError(f"audio too short for a filterbank: {n} samples < one {window_size}-sample window")
    frames = x.unfold(0, window_size, shift)  # (T, window_size)
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - 0.97 * previous
    window = torch.hann_window(window_size, periodic=False, device=x.device, dtype=x.dtype).pow(0.85)
    frames = F.pad(frames * window, (0, padded - window_size))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    banks = _kaldi_mel_banks(num_mel_bins, padded, float(sample_rate), 20.0, 0.0)
    energies = torch.mm(power, banks.to(device=x.device, dtype=x.dtype).T)
    eps = torch.tensor(torch.finfo(torch.float32).eps, device=x.device, dtype=x.dtype)
    return torch.max(energies, eps).log()


# --------------------------------------------------------------------------- SeamlessM4T features

# facebook/w2v-bert-2.0 preprocessor_config.json: 80 bins, stride 2, padding value 1.
_FE_FRAME, _FE_HOP, _FE_FFT = 400, 160, 512
_FE_BINS, _FE_STRIDE, _FE_PAD_VALUE = 80, 2, 1.0
_FE_MEL_FLOOR = 1.192092955078125e-07
_FE_PREEMPH = 0.97


def _seamless_constants() -> tuple[np.ndarray, np.ndarray]:
    """Povey window (400,) and the Kaldi-mel triangles (257, 80), both float64.

    The triangles are built in the mel domain (``1127·ln(1 + f/700)``) with edges evenly
    spaced between 20 Hz and 8 kHz and no area normalisation.
    """
    window = np.power(np.hanning(_FE_FRAME), 0.85)

    def to_mel(f):
        return 1127.0 * np.log(1.0 + f / 700.0)

    edges = np.linspace(to_mel(20.0), to_mel(W2V_SR // 2), _FE_BINS + 2)
    bins = to_mel(W2V_SR / _FE_FFT * np.arange(_FE_FFT // 2 + 1))[:, None]
    lower, centre, upper = edges[:-2], edges[1:-1], edges[2:]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    filters = np.maximum(np.zeros(1), np.minimum(rising, falling))
    return window, filters


def _seamless_fbank(wave: np.ndarray) -> np.ndarray:
    """Log-mel ``(n_frames, 80)`` float32 of one float32 waveform in [-1, 1] (numpy, float64 inside)."""
    window, filters = _seamless_constants()
    w = (wave * (2 ** 15)).astype(np.float64)  # Kaldi works on the int16 scale
    if w.shape[0] < _FE_FRAME:
        raise AudioError(f"audio too short for w2v-BERT features: {w.shape[0]} samples < {_FE_FRAME}")
    n_frames = 1 + (w.shape[0] - _FE_FRAME) // _FE_HOP
    frames = np.lib.stride_tricks.sliding_window_view(w, _FE_FRAME)[::_FE_HOP][:n_frames]
    frames = frames - frames.mean(axis=1, keepdims=True)
    emphasised = np.empty_like(frames)
    emphasised[:, 1:] = frames[:, 1:] - _FE_PREEMPH * frames[:, :-1]
    emphasised[:, 0] = frames[:, 0] * (1 - _FE_PREEMPH)
    buf = np.zeros((n_frames, _FE_FFT))
    buf[:, :_FE_FRAME] = emphasised * window
    # The reference stores the spectrum as complex64 before taking |X|² in float64.
    spec = np.fft.rfft(buf, axis=1).astype(np.complex64)
    power = np.abs(spec, dtype=np.float64) ** 2
    mel = np.maximum(_FE_MEL_FLOOR, np.dot(filters.T, power.T))
    return np.log(mel).astype(np.float32).T


def seamless_features(x_16k: Tensor | np.ndarray) -> tuple[Tensor, Tensor]:
    """w2v-BERT input: ``(features (1, T, 160) float32, attention_mask (1, T) int32)``.

    ``x_16k`` is ``(N,)`` or ``(1, N)`` at 16 kHz in [-1, 1]. Frames are normalised per mel
    bin over time (ddof 1), padded to an even count with 1.0 and stacked in pairs; when the
    frame count is odd the last stacked frame is masked out. T = ceil(n_frames / 2).
    """
    if isinstance(x_16k, Tensor):
        x_16k = x_16k.detach().cpu().float().numpy()
    wave = np.asarray(x_16k, dtype=np.float32)
    if wave.ndim == 2:
        wave = wave[0]
    feats = _seamless_fbank(wave)
    feats = (feats - feats.mean(0)[None]) / np.sqrt(feats.var(0, ddof=1)[None] + 1e-7)
    n = feats.shape[0]
    n_padded = -(-n // _FE_STRIDE) * _FE_STRIDE
    mask = np.zeros(n_padded, dtype=np.int32)
    mask[:n] = 1
    if n_padded != n:
        pad = np.full((n_padded - n, _FE_BINS), _FE_PAD_VALUE, dtype=feats.dtype)
        feats = np.concatenate([feats, pad], axis=0)
    stacked = feats.reshape(1, n_padded // _FE_STRIDE, _FE_BINS * _FE_STRIDE)
    stacked_mask = mask[_FE_STRIDE - 1 :: _FE_STRIDE][None]
    return torch.from_numpy(np.ascontiguousarray(stacked)), torch.from_numpy(stacked_mask)
