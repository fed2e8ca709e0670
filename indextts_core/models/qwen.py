"""Qwen3 decoder, its tokenizer and chat prompt, for IndexTTS-2's text-emotion model.

The release ships a LoRA-merged Qwen3-0.6B (``qwen0.6bemo4-merge/``) that answers a chat
prompt with the emotion intensities of a sentence. The reference runs it through
``transformers`` in float16 with greedy decoding; this module is a self-contained forward
pass that performs the same operations in the same order and precision, so the generated
ids match on the same weights:

- RMSNorm computed in float32 and cast back before the gain, on the hidden size and, for
  q/k, on the head dim (before RoPE);
- rotate-half RoPE whose cos/sin are computed in float32 and cast to the model dtype;
- grouped-query attention through ``scaled_dot_product_attention`` over exactly the keys
  seen so far (causal in the prefill, unmasked in single-token steps);
- SwiGLU MLP; logits of the last position only; an lm_head tied to the embedding.

Weights load unchanged from ``model.safetensors`` (parameter names equal its keys).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..checkpoint import build_empty, load_into, read_state_dict
from ..config import from_mapping, load_json
from ..errors import CheckpointError, ConfigError, ModelNotFoundError
from . import decoding
from .decoding import KVCache

log = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
GENERATION_CONFIG_FILE = "generation_config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
CHAT_TEMPLATE_FILE = "chat_template.jinja"


@dataclass
class QwenConfig:
    """The fields of a Qwen3 ``config.json`` the forward pass uses."""

    vocab_size: int
    hidden_size: int
    intermediate_size: int
    num_hidden_layers: int
    num_attention_heads: int
    num_key_value_heads: int
    # Qwen3's own config class defaults head_dim to 128 (not hidden / heads) when absent.
    head_dim: int = 128
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None
    max_position_embeddings: int = 32768
    attention_bias: bool = False
    hidden_act: str = "silu"
    tie_word_embeddings: bool = False
    use_sliding_window: bool = False
    model_type: str = "qwen3"
    eos_token_id: int | list[int] | None = None

    def __post_init__(self) -> None:
        if self.hidden_act != "silu":
            raise ConfigError(f"Qwen config: hidden_act {self.hidden_act!r} is not supported (only 'silu')")
        scaling = self.rope_scaling or {}
        if scaling.get("rope_type", scaling.get("type", "default")) != "default":
            raise ConfigError(f"Qwen config: rope_scaling {self.rope_scaling} is not supported")
        if self.use_sliding_window:
            raise ConfigError("Qwen config: sliding-window attention is not supported")
        if self.num_attention_heads % self.num_key_value_heads:
            raise ConfigError(f"Qwen config: {self.num_attention_heads} attention heads are not a multiple "
                              f"of {self.num_key_value_heads} key/value heads")

    @classmethod
    def from_file(cls, path: str | Path) -> QwenConfig:
        data = load_json(path)
        if data.get("model_type", "qwen3") != "qwen3":
            log.warning("%s: model_type %r, expected 'qwen3'", path, data.get("model_type"))
        return from_mapping(cls, data, str(path))


@dataclass
class GenerationSettings:
    """What ``generation_config.json`` asks of greedy decoding.

    ``eos_ids`` falls back to ``config.json``'s ``eos_token_id`` (as transformers does when
    the generation config is derived from the model config). Sampling settings are not
    supported: the reference's file asks for none, and emotion analysis must be repeatable.
    """

    eos_ids: tuple[int, ...] = ()
    repetition_penalty: float = 1.0

    @classmethod
    def from_folder(cls, folder: str | Path, cfg: QwenConfig) -> GenerationSettings:
        path = Path(folder) / GENERATION_CONFIG_FILE
        data = load_json(path) if path.is_file() else {}
        eos = data.get("eos_token_id", cfg.eos_token_id)
        eos_ids = () if eos is None else tuple(int(e) for e in ([eos] if isinstance(eos, int) else eos))
        if data.get("do_sample"):
            log.warning("%s asks for sampling; the emotion model decodes greedily", path)
        return cls(eos_ids=eos_ids, repetition_penalty=float(data.get("repetition_penalty") or 1.0))


class RMSNorm(nn.Module):
    """``weight · x / rms(x)``, the statistics in float32 whatever the input dtype."""

    def __init__(self, dim: int, eps: float, device=None, dtype=None):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim, device=device, dtype=dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.float()
        h = h * torch.rsqrt(h.pow(2).mean(-1, keepdim=True) + self.eps)
        # The reference rounds to the input dtype before applying the gain.
        return self.weight * h.to(x.dtype)


def rope_inv_freq(cfg: QwenConfig, device=None) -> torch.Tensor:
    """``θ^(-2i/D)`` for i < D/2, float32 (also in a float16 model)."""
    exponent = torch.arange(0, cfg.head_dim, 2, device=device).float() / cfg.head_dim
    return 1.0 / (cfg.rope_theta ** exponent)


def rope_tables(inv_freq: torch.Tensor, positions: torch.Tensor, dtype: torch.dtype
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin ``(T, head_dim)`` for rotate-half RoPE, computed in float32 then cast."""
    freqs = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat((freqs, freqs), dim=-1)
    return angles.cos().to(dtype), angles.sin().to(dtype)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x ``(B, H, T, D)`` rotated by positions whose tables are ``(T, D)``."""
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    def __init__(self, cfg: QwenConfig, device=None, dtype=None):
        super().__init__()
        kw = {"bias": cfg.attention_bias, "device": device, "dtype": dtype}
        self.n_heads, self.n_kv_heads, self.head_dim = (cfg.num_attention_heads, cfg.num_key_value_heads,
                                                        cfg.head_dim)
        self.q_proj = nn.Linear(cfg.hidden_size, self.n_heads * self.head_dim, **kw)
        self.k_proj = nn.Linear(cfg.hidden_size, self.n_kv_heads * self.head_dim, **kw)
        self.v_proj = nn.Linear(cfg.hidden_size, self.n_kv_heads * self.head_dim, **kw)
        self.o_proj = nn.Linear(self.n_heads * self.head_dim, cfg.hidden_size, **kw)
        self.q_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps, device, dtype)
        self.k_norm = RMSNorm(self.head_dim, cfg.rms_norm_eps, device, dtype)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, cache: KVCache, layer: int,
                start: int) -> torch.Tensor:
        """x ``(B, T, C)`` at positions ``start..start+T-1`` → ``(B, T, C)``."""
        B, T, _ = x.shape
        q = self.q_norm(self.q_proj(x).view(B, T, self.n_heads, self.head_dim)).transpose(1, 2)
        k = self.k_norm(self.k_proj(x).view(B, T, self.n_kv_heads, self.head_dim)).transpose(1, 2)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        k, v = cache.update(layer, start, k, v)
        groups = self.n_heads // self.n_kv_heads
        # Keys/values repeated per query group (not SDPA's enable_gqa) and made contiguous,
        # as the reference does, so the same attention kernel runs on the same layout.
        k = k.repeat_interleave(groups, dim=1).contiguous()
        v = v.repeat_interleave(groups, dim=1).contiguous()
        mask = None
        if T > 1 and start > 0:
            mask = torch.ones(T, start + T, dtype=torch.bool, device=x.device).tril(diagonal=start)
        y = F.scaled_dot_product_attention(q.contiguous(), k, v, attn_mask=mask,
                                           is_causal=T > 1 and start == 0, scale=self.head_dim ** -0.5)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, -1))


class MLP(nn.Module):
    def __init__(self, cfg: QwenConfig, device=None, dtype=None):
        super().__init__()
        kw = {"bias": False, "device": device, "dtype": dtype}
        self.gate_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, **kw)
        self.up_proj = nn.Linear(cfg.hidden_size, cfg.intermediate_size, **kw)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.hidden_size, **kw)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: QwenConfig, device=None, dtype=None):
        super().__init__()
        self.self_attn = Attention(cfg, device, dtype)
        self.mlp = MLP(cfg, device, dtype)
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device, dtype)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device, dtype)

    def forward(self, x, cos, sin, cache: KVCache, layer: int, start: int) -> torch.Tensor:
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, cache, layer, start)
        return x + self.mlp(self.post_attention_layernorm(x))


class QwenBody(nn.Module):
    """Embedding, decoder layers and final norm (the checkpoint's ``model.*`` keys)."""

    def __init__(self, cfg: QwenConfig, device=None, dtype=None):
        super().__init__()
        self.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.hidden_size, device=device, dtype=dtype)
        self.layers = nn.ModuleList(DecoderLayer(cfg, device, dtype) for _ in range(cfg.num_hidden_layers))
        self.norm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps, device, dtype)


class Qwen3(nn.Module):
    """Qwen3 causal LM. Call :meth:`new_cache`, then :meth:`forward` with growing ``start``."""

    def __init__(self, cfg: QwenConfig, tied: bool, device=None, dtype=None):
        super().__init__()
        self.cfg = cfg
        self.model = QwenBody(cfg, device, dtype)
        self.lm_head = None if tied else nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False,
                                                   device=device, dtype=dtype)
        self.register_buffer("inv_freq", rope_inv_freq(cfg, device), persistent=False)

    def reset_buffers(self) -> None:
        # float32 whatever the model dtype, as in the reference.
        self.inv_freq = rope_inv_freq(self.cfg, self.device)

    @property
    def device(self) -> torch.device:
        return self.model.embed_tokens.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.embed_tokens.weight.dtype

    def new_cache(self, batch: int, capacity: int) -> KVCache:
        """A KV cache that starts at ``capacity`` positions and grows when a sequence outlives it."""
        cfg = self.cfg
        return KVCache(cfg.num_hidden_layers, batch, cfg.num_key_value_heads, capacity, cfg.head_dim,
                       device=self.device, dtype=self.dtype, growable=True)

    def forward(self, ids: torch.Tensor, start: int, cache: KVCache) -> torch.Tensor:
        """ids ``(B, T)`` at positions ``start..start+T-1`` → logits of the last position ``(B, V)``.

        The logits stay in the model dtype; only the last position goes through the head,
        as in the reference's generation loop.
        """
        x = self.model.embed_tokens(ids)
        positions = torch.arange(start, start + ids.shape[1], device=ids.device)
        cos, sin = rope_tables(self.inv_freq, positions, x.dtype)
        for i, layer in enumerate(self.model.layers):
            x = layer(x, cos, sin, cache, i, start)
        h = self.model.norm(x[:, -1:])
        weight = self.model.embed_tokens.weight if self.lm_head is None else self.lm_head.weight
        return F.linear(h, weight)[:, 0]


@dataclass
class GenerationOutput:
    """``ids (1, N)`` generated after the prompt (an eos included); ``step_logits (N, V)``
    float32 when kept, else None."""

    ids: torch.Tensor
    step_logits: torch.Tensor | None = None


@torch.inference_mode()
def generate_greedy(model: Qwen3, prompt: torch.Tensor, max_new_tokens: int, eos_ids: tuple[int, ...] = (),
                    repetition_penalty: float = 1.0, keep_logits: bool = False) -> GenerationOutput:
    """Greedy continuation of ``prompt (1, T)`` until an eos id or ``max_new_tokens``.

    Scores are the float32 copies of the model-dtype logits; ties resolve to the lowest id.
    """
    if prompt.shape[0] != 1:
        raise ValueError("generate_greedy decodes one sequence at a time")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    prompt = prompt.to(model.device)
    T = prompt.shape[1]
    # Start small; the cache grows if the answer turns out long.
    cache = model.new_cache(1, T + min(max_new_tokens, 256))
    out: list[torch.Tensor] = []
    kept: list[torch.Tensor] = []
    logits = model(prompt, 0, cache)  # the whole prompt from position 0
    seen = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device).scatter_(1, prompt, True)
    for step in range(max_new_tokens):
        scores = logits.float()
        if keep_logits:
            kept.append(scores[0].cpu())
        if repetition_penalty != 1.0:
            scores = decoding.repetition_penalty(scores, seen, repetition_penalty)
        token = scores.argmax(dim=-1, keepdim=True)
        out.append(token)
        seen[0, token[0]] = True
        if int(token) in eos_ids or step == max_new_tokens - 1:
            break
        logits = model(token, T + step, cache)
    ids = torch.cat(out, dim=1).cpu()
    return GenerationOutput(ids, torch.stack(kept) if keep_logits else None)


def _weight_files(folder: Path) -> list[Path]:
    index = folder / WEIGHTS_INDEX_FILE
    if (folder / WEIGHTS_FILE).is_file() or not index.is_file():
        return [folder / WEIGHTS_FILE]
    try:
        names = sorted(set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values()))
    except (OSError, ValueError, KeyError) as e:
        raise CheckpointError(f"{index}: cannot be read ({e})") from e
    return [folder / n for n in names]


def require_folder(folder: str | Path, files: tuple[str, ...] = (CONFIG_FILE,)) -> Path:
    """The Qwen folder, or :class:`ModelNotFoundError` naming what is missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelNotFoundError(
            f"the emotion-text model folder {folder} does not exist. Download the release's "
            "'qwen0.6bemo4-merge' folder into the model folder, or use another emotion mode.")
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise ModelNotFoundError(f"the emotion-text model folder {folder} lacks {', '.join(missing)}: "
                                 "download the folder again.")
    return folder


def load_qwen(folder: str | Path, *, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float16
              ) -> Qwen3:
    """Build the Qwen3 of ``folder`` (its ``config.json`` + ``model.safetensors``) in ``dtype``.

    float16 is the reference's precision (also on CPU); greedy ids match only in it. Unlike the
    other loaders this takes the Qwen folder itself (``model_dir / cfg.qwen_emo_path``): the model
    is optional, loaded on first use by :class:`indextts_core.emotion_text.QwenEmotion`, which
    holds that folder, and its sizes are in the folder's own ``config.json``.
    """
    folder = require_folder(folder)
    cfg = QwenConfig.from_file(folder / CONFIG_FILE)
    files = _weight_files(folder)
    absent = [f.name for f in files if not f.is_file()]
    if absent:
        raise ModelNotFoundError(f"the emotion-text model folder {folder} lacks {', '.join(absent)}: "
                                 "download the folder again.")
    sd: dict[str, torch.Tensor] = {}
    for f in files:
        sd.update(read_state_dict(f))
    tied = cfg.tie_word_embeddings or "lm_head.weight" not in sd
    if tied and not cfg.tie_word_embeddings:
        log.warning("%s: no lm_head.weight; using the tied embedding as the output head", folder)
    model = build_empty(lambda: Qwen3(cfg, tied), device=device, dtype=dtype)
    load_into(model, sd, file=files[0] if len(files) == 1 else folder)
    return model.eval()


@dataclass
class QwenTokenizer:
    """Byte-level BPE from ``tokenizer.json`` plus the folder's chat template.

    Mirrors what transformers' fast tokenizer does for this model: added/special tokens
    from ``tokenizer_config.json`` are registered on the backend, text is encoded with
    the backend's post-processor (which adds nothing for Qwen), and decoding can skip
    special tokens.
    """

    backend: object
    chat_template: str
    special_tokens: dict = field(default_factory=dict)
    clean_up_spaces: bool = False

    @classmethod
    def from_folder(cls, folder: str | Path) -> QwenTokenizer:
        from tokenizers import AddedToken, Tokenizer

        folder = require_folder(folder, (TOKENIZER_FILE,))
        try:
            backend = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        except Exception as e:  # the Rust side raises plain Exception subclasses
            raise CheckpointError(f"{folder / TOKENIZER_FILE}: cannot be read ({e})") from e
        tcfg_path = folder / TOKENIZER_CONFIG_FILE
        tcfg = load_json(tcfg_path) if tcfg_path.is_file() else {}
        special: dict = {}
        for name in ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                     "mask_token"):
            tok = tcfg.get(name)
            tok = tok.get("content") if isinstance(tok, dict) else tok
            if tok is not None:
                special[name] = tok
        extra = [t.get("content") if isinstance(t, dict) else t
                 for t in tcfg.get("additional_special_tokens") or []]
        if extra:
            special["additional_special_tokens"] = extra
        special_names = {v for k, v in special.items() if k != "additional_special_tokens"} | set(extra)
        known = backend.get_added_tokens_decoder()
        known_content = {t.content for t in known.values()}
        to_add = []
        for _id, t in sorted(((int(k), v) for k, v in (tcfg.get("added_tokens_decoder") or {}).items())):
            if t["content"] not in known_content:
                to_add.append(AddedToken(t["content"], single_word=t.get("single_word", False),
                                         lstrip=t.get("lstrip", False), rstrip=t.get("rstrip", False),
                                         normalized=t.get("normalized", False),
                                         special=t.get("special", False) or t["content"] in special_names))
        to_add += [AddedToken(s, special=True) for s in sorted(special_names)
                   if s not in known_content and all(s != a.content for a in to_add)]
        if to_add:
            backend.add_tokens(to_add)
        # Like transformers: the template file wins over a template inside tokenizer_config.json.
        template_file = folder / CHAT_TEMPLATE_FILE
        template = (template_file.read_text(encoding="utf-8") if template_file.is_file()
                    else tcfg.get("chat_template"))
        if not isinstance(template, str):
            raise ModelNotFoundError(f"the emotion-text model folder {folder} lacks {CHAT_TEMPLATE_FILE}: "
                                     "download the folder again.")
        return cls(backend, template, special, bool(tcfg.get("clean_up_tokenization_spaces", False)))

    def token_id(self, token: str) -> int | None:
        return self.backend.token_to_id(token)

    @property
    def eos_id(self) -> int | None:
        eos = self.special_tokens.get("eos_token")
        return None if eos is None else self.token_id(eos)

    def render_chat(self, messages: list[dict], **kwargs) -> str:
        """The chat template rendered as transformers' ``apply_chat_template(tokenize=False)``:
        a sandboxed jinja2 environment with trim/lstrip blocks, the special tokens as variables."""
        from jinja2.exceptions import TemplateError
        from jinja2.ext import loopcontrols
        from jinja2.sandbox import ImmutableSandboxedEnvironment

        def raise_exception(message):
            raise TemplateError(message)

        env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
        env.filters["tojson"] = partial(json.dumps, ensure_ascii=False)
        env.globals["raise_exception"] = raise_exception
        env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
        try:
            return env.from_string(self.chat_template).render(
                messages=messages, tools=None, documents=None, **{**self.special_tokens, **kwargs})
        except TemplateError as e:
            raise ConfigError(f"the Qwen chat template cannot be rendered: {e}") from e

    def encode(self, text: str) -> list[int]:
        return self.backend.encode(text, add_special_tokens=True).ids

    def decode(self, ids: list[int], skip_special_tokens: bool = True) -> str:
        text = self.backend.decode(ids, skip_special_tokens=skip_special_tokens)
        return _clean_up_spaces(text) if self.clean_up_spaces else text


def _clean_up_spaces(text: str) -> str:
    # transformers' clean_up_tokenization: drop the space before punctuation and contractions.
    for a, b in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                 (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
        text = text.replace(a, b)
    return text


