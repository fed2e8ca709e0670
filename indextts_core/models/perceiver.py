"""Perceiver resampler: a fixed set of learned latents reads a variable-length context.

UnifiedVoice uses two: 32 latents of width 1280 over the speaker conformer output, and a
single 1024-wide latent over the emotion conformer output. Per layer the latents attend
to ``[latents ‖ context]`` (the keys include the latents themselves), then a GEGLU
feed-forward; both residual. The output norm is ``l2_normalize(x)·sqrt(dim)·gamma``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class CrossAttention(nn.Module):
    """Queries from the latents, keys/values from ``[latents ‖ context]``; no biases."""

    def __init__(self, dim: int, heads: int, dim_head: int):
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, latents: Tensor, context: Tensor, key_mask: Tensor | None) -> Tensor:
        """``latents (B, N, D)``, ``context (B, T, D)``, ``key_mask (B, N + T)`` True = keep."""
        b, n, _ = latents.shape
        h, d = self.heads, self.dim_head
        q = self.to_q(latents).view(b, n, h, d).transpose(1, 2)
        k, v = self.to_kv(torch.cat([latents, context], dim=1)).chunk(2, dim=-1)
        k = k.reshape(b, -1, h, d).transpose(1, 2)
        v = v.reshape(b, -1, h, d).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-2, -1)) * d**-0.5
        if key_mask is not None:
            # the largest finite negative (not -inf), as the release does
            scores = scores.masked_fill(~key_mask[:, None, None, :], -torch.finfo(scores.dtype).max)
        out = torch.matmul(scores.softmax(dim=-1), v)
        return self.to_out(out.transpose(1, 2).reshape(b, n, h * d))


class GEGLU(nn.Module):
    """Split in two halves ``(value, gate)``; ``value · gelu(gate)`` (erf GELU)."""

    def forward(self, x: Tensor) -> Tensor:
        value, gate = x.chunk(2, dim=-1)
        return F.gelu(gate) * value


def geglu_feed_forward(dim: int, mult: float) -> nn.Sequential:
    """Keys ``0`` (dim → 2·inner), ``2`` (inner → dim); ``inner = int(dim·mult·2/3)``."""
    inner = int(dim * mult * 2 / 3)
    return nn.Sequential(nn.Linear(dim, 2 * inner), GEGLU(), nn.Linear(inner, dim))


class L2Norm(nn.Module):
    """``normalize(x)·sqrt(dim)·gamma`` (no mean-square epsilon form)."""

    def __init__(self, dim: int):
        super().__init__()
        self.scale = dim**0.5
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return F.normalize(x, dim=-1) * self.scale * self.gamma


class PerceiverResampler(nn.Module):
    """``(B, T, dim_context) -> (B, num_latents, dim)``.

    ``mask (B, num_latents + T)`` marks the keys to keep (latents first), or None for all.
    """

    def __init__(self, dim: int, dim_context: int, num_latents: int, heads: int,
                 ff_mult: float, depth: int = 2, dim_head: int = 64):
        super().__init__()
        self.proj_context = nn.Identity() if dim_context == dim else nn.Linear(dim_context, dim)
        self.latents = nn.Parameter(torch.zeros(num_latents, dim))
        self.layers = nn.ModuleList(
            nn.ModuleList([CrossAttention(dim, heads, dim_head), geglu_feed_forward(dim, ff_mult)])
            for _ in range(depth))
        self.norm = L2Norm(dim)

    def forward(self, context: Tensor, mask: Tensor | None = None) -> Tensor:
        context = self.proj_context(context)
        x = self.latents.expand(context.shape[0], -1, -1)
        for attention, feed_forward in self.layers:
            x = x + attention(x, context, mask)
            x = x + feed_forward(x)
        return self.norm(x)
