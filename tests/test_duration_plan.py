"""Duration planning: pure arithmetic from a requested length to per-segment targets."""

from __future__ import annotations

from dataclasses import FrozenInstanceError

import pytest

from indextts_core.duration import HOP, gap_samples, plan
from indextts_core.errors import InvalidOptionError
from indextts_core.models.s2mel import target_mel_frames
from indextts_core.options import SAMPLE_RATE, Duration


def test_free_plan_is_unconstrained():
    p = plan(None, [10, 20], gap_ms=200, max_codes=1500)
    assert all(t.min_codes is None and t.max_codes is None for t in p.segments)
    assert p.frames([80]) == [137] and p.gap_samples == 4410


@pytest.mark.parametrize("ratio", [0.5, 0.8, 1.0, 1.37, 2.0])
def test_speed_divides_the_whole_take_within_a_frame(ratio):
    codes = [5, 80, 333, 17]
    p = plan(Duration.speed(ratio), [12] * len(codes), gap_ms=200, max_codes=1500)
    frames = p.frames(codes)
    free = sum(target_mel_frames(m) for m in codes)
    assert abs(sum(frames) - free / ratio) <= 0.5
    assert p.gap_samples == gap_samples(200 / ratio)
    # A stream asks after each segment: every prefix agrees with the whole, and asking twice
    # changes nothing (the plan is a value).
    assert [p.frames(codes[: k + 1])[-1] for k in range(len(codes))] == frames == p.frames(codes)


def test_a_plan_is_a_frozen_value():
    p = plan(Duration.speed(1.5), [4, 4], gap_ms=100, max_codes=1500)
    with pytest.raises(FrozenInstanceError):
        p.speed = 2.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="2-segment plan"):
        p.frames([10, 10, 10])


@pytest.mark.parametrize("seconds", [0.5, 1.0, 3.0, 7.77, 30.0])
@pytest.mark.parametrize("tokens", [[15], [11, 17, 16], [3, 40, 1, 9]])
def test_seconds_frames_cover_the_target_with_less_than_a_frame_to_trim(seconds, tokens):
    gap_ms = 200 if seconds >= 2 else 20
    p = plan(Duration.seconds(seconds), tokens, gap_ms=gap_ms, max_codes=400)
    assert p.total_samples == round(seconds * SAMPLE_RATE)
    produced = sum(p.frames([1] * len(tokens))) * HOP + p.gap_samples * (len(tokens) - 1)
    assert 0 <= produced - p.total_samples < HOP
    for t in p.segments:
        assert 1 <= t.min_codes <= t.max_codes <= 400


def test_seconds_shares_follow_token_counts():
    p = plan(Duration.seconds(10), [10, 30], gap_ms=0, max_codes=1500)
    a, b = (t.frames for t in p.segments)
    assert abs(b / a - 3) < 0.05


def test_seconds_too_short_for_the_gaps_is_a_clear_error():
    with pytest.raises(InvalidOptionError, match="too short"):
        plan(Duration.seconds(0.3), [5, 5, 5], gap_ms=200, max_codes=1500)


def test_tokens_are_shared_exactly():
    p = plan(Duration.tokens(100), [11, 17, 16], gap_ms=200, max_codes=1500)
    shares = [t.min_codes for t in p.segments]
    assert sum(shares) == 100 and all(t.min_codes == t.max_codes for t in p.segments)
    with pytest.raises(InvalidOptionError):
        plan(Duration.tokens(2), [1, 1, 1], gap_ms=200, max_codes=1500)
    with pytest.raises(InvalidOptionError, match="limit"):
        plan(Duration.tokens(900), [1], gap_ms=200, max_codes=400)
