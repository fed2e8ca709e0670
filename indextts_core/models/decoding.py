"""What the two autoregressive decoders (the GPT and the Qwen emotion model) share.

A preallocated key/value cache written at absolute positions, in gpt-fast's style, and the
repetition penalty both apply before choosing a token.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..errors import InvalidOptionError


class KVCache:
    """Keys and values of every layer, ``(layers, batch, heads, capacity, head_dim)``.

    ``growable`` caches double their capacity when a sequence outlives the first allocation
    (so a large token cap does not reserve memory a short answer never uses); the others
    hold a fixed number of positions and say so when asked for more.
    """

    def __init__(self, layers: int, batch: int, heads: int, capacity: int, head_dim: int, *,
                 device: torch.device | str, dtype: torch.dtype, growable: bool = False):
        shape = (layers, batch, heads, capacity, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.growable = growable

    @property
    def max_seq(self) -> int:
        return self.k.shape[3]

    def update(self, layer: int, start: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write ``k, v (B, H, T, Dh)`` at positions ``start..start+T-1``; return all up to there."""
        b, _, t, _ = k.shape
        end = start + t
        if end > self.max_seq:
            if not self.growable:
                raise InvalidOptionError(f"KV cache holds {self.max_seq} positions, {end} needed")
            pad = (0, 0, 0, max(end, 2 * self.max_seq) - self.max_seq)
            self.k, self.v = F.pad(self.k, pad), F.pad(self.v, pad)
        self.k[layer, :b, :, start:end] = k
        self.v[layer, :b, :, start:end] = v
        return self.k[layer, :b, :, :end], self.v[layer, :b, :, :end]

    def reorder(self, index: Tensor, length: int) -> None:
        """Row ``i`` becomes old row ``index[i]`` (beam reordering), for the first ``length`` positions."""
        n = index.numel()
        self.k[:, :n, :, :length] = self.k[:, index, :, :length]
        self.v[:, :n, :, :length] = self.v[:, index, :, :length]


def repetition_penalty(scores: Tensor, seen: Tensor, penalty: float) -> Tensor:
    """At ids already in the sequence (``seen (B, V)`` bool): negative scores ×penalty, others ÷penalty."""
    return torch.where(seen, torch.where(scores < 0, scores * penalty, scores / penalty), scores)
