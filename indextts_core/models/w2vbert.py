"""w2v-BERT 2.0 encoder (facebook/w2v-bert-2.0), cut after the layer IndexTTS-2 reads.

IndexTTS-2 conditions on ``hidden_states[17]`` of ``Wav2Vec2BertModel``: the output of the
first 17 conformer layers, normalised with ``wav2vec2bert_stats.pt``. Only those layers are
built and loaded; the adapter, the remaining layers and ``masked_spec_embed`` are skipped.

Each layer is a conformer block: half-step FFN, self-attention with a learned
relative-key bias (distances clamped to [-64, +8]), a causal depthwise convolution module,
a second half-step FFN and a final LayerNorm.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .. import layout
from ..checkpoint import build_empty, load_into, read_state_dict
from ..config import IndexTTSConfig, from_mapping, load_json
from ..errors import CheckpointError, ConfigError

# IndexTTS-2 takes hidden_states[17], the output of layers 0..16.
INDEXTTS_LAYERS = 17


@dataclass
class W2VBertConfig:
    """The fields of w2v-BERT's ``config.json`` the encoder uses (defaults: the released model)."""

    hidden_size: int = 1024
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    feature_projection_input_dim: int = 160
    layer_norm_eps: float = 1e-5
    conv_depthwise_kernel_size: int = 31
    left_max_position_embeddings: int = 64
    right_max_position_embeddings: int = 8
    hidden_act: str = "swish"
    position_embeddings_type: str = "relative_key"

    @classmethod
    def from_json(cls, path: str | Path) -> W2VBertConfig:
        cfg = from_mapping(cls, load_json(path), str(path))
        if cfg.position_embeddings_type != "relative_key":
            raise ConfigError(f"{path}: position_embeddings_type {cfg.position_embeddings_type!r} is not "
                              "supported (w2v-bert-2.0 uses 'relative_key')")
        if cfg.hidden_act not in ("swish", "silu"):
            raise ConfigError(f"{path}: hidden_act {cfg.hidden_act!r} is not supported (expected swish)")
        if cfg.hidden_size % cfg.num_attention_heads:
            raise ConfigError(f"{path}: hidden_size {cfg.hidden_size} is not a multiple of "
                              f"num_attention_heads {cfg.num_attention_heads}")
        return cfg


class FeatureProjection(nn.Module):
    def __init__(self, cfg: W2VBertConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(cfg.feature_projection_input_dim, eps=cfg.layer_norm_eps)
        self.projection = nn.Linear(cfg.feature_projection_input_dim, cfg.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.projection(self.layer_norm(x))


class FeedForward(nn.Module):
    def __init__(self, cfg: W2VBertConfig):
        super().__init__()
        self.intermediate_dense = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.output_dense = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.output_dense(F.silu(self.intermediate_dense(x)))


class RelativeKeyAttention(nn.Module):
    """Multi-head self-attention plus a query-dependent bias ``q · E[clamp(j − i) + left] / √d``."""

    def __init__(self, cfg: W2VBertConfig):
        super().__init__()
        d = cfg.hidden_size
        self.n_heads = cfg.num_attention_heads
        self.head_dim = d // cfg.num_attention_heads
        self.left = cfg.left_max_position_embeddings
        self.right = cfg.right_max_position_embeddings
        self.linear_q = nn.Linear(d, d)
        self.linear_k = nn.Linear(d, d)
        self.linear_v = nn.Linear(d, d)
        self.linear_out = nn.Linear(d, d)
        self.distance_embedding = nn.Embedding(self.left + self.right + 1, self.head_dim)

    def forward(self, x: Tensor, key_bias: Tensor | None) -> Tensor:
        """``x (B, T, C)``; ``key_bias (B, 1, 1, T)`` additive, very negative on padded keys."""
        b, t, _ = x.shape
        q, k, v = (proj(x).view(b, t, self.n_heads, self.head_dim).transpose(1, 2)
                   for proj in (self.linear_q, self.linear_k, self.linear_v))
        pos = torch.arange(t, device=x.device)
        distance = (pos[None, :] - pos[:, None]).clamp(-self.left, self.right) + self.left  # (T, T)
        # q·E for the 73 distinct distances, then spread over (i, j): cheaper than a (T, T, d) gather.
        per_distance = torch.matmul(q, self.distance_embedding.weight.to(q.dtype).T)  # (B, H, T, 73)
        bias = torch.gather(per_distance, 3, distance.expand(b, self.n_heads, t, t))
        bias = bias / math.sqrt(self.head_dim)
        if key_bias is not None:
            bias = bias + key_bias
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias, scale=1 / math.sqrt(self.head_dim))
        return self.linear_out(out.transpose(1, 2).reshape(b, t, -1))


class ConvModule(nn.Module):
    """LayerNorm → pointwise conv + GLU → causal depthwise conv → LayerNorm → SiLU → pointwise conv."""

    def __init__(self, cfg: W2VBertConfig):
        super().__init__()
        d, k = cfg.hidden_size, cfg.conv_depthwise_kernel_size
        self.layer_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.pointwise_conv1 = nn.Conv1d(d, 2 * d, 1, bias=False)
        self.depthwise_conv = nn.Conv1d(d, d, k, groups=d, bias=False)
        self.depthwise_layer_norm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)
        self.pointwise_conv2 = nn.Conv1d(d, d, 1, bias=False)

    def forward(self, x: Tensor, pad_mask: Tensor | None) -> Tensor:
        """``x (B, T, C)``; ``pad_mask (B, T, 1)`` True on padded frames, which must not leak."""
        x = self.layer_norm(x)
        if pad_mask is not None:
            x = x.masked_fill(pad_mask, 0.0)
        x = F.glu(self.pointwise_conv1(x.transpose(1, 2)), dim=1)
        x = F.pad(x, (self.depthwise_conv.kernel_size[0] - 1, 0))  # causal: all padding on the left
        x = self.depthwise_layer_norm(self.depthwise_conv(x).transpose(1, 2))
        x = F.silu(x.transpose(1, 2))
        return self.pointwise_conv2(x).transpose(1, 2)


class ConformerLayer(nn.Module):
    def __init__(self, cfg: W2VBertConfig):
        super().__init__()
        d, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.ffn1_layer_norm = nn.LayerNorm(d, eps=eps)
        self.ffn1 = FeedForward(cfg)
        self.self_attn_layer_norm = nn.LayerNorm(d, eps=eps)
        self.self_attn = RelativeKeyAttention(cfg)
        self.conv_module = ConvModule(cfg)
        self.ffn2_layer_norm = nn.LayerNorm(d, eps=eps)
        self.ffn2 = FeedForward(cfg)
        self.final_layer_norm = nn.LayerNorm(d, eps=eps)

    def forward(self, x: Tensor, key_bias: Tensor | None, pad_mask: Tensor | None) -> Tensor:
        x = self.ffn1(self.ffn1_layer_norm(x)) * 0.5 + x
        x = self.self_attn(self.self_attn_layer_norm(x), key_bias) + x
        x = x + self.conv_module(x, pad_mask)
        x = self.ffn2(self.ffn2_layer_norm(x)) * 0.5 + x
        return self.final_layer_norm(x)


class Encoder(nn.Module):
    def __init__(self, cfg: W2VBertConfig, num_layers: int):
        super().__init__()
        self.layers = nn.ModuleList(ConformerLayer(cfg) for _ in range(num_layers))


class W2VBert(nn.Module):
    """The first ``num_layers`` layers of w2v-BERT 2.0 plus IndexTTS-2's feature normalisation.

    ``forward(features (B, T, 160), mask (B, T)) -> (B, T, hidden)``: the normalised
    ``hidden_states[num_layers]`` (``spk_cond_emb`` / ``emo_cond_emb``).
    """

    def __init__(self, cfg: W2VBertConfig, num_layers: int = INDEXTTS_LAYERS):
        super().__init__()
        if not 1 <= num_layers <= cfg.num_hidden_layers:
            raise ConfigError(f"w2v-BERT has {cfg.num_hidden_layers} layers; cannot use {num_layers}")
        self.cfg = cfg
        self.num_layers = num_layers
        self.feature_projection = FeatureProjection(cfg)
        self.encoder = Encoder(cfg, num_layers)
        # From wav2vec2bert_stats.pt; not part of the w2v-BERT file, so not persistent.
        self.register_buffer("feat_mean", torch.zeros(cfg.hidden_size), persistent=False)
        self.register_buffer("feat_std", torch.ones(cfg.hidden_size), persistent=False)

    def hidden_states(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        """Raw output of the last kept layer, ``(B, T, hidden)``. ``mask`` is 1 on real frames."""
        x = self.feature_projection(features.to(self.feat_mean.dtype))
        key_bias = pad_mask = None
        if mask is not None:
            pad_mask = ~mask.bool().unsqueeze(-1)
            x = x.masked_fill(pad_mask, 0.0)
            key_bias = (1.0 - mask[:, None, None, :].to(x.dtype)) * torch.finfo(x.dtype).min
        for layer in self.encoder.layers:
            x = layer(x, key_bias, pad_mask)
        return x

    def forward(self, features: Tensor, mask: Tensor | None = None) -> Tensor:
        return (self.hidden_states(features, mask) - self.feat_mean) / self.feat_std

    def set_stats(self, mean: Tensor, var: Tensor) -> None:
        """Install IndexTTS-2's per-channel statistics: ``forward`` returns ``(h − mean) / sqrt(var)``."""
        # assigned, not copied: after a meta-device build (build_empty) the buffers have no storage
        self.feat_mean = mean.to(self.feat_mean.dtype).clone()
        self.feat_std = torch.sqrt(var.float()).to(self.feat_std.dtype)


def load_w2vbert_stats(path: str | Path, hidden_size: int) -> tuple[Tensor, Tensor]:
    """``(mean, var)`` from ``wav2vec2bert_stats.pt``, each ``(hidden_size,)`` float32."""
    sd = read_state_dict(path)
    out = []
    for key in ("mean", "var"):
        if key not in sd:
            raise CheckpointError(f"{path}: missing key {key}")
        t = sd[key].float().reshape(-1)
        if t.numel() != hidden_size:
            raise CheckpointError(f"{path}: key {key} has shape {tuple(sd[key].shape)}, "
                                  f"expected ({hidden_size},)")
        out.append(t)
    return out[0], out[1]


def load_w2vbert(model_dir: str | Path, cfg: IndexTTSConfig, *, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32, num_layers: int = INDEXTTS_LAYERS) -> W2VBert:
    """Build the encoder from an IndexTTS-2 model folder.

    Reads ``hf_cache/w2v-bert-2.0/config.json`` and ``model.safetensors`` (as released,
    24 layers; only layers ``0..num_layers-1`` are read) and ``cfg.w2v_stat``.
    """
    model_dir = Path(model_dir)
    w2v_dir = layout.path_of(model_dir, layout.W2V_BERT_DIR)
    w2v_cfg = W2VBertConfig.from_json(w2v_dir / "config.json")
    model = build_empty(lambda: W2VBert(w2v_cfg, num_layers), device=device, dtype=dtype)
    weights = w2v_dir / "model.safetensors"

    def wanted(key: str) -> bool:
        if key.startswith("feature_projection."):
            return True
        if key.startswith("encoder.layers."):
            return int(key.split(".")[2]) < num_layers
        return False

    load_into(model, read_state_dict(weights, keep=wanted), file=weights)
    mean, var = load_w2vbert_stats(model_dir / cfg.w2v_stat, w2v_cfg.hidden_size)
    model.set_stats(mean, var)
    return model.eval()
