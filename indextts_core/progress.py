"""Progress of a running take, finer than a segment: codes generated, diffusion steps, time left.

``IndexTTS2.stream(..., progress=callback)`` (and ``synthesize``) calls ``callback`` with a
:class:`SynthesisProgress` after each code the GPT generates, after each flow-matching step and
at every stage boundary. The callback runs on the thread doing the work, between two steps: it
must be quick (store the value, hand it to a queue) and it cannot change the take.

The whole-take ``fraction`` is an estimate: a segment weighs as much as its share of the text
tokens; inside a segment the stages weigh what they took so far in this take (before the first
segment ends: a fixed split), and the code count the GPT will reach is the duration plan's
target when there is one, else the text tokens times the codes per token seen so far in this take
(before that: :data:`CODES_PER_TOKEN`). It never goes back.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# Stage names, in the order a segment goes through them.
PREPARE, CODES, MEL, VOCODER, DONE = "prepare", "codes", "mel", "vocoder", "done"
# Speech codes per text token before a take has measured its own: the models' 50 codes/s at a
# common reading pace of about 5 BPE pieces (or Chinese characters) per second.
CODES_PER_TOKEN = 10.0
# Share of a segment's time per stage before the take has timed one (a GPU run of the full model).
_DEFAULT_SHARES = {CODES: 0.6, MEL: 0.35, VOCODER: 0.05}
# The timer's stage names that make up each progress stage.
_TIMER_STAGES = {CODES: ("gpt_generate", "gpt_latent"), MEL: ("s2mel",), VOCODER: ("vocoder",)}


@dataclass(frozen=True)
class SynthesisProgress:
    """Where a running take is. ``step``/``steps``: codes generated so far and the segment's
    code cap (the GPT usually stops earlier), or diffusion steps done and planned; 0/0 for the
    other stages."""

    stage: str  # "prepare" (text, voice, emotion), "codes", "mel", "vocoder", "done"
    segment: int  # the segment being made, from 0
    segments: int
    step: int
    steps: int
    fraction: float  # of the whole take, estimated, 0..1
    elapsed: float  # seconds since the take started

    @property
    def seconds_left(self) -> float | None:
        """Estimated seconds until the take is finished; ``None`` until there is a basis for it."""
        if self.stage == DONE:
            return 0.0
        if self.fraction < 0.02:
            return None
        return self.elapsed * (1.0 - self.fraction) / self.fraction


ProgressCallback = Callable[[SynthesisProgress], None]


class ProgressTracker:
    """Turns the pipeline's step events into :class:`SynthesisProgress` for one take."""

    def __init__(self, callback: ProgressCallback, segment_tokens: list[int], stage_seconds: dict[str, float],
                 start: float | None = None) -> None:
        self._callback = callback
        self._tokens = [max(1, n) for n in segment_tokens] or [1]
        self._total_tokens = sum(self._tokens)
        self._seconds = stage_seconds  # the take's StageTimer.seconds, read live
        self._start = time.perf_counter() if start is None else start
        self._done_weight = 0.0
        self._codes = 0
        self._code_tokens = 0
        self._fraction = 0.0
        self._segment = 0
        self._expected = 1.0

    def _shares(self) -> dict[str, float]:
        measured = {stage: sum(self._seconds.get(n, 0.0) for n in names) for stage, names in _TIMER_STAGES.items()}
        total = sum(measured.values())
        if self._done_weight == 0 or total <= 0:  # no whole segment timed yet
            return _DEFAULT_SHARES
        return {stage: s / total for stage, s in measured.items()}

    def _emit(self, stage: str, step: int = 0, steps: int = 0, within: float = 0.0) -> None:
        weight = self._tokens[self._segment] / self._total_tokens if stage != DONE else 0.0
        fraction = 1.0 if stage == DONE else min(0.999, self._done_weight + weight * within)
        self._fraction = max(self._fraction, fraction)
        now = time.perf_counter()
        self._callback(SynthesisProgress(stage=stage, segment=self._segment, segments=len(self._tokens), step=step,
                                         steps=steps, fraction=self._fraction, elapsed=now - self._start))

    def prepare(self) -> None:
        self._emit(PREPARE)

    def begin_segment(self, index: int, target_codes: int | None) -> None:
        """Segment ``index`` starts; ``target_codes``: the duration plan's count, if it has one."""
        self._segment = index
        per_token = self._codes / self._code_tokens if self._code_tokens else CODES_PER_TOKEN
        self._expected = float(target_codes) if target_codes else max(1.0, per_token * self._tokens[index])
        self._emit(CODES, 0, 0, 0.0)

    def code(self, n: int, cap: int) -> None:
        shares = self._shares()
        self._emit(CODES, n, cap, shares[CODES] * min(1.0, n / self._expected))

    def codes_done(self, n: int) -> None:
        self._codes += n
        self._code_tokens += self._tokens[self._segment]

    def mel_step(self, k: int, steps: int) -> None:
        shares = self._shares()
        self._emit(MEL, k, steps, shares[CODES] + shares[MEL] * k / max(1, steps))

    def vocoder(self) -> None:
        shares = self._shares()
        self._emit(VOCODER, 0, 0, shares[CODES] + shares[MEL])

    def end_segment(self) -> None:
        self._done_weight += self._tokens[self._segment] / self._total_tokens

    def done(self) -> None:
        self._emit(DONE)
