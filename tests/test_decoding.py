"""The KV cache and repetition penalty both decoders (GPT, Qwen) use."""

from __future__ import annotations

import pytest
import torch

from indextts_core.errors import InvalidOptionError
from indextts_core.models.decoding import KVCache, repetition_penalty


def _randn(*shape: int, seed: int) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_growable_cache_keeps_contents():
    cache = KVCache(2, 1, 2, 2, 4, device="cpu", dtype=torch.float32, growable=True)
    a, b = _randn(1, 2, 2, 4, seed=0), _randn(1, 2, 3, 4, seed=1)
    cache.update(1, 0, a, a)
    k, v = cache.update(1, 2, b, b)
    assert k.shape == (1, 2, 5, 4) and cache.max_seq >= 5
    torch.testing.assert_close(k, torch.cat([a, b], dim=2))
    torch.testing.assert_close(v, torch.cat([a, b], dim=2))
    assert torch.count_nonzero(cache.k[0]) == 0  # another layer's slots are untouched


def test_fixed_cache_refuses_more_positions():
    cache = KVCache(1, 1, 1, 3, 2, device="cpu", dtype=torch.float32)
    with pytest.raises(InvalidOptionError, match="3 positions, 4 needed"):
        cache.update(0, 1, _randn(1, 1, 3, 2, seed=0), _randn(1, 1, 3, 2, seed=1))


def test_reorder_copies_beams():
    cache = KVCache(1, 3, 1, 4, 2, device="cpu", dtype=torch.float32)
    rows = _randn(3, 1, 2, 2, seed=2)
    cache.update(0, 0, rows, rows)
    cache.reorder(torch.tensor([2, 2, 0]), 2)
    torch.testing.assert_close(cache.k[0, :, :, :2], rows[[2, 2, 0]])


def test_repetition_penalty_semantics():
    scores = torch.tensor([[2.0, -2.0, 3.0, -1.0, 0.0]])
    seen = torch.tensor([[True, True, False, False, True]])
    out = repetition_penalty(scores, seen, 10.0)
    # seen: positive ÷10, negative ×10, zero stays; unseen untouched
    assert torch.equal(out, torch.tensor([[2.0 / 10.0, -20.0, 3.0, -1.0, 0.0]]))
