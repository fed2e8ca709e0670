"""IndexTTS-2 synthesis, top to bottom.

The data flow of one call of :meth:`IndexTTS2.synthesize`:

1. text → normalised text → BPE pieces → segments of at most ``segment_tokens`` pieces;
2. voice clip → (22.05 kHz and 16 kHz audio) → w2v-BERT features, semantic embedding,
   reference mel, CAMPPlus style, prompt condition, GPT speaker latents  [cached per clip];
3. emotion → one emotion vector (from the voice, another clip, 8 values or a description);
4. per segment: GPT → codes → teacher-forced latent; s2mel → mel; BigVGAN → waveform;
5. segments joined with silent gaps → float32 audio at 22 050 Hz.

Randomness: every draw comes from an explicit ``torch.Generator``, one stream per purpose and
segment, all seeded from the take's ``seed`` (see :mod:`indextts_core.seeds`).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Generator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from . import layout
from .audio import MelSpectrogram, load_emotion_audio, load_speaker_audio, seamless_features
from .config import IndexTTSConfig, load_config
from .device import resolve_device, resolve_dtype
from .duration import DurationPlan, plan
from .emotion import (
    blend_emotion_matrix,
    load_emotion_matrices,
    normalize_emotion_vector,
    scale_emotion_vector,
    select_matrix_rows,
)
from .emotion_text import QwenEmotion
from .errors import InvalidOptionError
from .files import sha256_file
from .generate import generate, max_codes
from .memory import release_weight_pages
from .models.bigvgan import BigVGAN, load_bigvgan
from .models.campplus import CAMPPlus, campplus_features, load_campplus
from .models.codec import SemanticCodec, load_semantic_codec
from .models.gpt import UnifiedVoice, load_gpt, merge_emovec
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
from .progress import ProgressCallback, ProgressTracker
from .seeds import emotion_seed, gpt_seed, noise_seed
from .text import TextFrontend, TextPreview
from .tiny import is_test_model
from .trace import EmotionClipStages, EmotionStages, NullRecorder, Recorder, SegmentStages, StageTimer, VoiceStages
from .voice_check import check_voice

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

    def voice_modules(self) -> list[nn.Module]:
        """The networks only a new voice or emotion clip runs (w2v-BERT, CAMPPlus, the conditioners)."""
        g = self.gpt
        return [self.w2vbert, self.campplus, g.conditioning_encoder, g.perceiver_encoder,
                g.emo_conditioning_encoder, g.emo_perceiver_encoder]

    def segment_modules(self) -> list[nn.Module]:
        """The networks every segment runs (the conditioners' pages are not resident then)."""
        return [self.gpt, self.codec, self.s2mel, self.vocoder]


@dataclass(frozen=True)
class VoiceFeatures:
    """Everything the speaker clip contributes, computed once per clip."""

    cond_emb: Tensor  # (1, T, 1024) w2v-BERT features of the 16 kHz speaker audio
    ref_mel: Tensor  # (1, 80, Tr)
    style: Tensor  # (1, 192)
    prompt_condition: Tensor  # (1, Tr, C)
    latent: Tensor  # (1, 32, D) GPT speaker latents
    emovec: Tensor  # (1, D) the emotion vector of the speaker features
    warnings: tuple[str, ...] = ()  # what check_voice found wrong, and the 15 s cut


@dataclass(frozen=True)
class _Take:
    """What every segment of one synthesis shares."""

    models: Models
    voice: VoiceFeatures
    emotion: EmotionStages
    options: SynthesisOptions
    plan: DurationPlan
    max_codes: int  # the sampling cap, bounded by the model's position table
    timer: StageTimer
    recorder: Recorder
    progress: ProgressTracker | None


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

    def close(self) -> None:
        """Abandon the take (after the segment being made, if one is): nothing more is computed."""
        self._run.close()


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
    """IndexTTS-2 inference on one device, safe to share between threads.

    Nothing a take computes is kept on the models (each generation has its own KV cache, each
    take its own generators), so takes may run at once from several threads, and a stream may
    be resumed on any thread. The only shared state, the per-clip feature caches and the
    lazily loaded emotion-from-text model, is guarded inside. Takes running at once share the
    device's memory and speed: an application that wants one take at a time (one GPU) queues
    them itself.
    """

    def __init__(self, config: IndexTTSConfig, models: Models, text: TextFrontend, *,
                 device: torch.device, dtype: torch.dtype, model_dir: Path | None = None,
                 emotion_model: QwenEmotion | None = None, download: bool = False,
                 release_idle_weights: bool = True):
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
        # Memory-mapped CPU weights: a phase's pages are given back before the other phase runs
        # (indextts_core.memory), so the peak is the larger phase, not the sum of both.
        self._release_pages = release_idle_weights and device.type == "cpu"
        self._mel = MelSpectrogram(config.s2mel.preprocess_params)
        self._voices: OrderedDict[str, VoiceFeatures] = OrderedDict()
        self._emotion_clips: OrderedDict[str, Tensor] = OrderedDict()  # emotion vectors by clip
        self._cache_lock = threading.Lock()  # held only to look up or store a cache entry

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, model_dir: str | Path | None = None, *, device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = None, download: bool = True,
                        progress: Callable | None = None, text: TextFrontend | None = None,
                        release_idle_weights: bool = True) -> IndexTTS2:
        """Load a checkpoint folder in the official layout, downloading missing files first.

        ``model_dir=None`` is :func:`indextts_core.model_folder.default_model_dir`. ``dtype`` sets
        the GPT and its conditioners (``None``/``"auto"``: float16 on GPUs, float32 on the CPU);
        the encoders, s2mel and the vocoder always run in float32, as in the reference.
        ``text``: a front end of this folder to share (an application's previews), else a new one.
        ``release_idle_weights`` (CPU, Linux): give the pages of the voice-feature networks back
        to the system once a voice is read, and the segment networks' pages while a new voice is
        read; they come back from the page cache when next used (full size: peak RSS about
        3.5 GiB instead of 7). Takes running at once on several threads may read back each
        other's pages (time, not results). ``False`` keeps every page a take has read (the
        weight-norm pairs folded at load are given back either way: they are never read again).
        """
        from .download import ensure_model
        from .model_folder import default_model_dir

        model_dir = Path(model_dir) if model_dir is not None else default_model_dir()
        ensure_model(model_dir, ("core",), progress=progress, offline=None if download else True)
        dev = resolve_device(device)
        gpt_dtype = resolve_dtype(dtype, dev)
        cfg = load_config(model_dir / layout.CONFIG)
        log.info("loading IndexTTS-2 from %s on %s (%s)", model_dir, dev, gpt_dtype)
        spk_matrix, emo_matrix = load_emotion_matrices(model_dir, cfg, device=dev)
        models = Models(
            w2vbert=load_w2vbert(model_dir, cfg, device=dev, dtype=torch.float32),
            codec=load_semantic_codec(model_dir, cfg, device=dev, dtype=torch.float32),
            campplus=load_campplus(model_dir, cfg, device=dev, dtype=torch.float32),
            gpt=load_gpt(model_dir, cfg, device=dev, dtype=gpt_dtype),
            s2mel=load_s2mel(model_dir, cfg, device=dev, dtype=torch.float32),
            vocoder=load_bigvgan(model_dir, cfg, device=dev, dtype=torch.float32),
            spk_matrix=spk_matrix, emo_matrix=emo_matrix)
        text = TextFrontend.from_model_dir(model_dir) if text is None else text
        qwen = QwenEmotion(model_dir / cfg.qwen_emo_path, device=dev)
        return cls(cfg, models, text, device=dev, dtype=gpt_dtype, model_dir=model_dir, emotion_model=qwen,
                   download=download, release_idle_weights=release_idle_weights)

    # -- public API ------------------------------------------------------------------------------

    def preview_text(self, text: str, segment_tokens: int = 120, quick_streaming_tokens: int = 0) -> TextPreview:
        """How ``text`` will be read: normalised text, BPE pieces and ids, segments."""
        self._check_segment_tokens(segment_tokens)
        return self.text.preview(text, segment_tokens, quick_streaming_tokens)

    def analyze_emotion_text(self, text: str, max_tokens: int | None = None) -> dict[str, float]:
        """The 8 emotion intensities the Qwen emotion model reads from ``text``."""
        analysis = self._require_emotion_model().analyze(text, max_new_tokens=max_tokens)
        return dict(zip(EMOTIONS, analysis.vector, strict=True))

    def unload_emotion_model(self) -> None:
        if self._emotion_model is not None:
            self._emotion_model.unload()

    def synthesize(self, text: str, voice: AudioSource, options: SynthesisOptions | None = None, *,
                   recorder: Recorder | None = None, progress: ProgressCallback | None = None) -> SynthesisResult:
        """Speak ``text`` in the voice of the clip ``voice`` (a path or ``(rate, samples)``).

        ``options`` (default :class:`SynthesisOptions()`): emotion, length, sampling, seed and the
        rest; ``recorder`` receives the stage tensors (see :mod:`indextts_core.trace`);
        ``progress`` is called with a :class:`~indextts_core.progress.SynthesisProgress` after
        every code, every diffusion step and every stage (see :mod:`indextts_core.progress`).
        """
        return self.stream(text, voice, options, recorder=recorder, progress=progress).run()

    def stream(self, text: str, voice: AudioSource, options: SynthesisOptions | None = None, *,
               recorder: Recorder | None = None, progress: ProgressCallback | None = None) -> Synthesis:
        """Like :meth:`synthesize`, yielding each segment's audio as soon as it exists.

        Nothing runs until the first ``next``; the returned :class:`Synthesis` holds the whole
        take in ``result`` once iterated to the end.
        """
        options = SynthesisOptions() if options is None else options
        if not isinstance(voice, str | Path | tuple):
            raise InvalidOptionError("voice must be the path of a clip or a (sample_rate, samples) tuple, "
                                     f"got {type(voice).__name__}")
        if not isinstance(text, str):
            raise InvalidOptionError(f"text must be a string, got {type(text).__name__}")
        if not isinstance(options, SynthesisOptions):
            raise InvalidOptionError(f"options must be a SynthesisOptions, got {type(options).__name__}")
        if progress is not None and not callable(progress):
            raise InvalidOptionError(f"progress must be a function, got {type(progress).__name__}")
        self._check_segment_tokens(options.segment_tokens)
        if options.seed is None:
            options = options.replace(seed=secrets.randbelow(2**31))
        return Synthesis(self._run(text, voice, options, recorder or NullRecorder(), progress))

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
        """Drop every model; the object cannot start a take afterwards.

        A take already running keeps the models it started with and finishes; their memory is
        freed when the last such take ends.
        """
        self.unload_emotion_model()
        self.models = None  # type: ignore[assignment]
        with self._cache_lock:
            self._voices.clear()
            self._emotion_clips.clear()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    # -- the pipeline --------------------------------------------------------------------------

    def _run(self, text: str, speaker: AudioSource, options: SynthesisOptions, recorder: Recorder,
             progress: ProgressCallback | None) -> Generator[SegmentAudio, None, SynthesisResult]:
        sampling, seed = options.sampling, options.seed
        assert seed is not None
        duration = None if options.duration.mode == "free" else options.duration
        models = self.models  # this take keeps its models even if the engine is closed meanwhile
        if models is None:
            raise InvalidOptionError("this engine was closed; load the models again")
        timer = StageTimer(self.device)
        start = time.perf_counter()

        with timer("text"):
            preview = self.text.preview(text, options.segment_tokens, options.quick_streaming_tokens)
        recorder.begin(len(preview.segments), models)
        limit = min(sampling.max_mel_tokens, max_codes(models.gpt))
        if limit < sampling.max_mel_tokens:
            log.info("max mel tokens lowered from %d to the model's %d", sampling.max_mel_tokens, limit)
        targets = plan(duration, [len(s) for s in preview.segment_ids], gap_ms=options.gap_ms, max_codes=limit)
        tracker = None
        if progress is not None:
            tracker = ProgressTracker(progress, [len(s) for s in preview.segment_ids], timer.seconds, start)
            tracker.prepare()

        with timer("voice"):
            voice = self._voice(models, speaker, recorder)
        with timer("emotion"):
            emo = self._emotion(models, options.emotion, text, speaker, voice, seed, recorder)
        take = _Take(models, voice, emo, options, targets, limit, timer, recorder, tracker)

        gap = np.zeros(targets.gap_samples, dtype=np.float32)
        pieces: list[np.ndarray] = []
        infos: list[SegmentInfo] = []
        codes: list[int] = []
        for i, ids in enumerate(preview.segment_ids):
            if tracker is not None:
                tracker.begin_segment(i, targets.segments[i].min_codes)
            stages = self._segment(take, i, ids, codes)
            if tracker is not None:
                tracker.end_segment()
            recorder.segment(stages)
            codes.append(int(stages.codes.shape[1]))
            wav = stages.wav
            last = i == len(preview.segment_ids) - 1
            if last and targets.total_samples is not None:
                wav = self._trim_to(wav, targets, pieces, len(gap))
            info = SegmentInfo(index=i, text="".join(preview.segments[i]).replace("▁", " ").strip(),
                               num_tokens=len(ids), num_codes=codes[-1], stopped_naturally=stages.stopped,
                               num_samples=len(wav))
            chunk = wav if i == 0 else np.concatenate([gap, wav])
            pieces.append(chunk)
            infos.append(info)
            yield SegmentAudio(index=i, audio=chunk, sample_rate=SAMPLE_RATE, info=info, is_last=last)

        warnings = (*preview.warnings, *voice.warnings)
        for w in warnings:
            log.info("warning: %s", w)  # the caller shows result.warnings; the log is for -v
        audio = np.concatenate(pieces) if pieces else np.zeros(0, dtype=np.float32)
        timer.seconds["total"] = time.perf_counter() - start
        result = SynthesisResult(audio=audio, sample_rate=SAMPLE_RATE, segments=infos,
                                 timings=dict(timer.seconds), seed=seed,
                                 requested_seconds=targets.requested_seconds,
                                 emotion_vector=emo.weights, is_test_model=self.is_test_model,
                                 warnings=warnings)
        recorder.end(result)
        if tracker is not None:
            tracker.done()
        log.info("synthesised %.2f s in %.2f s (RTF %.3f)", result.seconds, timer.seconds["total"], result.rtf)
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

    def _segment(self, take: _Take, i: int, ids: list[int], codes_before: list[int]) -> SegmentStages:
        """Segment ``i`` (text token ``ids``) to a waveform; ``codes_before``: earlier segments' code counts."""
        m, dev, timer, options, tracker = take.models, self.device, take.timer, take.options, take.progress
        assert options.seed is not None
        target = take.plan.segments[i]
        text_ids = torch.tensor([ids], dtype=torch.int32, device=dev)
        with torch.inference_mode():
            with timer("gpt_generate"):
                conds = m.gpt.conditioning(take.voice.latent, take.emotion.used)
                generator = torch.Generator(device=dev).manual_seed(gpt_seed(options.seed, i))
                # At least one code: the reference has no path for an empty segment.
                out = generate(m.gpt, conds, text_ids, options.sampling, generator=generator,
                               min_new_tokens=max(1, target.min_codes or 0),
                               max_new_tokens=min(take.max_codes, target.max_codes or take.max_codes),
                               on_code=tracker.code if tracker is not None else None)
            codes = out.codes.to(dev)
            if tracker is not None:
                tracker.codes_done(int(codes.shape[1]))
            with timer("gpt_latent"):
                latent = m.gpt.latent(conds, text_ids, codes).float()
            with timer("s2mel"):
                frames = take.plan.frames([*codes_before, codes.shape[1]])[-1]
                code_emb = m.codec.vq2emb(codes)
                cond = m.s2mel.target_condition(latent, code_emb, frames)
                total = take.voice.prompt_condition.shape[1] + frames
                cpu = torch.Generator("cpu").manual_seed(noise_seed(options.seed, i))
                noise = torch.randn((1, 80, total), generator=cpu)
                mel = m.s2mel.generate_mel(take.voice.prompt_condition, cond, take.voice.ref_mel, take.voice.style,
                                           noise.to(dev), steps=options.diffusion_steps,
                                           cfg_rate=float(options.cfg_rate), on_step=take.recorder.diffusion_hook(i),
                                           on_progress=tracker.mel_step if tracker is not None else None)
            if tracker is not None:
                tracker.vocoder()
            with timer("vocoder"):
                wav = m.vocoder(mel)[0, 0].float().cpu().numpy()
        return SegmentStages(index=i, text_ids=text_ids, conditioning=conds, codes_raw=out.codes_raw, codes=codes,
                             stopped=out.stopped, latent=latent, code_emb=code_emb, condition=cond, noise=noise,
                             mel=mel, wav=wav)

    # -- voice and emotion features -----------------------------------------------------------

    def _voice(self, m: Models, source: AudioSource, recorder: Recorder) -> VoiceFeatures:
        """The speaker features of ``source``, cached by content; an enabled recorder gets them fresh."""
        key = _source_key(source)
        cached = None if recorder.enabled else self._cached(self._voices, key)
        if cached is not None:
            return cached
        dev = self.device
        warnings = check_voice(source).take_warnings
        audio_22k, audio_16k = load_speaker_audio(source)
        with self._reading_a_clip(m), torch.inference_mode():
            features, mask, cond_emb = self._w2v(m, audio_16k)
            codes, s_ref = m.codec.quantize(cond_emb)
            ref_mel = self._mel(audio_22k.to(dev).float())
            feat = campplus_features(audio_16k.to(dev))
            style = m.campplus(feat)
            prompt_condition = m.s2mel.prompt_condition(s_ref, ref_mel.shape[-1])
            gpt_in = cond_emb.to(self.dtype)
            latent = m.gpt.get_conditioning(gpt_in)
            emovec = m.gpt.get_emovec(gpt_in)
        voice = VoiceFeatures(cond_emb=cond_emb, ref_mel=ref_mel, style=style, prompt_condition=prompt_condition,
                              latent=latent, emovec=emovec, warnings=warnings)
        if recorder.enabled:
            recorder.voice(VoiceStages(audio_22k=audio_22k, audio_16k=audio_16k, features=features, mask=mask,
                                       w2v=cond_emb, semantic_codes=codes, semantic_emb=s_ref, ref_mel=ref_mel,
                                       campplus_input=feat, style=style,
                                       prompt_condition=prompt_condition, latent=latent))
        self._remember(self._voices, key, voice)
        return voice

    def _emotion_clip(self, m: Models, source: AudioSource, recorder: Recorder) -> Tensor:
        """The emotion vector of ``source``, cached by content; an enabled recorder gets it fresh."""
        key = _source_key(source)
        cached = None if recorder.enabled else self._cached(self._emotion_clips, key)
        if cached is not None:
            return cached
        audio = load_emotion_audio(source)
        with self._reading_a_clip(m), torch.inference_mode():
            features, mask, cond_emb = self._w2v(m, audio)
            emovec = m.gpt.get_emovec(cond_emb.to(self.dtype))
        if recorder.enabled:
            recorder.emotion_clip(EmotionClipStages(audio_16k=audio, features=features, mask=mask, w2v=cond_emb))
        self._remember(self._emotion_clips, key, emovec)
        return emovec

    @contextmanager
    def _reading_a_clip(self, m: Models) -> Iterator[None]:
        """A new clip's features: the segment networks' pages go before, the voice networks' after."""
        self._release(m.segment_modules())
        try:
            yield
        finally:
            self._release(m.voice_modules())

    def _w2v(self, m: Models, audio_16k: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Input features, mask and w2v-BERT states of 16 kHz audio; the largest encoder's pages go
        right after, before the conditioners' come."""
        features, mask = seamless_features(audio_16k)
        cond_emb = m.w2vbert(features.to(self.device), mask.to(self.device))
        self._release([m.w2vbert])
        return features, mask, cond_emb

    def _release(self, modules: list[nn.Module]) -> None:
        if self._release_pages:
            released = release_weight_pages(modules)
            log.debug("gave back %.2f GiB of weight pages", released / 2**30)

    def _cached(self, cache: OrderedDict, key: str):
        with self._cache_lock:
            value = cache.get(key)
            if value is not None:
                cache.move_to_end(key)
            return value

    def _remember(self, cache: OrderedDict, key: str, value) -> None:
        # Two takes may compute the same clip at once; both results are the same, one is kept.
        with self._cache_lock:
            if self.models is None:
                return  # closed while this take ran: keep nothing
            cache[key] = value
            cache.move_to_end(key)
            while len(cache) > VOICE_CACHE_SIZE:
                cache.popitem(last=False)

    def _emotion(self, m: Models, emotion: Emotion, text: str, speaker: AudioSource, voice: VoiceFeatures, seed: int,
                 recorder: Recorder) -> EmotionStages:
        weights: list[float] | None = None
        if emotion.mode == "text":
            analysis = self._require_emotion_model().analyze(
                emotion.text or text, max_new_tokens=emotion.text_max_tokens, keep_logits=recorder.enabled)
            recorder.emotion_text(analysis)
            weights = scale_emotion_vector(analysis.vector, emotion.weight)
        elif emotion.mode == "vector":
            values = list(emotion.vector)
            if emotion.apply_ui_bias:
                values = normalize_emotion_vector(values)
            weights = scale_emotion_vector(values, emotion.weight)

        # The reference blends the emotion clip into the speaker's own emotion by alpha; without
        # an emotion clip it re-reads the speaker clip through the emotion path with alpha 1.
        use_clip = emotion.mode == "audio"
        clip_emovec = self._emotion_clip(m, emotion.audio if use_clip else speaker, recorder)
        alpha = emotion.weight if use_clip else 1.0
        merged = merge_emovec(voice.emovec, clip_emovec, alpha)
        state = EmotionStages(used=merged, merged=merged, clip_emovec=clip_emovec, speaker_emovec=voice.emovec)
        if weights is not None:
            rng = torch.Generator("cpu").manual_seed(emotion_seed(seed))
            rows = select_matrix_rows(voice.style, m.spk_matrix, self.config.emo_num,
                                      use_random=emotion.use_random, generator=rng)
            emovec, emovec_mat = blend_emotion_matrix(weights, rows, m.emo_matrix, self.config.emo_num,
                                                      merged.float())
            state = replace(state, used=emovec.to(merged.dtype), weights=tuple(weights), matrix_rows=tuple(rows),
                            matrix_blend=emovec_mat)
        recorder.emotion(state)
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
