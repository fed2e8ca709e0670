"""IndexTTS-2 synthesis, top to bottom.

The data flow (fact sheet §0), one call of :meth:`IndexTTS2.synthesize`:

1. text → normalised text → BPE pieces → segments of at most ``segment_tokens`` pieces;
2. voice clip → (22.05 kHz and 16 kHz audio) → w2v-BERT features, semantic embedding,
   reference mel, CAMPPlus style, prompt condition, GPT speaker latents  [cached per clip];
3. emotion → one emotion vector (from the voice, another clip, 8 values or a description);
4. per segment: GPT → codes → teacher-forced latent; s2mel → mel; BigVGAN → waveform;
5. segments joined with silent gaps → float32 audio at 22 050 Hz.

Randomness: the GPT samples with a ``torch.Generator`` on the model's device seeded with
``seed``; the flow-matching noise of segment ``i`` is drawn on the CPU from ``seed + 1 + i``
(so the same seed gives the same mel on any device).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from . import layout
from .audio import MelSpectrogram, kaldi_fbank, load_emotion_audio, load_speaker_audio, seamless_features
from .config import IndexTTSConfig, load_config
from .device import resolve_device, resolve_dtype
from .duration import DurationPlan, plan
from .emotion import (
    QwenEmotion,
    blend_emotion_matrix,
    load_emotion_matrices,
    normalize_emotion_vector,
    scale_emotion_vector,
    select_matrix_rows,
)
from .errors import InvalidOptionError
from .files import sha256_file
from .generate import generate, max_codes
from .models.bigvgan import BigVGAN, load_bigvgan
from .models.campplus import CAMPPlus, load_campplus
from .models.codec import SemanticCodec, load_semantic_codec
from .models.gpt import UnifiedVoice, load_gpt
from .models.s2mel import S2Mel, load_s2mel
from .models.w2vbert import W2VBert, load_w2vbert
from .options import (
    EMOTIONS,
    SAMPLE_RATE,
    AudioSource,
    Emotion,
    SegmentAudio,
    SegmentInfo,
    SynthesisOptions,
    SynthesisResult,
)
from .text import TextFrontend, TextPreview
from .tiny import is_test_model
from .trace import NullRecorder, Recorder, StageTimer, record_all

log = logging.getLogger(__name__)

VOICE_CACHE_SIZE = 8


@dataclass
class Models:
    """The loaded networks and tables of one IndexTTS-2 checkpoint."""

    w2vbert: W2VBert
    codec: SemanticCodec
    campplus: CAMPPlus
    gpt: UnifiedVoice
    s2mel: S2Mel
    vocoder: BigVGAN
    spk_matrix: Tensor  # (73, 192) reference speakers' CAMPPlus styles
    emo_matrix: Tensor  # (73, 1280) their emotion vectors


@dataclass
class VoiceFeatures:
    """Everything the speaker clip contributes, computed once per clip."""

    cond_emb: Tensor  # (1, T, 1024) w2v-BERT features of the 16 kHz speaker audio
    ref_mel: Tensor  # (1, 80, Tr)
    style: Tensor  # (1, 192)
    prompt_condition: Tensor  # (1, Tr, C)
    latent: Tensor  # (1, 32, D) GPT speaker latents
    emovec: Tensor  # (1, D) the emotion vector of the speaker features
    trace: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class EmotionAudioFeatures:
    """An emotion reference (the speaker clip through the emotion path, or another clip)."""

    emovec: Tensor  # (1, D)
    trace: dict[str, Tensor] = field(default_factory=dict)


@dataclass
class EmotionState:
    """The emotion of a take: the vector fed to the GPT and how it was made."""

    emovec: Tensor  # (1, D) what the GPT is conditioned on
    merged: Tensor  # (1, D) speaker emotion blended with the emotion clip's
    clip_emovec: Tensor  # (1, D) from the emotion reference (or the speaker clip's emotion path)
    speaker_emovec: Tensor  # (1, D) from the speaker features
    weights: list[float] | None = None  # the 8 intensities, in the vector and text modes


class Synthesis(Iterator[SegmentAudio]):
    """A running synthesis: iterate for each segment's audio; ``result`` holds the whole take after."""

    def __init__(self, run: Generator[SegmentAudio, None, SynthesisResult]):
        self._run = run
        self.result: SynthesisResult | None = None

    def __iter__(self) -> Synthesis:
        return self

    def __next__(self) -> SegmentAudio:
        try:
            return next(self._run)
        except StopIteration as stop:
            self.result = stop.value
            raise

    def run(self) -> SynthesisResult:
        for _ in self:
            pass
        assert self.result is not None
        return self.result


def _source_key(source: AudioSource) -> str:
    """A content hash of a clip, so the same voice is recognised under any file name."""
    if isinstance(source, tuple):
        rate, data = source
        arr = np.ascontiguousarray(np.asarray(data))
        h = hashlib.sha256(f"array|{rate}|{arr.dtype}|{arr.shape}|".encode())
        h.update(arr.tobytes())
        return h.hexdigest()
    try:
        return "file|" + sha256_file(source)
    except OSError:
        return "path|" + str(source)  # the loader reports the real problem


class IndexTTS2:
    """IndexTTS-2 inference on one device. Not thread-safe for concurrent calls: it serialises them."""

    def __init__(self, config: IndexTTSConfig, models: Models, text: TextFrontend, *,
                 device: torch.device, dtype: torch.dtype, model_dir: Path | None = None,
                 emotion_model: QwenEmotion | None = None, download: bool = False):
        self.config = config
        self.models = models
        self.text = text
        self.device = device
        self.dtype = dtype
        self.model_dir = model_dir
        self.is_test_model = bool(model_dir and is_test_model(model_dir))
        self.sample_rate = SAMPLE_RATE
        self._emotion_model = emotion_model
        self._download = download  # may fetch the optional emotion-from-text model on first use
        self._mel = MelSpectrogram(config.s2mel.preprocess_params)
        self._voices: OrderedDict[str, VoiceFeatures] = OrderedDict()
        self._emotion_clips: OrderedDict[str, EmotionAudioFeatures] = OrderedDict()
        self._lock = threading.RLock()

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, model_dir: str | Path | None = None, *, device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = None, download: bool = True,
                        progress: Callable | None = None) -> IndexTTS2:
        """Load a checkpoint folder in the official layout, downloading missing files first.

        ``model_dir=None`` is :func:`indextts_core.download.default_model_dir`. ``dtype`` sets
        the GPT and its conditioners (``None``/``"auto"``: float16 on GPUs, float32 on the CPU);
        the encoders, s2mel and the vocoder always run in float32, as in the reference.
        """
        from .download import default_model_dir, ensure_model

        model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        ensure_model(model_dir, ("core",), progress=progress, offline=None if download else True)
        dev = resolve_device(device)
        gpt_dtype = resolve_dtype(dtype, dev)
        cfg = load_config(model_dir / layout.CONFIG)
        log.info("loading IndexTTS-2 from %s on %s (%s)", model_dir, dev, gpt_dtype)
        spk_matrix, emo_matrix = load_emotion_matrices(model_dir, cfg, device=dev)
        models = Models(
            w2vbert=load_w2vbert(model_dir, dev),
            codec=load_semantic_codec(model_dir / layout.CODEC, cfg.semantic_codec, dev),
            campplus=load_campplus(model_dir / layout.CAMPPLUS, dev),
            gpt=load_gpt(model_dir / cfg.gpt_checkpoint, cfg.gpt, dev, gpt_dtype),
            s2mel=load_s2mel(model_dir / cfg.s2mel_checkpoint, cfg.s2mel, dev),
            vocoder=load_bigvgan(model_dir / layout.BIGVGAN_DIR, dev),
            spk_matrix=spk_matrix, emo_matrix=emo_matrix)
        text = TextFrontend.from_model_dir(model_dir)
        qwen = QwenEmotion(model_dir / cfg.qwen_emo_path, device=dev)
        return cls(cfg, models, text, device=dev, dtype=gpt_dtype, model_dir=model_dir, emotion_model=qwen,
                   download=download)

    # -- public API ------------------------------------------------------------------------------

    def preview_text(self, text: str, segment_tokens: int = 120) -> TextPreview:
        """How ``text`` will be read: normalised text, BPE pieces and ids, segments."""
        self._check_segment_tokens(segment_tokens)
        return self.text.preview(text, segment_tokens)

    def analyze_emotion_text(self, text: str, max_tokens: int | None = None) -> dict[str, float]:
        """The 8 emotion intensities the Qwen emotion model reads from ``text``."""
        with self._lock:
            analysis = self._require_emotion_model().analyze(text, max_new_tokens=max_tokens)
        return dict(zip(EMOTIONS, analysis.vector, strict=True))

    def unload_emotion_model(self) -> None:
        if self._emotion_model is not None:
            with self._lock:
                self._emotion_model.unload()

    def synthesize(self, text: str, voice: AudioSource, options: SynthesisOptions | None = None, *,
                   recorder: Recorder | None = None) -> SynthesisResult:
        """Speak ``text`` in the voice of the clip ``voice`` (a path or ``(rate, samples)``).

        ``options`` (default :class:`SynthesisOptions()`): emotion, length, sampling, seed and the
        rest; ``recorder`` receives the stage tensors (see :mod:`indextts_core.trace`).
        """
        return self.stream(text, voice, options, recorder=recorder).run()

    def stream(self, text: str, voice: AudioSource, options: SynthesisOptions | None = None, *,
               recorder: Recorder | None = None) -> Synthesis:
        """Like :meth:`synthesize`, yielding each segment's audio as soon as it exists.

        Nothing runs until the first ``next``; the returned :class:`Synthesis` holds the whole
        take in ``result`` once iterated to the end.
        """
        options = SynthesisOptions() if options is None else options
        if not isinstance(options, SynthesisOptions):
            raise InvalidOptionError(f"options must be a SynthesisOptions, got {type(options).__name__}")
        self._check_segment_tokens(options.segment_tokens)
        if options.seed is None:
            options = options.replace(seed=secrets.randbelow(2**31))
        return Synthesis(self._run(text, voice, options, recorder or NullRecorder()))

    def memory_info(self) -> dict:
        info: dict = {"device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""),
                      "allocated_mb": None, "reserved_mb": None}
        if self.device.type == "cuda":
            info["allocated_mb"] = torch.cuda.memory_allocated(self.device) / 2**20
            info["reserved_mb"] = torch.cuda.memory_reserved(self.device) / 2**20
        elif self.device.type == "mps":
            info["allocated_mb"] = torch.mps.current_allocated_memory() / 2**20
        return info

    def close(self) -> None:
        """Free every model; the object cannot synthesise afterwards."""
        with self._lock:
            self.unload_emotion_model()
            self._voices.clear()
            self._emotion_clips.clear()
            self.models = None  # type: ignore[assignment]
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    # -- the pipeline --------------------------------------------------------------------------

    def _run(self, text: str, speaker: AudioSource, options: SynthesisOptions,
             trace: Recorder) -> Generator[SegmentAudio, None, SynthesisResult]:
        sampling, seed = options.sampling, options.seed
        assert seed is not None
        duration = None if options.duration.mode == "free" else options.duration
        with self._lock:
            if self.models is None:
                raise InvalidOptionError("this engine was closed; load the models again")
            stages = StageTimer(self.device)
            start = time.perf_counter()

            with stages("text"):
                preview = self.text.preview(text, options.segment_tokens)
            trace.begin(len(preview.segments))
            gpt = self.models.gpt
            limit = min(sampling.max_mel_tokens, max_codes(gpt))
            if limit < sampling.max_mel_tokens:
                log.info("max mel tokens lowered from %d to the model's %d", sampling.max_mel_tokens, limit)
            targets = plan(duration, [len(s) for s in preview.segment_ids], gap_ms=options.gap_ms, max_codes=limit)

            with stages("voice"):
                voice = self._voice(speaker, fresh=trace.enabled)
            record_all(trace, voice.trace)
            with stages("emotion"):
                emo = self._emotion(options.emotion, text, speaker, voice, seed, trace)

            gap = np.zeros(targets.gap_samples, dtype=np.float32)
            pieces: list[np.ndarray] = []
            infos: list[SegmentInfo] = []
            for i, ids in enumerate(preview.segment_ids):
                wav, info = self._segment(i, ids, preview, voice, emo, targets, options, limit, stages, trace)
                last = i == len(preview.segment_ids) - 1
                if last and targets.total_samples is not None:
                    wav = self._trim_to(wav, targets, pieces, len(gap))
                    info = SegmentInfo(**{**info.__dict__, "num_samples": len(wav)})
                chunk = wav if i == 0 else np.concatenate([gap, wav])
                pieces.append(chunk)
                infos.append(info)
                yield SegmentAudio(index=i, audio=chunk, sample_rate=SAMPLE_RATE, info=info, is_last=last)

            audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
            stages.seconds["total"] = time.perf_counter() - start
            result = SynthesisResult(audio=audio, sample_rate=SAMPLE_RATE, segments=infos,
                                     timings=dict(stages.seconds), seed=seed,
                                     requested_seconds=targets.requested_seconds,
                                     emotion_vector=tuple(emo.weights) if emo.weights is not None else None,
                                     is_test_model=self.is_test_model)
            if trace.enabled:
                trace.put("A_wav_int16", result.to_int16())
            log.info("synthesised %.2f s in %.2f s (RTF %.3f)", result.seconds, stages.seconds["total"], result.rtf)
            return result

    @staticmethod
    def _trim_to(wav: np.ndarray, targets: DurationPlan, before: list[np.ndarray], gap: int) -> np.ndarray:
        """Cut the last segment so the whole take has exactly the requested sample count."""
        have = sum(len(p) for p in before) + (gap if before else 0)
        want = targets.total_samples - have
        if want > len(wav) or want < 0:
            raise RuntimeError(f"duration plan produced {have + len(wav)} samples for a "
                               f"{targets.total_samples}-sample target")
        return wav[:want]

    def _segment(self, i: int, ids: list[int], preview: TextPreview, voice: VoiceFeatures, emo: EmotionState,
                 targets: DurationPlan, options: SynthesisOptions, limit: int, stages: StageTimer,
                 trace: Recorder) -> tuple[np.ndarray, SegmentInfo]:
        m = self.models
        seed = options.seed
        assert seed is not None
        dev = self.device
        target = targets.segments[i]
        text_ids = torch.tensor([ids], dtype=torch.int32, device=dev)
        trace.put("A_text_ids", text_ids, i)
        with torch.inference_mode():
            # The reference recomputes these per segment; they are the same every time.
            trace.put("A_emo_vec_from_emo_audio", emo.clip_emovec, i)
            trace.put("A_emo_vec_from_spk_audio", emo.speaker_emovec, i)
            trace.put("A_emovec_merged", emo.merged, i)
            trace.put("A_emovec_used", emo.emovec, i)
            with stages("gpt_generate"):
                conds = m.gpt.conditioning(voice.latent, emo.emovec)
                trace.put("A_spk_cond_latent", voice.latent, i)
                if trace.enabled:
                    trace.put("A_gpt_prefix_embeds", m.gpt.prefix_embeddings(conds, text_ids), i)
                generator = torch.Generator(device=dev).manual_seed(seed + i)
                # At least one code: the reference has no path for an empty segment.
                out = generate(m.gpt, conds, text_ids, options.sampling, generator=generator,
                               min_new_tokens=max(1, target.min_codes or 0),
                               max_new_tokens=min(limit, target.max_codes or limit))
            codes = out.codes.to(dev)
            trace.put("A_codes_raw", out.codes_raw, i)
            trace.put("A_codes", codes, i)
            with stages("gpt_latent"):
                latent = m.gpt.latent(conds, text_ids, codes).float()
            trace.put("A_gpt_latent", latent, i)

            with stages("s2mel"):
                frames = targets.frames_for(i, codes.shape[1])
                code_emb = m.codec.vq2emb(codes)
                if trace.enabled:
                    trace.put("A_s2mel_gpt_layer_out", m.s2mel.gpt_layer(latent), i)
                    trace.put("A_s2mel_vq2emb", code_emb, i)
                cond = m.s2mel.target_condition(latent, code_emb, frames)
                trace.put("A_lr_out", cond, i)
                total = voice.prompt_condition.shape[1] + frames
                noise = torch.randn((1, 80, total), generator=torch.Generator("cpu").manual_seed(seed + 1 + i))
                trace.put("A_cfm_noise", noise, i)

                def first_step(k: int, v: Tensor) -> None:
                    if k == 0:
                        trace.put("A_dit_step0_out", v, i)

                mel = m.s2mel.generate_mel(voice.prompt_condition, cond, voice.ref_mel, voice.style, noise.to(dev),
                                           steps=options.diffusion_steps, cfg_rate=float(options.cfg_rate),
                                           on_step=first_step if trace.enabled else None)
            if trace.enabled:  # the sampler keeps the prompt frames at zero
                prompt = mel.new_zeros(1, mel.shape[1], voice.ref_mel.shape[-1])
                trace.put("A_mel_full", torch.cat([prompt, mel], -1), i)
            trace.put("A_mel", mel, i)
            with stages("vocoder"):
                wav = m.vocoder(mel)[0, 0].float().cpu().numpy()
            trace.put("A_wav", wav[None, None], i)
        info = SegmentInfo(index=i, text="".join(preview.segments[i]).replace("▁", " ").strip(),
                           num_tokens=len(ids), num_codes=int(codes.shape[1]), stopped_naturally=out.stopped,
                           num_samples=len(wav))
        return wav, info

    # -- voice and emotion features -----------------------------------------------------------

    def _voice(self, source: AudioSource, fresh: bool = False) -> VoiceFeatures:
        key = _source_key(source)
        if not fresh and key in self._voices:
            self._voices.move_to_end(key)
            return self._voices[key]
        m = self.models
        dev = self.device
        audio_22k, audio_16k = load_speaker_audio(source)
        with torch.inference_mode():
            features, mask = seamless_features(audio_16k)
            cond_emb = m.w2vbert(features.to(dev), mask.to(dev))
            codes, s_ref = m.codec.quantize(cond_emb)
            ref_mel = self._mel(audio_22k.to(dev).float())
            fbank = kaldi_fbank(audio_16k.to(dev))
            feat = (fbank - fbank.mean(dim=0, keepdim=True))[None]
            style = m.campplus(feat)
            prompt_condition = m.s2mel.prompt_condition(s_ref, ref_mel.shape[-1])
            gpt_in = cond_emb.to(self.dtype)
            latent = m.gpt.get_conditioning(gpt_in)
            emovec = m.gpt.get_emovec(gpt_in)
        voice = VoiceFeatures(cond_emb=cond_emb, ref_mel=ref_mel, style=style, prompt_condition=prompt_condition,
                              latent=latent, emovec=emovec)
        if fresh:
            voice.trace = {"A_spk_audio_22k": audio_22k, "A_spk_audio_16k": audio_16k,
                           "A_spk_fe_features": features, "A_spk_fe_mask": mask, "A_spk_w2v_feat": cond_emb,
                           "A_ref_semantic_codes": codes, "A_ref_semantic_emb": s_ref, "A_ref_mel": ref_mel,
                           "A_campplus_fbank": fbank, "A_campplus_feat": feat, "A_style": style,
                           "A_prompt_condition": prompt_condition}
        self._remember(self._voices, key, voice)
        return voice

    def _emotion_clip(self, source: AudioSource, fresh: bool = False) -> EmotionAudioFeatures:
        key = _source_key(source)
        if not fresh and key in self._emotion_clips:
            self._emotion_clips.move_to_end(key)
            return self._emotion_clips[key]
        m = self.models
        audio = load_emotion_audio(source)
        with torch.inference_mode():
            features, mask = seamless_features(audio)
            cond_emb = m.w2vbert(features.to(self.device), mask.to(self.device))
            emovec = m.gpt.get_emovec(cond_emb.to(self.dtype))
        clip = EmotionAudioFeatures(emovec=emovec)
        if fresh:
            clip.trace = {"A_emo_audio_16k": audio, "A_emo_fe_features": features, "A_emo_fe_mask": mask,
                          "A_emo_w2v_feat": cond_emb}
        self._remember(self._emotion_clips, key, clip)
        return clip

    @staticmethod
    def _remember(cache: OrderedDict, key: str, value) -> None:
        cache[key] = value
        cache.move_to_end(key)
        while len(cache) > VOICE_CACHE_SIZE:
            cache.popitem(last=False)

    def _emotion(self, emotion: Emotion, text: str, speaker: AudioSource, voice: VoiceFeatures, seed: int,
                 trace: Recorder) -> EmotionState:
        weights: list[float] | None = None
        if emotion.mode in ("vector", "text"):
            if emotion.mode == "text":
                analysis = self._require_emotion_model().analyze(
                    emotion.text or text, max_new_tokens=emotion.text_max_tokens, keep_logits=trace.enabled)
                values = analysis.vector
                record_all(trace, {"A_qwen_input_ids": analysis.input_ids,
                                   "A_qwen_generated_ids": analysis.generated_ids})
                if analysis.step_logits is not None:
                    trace.put("A_qwen_step_logits", analysis.step_logits)
                trace.put("A_qwen_emotion_vector", np.asarray(values, dtype=np.float64))
            else:
                values = list(emotion.vector)
                if emotion.apply_ui_bias:
                    values = normalize_emotion_vector(values)
            weights = scale_emotion_vector(values, emotion.weight)
            trace.put("A_emo_weight_vector", np.asarray(weights, dtype=np.float32))

        # The reference blends the emotion clip into the speaker's own emotion by alpha; without
        # an emotion clip it re-reads the speaker clip through the emotion path with alpha 1.
        use_clip = emotion.mode == "audio"
        clip = self._emotion_clip(emotion.audio if use_clip else speaker, fresh=trace.enabled)
        record_all(trace, clip.trace)
        alpha = emotion.weight if use_clip else 1.0
        merged = voice.emovec + alpha * (clip.emovec - voice.emovec)
        state = EmotionState(emovec=merged, merged=merged, clip_emovec=clip.emovec,
                             speaker_emovec=voice.emovec, weights=weights)
        if weights is None:
            return state

        m = self.models
        rng = torch.Generator("cpu").manual_seed(seed)
        rows = select_matrix_rows(voice.style, m.spk_matrix, self.config.emo_num, use_random=emotion.use_random,
                                  generator=rng)
        emovec, emovec_mat = blend_emotion_matrix(weights, rows, m.emo_matrix, self.config.emo_num,
                                                  merged.float())
        trace.put("A_emo_matrix_index", np.asarray(rows, dtype=np.int64))
        trace.put("A_emovec_mat", emovec_mat)
        state.emovec = emovec.to(merged.dtype)
        return state

    def _require_emotion_model(self) -> QwenEmotion:
        if self._emotion_model is None:
            raise InvalidOptionError("the emotion-from-text model is not available with this engine")
        if self._download and self.model_dir is not None and not self._emotion_model.loaded:
            from .download import ensure_model

            # The 1.2 GB Qwen folder is optional: fetched the first time it is needed.
            ensure_model(self.model_dir, ("emotion_text",))
        return self._emotion_model

    def _check_segment_tokens(self, n: int) -> None:
        top = self.config.gpt.max_text_tokens
        if not (isinstance(n, int) and 1 <= n <= top):
            raise InvalidOptionError(f"tokens per segment must be 1..{top}, got {n}")
