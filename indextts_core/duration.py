"""Duration control: from a requested length to per-segment code and frame counts.

The released IndexTTS-2 cannot be told a length (the paper's duration embedding is disabled
in the release), so we control it with two levers the checkpoint does support:

1. the GPT's code count, bounded by ``min_new_tokens``/``max_new_tokens`` around the count
   that the target implies (about 50 codes per second: ``frames = floor(codes * 1.72)``);
2. the length regulator's output frame count, which re-times the semantic sequence
   (nearest-neighbour) to any number of 256-sample mel frames.

With (2) the mel, and so the waveform (exactly 256 samples a frame), has the frame count we
choose; a final trim of fewer than 256 samples makes a ``seconds`` target exact to the sample.

Modes (see :class:`indextts_core.options.Duration`):

- ``free``: the reference behaviour; frames = ``floor(codes * 1.72)``.
- ``speed`` R: codes as in free mode, every frame count and gap divided by R: the same
  delivery, re-timed. Frames are rounded on the running total, so the whole take is the
  free take's length divided by R within one frame.
- ``seconds`` S: ``round(S * 22050)`` samples in all. The gaps between segments are taken
  off first, the rest is shared among segments in proportion to their text tokens; each
  segment's GPT is held within ±10 % of the matching code count and its frames are set.
- ``tokens`` N: N codes shared among segments in proportion to their text tokens; each
  segment generates exactly its share; frames as in free mode.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from .errors import InvalidOptionError
from .models.s2mel import MEL_FRAMES_PER_CODE, target_mel_frames
from .options import SAMPLE_RATE, Duration

HOP = 256
# How far the GPT may stray from the code count a ``seconds`` target implies; the length
# regulator absorbs the rest. Wider windows let the model end where it wants to.
SECONDS_CODE_SLACK = 0.10
MIN_SEGMENT_FRAMES = 4


def gap_samples(gap_ms: float) -> int:
    """Zero samples between segments, as the reference computes them."""
    return int(SAMPLE_RATE * gap_ms / 1000.0)


@dataclass(frozen=True)
class SegmentTarget:
    """What one segment's GPT and length regulator are asked for.

    ``min_codes``/``max_codes`` bound the generated code count (``None``: unbounded);
    ``frames`` is the mel frame count (``None``: decided from the generated codes).
    """

    min_codes: int | None = None
    max_codes: int | None = None
    frames: int | None = None


@dataclass(frozen=True)
class DurationPlan:
    """Targets for each segment, in order; a plain value, safe to reuse and share."""

    segments: tuple[SegmentTarget, ...]
    gap_samples: int
    total_samples: int | None = None  # exact output length for ``seconds``; None otherwise
    requested_seconds: float | None = None
    speed: float | None = None

    def frames(self, codes: Sequence[int]) -> list[int]:
        """Mel frames of segments ``0 .. len(codes) - 1`` once they have ``codes`` codes each.

        A prefix of ``codes`` gives a prefix of the answer, so a stream can ask after each
        segment. In ``speed`` mode frames are rounded on the running total, so each segment's
        count depends on the segments before it.
        """
        if len(codes) > len(self.segments):
            raise ValueError(f"{len(codes)} code counts for a {len(self.segments)}-segment plan")
        out: list[int] = []
        natural_total = assigned = 0
        for target, num_codes in zip(self.segments, codes, strict=False):
            natural = target_mel_frames(num_codes)
            if target.frames is not None:
                frames = target.frames
            elif self.speed is None:
                frames = natural
            else:
                natural_total += natural
                frames = max(1, round(natural_total / self.speed) - assigned)
                assigned += frames
            out.append(frames)
        return out


def _share(total: int, weights: list[int], minimum: int) -> list[int]:
    """Split ``total`` into integers proportional to ``weights`` (largest remainder), each >= minimum."""
    n = len(weights)
    if total < minimum * n:
        raise ValueError("total too small")
    spare = total - minimum * n
    wsum = sum(weights)
    exact = [spare * w / wsum for w in weights]
    parts = [math.floor(x) for x in exact]
    order = sorted(range(n), key=lambda i: (exact[i] - parts[i], -i), reverse=True)
    for i in order[: spare - sum(parts)]:
        parts[i] += 1
    return [p + minimum for p in parts]


def plan(duration: Duration | None, token_counts: list[int], *, gap_ms: float,
         max_codes: int) -> DurationPlan:
    """Per-segment targets for ``duration`` over segments with ``token_counts`` text tokens.

    ``max_codes`` is the most codes one segment may generate (the sampling cap, itself
    bounded by the model's position table).
    """
    n = len(token_counts)
    weights = [max(1, t) for t in token_counts]
    gap = gap_samples(gap_ms)
    if duration is None or duration.mode == "free":
        return DurationPlan(tuple(SegmentTarget() for _ in range(n)), gap)
    value = float(duration.value)
    if duration.mode == "speed":
        return DurationPlan(tuple(SegmentTarget() for _ in range(n)), gap_samples(gap_ms / value), speed=value)
    if duration.mode == "tokens":
        count = int(value)
        if count < n:
            raise InvalidOptionError(f"{count} codes cannot be shared among {n} text segments; "
                                     f"ask for at least {n}")
        shares = _share(count, weights, 1)
        if max(shares) > max_codes:
            raise InvalidOptionError(f"{count} codes need {max(shares)} in one segment, more than its limit of "
                                     f"{max_codes}; raise max mel tokens or use smaller segments")
        return DurationPlan(tuple(SegmentTarget(min_codes=s, max_codes=s) for s in shares), gap)

    total = round(value * SAMPLE_RATE)
    speech = total - gap * (n - 1)
    frames_total = math.ceil(speech / HOP) if speech > 0 else 0
    if frames_total < MIN_SEGMENT_FRAMES * n:
        raise InvalidOptionError(
            f"a {value:g} s target is too short for {n} text segment(s) separated by {gap_ms:g} ms gaps; "
            "use a longer target, a shorter text, larger segments or smaller gaps")
    targets = []
    for frames in _share(frames_total, weights, MIN_SEGMENT_FRAMES):
        codes = frames / MEL_FRAMES_PER_CODE
        lo = max(1, min(max_codes, math.floor(codes * (1 - SECONDS_CODE_SLACK))))
        hi = max(lo, min(max_codes, math.ceil(codes * (1 + SECONDS_CODE_SLACK))))
        targets.append(SegmentTarget(min_codes=lo, max_codes=hi, frames=frames))
    return DurationPlan(tuple(targets), gap, total, value)
