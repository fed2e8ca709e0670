"""UnifiedVoice v2: the autoregressive GPT of IndexTTS-2 and its conditioners.

Parameter names equal the keys of the released ``gpt.pth``, so loading is a plain copy.
GPT-2's projections keep the release's ``(in, out)`` weight layout (HF ``Conv1D``).

Sequence layout (B = 1 in the pipeline):

* ``conds (1, 34, D)``: the 32 speaker latents each plus the emotion vector, then
  ``speed_emb[1]``, ``speed_emb[0]``. No positional embedding.
* text: ``[0] + ids + [1]`` with ``text_pos_embedding`` rows ``0..L+1``.
* mel: start code, then codes. Generation puts the start code at mel position 0 and
  code ``c_n`` at position ``n + 1`` (position 1 is never used); the teacher-forced pass
  puts ``c_n`` at position ``n``. Both are how the release runs, and both are kept.

Every state used downstream goes through ``final_norm(gpt.ln_f(h))``: two LayerNorms.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import build_empty, load_into, read_state_dict, sub_state_dict
from ..config import GPTConfig, IndexTTSConfig
from ..errors import ConfigError, InvalidOptionError, TextError
from .conformer import ConformerEncoder
from .decoding import KVCache
from .perceiver import PerceiverResampler

FEATURE_DIM = 1024  # w2v-BERT feature width the conditioners read
EMO_DIM = 1024  # width of the emotion perceiver's single latent (fixed by the release)


def merge_emovec(speaker: Tensor, emotion: Tensor, alpha: float = 1.0) -> Tensor:
    """``speaker + alpha·(emotion − speaker)``: the reference's blend of two :meth:`UnifiedVoice.get_emovec`
    vectors ``(B, D)``, the speaker path's (22.05 kHz load resampled to 16 kHz) and the emotion
    path's (a 16 kHz load of the emotion clip, or of the speaker clip)."""
    return speaker + alpha * (emotion - speaker)


class InOutLinear(nn.Module):
    """``y = x·W + b`` with ``W (in, out)``: GPT-2's ``Conv1D`` layout, computed as it does."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: Tensor) -> Tensor:
        y = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return y.view(*x.shape[:-1], y.shape[-1])


def gelu_tanh(x: Tensor) -> Tensor:
    """GPT-2's ``gelu_new``, written out so it rounds like the reference."""
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def attention_mask(start: int, length: int, key_valid: Tensor | None, device: torch.device) -> Tensor:
    """Boolean mask ``(Bk, 1, length, start + length)``, True = may attend.

    Causal over absolute positions; ``key_valid (Bk, >= start + length)`` drops padded keys.
    A padded query still sees itself, so its (unused) state stays finite.
    """
    end = start + length
    q_pos = torch.arange(start, end, device=device)[:, None]
    k_pos = torch.arange(end, device=device)[None, :]
    allowed = k_pos <= q_pos
    if key_valid is None:
        return allowed[None, None]
    return (allowed & key_valid[:, None, None, :end]) | (k_pos == q_pos)


class CausalSelfAttention(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.c_attn = InOutLinear(dim, 3 * dim)
        self.c_proj = InOutLinear(dim, dim)

    def forward(self, x: Tensor, layer: int, cache: KVCache | None, start: int,
                mask: Tensor | None) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)
        q, k, v = (z.view(b, t, self.heads, self.head_dim).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = cache.update(layer, start, k, v)
        if mask is None:
            # no padding: plain causal attention over the prefix, or one query over all keys
            out = F.scaled_dot_product_attention(q, k, v, is_causal=t > 1)
        else:
            out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.c_proj(out.transpose(1, 2).reshape(b, t, d))


class FeedForwardGELU(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        self.c_fc = InOutLinear(dim, 4 * dim)
        self.c_proj = InOutLinear(4 * dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(gelu_tanh(self.c_fc(x)))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = FeedForwardGELU(dim)

    def forward(self, x: Tensor, layer: int, cache: KVCache | None, start: int,
                mask: Tensor | None) -> Tensor:
        x = x + self.attn(self.ln_1(x), layer, cache, start, mask)
        return x + self.mlp(self.ln_2(x))


class GPT2Stack(nn.Module):
    """The GPT-2 body (keys ``gpt.h.*``, ``gpt.ln_f``); inputs are always embeddings."""

    def __init__(self, layers: int, dim: int, heads: int):
        super().__init__()
        self.h = nn.ModuleList(TransformerBlock(dim, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(dim)

    def forward(self, x: Tensor, cache: KVCache | None = None, start: int = 0,
                key_valid: Tensor | None = None) -> Tensor:
        """``x (B, T, D)`` at absolute positions ``start..start+T-1``; returns states before ``ln_f``.

        With ``cache`` the keys/values of earlier positions come from it (and these are
        written to it). ``key_valid (B or 1, >= start+T)`` marks real (non-padding) keys.
        """
        t = x.shape[1]
        mask = None
        if key_valid is not None or (t > 1 and start > 0):
            mask = attention_mask(start, t, key_valid, x.device)
        for i, block in enumerate(self.h):
            x = block(x, i, cache, start, mask)
        return x


class PositionEmbedding(nn.Module):
    """Learned absolute positions (key ``emb``)."""

    def __init__(self, rows: int, dim: int):
        super().__init__()
        self.emb = nn.Embedding(rows, dim)

    @property
    def rows(self) -> int:
        return self.emb.num_embeddings

    def forward(self, positions: Tensor) -> Tensor:
        return self.emb(positions)


class UnifiedVoice(nn.Module):
    """IndexTTS-2's GPT with its speaker and emotion conditioners (see the module docstring)."""

    def __init__(self, cfg: GPTConfig):
        super().__init__()
        if cfg.condition_type != "conformer_perceiver":
            raise ConfigError(f"gpt.condition_type {cfg.condition_type!r} is not supported "
                              "(IndexTTS-2 uses conformer_perceiver)")
        if cfg.model_dim % cfg.heads:
            raise ConfigError(f"gpt.model_dim {cfg.model_dim} is not divisible by gpt.heads {cfg.heads}")
        self.cfg = cfg
        dim = cfg.model_dim
        spk, emo = cfg.condition_module, cfg.emo_condition_module
        self.conditioning_encoder = ConformerEncoder(FEATURE_DIM, spk)
        self.perceiver_encoder = PerceiverResampler(
            dim, spk.output_size, cfg.condition_num_latent, heads=spk.attention_heads,
            ff_mult=spk.perceiver_mult)
        self.emo_conditioning_encoder = ConformerEncoder(FEATURE_DIM, emo)
        self.emo_perceiver_encoder = PerceiverResampler(
            EMO_DIM, emo.output_size, 1, heads=emo.attention_heads, ff_mult=emo.perceiver_mult)
        self.emovec_layer = nn.Linear(EMO_DIM, dim)
        self.emo_layer = nn.Linear(dim, dim)
        self.speed_emb = nn.Embedding(2, dim)
        self.text_embedding = nn.Embedding(cfg.number_text_tokens + 1, dim)
        self.text_pos_embedding = PositionEmbedding(cfg.max_text_tokens + 2, dim)
        self.mel_embedding = nn.Embedding(cfg.number_mel_codes, dim)
        self.mel_pos_embedding = PositionEmbedding(
            cfg.max_mel_tokens + 2 + cfg.max_conditioning_inputs, dim)
        self.gpt = GPT2Stack(cfg.layers, dim, cfg.heads)
        self.final_norm = nn.LayerNorm(dim)
        self.mel_head = nn.Linear(dim, cfg.number_mel_codes)

    # -- conditioning ---------------------------------------------------------------------

    @staticmethod
    def _release_lengths(x: Tensor) -> Tensor:
        # The release passes the feature width (1024) as every input's length; see conformer.py.
        return torch.full((x.shape[0],), x.shape[-1], dtype=torch.long, device=x.device)

    def get_conditioning(self, spk_cond_emb: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Speaker latents: ``spk_cond_emb (B, T, 1024) -> (B, 32, D)``.

        ``lengths (B,)`` valid frames; None reproduces the release (1024 for every input).
        """
        x, mask = self.conditioning_encoder(
            spk_cond_emb, self._release_lengths(spk_cond_emb) if lengths is None else lengths)
        return self.perceiver_encoder(x, _latent_key_mask(mask, self.cfg.condition_num_latent))

    def get_emovec(self, emo_cond_emb: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Emotion vector: ``emo_cond_emb (B, T, 1024) -> (B, D)``."""
        x, mask = self.emo_conditioning_encoder(
            emo_cond_emb, self._release_lengths(emo_cond_emb) if lengths is None else lengths)
        latent = self.emo_perceiver_encoder(x, _latent_key_mask(mask, 1))[:, 0]
        return self.emo_layer(self.emovec_layer(latent))

    def conditioning(self, spk_latent: Tensor, emovec: Tensor) -> Tensor:
        """``spk_latent (B, 32, D)``, ``emovec (B, D)`` -> ``conds (B, 34, D)``."""
        b = spk_latent.shape[0]
        speed = self.speed_emb.weight
        return torch.cat([spk_latent + emovec[:, None], speed[1].expand(b, 1, -1),
                          speed[0].expand(b, 1, -1)], dim=1)

    # -- sequence assembly ----------------------------------------------------------------

    def _text_embeddings(self, ids: Tensor) -> Tensor:
        """``ids (L,)`` -> embeddings ``(L + 2, D)`` of ``[0] + ids + [1]`` with positions."""
        cfg = self.cfg
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) > cfg.number_text_tokens):
            raise TextError(f"text token ids must lie in [0, {cfg.number_text_tokens}]")
        if ids.numel() + 2 > self.text_pos_embedding.rows:
            raise TextError(f"a text segment has {ids.numel()} tokens; this model takes at most "
                            f"{self.text_pos_embedding.rows - 2} per segment")
        full = torch.cat([ids.new_tensor([cfg.start_text_token]), ids, ids.new_tensor([cfg.stop_text_token])])
        pos = torch.arange(full.numel(), device=ids.device)
        return self.text_embedding(full) + self.text_pos_embedding(pos)

    def _kept_text(self, text_ids: Tensor) -> Tensor:
        ids = _single(text_ids, "text_ids").long()
        return ids[(ids != self.cfg.start_text_token) & (ids != self.cfg.stop_text_token)]

    def prefix_padding(self, text_ids: Tensor) -> int:
        """How many zero rows lead the generation prefix: the count of ids 0/1 in ``text_ids``."""
        return _single(text_ids, "text_ids").numel() - self._kept_text(text_ids).numel()

    def prefix_embeddings(self, conds: Tensor, text_ids: Tensor) -> Tensor:
        """Generation prefix ``(1, P, D)`` with ``P = 34 + L + 2``.

        ``conds (1, 34, D)``, ``text_ids (1, L)``.

        Ids equal to the start/stop text tokens (0/1) are dropped from the text and the
        prefix is left-padded with zero rows to keep length ``P``; those rows must be masked
        as keys (``prefix_padding`` says how many).
        """
        text = self._text_embeddings(self._kept_text(text_ids)).to(conds.dtype)
        pad = self.prefix_padding(text_ids)
        rows = [conds[0], text]
        if pad:
            rows.insert(0, conds.new_zeros(pad, conds.shape[-1]))
        return torch.cat(rows)[None]

    def mel_step_embedding(self, tokens: Tensor, mel_pos: int) -> Tensor:
        """``tokens (B,)`` at mel position ``mel_pos`` -> ``(B, 1, D)``."""
        pos = torch.tensor([mel_pos], device=tokens.device)
        return (self.mel_embedding(tokens) + self.mel_pos_embedding(pos))[:, None]

    def start_embedding(self, batch: int = 1) -> Tensor:
        """The start code at mel position 0 -> ``(batch, 1, D)``."""
        device = self.mel_embedding.weight.device
        start = torch.full((batch,), self.cfg.start_mel_token, dtype=torch.long, device=device)
        return self.mel_step_embedding(start, 0)

    # -- transformer and heads ------------------------------------------------------------

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        """A KV cache for ``batch`` sequences of up to ``capacity`` positions, on the GPT's device/dtype."""
        attn, w = self.gpt.h[0].attn, self.mel_head.weight
        return KVCache(len(self.gpt.h), batch, attn.heads, capacity, attn.head_dim, device=w.device, dtype=w.dtype)

    def transformer(self, x: Tensor, cache: KVCache | None = None, start: int = 0,
                    key_valid: Tensor | None = None) -> Tensor:
        """GPT-2 body over embeddings ``x (B, T, D)`` -> hidden states ``(B, T, D)`` before ``ln_f``."""
        return self.gpt(x, cache, start, key_valid)

    def norm(self, hidden: Tensor) -> Tensor:
        """``final_norm(ln_f(hidden))``."""
        return self.final_norm(self.gpt.ln_f(hidden))

    def logits(self, hidden: Tensor) -> Tensor:
        """Hidden states before ``ln_f`` ``(…, D)`` -> code logits ``(…, number_mel_codes)``."""
        return self.mel_head(self.norm(hidden))

    def latent(self, conds: Tensor, text_ids: Tensor, codes: Tensor) -> Tensor:
        """Teacher-forced pass: ``conds (1, 34, D)``, ``text_ids (1, L)``, ``codes (1, m)`` -> ``(1, m, D)``.

        The text is used as given (ids 0/1 kept). The mel part is ``[start, c1..cm, stop]``
        at positions ``0..m+1``; the result is the normalised states at inputs
        ``start, c1..c(m-1)``, i.e. the ones that predict ``c1..cm``.
        """
        cfg = self.cfg
        c = _single(codes, "codes").long()
        m = c.numel()
        if m + 2 > self.mel_pos_embedding.rows:
            raise InvalidOptionError(f"{m} codes are more than this model's mel positions allow "
                                     f"({self.mel_pos_embedding.rows - 2})")
        if m and (int(c.min()) < 0 or int(c.max()) >= cfg.number_mel_codes):
            raise InvalidOptionError(f"codes must lie in [0, {cfg.number_mel_codes - 1}]")
        text = self._text_embeddings(_single(text_ids, "text_ids").long()).to(conds.dtype)
        mel = torch.cat([c.new_tensor([cfg.start_mel_token]), c, c.new_tensor([cfg.stop_mel_token])])
        mel = self.mel_embedding(mel) + self.mel_pos_embedding(torch.arange(m + 2, device=c.device))
        x = torch.cat([conds, text[None], mel[None].to(conds.dtype)], dim=1)
        h = self.transformer(x)
        return self.norm(h[:, -(m + 2):-2])


def _latent_key_mask(frame_mask: Tensor, n_latents: int) -> Tensor | None:
    """Perceiver key mask ``[latents ‖ frames]``; None when no frame is masked."""
    if bool(frame_mask.all()):
        return None
    ones = frame_mask.new_ones(frame_mask.shape[0], n_latents)
    return torch.cat([ones, frame_mask], dim=1)


def _single(x: Tensor, name: str) -> Tensor:
    if x.dim() == 2 and x.shape[0] == 1:
        return x[0]
    if x.dim() == 1:
        return x
    raise InvalidOptionError(f"{name} must have shape (1, L), got {tuple(x.shape)}")


def load_gpt(model_dir: str | Path, cfg: IndexTTSConfig, *, device: str | torch.device = "cpu",
             dtype: torch.dtype = torch.float32) -> UnifiedVoice:
    """Load ``cfg.gpt_checkpoint`` (plain state dict or ``{"model": sd}``) into :class:`UnifiedVoice`.

    Keys the model has no use for (``gpt.wte.*``, attention mask buffers, ``text_head.*``,
    ``inference_model.*``) are skipped. A missing key or a wrong shape is a
    :class:`~indextts_core.errors.CheckpointError` naming the file and key.
    """
    path = Path(model_dir) / cfg.gpt_checkpoint
    sd = read_state_dict(path)
    if any(k.startswith("model.") for k in sd):
        sd = sub_state_dict(sd, "model")
    model = build_empty(lambda: UnifiedVoice(cfg.gpt), device=device, dtype=dtype)
    optional = [k for k in model.state_dict() if k.endswith("pos_enc.pe")]
    load_into(model, sd, file=path, optional=optional)
    if dtype == torch.bfloat16 and torch.device(device).type == "cpu":
        # oneDNN's bfloat16 products read W row by row as (out, in) about 1.6x faster than as
        # (in, out) (measured with AVX-512 BF16): the same values, stored transposed in memory.
        for m in model.modules():
            if isinstance(m, InOutLinear):
                m.weight = nn.Parameter(m.weight.t().contiguous().t())
    return model.eval().requires_grad_(False)
