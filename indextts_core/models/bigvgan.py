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

from ..checkpoint import build_empty, fold_weight_norm, load_into, read_state_dict, sub_state_dict
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
        """``x (B, C, …)``: channels on axis 1, any number of trailing axes."""
        shape = (1, -1) + (1,) * (x.dim() - 2)
        alpha = self.alpha.view(shape)
        beta = alpha if self.beta is None else self.beta.view(shape)
        if self.logscale:
            alpha, beta = torch.exp(alpha), torch.exp(beta)
        # x + sin(x·α)² / (β + 1e-9), one buffer instead of four: the same values, bit for bit
        y = x * alpha
        y.sin_().square_()
        return y.mul_(1.0 / (beta + 1e-9)).add_(x)


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

    Computed in polyphase form, never at the doubled rate in one piece: the even and odd
    output samples of the upsampler are two short convs of the input (one grouped conv with
    two outputs per channel), the activation is elementwise so it runs on the two phases as
    they are, and the downsampler is one grouped conv over both phases. The edge samples
    the reference replicates become edge phase samples. Same taps, same padding; only the
    summation order differs from the transposed conv (last-bit differences).
    """

    def __init__(self, channels: int, with_beta: bool, logscale: bool, kernel_size: int = 12):
        super().__init__()
        if kernel_size % 2:
            raise ConfigError("the anti-aliasing filters must have an even number of taps")
        self.act = Snake(channels, with_beta, logscale)
        self.register_buffer("up_filter", torch.zeros(1, 1, kernel_size))
        self.register_buffer("down_filter", torch.zeros(1, 1, kernel_size))

    def _up_taps(self) -> tuple[Tensor, int, int]:
        """Kernel ``(2, taps)`` giving output phase r at input offsets ``lo..hi`` of the padded input.

        The cropped upsampler output is ``y[q] = 2·Σ_j x_pad[j]·f[q + c − 2j]`` with
        ``c = 3(K/2 − 1)``; for ``q = 2s + r`` and ``j = s + a`` the tap of offset ``a`` is
        ``2·f[r + c − 2a]`` where that index exists.
        """
        f = self.up_filter.reshape(-1)
        k = f.numel()
        c = 3 * (k // 2 - 1)
        offsets = [[a for a in range(-k, k + c) if 0 <= r + c - 2 * a < k] for r in (0, 1)]
        lo, hi = min(offsets[0][0], offsets[1][0]), max(offsets[0][-1], offsets[1][-1])
        taps = f.new_zeros(2, hi - lo + 1)
        for r in (0, 1):
            for a in offsets[r]:
                taps[r, a - lo] = 2 * f[r + c - 2 * a]
        return taps, lo, hi

    def _down_taps(self) -> tuple[Tensor, int, int]:
        """Kernel ``(2, taps)`` over phase offsets ``-left..right``.

        ``z[m] = Σ_k y_pad[2m + k]·g[k]`` with ``y_pad`` the activation padded by ``K/2 − 1``
        on the left: tap ``k`` reads phase ``r = (k − K/2 + 1) mod 2`` at offset
        ``b = (k − K/2 + 1 − r) / 2``.
        """
        g = self.down_filter.reshape(-1)
        k = g.numel()
        shift = k // 2 - 1
        placed = [((i - shift) % 2, (i - shift - (i - shift) % 2) // 2, i) for i in range(k)]
        left = -min(b for _, b, _ in placed)
        right = max(b for _, b, _ in placed)
        taps = g.new_zeros(2, left + right + 1)
        for r, b, i in placed:
            taps[r, b + left] = g[i]
        return taps, left, right

    def forward(self, x: Tensor) -> Tensor:
        B, C, T = x.shape
        half = self.up_filter.shape[-1] // 2
        up, lo, hi = self._up_taps()
        # x_pad (replicated by K/2 − 1) read from offset lo to T + hi − 1
        xp = replicate_pad(x, half - 1 - lo, hi - half + 1)
        phases = F.conv1d(xp, up.repeat(C, 1)[:, None], groups=C).view(B, C, 2, T)
        phases = self.act(phases)
        down, left, right = self._down_taps()
        # Past the start the reference replicates sample 0 (an even one), past the end sample 2T − 1 (odd).
        padded = torch.cat([phases[:, :, :1, :1].expand(B, C, 2, left), phases,
                            phases[:, :, 1:, -1:].expand(B, C, 2, right)], dim=-1)
        return F.conv1d(padded.view(B, 2 * C, -1), down.repeat(C, 1, 1), groups=C)


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
    model = build_empty(lambda: BigVGAN(cfg))
    load_into(model, sd, file=path, prefix="generator.")
    return model.to(device=device, dtype=dtype).eval()
