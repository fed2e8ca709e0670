"""s2mel: semantic features to an 80-bin, 22.05 kHz mel spectrogram.

Three parts, stored together in ``s2mel.pth`` under ``net``:

* ``gpt_layer``: three Linears (no activation) taking the GPT latent (1280) to the
  1024-wide semantic space, where it is added to the codec embedding of the codes.
* ``length_regulator``: projects the 1024-wide semantic sequence, stretches it to the
  wanted number of mel frames by nearest-neighbour interpolation, then refines it with a
  small conv / GroupNorm / Mish stack.
* ``cfm``: a conditional flow-matching sampler whose velocity field is a DiT (AdaLN-RMSNorm
  transformer with interleaved RoPE, SwiGLU and U-ViT skips) followed by a WaveNet head.
  Sampling is 25 Euler steps with classifier-free guidance, the prompt's mel given in-context.

Everything here runs in float32, as the reference does (it disables autocast for s2mel).
Batches are assumed to be full length (no padding masks): the pipeline always runs B = 1
with classifier-free guidance stacking the conditional and the null input.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import build_empty, fold_weight_norm, load_into, read_state_dict, strip_prefix, sub_state_dict
from ..config import DiTConfig, IndexTTSConfig, LengthRegulatorConfig, S2MelConfig, WaveNetConfig
from ..errors import CheckpointError, ConfigError

GPT_LATENT_DIM = 1280  # the reference fixes gpt_layer's input width, independent of config.yaml
MEL_FRAMES_PER_CODE = 1.72  # 22050 / 256 mel frames per second over ~50 codes per second


def target_mel_frames(num_codes: int) -> int:
    """Mel frames the reference generates for ``num_codes`` semantic codes: ⌊m·1.72⌋.

    Computed as the reference does, on a LongTensor times a Python float (float32 result),
    then truncated, so that the rounding of 1.72 in float32 is reproduced exactly.
    """
    return int((torch.tensor([num_codes], dtype=torch.long) * MEL_FRAMES_PER_CODE).long().item())


# --------------------------------------------------------------------------- length regulator


class LengthRegulator(nn.Module):
    """Semantic sequence (B, T, in_channels) → conditioning (B, ylens, channels)."""

    def __init__(self, cfg: LengthRegulatorConfig):
        super().__init__()
        if cfg.is_discrete or cfg.vector_quantize or cfg.f0_condition:
            raise ConfigError("s2mel.length_regulator: only the continuous-input regulator is supported "
                              "(is_discrete, vector_quantize and f0_condition must be false)")
        if not cfg.sampling_ratios:
            raise ConfigError("s2mel.length_regulator.sampling_ratios must not be empty")
        c = cfg.channels
        self.content_in_proj = nn.Linear(cfg.in_channels, c)
        layers: list[nn.Module] = []
        for _ in cfg.sampling_ratios:
            layers += [nn.Conv1d(c, c, 3, padding=1), nn.GroupNorm(1, c), nn.Mish()]
        layers.append(nn.Conv1d(c, c, 1))
        # Sequential indices (Mish has no weights) give the checkpoint's keys model.0, model.1, model.3 ...
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor, ylens: int) -> Tensor:
        """x (B, T, in_channels), ylens: output frames → (B, ylens, channels)."""
        h = self.content_in_proj(x).transpose(1, 2)
        h = F.interpolate(h, size=int(ylens), mode="nearest")
        return self.model(h).transpose(1, 2)


def make_gpt_layer(out_dim: int) -> nn.Sequential:
    """(B, m, 1280) → (B, m, out_dim); three Linears without activations, as released."""
    return nn.Sequential(nn.Linear(GPT_LATENT_DIM, 256), nn.Linear(256, 128), nn.Linear(128, out_dim))


# --------------------------------------------------------------------------- DiT building blocks


class TimestepEmbedder(nn.Module):
    """Flow time t (B,) → (B, dim): sinusoidal features [cos ‖ sin] of 1000·t, then an MLP."""

    def __init__(self, dim: int, freq_dim: int = 256, max_period: float = 10000.0):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(freq_dim, dim), nn.SiLU(), nn.Linear(dim, dim))
        self.freq_dim, self.max_period = freq_dim, max_period
        # The file stores this buffer too; it is a pure function of the sizes, so it is rebuilt.
        self.register_buffer("freqs", self._freqs(), persistent=False)

    def _freqs(self) -> Tensor:
        half = self.freq_dim // 2
        return torch.exp(-math.log(self.max_period) * torch.arange(0, half, dtype=torch.float32) / half)

    def reset_buffers(self) -> None:
        self.freqs = self._freqs().to(self.mlp[0].weight.device)

    def forward(self, t: Tensor) -> Tensor:
        args = 1000 * t[:, None].float() * self.freqs[None]
        return self.mlp(torch.cat([torch.cos(args), torch.sin(args)], dim=-1))


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        xf = x.float()
        normed = xf * torch.rsqrt(torch.mean(xf * xf, dim=-1, keepdim=True) + self.eps)
        return normed.type_as(x) * self.weight


class AdaptiveRMSNorm(nn.Module):
    """RMSNorm whose per-channel scale and shift come from the time embedding: w·norm(x) + b."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.project_layer = nn.Linear(dim, 2 * dim)
        self.norm = RMSNorm(dim, eps)

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x (B, T, D), c (B, 1, D)."""
        weight, bias = self.project_layer(c).chunk(2, dim=-1)
        return weight * self.norm(x) + bias


def rope_cos_sin(length: int, head_dim: int, base: float, device: torch.device) -> tuple[Tensor, Tensor]:
    """cos and sin tables (length, head_dim // 2) for positions 0..length-1.

    Built on the CPU with ``torch.polar`` whatever the device, as the reference builds its
    table: its cos/sin differ from the vectorised ``torch.cos``/``torch.sin`` in the last bit,
    which is enough to move the DiT output by ~2e-6.
    """
    exponents = torch.arange(0, head_dim, 2)[: head_dim // 2].float() / head_dim
    inv_freq = 1.0 / (base ** exponents)
    angles = torch.outer(torch.arange(length), inv_freq)
    rotation = torch.polar(torch.ones_like(angles), angles)
    return rotation.real.to(device), rotation.imag.to(device)


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate interleaved pairs (x[2i], x[2i+1]) of x (B, T, H, D) by the position angles."""
    pairs = x.float().unflatten(-1, (-1, 2))
    a, b = pairs[..., 0], pairs[..., 1]
    cos, sin = cos[None, :, None, :], sin[None, :, None, :]
    out = torch.stack([a * cos - b * sin, b * cos + a * sin], dim=-1)
    return out.flatten(3).type_as(x)


class Attention(nn.Module):
    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.head_dim = dim // n_heads
        self.wqkv = nn.Linear(dim, 3 * n_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(n_heads * self.head_dim, dim, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        B, T, _ = x.shape
        q, k, v = self.wqkv(x).view(B, T, 3, self.n_heads, self.head_dim).unbind(2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        y = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


def swiglu_hidden(dim: int) -> int:
    """4·dim·2/3 rounded up to a multiple of 256 (1536 for dim 512)."""
    n = int(2 * 4 * dim / 3)
    return n if n % 256 == 0 else n + 256 - n % 256


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        hidden = swiglu_hidden(dim)
        self.w1 = nn.Linear(dim, hidden, bias=False)
        self.w3 = nn.Linear(dim, hidden, bias=False)
        self.w2 = nn.Linear(hidden, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        gated = F.silu(self.w1(x)) * self.w3(x)
        return self.w2(gated)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, n_heads: int):
        super().__init__()
        self.attention = Attention(dim, n_heads)
        self.feed_forward = FeedForward(dim)
        self.attention_norm = AdaptiveRMSNorm(dim)
        self.ffn_norm = AdaptiveRMSNorm(dim)
        # Present in every block of the release; only the receiving half of the U-ViT uses it.
        self.skip_in_linear = nn.Linear(2 * dim, dim)

    def forward(self, x: Tensor, c: Tensor, cos: Tensor, sin: Tensor, skip: Tensor | None = None) -> Tensor:
        if skip is not None:
            x = self.skip_in_linear(torch.cat([x, skip], dim=-1))
        h = x + self.attention(self.attention_norm(x, c), cos, sin)
        return h + self.feed_forward(self.ffn_norm(h, c))


class Transformer(nn.Module):
    """Non-causal AdaLN transformer with U-ViT skips: blocks i < n//2 emit, blocks i > n//2 receive (LIFO)."""

    def __init__(self, dim: int, n_heads: int, n_layers: int, uvit_skips: bool, rope_base: float = 10000.0):
        super().__init__()
        self.layers = nn.ModuleList(TransformerBlock(dim, n_heads) for _ in range(n_layers))
        self.norm = AdaptiveRMSNorm(dim)
        self.head_dim = dim // n_heads
        self.rope_base = rope_base
        self.uvit_skips = uvit_skips
        # The sampler calls the estimator many times at one length: keep the last table.
        self._rope: tuple[int, torch.device, Tensor, Tensor] | None = None

    def rope_tables(self, length: int, device: torch.device) -> tuple[Tensor, Tensor]:
        if self._rope is None or self._rope[0] != length or self._rope[1] != device:
            self._rope = (length, device, *rope_cos_sin(length, self.head_dim, self.rope_base, device))
        return self._rope[2], self._rope[3]

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x (B, T, D), c (B, 1, D) → (B, T, D)."""
        cos, sin = self.rope_tables(x.shape[1], x.device)
        n = len(self.layers)
        skips: list[Tensor] = []
        for i, layer in enumerate(self.layers):
            skip = skips.pop() if self.uvit_skips and i > n // 2 else None
            x = layer(x, c, cos, sin, skip)
            if self.uvit_skips and i < n // 2:
                skips.append(x)
        return self.norm(x, c)


# --------------------------------------------------------------------------- WaveNet head


class ReflectConv1d(nn.Conv1d):
    """Stride-1 Conv1d that pads reflectively to keep the length ((k-1)·d split left-heavy)."""

    def forward(self, x: Tensor) -> Tensor:
        total = (self.kernel_size[0] - 1) * self.dilation[0]
        if total:
            right = total // 2
            x = reflect_pad(x, total - right, right)
        return super().forward(x)


def reflect_pad(x: Tensor, left: int, right: int) -> Tensor:
    """Reflect padding that also accepts inputs shorter than the padding: those are first
    extended with zeros on the right, and the extension is cut off again afterwards."""
    extra = max(0, max(left, right) - x.shape[-1] + 1)
    if extra:
        x = F.pad(x, (0, extra))
    x = F.pad(x, (left, right), mode="reflect")
    return x[..., : x.shape[-1] - extra] if extra else x


class WaveNet(nn.Module):
    """Gated dilated conv stack conditioned on a global vector g (the second time embedding)."""

    def __init__(self, cfg: WaveNetConfig, gin_channels: int):
        super().__init__()
        if cfg.kernel_size % 2 != 1:
            raise ConfigError("s2mel.wavenet.kernel_size must be odd")
        h, n = cfg.hidden_dim, cfg.num_layers
        self.hidden = h
        self.cond_layer = ReflectConv1d(gin_channels, 2 * h * n, 1)
        self.in_layers = nn.ModuleList(
            ReflectConv1d(h, 2 * h, cfg.kernel_size, dilation=cfg.dilation_rate ** i) for i in range(n))
        self.res_skip_layers = nn.ModuleList(
            ReflectConv1d(h, 2 * h if i < n - 1 else h, 1) for i in range(n))

    @property
    def left_reach(self) -> int:
        """How many frames to the left an output frame depends on through the whole stack."""
        return sum(conv.dilation[0] * (conv.kernel_size[0] - 1) - conv.dilation[0] * (conv.kernel_size[0] - 1) // 2
                   for conv in self.in_layers)

    def forward(self, x: Tensor, g: Tensor) -> Tensor:
        """x (B, H, T), g (B, gin, 1) → (B, H, T)."""
        h = self.hidden
        g = self.cond_layer(g)
        out = torch.zeros_like(x)
        last = len(self.in_layers) - 1
        for i, (in_layer, res_skip) in enumerate(zip(self.in_layers, self.res_skip_layers, strict=True)):
            a = in_layer(x) + g[:, 2 * h * i: 2 * h * (i + 1)]
            acts = torch.tanh(a[:, :h]) * torch.sigmoid(a[:, h:])
            rs = res_skip(acts)
            if i < last:
                x = x + rs[:, :h]
                out = out + rs[:, h:]
            else:
                out = out + rs
        return out


class FinalLayer(nn.Module):
    """LayerNorm (no affine) modulated by the time embedding (shift first, then scale), then a Linear."""

    def __init__(self, dim: int):
        super().__init__()
        self.linear = nn.Linear(dim, dim)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x: Tensor, c: Tensor) -> Tensor:
        """x (B, T, D), c (B, D)."""
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        x = F.layer_norm(x, (x.shape[-1],), eps=1e-6)
        return self.linear(x * (1 + scale[:, None]) + shift[:, None])


# --------------------------------------------------------------------------- DiT estimator


class DiT(nn.Module):
    """Velocity field v(x, t | prompt mel, style, semantic condition)."""

    def __init__(self, cfg: S2MelConfig):
        super().__init__()
        d: DiTConfig = cfg.DiT
        flags = {"time_as_token": d.time_as_token, "style_as_token": d.style_as_token,
                 "is_causal": d.is_causal}
        unsupported = [name for name, on in flags.items() if on]
        if d.final_layer_type != "wavenet":
            unsupported.append(f"final_layer_type={d.final_layer_type}")
        if unsupported:
            raise ConfigError(f"s2mel.DiT: unsupported options {', '.join(unsupported)}")
        wn = cfg.wavenet.hidden_dim
        self.style_condition = d.style_condition
        self.long_skip = d.long_skip_connection
        self.transformer = Transformer(d.hidden_dim, d.num_heads, d.depth, d.uvit_skip_connection)
        self.t_embedder = TimestepEmbedder(d.hidden_dim)
        self.cond_projection = nn.Linear(d.content_dim, d.hidden_dim)
        style_dim = cfg.style_encoder.dim if d.style_condition else 0
        self.cond_x_merge_linear = nn.Linear(d.hidden_dim + 2 * d.in_channels + style_dim, d.hidden_dim)
        self.skip_linear = nn.Linear(d.hidden_dim + d.in_channels, d.hidden_dim)
        self.conv1 = nn.Linear(d.hidden_dim, wn)
        self.t_embedder2 = TimestepEmbedder(wn)
        self.wavenet = WaveNet(cfg.wavenet, gin_channels=wn)
        self.res_projection = nn.Linear(d.hidden_dim, wn)
        self.final_layer = FinalLayer(wn)
        self.conv2 = nn.Conv1d(wn, d.in_channels, 1)

    def forward(self, x: Tensor, prompt_x: Tensor, t: Tensor, style: Tensor, mu: Tensor,
                first_frame: int = 0, content: Tensor | None = None) -> Tensor:
        """x, prompt_x (B, 80, T); t (B,); style (B, 192); mu (B, T, content_dim) → (B, 80, T − first_frame).

        Only frames ``first_frame..T-1`` of the output are computed (the sampler discards the
        prompt's): everything after the transformer is per frame except the WaveNet's convs, so
        its input starts ``left_reach`` frames earlier and the result is the full pass' frames.
        ``content``: ``cond_projection(mu)`` when the caller already has it (it is the same every step).
        """
        B, _, T = x.shape
        t1 = self.t_embedder(t)
        x = x.transpose(1, 2)
        parts = [x, prompt_x.transpose(1, 2), self.cond_projection(mu) if content is None else content]
        if self.style_condition:
            parts.append(style[:, None, :].expand(B, T, style.shape[-1]))
        h = self.cond_x_merge_linear(torch.cat(parts, dim=-1))
        h = self.transformer(h, t1[:, None, :])
        start = max(0, first_frame - self.wavenet.left_reach)
        keep = first_frame - start
        h, x = h[:, start:], x[:, start:]
        if self.long_skip:
            h = self.skip_linear(torch.cat([h, x], dim=-1))
        w = self.conv1(h).transpose(1, 2)
        w = self.wavenet(w, self.t_embedder2(t)[:, :, None]).transpose(1, 2) + self.res_projection(h)
        w = self.final_layer(w[:, keep:], t1).transpose(1, 2)
        return self.conv2(w)


StepCallback = Callable[[int, Tensor], None]


class CFM(nn.Module):
    """Euler sampler of the flow from noise (t = 0) to mel (t = 1)."""

    def __init__(self, cfg: S2MelConfig):
        super().__init__()
        if cfg.DiT.zero_prompt_speech_token:
            raise ConfigError("s2mel.DiT.zero_prompt_speech_token=true is not supported")
        self.estimator = DiT(cfg)

    @torch.inference_mode()
    def inference(self, mu: Tensor, prompt_mel: Tensor, style: Tensor, noise: Tensor, steps: int = 25,
                  cfg_rate: float = 0.7, on_step: StepCallback | None = None,
                  on_progress: Callable[[int, int], None] | None = None) -> Tensor:
        """Sample a mel whose first Tr frames are the prompt's (left as zeros in the result).

        mu (1, T, C) semantic condition of prompt + target; prompt_mel (1, 80, Tr); style (1, 192);
        noise (1, 80, T) the starting point (not modified). ``on_step(k, v)`` sees the raw estimator
        output of step k (k = 0 first), conditional then null with guidance on: (2, 80, T) at
        step 0, the target frames only (2, 80, T − Tr) after it (the prompt's are never used).
        ``on_progress(k, steps)`` is told after step k (from 1) without any tensor: unlike
        ``on_step`` it changes nothing that is computed. Returns (1, 80, T).
        """
        tr, total = prompt_mel.shape[-1], noise.shape[-1]
        if mu.shape[1] != total or tr > total:
            raise ValueError(f"CFM: noise has {total} frames, mu {mu.shape[1]}, prompt {tr}: "
                             "noise and mu must both span prompt + target frames")
        prompt_x = torch.zeros_like(noise)
        prompt_x[..., :tr] = prompt_mel
        x = noise.clone()
        x[..., :tr] = 0
        if cfg_rate > 0:
            # Conditional and null (no prompt, style or semantics) inputs in one batch.
            prompt_in = torch.cat([prompt_x, torch.zeros_like(prompt_x)])
            style_in = torch.cat([style, torch.zeros_like(style)])
            mu_in = torch.cat([mu, torch.zeros_like(mu)])
        else:
            prompt_in, style_in, mu_in = prompt_x, style, mu
        content = self.estimator.cond_projection(mu_in)
        t_span = torch.linspace(0, 1, steps + 1, device=noise.device)
        t = t_span[0]
        for k in range(steps):
            dt = t_span[k + 1] - t_span[k]
            # The prompt frames are reset to zero after every step; only a traced first step
            # needs the estimator's output there.
            first = 0 if on_step is not None and k == 0 else tr
            x_in = torch.cat([x, x]) if cfg_rate > 0 else x
            v = self.estimator(x_in, prompt_in, t.expand(x_in.shape[0]), style_in, mu_in, first, content)
            if on_step is not None:
                on_step(k, v)
            v = v[..., tr - first:]
            if cfg_rate > 0:
                v_cond, v_null = v.chunk(2)
                v = (1.0 + cfg_rate) * v_cond - cfg_rate * v_null
            x[..., tr:] += dt * v
            # t advances by accumulation (float32), as the reference does, not from t_span.
            t = t + dt
            if on_progress is not None:
                on_progress(k + 1, steps)
        return x


# --------------------------------------------------------------------------- container and loading


class S2Mel(nn.Module):
    """The three parts of ``s2mel.pth``; attribute names are the file's ``net`` keys."""

    def __init__(self, cfg: S2MelConfig):
        super().__init__()
        self.cfg = cfg
        self.cfm = CFM(cfg)
        self.length_regulator = LengthRegulator(cfg.length_regulator)
        self.gpt_layer = make_gpt_layer(cfg.length_regulator.in_channels)

    def prompt_condition(self, s_ref: Tensor, ref_mel_frames: int) -> Tensor:
        """Prompt semantics S_ref (1, Ts, 1024) stretched to the prompt mel's frames → (1, Tr, C)."""
        return self.length_regulator(s_ref.float(), ref_mel_frames)

    def target_condition(self, gpt_latent: Tensor, code_emb: Tensor, frames: int | None = None) -> Tensor:
        """GPT latent (1, m, 1280) and codec embedding of the codes (1, 1024, m) → (1, frames, C).

        ``frames`` defaults to ⌊m·1.72⌋; any other value re-times the segment uniformly (exact
        duration control by stretching the semantics).
        """
        frames = target_mel_frames(gpt_latent.shape[1]) if frames is None else frames
        s_infer = code_emb.float().transpose(1, 2) + self.gpt_layer(gpt_latent.float())
        return self.length_regulator(s_infer, frames)

    def generate_mel(self, prompt_cond: Tensor, target_cond: Tensor, ref_mel: Tensor, style: Tensor,
                     noise: Tensor, steps: int = 25, cfg_rate: float = 0.7,
                     on_step: StepCallback | None = None,
                     on_progress: Callable[[int, int], None] | None = None) -> Tensor:
        """Mel of the target part only: (1, 80, target frames). ``noise`` is (1, 80, Tr + Tg)."""
        mu = torch.cat([prompt_cond, target_cond], dim=1)
        mel = self.cfm.inference(mu, ref_mel.float(), style.float(), noise.float(), steps, cfg_rate, on_step,
                                 on_progress)
        return mel[..., ref_mel.shape[-1]:]


def load_s2mel(model_dir: str | Path, cfg: IndexTTSConfig, *, device: str | torch.device = "cpu",
               dtype: torch.dtype = torch.float32) -> S2Mel:
    """Build :class:`S2Mel` from ``cfg.s2mel`` and load ``cfg.s2mel_checkpoint`` (eval mode, on ``device``;
    the reference runs it in float32).

    Raises :class:`CheckpointError` for a missing part, a missing key or a wrong shape; keys the
    model does not use (training leftovers, the unused embedders) are skipped.
    """
    path = Path(model_dir) / cfg.s2mel_checkpoint
    sd = read_state_dict(path)
    net = sub_state_dict(sd, "net")
    model = build_empty(lambda: S2Mel(cfg.s2mel), device=device, dtype=dtype)
    for part in ("cfm", "length_regulator", "gpt_layer"):
        weights = strip_prefix(sub_state_dict(net, part), "module.")
        if not weights:
            raise CheckpointError(f"{path}: no net.{part} weights. The file is not an IndexTTS-2 s2mel "
                                  "checkpoint (wrong file, or an incomplete download).")
        weights = fold_weight_norm(weights)
        if part == "cfm":
            # The WaveNet convs sit two wrapper modules deep in the reference (SConv1d → NormConv1d).
            weights = {k.replace(".conv.conv.", "."): v for k, v in weights.items()}
        load_into(getattr(model, part), weights, file=path, prefix=f"net.{part}.")
    return model.eval()
