"""MaskGCT semantic codec (RepCodec), the encoder and quantizer halves IndexTTS-2 uses.

``quantize`` turns normalised w2v-BERT features into codes and the continuous quantized
embedding ``S_ref``; ``vq2emb`` turns GPT codes back into embeddings. The encoder is a Vocos
backbone (ConvNeXt blocks) plus a linear layer; the quantizer is a factorized VQ: project to
a small code space, pick the codebook row with the highest cosine similarity, project back.
The released file also holds the decoder, which inference never runs: it is not built.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import build_empty, fold_weight_norm, load_into, read_state_dict
from ..config import SemanticCodecConfig


class ConvNeXtBlock(nn.Module):
    """Depthwise conv (k7) → LayerNorm → MLP with exact GELU → layer scale, plus residual."""

    def __init__(self, dim: int, intermediate_dim: int):
        super().__init__()
        self.dwconv = nn.Conv1d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, 1e-6)
        self.pwconv1 = nn.Linear(dim, intermediate_dim)
        self.pwconv2 = nn.Linear(intermediate_dim, dim, bias=True)
        self.gamma = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        """``x (B, C, T) -> (B, C, T)``."""
        y = self.norm(self.dwconv(x).transpose(1, 2))
        y = self.gamma * self.pwconv2(F.gelu(self.pwconv1(y)))
        return x + y.transpose(1, 2)


class VocosBackbone(nn.Module):
    """``(B, C_in, T) -> (B, T, dim)``: embedding conv, LayerNorm, ConvNeXt blocks, LayerNorm."""

    def __init__(self, input_channels: int, dim: int, intermediate_dim: int, num_layers: int):
        super().__init__()
        self.embed = nn.Conv1d(input_channels, dim, 7, padding=3)
        self.norm = nn.LayerNorm(dim, 1e-6)
        self.convnext = nn.ModuleList(ConvNeXtBlock(dim, intermediate_dim) for _ in range(num_layers))
        self.final_layer_norm = nn.LayerNorm(dim, 1e-6)

    def forward(self, x: Tensor) -> Tensor:
        x = self.norm(self.embed(x).transpose(1, 2)).transpose(1, 2)
        for block in self.convnext:
            x = block(x)
        return self.final_layer_norm(x.transpose(1, 2))


class FactorizedVQ(nn.Module):
    """One factorized, L2-normalised vector quantizer (weight norm folded into the projections)."""

    def __init__(self, channels: int, n_codes: int, code_dim: int):
        super().__init__()
        self.in_project = nn.Conv1d(channels, code_dim, 1)
        self.out_project = nn.Conv1d(code_dim, channels, 1)
        self.codebook = nn.Embedding(n_codes, code_dim)

    def nearest(self, z_e: Tensor) -> Tensor:
        """Codes ``(B, T)`` of ``z_e (B, D, T)``: the codebook rows of highest cosine similarity.

        Written as the reference writes it, a squared Euclidean distance between unit vectors,
        so that near-ties resolve the same way.
        """
        e = F.normalize(z_e.transpose(1, 2).reshape(-1, z_e.shape[1]))
        c = F.normalize(self.codebook.weight)
        dist = e.pow(2).sum(1, keepdim=True) - 2 * e @ c.t() + c.pow(2).sum(1, keepdim=True).t()
        return (-dist).argmax(1).view(z_e.shape[0], -1)

    def lookup(self, codes: Tensor) -> Tensor:
        """Raw (not normalised) codebook rows, ``(B, T) -> (B, D, T)``."""
        return F.embedding(codes, self.codebook.weight).transpose(1, 2)

    def forward(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """``z (B, C, T) -> (codes (B, T), quantized (B, C, T))``."""
        z_e = self.in_project(z)  # (B, D, T)
        codes = self.nearest(z_e)
        z_q = self.lookup(codes)
        # The straight-through form of training, kept because it is not bit-equal to z_q.
        z_q = z_e + (z_q - z_e)
        return codes, self.out_project(z_q)


class ResidualVQ(nn.Module):
    def __init__(self, cfg: SemanticCodecConfig, num_quantizers: int = 1):
        super().__init__()
        self.quantizers = nn.ModuleList(
            FactorizedVQ(cfg.hidden_size, cfg.codebook_size, cfg.codebook_dim) for _ in range(num_quantizers))


class SemanticCodec(nn.Module):
    """RepCodec encoder + quantizer (keys ``encoder.*``, ``quantizer.quantizers.N.*``)."""

    def __init__(self, cfg: SemanticCodecConfig, num_quantizers: int = 1):
        super().__init__()
        self.cfg = cfg
        self.encoder = nn.Sequential(
            VocosBackbone(cfg.hidden_size, cfg.vocos_dim, cfg.vocos_intermediate_dim, cfg.vocos_num_layers),
            nn.Linear(cfg.vocos_dim, cfg.hidden_size),
        )
        self.quantizer = ResidualVQ(cfg, num_quantizers)

    def quantize(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``x (B, T, hidden)`` → ``(codes (B, T) int64, emb (B, T, hidden))``.

        ``emb`` is ``S_ref``. With several quantizers the codes are those of the first and
        ``emb`` the sum over stages, each stage quantizing the previous residual.
        """
        z = self.encoder(x.transpose(1, 2)).transpose(1, 2)  # (B, hidden, T)
        residual, total, all_codes = z, None, []
        for vq in self.quantizer.quantizers:
            codes, q = vq(residual)
            total = q if total is None else total + q
            residual = residual - q
            all_codes.append(codes)
        return all_codes[0], total.transpose(1, 2)

    def vq2emb(self, codes: Tensor) -> Tensor:
        """Embeddings of codes of the first quantizer: ``(B, m) -> (B, hidden, m)``."""
        vq = self.quantizer.quantizers[0]
        return vq.out_project(vq.lookup(codes))


def load_semantic_codec(path: str | Path, cfg: SemanticCodecConfig, device: torch.device | str = "cpu",
                        dtype: torch.dtype = torch.float32) -> SemanticCodec:
    """Load ``hf_cache/semantic_codec_model.safetensors`` (decoder keys are skipped)."""
    sd = fold_weight_norm(read_state_dict(path, keep=lambda k: not k.startswith("decoder.")))
    model = build_empty(lambda: SemanticCodec(cfg))
    load_into(model, sd, file=path)
    return model.to(device=device, dtype=dtype).eval()
