"""A test double of :class:`indextts_core.IndexTTS2`'s public API, for fast app unit tests only.

It makes tones instead of speech and checks its inputs the way the contract says. It is
never used by the app itself: tests pass it to ``create_app(..., factory=FakeEngineForTests.from_pretrained)``.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from indextts_core.duration import HOP
from indextts_core.duration import plan as duration_plan
from indextts_core.errors import AudioError, ModelNotFoundError, TextError
from indextts_core.options import (
    EMOTIONS,
    SAMPLE_RATE,
    Duration,
    Emotion,
    Sampling,
    SegmentAudio,
    SegmentInfo,
    SynthesisOptions,
    SynthesisResult,
)
from indextts_core.progress import SynthesisProgress

CODES_PER_TOKEN = 5  # about 0.1 s of speech per text token


@dataclass
class FakePreview:
    normalized: str
    pieces: list[str]
    ids: list[int]
    segments: list[list[str]]
    segment_ids: list[list[int]]
    unknown: list[str]


class FakeStream:
    def __init__(self, chunks, finish) -> None:
        self._chunks = chunks
        self._finish = finish
        self.result: SynthesisResult | None = None

    def __iter__(self):
        yield from self._chunks
        self.result = self._finish()


class FakeEngineForTests:
    sample_rate = SAMPLE_RATE
    calls: list[dict]

    def __init__(self, model_dir: Path, device: str = "auto", dtype=None) -> None:
        self.model_dir = Path(model_dir)
        self.device = torch.device("cpu")
        self.dtype = torch.float32
        self.is_test_model = True
        self.closed = False
        self.calls = []
        self.active = 0  # takes begun and not ended (they may take turns)
        self.max_active = 0
        self.computing = 0  # segments being computed right now
        self.max_computing = 0
        self._guard = threading.Lock()
        self.fail_next: BaseException | None = None
        self.segment_seconds = 0.0  # how long each segment takes (tests of turns and Stop)
        self.made: list[tuple[str, int]] = []  # (first word of the text, segment index) of each segment made

    @classmethod
    def from_pretrained(cls, model_dir=None, *, device="auto", dtype=None, download=True, progress=None,
                        text=None):
        if model_dir is None or not Path(model_dir).is_dir():
            raise ModelNotFoundError(f"No IndexTTS-2 weights in {model_dir}; download them first.")
        engine = cls(model_dir, device, dtype)
        engine.text = text
        return engine

    # -- text ---------------------------------------------------------------------------
    def preview_text(self, text: str, segment_tokens: int = 120, quick_streaming_tokens: int = 0) -> FakePreview:
        # Cut by count only: the fake has no sentences to keep short (quick_streaming_tokens).
        if not text or not text.strip():
            raise TextError("The text is empty; type something to speak.")
        normalized = re.sub(r"\s+", " ", text.strip())
        pieces = [p.upper() for p in re.findall(r"[\u4e00-\u9fff]|[A-Za-z0-9]+|[^\sA-Za-z0-9]", normalized)]
        segments = [pieces[i:i + segment_tokens] for i in range(0, len(pieces), segment_tokens)] or [[]]
        ids = list(range(len(pieces)))
        return FakePreview(normalized, pieces, ids, segments, [ids[i:i + segment_tokens]
                                                                for i in range(0, len(ids), segment_tokens)], [])

    def analyze_emotion_text(self, text: str, max_tokens=None) -> dict[str, float]:
        vals = dict.fromkeys(EMOTIONS, 0.0)
        vals["angry" if "angry" in text.lower() else "happy"] = 0.9
        vals["calm"] = 0.1
        return vals

    # -- synthesis ------------------------------------------------------------------------
    def _plan(self, text, speaker, emotion, duration, sampling, seed, segment_tokens, gap_ms):
        if self.closed:
            raise RuntimeError("engine was closed")
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if isinstance(speaker, str | Path) and not Path(speaker).is_file():
            raise AudioError(f"The voice file {speaker} was not found.")
        emotion = emotion or Emotion.from_speaker()
        duration = duration or Duration.free()
        sampling = sampling or Sampling()
        assert isinstance(emotion, Emotion) and isinstance(duration, Duration) and isinstance(sampling, Sampling)
        seed = int(np.random.randint(0, 2**31)) if seed is None else int(seed)
        preview = self.preview_text(text, segment_tokens)
        # The engine's own duration rules; only the "GPT" is faked: a code count per text token,
        # held to the plan's bounds as the real sampler is.
        targets = duration_plan(duration, [len(s) for s in preview.segment_ids], gap_ms=gap_ms,
                                max_codes=sampling.max_mel_tokens)
        codes = [min(max(CODES_PER_TOKEN * max(1, len(s)), t.min_codes or 1), t.max_codes or sampling.max_mel_tokens)
                 for s, t in zip(preview.segments, targets.segments, strict=True)]
        lengths = [frames * HOP for frames in targets.frames(codes)]
        gap = targets.gap_samples
        if targets.total_samples is not None:  # the last segment is cut to the exact length, as the engine does
            lengths[-1] = targets.total_samples - sum(lengths[:-1]) - gap * (len(lengths) - 1)
        self.calls.append({"text": text, "speaker": speaker, "emotion": emotion, "duration": duration,
                           "sampling": sampling, "seed": seed, "segment_tokens": segment_tokens, "gap_ms": gap_ms})
        return preview, codes, lengths, gap, seed, emotion, targets

    def stream(self, text, speaker, options: SynthesisOptions | None = None, *, recorder=None,
               progress=None) -> FakeStream:
        o = options or SynthesisOptions()
        assert isinstance(o, SynthesisOptions)
        preview, codes, lengths, gap, seed, emotion, targets = self._plan(
            text, speaker, o.emotion, o.duration, o.sampling, o.seed, o.segment_tokens, o.gap_ms)
        rng = np.random.default_rng(seed)
        audios: list[np.ndarray] = []
        infos: list[SegmentInfo] = []

        def chunks():
            with self._guard:
                self.active += 1
                self.max_active = max(self.max_active, self.active)
            try:
                for i, n in enumerate(lengths):
                    with self._guard:
                        self.computing += 1
                        self.max_computing = max(self.max_computing, self.computing)
                    if progress is not None:  # as the engine reports: codes, then the segment's share
                        progress(SynthesisProgress("codes", i, len(lengths), 1, 10, i / len(lengths), 0.01 * i))
                    t = np.arange(n) / SAMPLE_RATE
                    a = (0.3 * np.sin(2 * np.pi * (200 + 40 * i) * t) + 0.01 * rng.standard_normal(n))
                    a = a.astype(np.float32)
                    info = SegmentInfo(i, " ".join(preview.segments[i]), len(preview.segments[i]), codes[i], True, n)
                    out = np.concatenate([np.zeros(gap, np.float32), a]) if i else a
                    audios.append(out)
                    infos.append(info)
                    time.sleep(self.segment_seconds)
                    self.made.append(((text.split() or [""])[0], i))
                    with self._guard:
                        self.computing -= 1
                    yield SegmentAudio(i, out, SAMPLE_RATE, info, i == len(lengths) - 1)
            finally:
                with self._guard:
                    self.active -= 1

        def finish():
            audio = np.concatenate(audios)
            vec = emotion.vector if emotion.mode == "vector" else None
            return SynthesisResult(audio, SAMPLE_RATE, infos, {"total": 0.01 * len(infos)}, seed,
                                   requested_seconds=targets.requested_seconds,
                                   emotion_vector=vec, is_test_model=True)

        return FakeStream(chunks(), finish)

    def synthesize(self, text, speaker, options: SynthesisOptions | None = None, *, recorder=None,
                   progress=None) -> SynthesisResult:
        s = self.stream(text, speaker, options, recorder=recorder, progress=progress)
        for _ in s:
            pass
        assert s.result is not None
        return s.result

    def memory_info(self) -> dict:
        return {"device": "cpu", "dtype": "float32", "allocated_mb": None, "reserved_mb": None}

    def unload_emotion_model(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True
