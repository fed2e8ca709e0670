"""BigVGAN v2 vocoder: 80-bin mel (22.05 kHz, hop 256) to waveform.

Transposed-conv upsampling stages, each followed by the average of AMP residual blocks
(dilated convs with anti-aliased SnakeBeta activations: upsample ×2, activate, low-pass and
downsample ×2, using the 12-tap Kaiser-sinc filters stored in the checkpoint). The final
conv has no bias and the output is clamped to [-1, 1] (``use_tanh_at_final`` false).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checkpoint import fold_weight_norm, load_into, read_state_dict, sub_state_dict
from ..config import from_mapping, load_json
from ..errors import CheckpointError, ConfigError


@dataclass
class BigVGANConfig:
    """The fields of BigVGAN's ``config.json`` that inference uses."""

    num_mels: int
    upsample_rates: list[int]
    upsample_kernel_sizes: list[int]
    upsample_initial_channel: int
    resblock_kernel_sizes: list[int]
    resblock_dilation_sizes: list[list[int]]
    resblock: str = "1"
    activation: str = "snakebeta"
    snake_logscale: bool = True
    # The reference defaults both to true when the file does not say.
    use_tanh_at_final: bool = True
    use_bias_at_final: bool = True
    sampling_rate: int = 22050
    hop_size: int = 256

    @classmethod
    def from_json(cls, path: str | Path) -> BigVGANConfig:
        cfg = from_mapping(cls, load_json(path), str(path))
        if str(cfg.resblock) != "1":
            raise ConfigError(f"{path}: resblock {cfg.resblock!r} is not supported (only AMPBlock1, '1')")
        if cfg.activation not in ("snake", "snakebeta"):
            raise ConfigError(f"{path}: activation {cfg.activation!r} is not supported (snake or snakebeta)")
        if len(cfg.upsample_rates) != len(cfg.upsample_kernel_sizes):
            raise ConfigError(f"{path}: upsample_rates and upsample_kernel_sizes differ in length")
        if len(cfg.resblock_kernel_sizes) != len(cfg.resblock_dilation_sizes):
            raise ConfigError(f"{path}: resblock_kernel_sizes and resblock_dilation_sizes differ in length")
        return cfg

    @property
    def upsample_factor(self) -> int:
        """Output samples per mel frame (256 for the released vocoder)."""
        n = 1
        for r in self.upsample_rates:
            n *= r
        return n


class Snake(nn.Module):
    """x + sin²(αx)/β per channel; SnakeBeta learns β, plain Snake uses β = α."""

    def __init__(self, channels: int, with_beta: bool, logscale: bool):
        super().__init__()
        self.logscale = logscale
        self.alpha = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))
        if with_beta:
            self.beta = nn.Parameter(torch.zeros(channels) if logscale else torch.ones(channels))
        else:
            self.beta = None

    def forward(self, x: Tensor) -> Tensor:
        alpha = self.alpha[None, :, None]
        beta = alpha if self.beta is None else self.beta[None, :, None]
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        return x + (1.0 / (beta + 1e-9)) * torch.sin(x * alpha).pow(2)


def replicate_pad(x: Tensor, left: int, right: int) -> Tensor:
    """Edge-value padding of the last axis; the same values as ``F.pad(mode="replicate")``,
    several times faster on the CPU for long signals."""
    edges = x.shape[:-1]
    return torch.cat([x[..., :1].expand(*edges, left), x, x[..., -1:].expand(*edges, right)], dim=-1)


class AntiAliasedSnake(nn.Module):
    """Snake at twice the sample rate: ×2 upsample, activation, low-pass ×2 downsample. (B, C, T) → (B, C, T).

    Both resamplers use replicate padding. The upsampler is a transposed conv with stride 2
    (gain 2) on the input padded by K/2 − 1 each side, cropped to 2T; the downsampler pads
    (K/2 − 1, K/2) and convolves with stride 2.
    """

    def __init__(self, channels: int, with_beta: bool, logscale: bool, kernel_size: int = 12):
        super().__init__()
        if kernel_size % 2:
            raise ConfigError("the anti-aliasing filters must have an even number of taps")
        self.act = Snake(channels, with_beta, logscale)
        self.register_buffer("up_filter", torch.zeros(1, 1, kernel_size))
        self.register_buffer("down_filter", torch.zeros(1, 1, kernel_size))

    def forward(self, x: Tensor) -> Tensor:
        C = x.shape[1]
        k = self.up_filter.shape[-1]
        pad = k // 2 - 1
        crop = 2 * pad + (k - 2) // 2
        x = replicate_pad(x, pad, pad)
        x = 2 * F.conv_transpose1d(x, self.up_filter.expand(C, 1, k), stride=2, groups=C)
        x = self.act(x[..., crop:-crop])
        x = replicate_pad(x, k // 2 - 1, k // 2)
        return F.conv1d(x, self.down_filter.expand(C, 1, k), stride=2, groups=C)


def same_padding(kernel_size: int, dilation: int = 1) -> int:
    return (kernel_size - 1) * dilation // 2


class AMPBlock(nn.Module):
    """Residual pairs: x += conv2(act(conv1(act(x)))) with conv1 dilated by d_j, conv2 undilated."""

    def __init__(self, channels: int, kernel_size: int, dilations: list[int], with_beta: bool,
                 logscale: bool):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=same_padding(kernel_size, d))
            for d in dilations)
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=same_padding(kernel_size)) for _ in dilations)
        self.activations = nn.ModuleList(
            AntiAliasedSnake(channels, with_beta, logscale) for _ in range(2 * len(dilations)))

    def forward(self, x: Tensor) -> Tensor:
        for j, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2, strict=True)):
            h = conv1(self.activations[2 * j](x))
            h = conv2(self.activations[2 * j + 1](h))
            x = x + h
        return x


class BigVGAN(nn.Module):
    def __init__(self, cfg: BigVGANConfig):
        super().__init__()
        self.cfg = cfg
        with_beta = cfg.activation == "snakebeta"
        ch = cfg.upsample_initial_channel
        self.conv_pre = nn.Conv1d(cfg.num_mels, ch, 7, padding=3)
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, k) in enumerate(zip(cfg.upsample_rates, cfg.upsample_kernel_sizes, strict=True)):
            c_in, c_out = ch // 2 ** i, ch // 2 ** (i + 1)
            # A one-element Sequential gives the checkpoint's key ups.{i}.0.weight.
            self.ups.append(nn.Sequential(nn.ConvTranspose1d(c_in, c_out, k, rate, padding=(k - rate) // 2)))
            for rk, dil in zip(cfg.resblock_kernel_sizes, cfg.resblock_dilation_sizes, strict=True):
                self.resblocks.append(AMPBlock(c_out, rk, dil, with_beta, cfg.snake_logscale))
        c_last = ch // 2 ** len(cfg.upsample_rates)
        self.activation_post = AntiAliasedSnake(c_last, with_beta, cfg.snake_logscale)
        self.conv_post = nn.Conv1d(c_last, 1, 7, padding=3, bias=cfg.use_bias_at_final)

    def forward(self, mel: Tensor) -> Tensor:
        """mel (B, num_mels, T) → waveform (B, 1, T · upsample_factor) in [-1, 1]."""
        x = self.conv_pre(mel)
        n_kernels = len(self.cfg.resblock_kernel_sizes)
        for i, up in enumerate(self.ups):
            x = up(x)
            blocks = self.resblocks[i * n_kernels:(i + 1) * n_kernels]
            acc = blocks[0](x)
            for block in blocks[1:]:
                acc = acc + block(x)
            x = acc / n_kernels
        x = self.conv_post(self.activation_post(x))
        return torch.tanh(x) if self.cfg.use_tanh_at_final else torch.clamp(x, -1.0, 1.0)


def _rename_filters(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    """The reference nests the filters as ``upsample.filter`` / ``downsample.lowpass.filter``."""
    out = {}
    for key, value in sd.items():
        if key.endswith("upsample.filter"):
            key = key[: -len("upsample.filter")] + "up_filter"
        elif key.endswith("downsample.lowpass.filter"):
            key = key[: -len("downsample.lowpass.filter")] + "down_filter"
        out[key] = value
    return out


def load_bigvgan(folder: str | Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32) -> BigVGAN:
    """Load BigVGAN from a folder holding ``config.json`` and ``bigvgan_generator.pt``.

    The generator file is ``{"generator": state_dict}`` in weight-norm form; the weights are
    folded once here. Raises :class:`ConfigError` / :class:`CheckpointError` naming the file.
    """
    folder = Path(folder)
    cfg = BigVGANConfig.from_json(folder / "config.json")
    path = folder / "bigvgan_generator.pt"
    sd = sub_state_dict(read_state_dict(path), "generator")
    if not sd:
        raise CheckpointError(f"{path}: no 'generator' weights. The file is not a BigVGAN generator "
                              "checkpoint (wrong file, or an incomplete download).")
    sd = _rename_filters(fold_weight_norm(sd))
    model = BigVGAN(cfg)
    load_into(model, sd, file=path, prefix="generator.")
    return model.to(device=device, dtype=dtype).eval()
