"""The random streams of a take: the golden convention where it applies, independent elsewhere."""

from __future__ import annotations

from indextts_core.options import MAX_SEED
from indextts_core.seeds import emotion_seed, gpt_seed, noise_seed


def test_golden_convention_is_kept():
    # The golden bundles: GPT seeded with the take's seed, CFM noise with seed + 1 + segment.
    assert gpt_seed(7, 0) == 7
    assert [noise_seed(7, i) for i in range(3)] == [8, 9, 10]


def test_no_two_streams_of_a_take_share_a_seed():
    for seed in (0, 1, 2, 41, 2**31 - 1, MAX_SEED):
        segments = range(40)
        streams = [gpt_seed(seed, i) for i in segments] + [noise_seed(seed, i) for i in segments]
        streams.append(emotion_seed(seed))
        assert len(set(streams)) == len(streams), seed
        assert all(0 <= s < 2**64 for s in streams)  # what torch.Generator.manual_seed accepts


def test_later_segments_do_not_repeat_the_previous_noise():
    # Counting up (GPT seed + i) made segment i + 1's GPT draw segment i's noise on the CPU.
    assert all(gpt_seed(5, i + 1) != noise_seed(5, i) for i in range(100))
    assert gpt_seed(5, 1) == gpt_seed(5, 1) != gpt_seed(6, 1)  # derived, so repeatable per seed
