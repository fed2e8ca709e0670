"""Conformer encoder of UnifiedVoice's speaker and emotion conditioners (wenet layout).

Input: w2v-BERT features ``(B, T, 1024)``. A stride-2 Conv2d front end halves time to
``T' = (T - 1) // 2``; then ``num_blocks`` Conformer layers (pre-LN self-attention with a
relative-position term, depthwise-conv module, feed-forward, final LayerNorm) and
``after_norm``. Output ``(B, T', output_size)``.

Two details of the released model that look like mistakes but must be kept:

* The positional term of the attention has no "rel shift": the score of query ``i`` and
  key ``j`` is ``((q_i + u)·k_j + (q_i + v)·p_j) / sqrt(d_k)`` with ``p_j`` the projected
  absolute sinusoid of position ``j``. It depends on ``j`` only.
* Lengths. UnifiedVoice passes ``lengths = x.shape[-1]`` = 1024 (the feature width, not
  the frame count). Frame ``t`` counts as padding when ``t >= lengths``, so an input of at
  most 1024 frames (20 s of 50 Hz features; the pipeline cuts prompts at 15 s = 750) is
  never masked. Longer inputs get their frames past 1023 treated as padding: after the
  front end, output frame ``j`` is masked iff input frame ``2 + 2j`` is (so ``j >= 511``).
  Masked keys are dropped from attention, masked frames are zeroed around the conv module
  and the perceiver ignores them. :func:`ConformerEncoder.forward` takes ``lengths``
  explicitly; UnifiedVoice supplies the 1024 (see ``models/gpt.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..config import ConditionModuleConfig
from ..errors import AudioError, ConfigError

PE_ROWS = 5000  # rows of the sinusoid table the release stores as ``embed.pos_enc.pe``
CONV_KERNEL = 15


def sinusoid_table(rows: int, dim: int) -> Tensor:
    """``(1, rows, dim)``: sin on even channels, cos on odd ones, wavelengths up to 10000·2π."""
    pos = torch.arange(rows, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(rows, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq)
    return table[None]


class PositionTable(nn.Module):
    """Holds the sinusoid table; the release ships its values (``pos_enc.pe``)."""

    def __init__(self, dim: int, rows: int = PE_ROWS):
        super().__init__()
        self.dim, self.rows = dim, rows
        self.register_buffer("pe", sinusoid_table(rows, dim))

    def reset_buffers(self) -> None:
        self.pe.copy_(sinusoid_table(self.rows, self.dim))


class Subsample2(nn.Module):
    """Conv2d(1→C, k3, s2) + ReLU over (time, feature), flatten ``c·F' + f``, Linear to C.

    ``(B, T, F) -> (B, T', C)`` scaled by ``sqrt(C)``, plus positions ``(1, T', C)``.
    """

    def __init__(self, in_dim: int, dim: int):
        super().__init__()
        self.dim = dim
        self.conv = nn.Sequential(nn.Conv2d(1, dim, 3, 2), nn.ReLU())
        self.out = nn.Sequential(nn.Linear(dim * ((in_dim - 1) // 2), dim))
        self.pos_enc = PositionTable(dim)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        frames = x.shape[1]
        if frames < 3:
            raise AudioError(f"the reference audio is too short: {frames} feature frames, "
                             "the conditioning encoder needs at least 3")
        x = self.conv(x[:, None])  # (B, C, T', F')
        b, c, t, f = x.shape
        if t >= self.pos_enc.rows:
            raise AudioError(f"the reference audio is too long for the conditioning encoder "
                             f"({frames} feature frames; at most {2 * self.pos_enc.rows - 1})")
        x = self.out(x.transpose(1, 2).reshape(b, t, c * f))
        return x * math.sqrt(self.dim), self.pos_enc.pe[:, :t]


class RelPosAttention(nn.Module):
    """Multi-head self-attention with learned biases u, v and a key-position term (no shift)."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.d_k = heads, dim // heads
        self.linear_q = nn.Linear(dim, dim)
        self.linear_k = nn.Linear(dim, dim)
        self.linear_v = nn.Linear(dim, dim)
        self.linear_out = nn.Linear(dim, dim)
        self.linear_pos = nn.Linear(dim, dim, bias=False)
        self.pos_bias_u = nn.Parameter(torch.zeros(heads, self.d_k))
        self.pos_bias_v = nn.Parameter(torch.zeros(heads, self.d_k))

    def forward(self, x: Tensor, pos: Tensor, mask: Tensor | None) -> Tensor:
        """``x (B, T, C)``, ``pos (1, T, C)``, ``mask (B, T)`` True = real frame, or None."""
        b, t, c = x.shape
        h, d = self.heads, self.d_k
        q = self.linear_q(x).view(b, t, h, d)
        k = self.linear_k(x).view(b, t, h, d).transpose(1, 2)
        v = self.linear_v(x).view(b, t, h, d).transpose(1, 2)
        p = self.linear_pos(pos).view(pos.shape[0], t, h, d).transpose(1, 2)
        content = torch.matmul((q + self.pos_bias_u).transpose(1, 2), k.transpose(-2, -1))
        position = torch.matmul((q + self.pos_bias_v).transpose(1, 2), p.transpose(-2, -1))
        scores = (content + position) / math.sqrt(d)
        if mask is None:
            attn = scores.softmax(dim=-1)
        else:
            drop = ~mask[:, None, None, :]
            # zeroing after the softmax also turns an all-masked row (NaN) into zeros
            attn = scores.masked_fill(drop, float("-inf")).softmax(dim=-1).masked_fill(drop, 0.0)
        out = torch.matmul(attn, v).transpose(1, 2).reshape(b, t, c)
        return self.linear_out(out)


class ConvModule(nn.Module):
    """Pointwise conv → GLU → depthwise conv (k15, same padding) → LayerNorm → SiLU → pointwise."""

    def __init__(self, dim: int, kernel: int = CONV_KERNEL):
        super().__init__()
        self.pointwise_conv1 = nn.Conv1d(dim, 2 * dim, 1)
        self.depthwise_conv = nn.Conv1d(dim, dim, kernel, padding=(kernel - 1) // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.pointwise_conv2 = nn.Conv1d(dim, dim, 1)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """``(B, T, C) -> (B, T, C)``; masked frames are zero on the way in and out."""
        x = x.transpose(1, 2)
        if mask is not None:
            x = x.masked_fill(~mask[:, None, :], 0.0)
        x = self.depthwise_conv(F.glu(self.pointwise_conv1(x), dim=1))
        x = self.pointwise_conv2(F.silu(self.norm(x.transpose(1, 2))).transpose(1, 2))
        if mask is not None:
            x = x.masked_fill(~mask[:, None, :], 0.0)
        return x.transpose(1, 2)


class FeedForward(nn.Module):
    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.w_1 = nn.Linear(dim, hidden)
        self.w_2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.w_2(F.silu(self.w_1(x)))


class ConformerLayer(nn.Module):
    """Pre-LN: attention, conv module, feed-forward (no macaron half), then ``norm_final``."""

    def __init__(self, dim: int, heads: int, ff_dim: int):
        super().__init__()
        self.self_attn = RelPosAttention(dim, heads)
        self.conv_module = ConvModule(dim)
        self.feed_forward = FeedForward(dim, ff_dim)
        self.norm_mha = nn.LayerNorm(dim)
        self.norm_conv = nn.LayerNorm(dim)
        self.norm_ff = nn.LayerNorm(dim)
        self.norm_final = nn.LayerNorm(dim)

    def forward(self, x: Tensor, pos: Tensor, mask: Tensor | None) -> Tensor:
        x = x + self.self_attn(self.norm_mha(x), pos, mask)
        x = x + self.conv_module(self.norm_conv(x), mask)
        x = x + self.feed_forward(self.norm_ff(x))
        return self.norm_final(x)


class ConformerEncoder(nn.Module):
    """``(B, T, in_dim) -> (B, T', C)`` with ``T' = (T - 1) // 2``; see the module docstring."""

    def __init__(self, in_dim: int, cfg: ConditionModuleConfig):
        super().__init__()
        if cfg.input_layer != "conv2d2":
            raise ConfigError(f"condition module input_layer {cfg.input_layer!r} is not supported "
                              "(IndexTTS-2 uses conv2d2)")
        if cfg.output_size % cfg.attention_heads:
            raise ConfigError(f"condition module output_size {cfg.output_size} is not divisible by "
                              f"attention_heads {cfg.attention_heads}")
        self.embed = Subsample2(in_dim, cfg.output_size)
        self.encoders = nn.ModuleList(
            ConformerLayer(cfg.output_size, cfg.attention_heads, cfg.linear_units)
            for _ in range(cfg.num_blocks))
        self.after_norm = nn.LayerNorm(cfg.output_size)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x (B, T, in_dim)``, ``lengths (B,)`` valid input frames (None: all).

        Returns the encoding ``(B, T', C)`` and its frame mask ``(B, T')`` (True = real).
        """
        frames = x.shape[1]
        x, pos = self.embed(x)
        if lengths is None:
            mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        else:
            valid = torch.arange(frames, device=x.device)[None, :] < lengths.to(x.device)[:, None]
            # output frame j is centred on input frames 2j..2j+2; wenet keeps the mask of 2j+2
            mask = valid[:, 2::2]
        # an all-true mask changes nothing; skipping it keeps the common path lean
        active = None if bool(mask.all()) else mask
        for block in self.encoders:
            x = block(x, pos, active)
        return self.after_norm(x), mask
