"""Looking inside a synthesis: stage values for the parity tests, wall time per stage.

The pipeline hands a :class:`Recorder` one record per stage (the speaker clip's features, the
emotion, each text segment) as plain dataclasses with the pipeline's own names. The recorder
decides what to keep and under which names: :class:`GoldenRecorder` turns the records into
the ``A_*`` tensors of the golden bundles (``tests/golden.py``), with a ``__segN`` suffix when
the take has several segments, as the bundles store them. The golden names live here alone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .audio import kaldi_fbank

if TYPE_CHECKING:
    from .emotion_text import EmotionAnalysis
    from .models.s2mel import StepCallback
    from .options import SynthesisResult
    from .pipeline import Models


@dataclass(frozen=True)
class VoiceStages:
    """The speaker clip on its way to features (recorded only when a recorder is enabled)."""

    audio_22k: Tensor
    audio_16k: Tensor
    features: Tensor  # SeamlessM4T filter bank input to w2v-BERT
    mask: Tensor
    w2v: Tensor  # (1, T, 1024)
    semantic_codes: Tensor
    semantic_emb: Tensor
    ref_mel: Tensor  # (1, 80, Tr)
    campplus_input: Tensor  # the mean-removed Kaldi filter bank CAMPPlus reads
    style: Tensor  # (1, 192)
    prompt_condition: Tensor
    latent: Tensor  # (1, 32, D) GPT speaker latents


@dataclass(frozen=True)
class EmotionClipStages:
    """An emotion reference clip (or the speaker clip) through the emotion path."""

    audio_16k: Tensor
    features: Tensor
    mask: Tensor
    w2v: Tensor


@dataclass(frozen=True)
class EmotionStages:
    """The emotion of a take: the vector fed to the GPT and how it was made."""

    used: Tensor  # (1, D) what the GPT is conditioned on
    merged: Tensor  # (1, D) speaker emotion blended with the emotion clip's
    clip_emovec: Tensor  # (1, D) from the emotion reference (or the speaker clip's emotion path)
    speaker_emovec: Tensor  # (1, D) from the speaker features
    weights: tuple[float, ...] | None = None  # the 8 intensities, in the vector and text modes
    matrix_rows: tuple[int, ...] | None = None  # reference speakers chosen per emotion
    matrix_blend: Tensor | None = None  # their emotion vectors, weighted


@dataclass(frozen=True)
class SegmentStages:
    """One text segment from token ids to waveform."""

    index: int
    text_ids: Tensor  # (1, N) int32
    conditioning: Tensor  # GPT conditioning (speaker latents and emotion)
    codes_raw: Tensor  # as sampled, stop code included
    codes: Tensor  # (1, M) what the decoder uses
    stopped: bool  # the GPT ended by itself, not at the code limit
    latent: Tensor  # teacher-forced GPT latent
    code_emb: Tensor  # semantic codec embedding of the codes
    condition: Tensor  # length-regulated target condition
    noise: Tensor  # flow-matching start, prompt frames included
    mel: Tensor  # (1, 80, frames)
    wav: np.ndarray  # float32 samples


class Recorder:
    """Receives a synthesis's stage records; this base records nothing.

    ``enabled`` False lets the pipeline skip work done only for a recorder (recomputing a
    cached voice's stages, keeping the emotion model's logits). Override the hooks you need.
    """

    enabled = False

    def begin(self, num_segments: int, models: Models) -> None:
        """Called once, before any stage, with the number of text segments."""

    def voice(self, stages: VoiceStages) -> None:
        """The speaker clip's features."""

    def emotion_text(self, analysis: EmotionAnalysis) -> None:
        """The emotion model's reading of a description (``text`` emotion mode)."""

    def emotion_clip(self, stages: EmotionClipStages) -> None:
        """The clip read through the emotion path."""

    def emotion(self, stages: EmotionStages) -> None:
        """The take's emotion vector."""

    def diffusion_hook(self, segment: int) -> StepCallback | None:
        """A callback for segment ``segment``'s flow-matching steps, or ``None`` for none."""
        return None

    def segment(self, stages: SegmentStages) -> None:
        """One segment, finished."""

    def end(self, result: SynthesisResult) -> None:
        """The whole take."""


NullRecorder = Recorder


def _array(value: Tensor | np.ndarray) -> np.ndarray:
    if isinstance(value, Tensor):
        value = value.detach()
        return value.float().cpu().numpy() if value.is_floating_point() else value.cpu().numpy()
    return np.asarray(value)


class GoldenRecorder(Recorder):
    """Keeps every stage under its golden name, as float32/int NumPy arrays on the CPU."""

    enabled = True

    def __init__(self) -> None:
        self.tensors: dict[str, np.ndarray] = {}
        self._multi = False
        self._models: Models | None = None
        self._voice: VoiceStages | None = None
        self._emotion: EmotionStages | None = None

    def _put(self, name: str, value: Tensor | np.ndarray, segment: int | None = None) -> None:
        key = f"{name}__seg{segment}" if self._multi and segment is not None else name
        self.tensors[key] = _array(value)

    def begin(self, num_segments: int, models: Models) -> None:
        self._multi = num_segments > 1
        self._models = models

    def voice(self, s: VoiceStages) -> None:
        self._voice = s
        for name, value in (("A_spk_audio_22k", s.audio_22k), ("A_spk_audio_16k", s.audio_16k),
                            ("A_spk_fe_features", s.features), ("A_spk_fe_mask", s.mask),
                            ("A_spk_w2v_feat", s.w2v), ("A_ref_semantic_codes", s.semantic_codes),
                            ("A_ref_semantic_emb", s.semantic_emb), ("A_ref_mel", s.ref_mel),
                            ("A_campplus_feat", s.campplus_input),
                            ("A_style", s.style), ("A_prompt_condition", s.prompt_condition)):
            self._put(name, value)
        # The filter bank before its mean is removed, recomputed as the pipeline computed it.
        self._put("A_campplus_fbank", kaldi_fbank(s.audio_16k.to(s.campplus_input.device)))

    def emotion_text(self, analysis: EmotionAnalysis) -> None:
        self._put("A_qwen_input_ids", analysis.input_ids)
        self._put("A_qwen_generated_ids", analysis.generated_ids)
        if analysis.step_logits is not None:
            self._put("A_qwen_step_logits", analysis.step_logits)
        self._put("A_qwen_emotion_vector", np.asarray(analysis.vector, dtype=np.float64))

    def emotion_clip(self, s: EmotionClipStages) -> None:
        for name, value in (("A_emo_audio_16k", s.audio_16k), ("A_emo_fe_features", s.features),
                            ("A_emo_fe_mask", s.mask), ("A_emo_w2v_feat", s.w2v)):
            self._put(name, value)

    def emotion(self, s: EmotionStages) -> None:
        self._emotion = s
        if s.weights is not None:
            self._put("A_emo_weight_vector", np.asarray(s.weights, dtype=np.float32))
        if s.matrix_rows is not None and s.matrix_blend is not None:
            self._put("A_emo_matrix_index", np.asarray(s.matrix_rows, dtype=np.int64))
            self._put("A_emovec_mat", s.matrix_blend)

    def diffusion_hook(self, segment: int) -> StepCallback:
        def first_step(k: int, v: Tensor) -> None:
            if k == 0:
                self._put("A_dit_step0_out", v, segment)

        return first_step

    def segment(self, s: SegmentStages) -> None:
        assert self._models is not None and self._voice is not None and self._emotion is not None, \
            "begin, voice and emotion come before the segments"
        i, m, emo = s.index, self._models, self._emotion
        # The reference recomputes the emotion vectors per segment; they are the same every time.
        for name, value in (("A_emo_vec_from_emo_audio", emo.clip_emovec),
                            ("A_emo_vec_from_spk_audio", emo.speaker_emovec),
                            ("A_emovec_merged", emo.merged), ("A_emovec_used", emo.used),
                            ("A_text_ids", s.text_ids), ("A_spk_cond_latent", self._voice.latent),
                            ("A_codes_raw", s.codes_raw), ("A_codes", s.codes), ("A_gpt_latent", s.latent),
                            ("A_s2mel_vq2emb", s.code_emb), ("A_lr_out", s.condition),
                            ("A_cfm_noise", s.noise), ("A_mel", s.mel), ("A_wav", s.wav[None, None])):
            self._put(name, value, i)
        with torch.inference_mode():  # values the pipeline has no use for
            self._put("A_gpt_prefix_embeds", m.gpt.prefix_embeddings(s.conditioning, s.text_ids), i)
            self._put("A_s2mel_gpt_layer_out", m.s2mel.gpt_layer(s.latent), i)
        # The sampler keeps the prompt frames at zero; the reference's mel includes them.
        prompt = s.mel.new_zeros(1, s.mel.shape[1], self._voice.ref_mel.shape[-1])
        self._put("A_mel_full", torch.cat([prompt, s.mel], -1), i)

    def end(self, result: SynthesisResult) -> None:
        self._put("A_wav_int16", result.to_int16())


class StageTimer:
    """Per-stage wall time, synchronised with the device so GPU work is counted where it runs."""

    def __init__(self, device: torch.device):
        self.device = device
        self.seconds: dict[str, float] = {}

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        self._sync()
        start = time.perf_counter()
        try:
            yield
        finally:
            self._sync()
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start
