"""The random streams of one take, all from its one ``seed``.

A take draws in three places: the GPT's sampling (per segment, on the model's device), the
flow-matching start noise (per segment, on the CPU, so a seed gives the same mel on any
device) and, with ``use_random``, the emotion matrix rows. Each gets its own seed:

- noise of segment ``i``: ``seed + 1 + i``, the golden bundles' convention (their CFM noise
  seed is the take's seed + 1, plus the segment index);
- GPT of segment 0: ``seed`` itself, as the reference seeds its sampling;
- GPT of a later segment, and the emotion rows: a 63-bit hash of the seed, the stream's name
  and the segment. Counting up from ``seed`` here would make segment ``i + 1``'s GPT draws
  repeat segment ``i``'s noise draws on the CPU (both ``seed + 1 + i``).
"""

from __future__ import annotations

import hashlib


def _derived(seed: int, stream: str, index: int) -> int:
    digest = hashlib.sha256(f"indextts-studio|{stream}|{seed}|{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def gpt_seed(seed: int, segment: int) -> int:
    """The seed of segment ``segment``'s GPT sampling."""
    return seed if segment == 0 else _derived(seed, "gpt", segment)


def noise_seed(seed: int, segment: int) -> int:
    """The seed of segment ``segment``'s flow-matching noise."""
    return seed + 1 + segment


def emotion_seed(seed: int) -> int:
    """The seed of the emotion matrix's random row choice (``Emotion(use_random=True)``)."""
    return _derived(seed, "emotion", 0)
