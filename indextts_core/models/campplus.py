"""CAM++ speaker encoder (3D-Speaker, ``funasr/campplus``): the s2mel ``style`` vector.

Input: 80-bin Kaldi fbank of the 16 kHz prompt minus its time mean, ``(B, T, 80)``.
Output: a 192-d embedding ``(B, 192)``. A 2-D convolutional front end (FCM) folds the
frequency axis into channels; a densely connected TDNN with context-aware masking (CAM)
follows; statistics pooling (mean and unbiased std over time) and a linear layer with a
non-affine BatchNorm give the embedding. Every BatchNorm runs on its running statistics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..audio import kaldi_fbank
from ..checkpoint import build_empty, load_into, read_state_dict
from ..errors import CheckpointError


@dataclass(frozen=True)
class CAMPPlusConfig:
    """The released model: ``CAMPPlus(feat_dim=80, embedding_size=192)`` with 3D-Speaker's defaults."""

    feat_dim: int = 80
    embedding_size: int = 192
    growth_rate: int = 32
    bn_size: int = 4
    init_channels: int = 128
    head_channels: int = 32
    # (layers, kernel size, dilation) of the three dense TDNN blocks
    blocks: tuple[tuple[int, int, int], ...] = ((12, 3, 1), (24, 3, 2), (16, 3, 2))
    seg_len: int = 100


class BNReLU(nn.Module):
    """BatchNorm then ReLU (3D-Speaker's ``batchnorm-relu``; the key path is ``<name>.batchnorm``)."""

    def __init__(self, channels: int, relu: bool = True, affine: bool = True):
        super().__init__()
        self.batchnorm = nn.BatchNorm1d(channels, affine=affine)
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        x = self.batchnorm(x)
        return F.relu(x) if self.relu else x


class ResBlock2d(nn.Module):
    """Two 3×3 convs with BatchNorm; the first may stride the frequency axis (then a 1×1 shortcut)."""

    def __init__(self, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, stride=(stride, 1), padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        # Identity unless the block strides; a Sequential either way so the keys read shortcut.0/1.
        shortcut = [nn.Conv2d(channels, channels, 1, stride=(stride, 1), bias=False),
                    nn.BatchNorm2d(channels)]
        self.shortcut = nn.Sequential(*(shortcut if stride != 1 else []))

    def forward(self, x: Tensor) -> Tensor:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(y + self.shortcut(x))


class FCM(nn.Module):
    """``(B, F, T) -> (B, C·F/8, T)``: 2-D conv front end, frequency strided by 8 overall."""

    def __init__(self, cfg: CAMPPlusConfig):
        super().__init__()
        c = cfg.head_channels
        self.conv1 = nn.Conv2d(1, c, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.layer1 = nn.Sequential(ResBlock2d(c, 2), ResBlock2d(c, 1))
        self.layer2 = nn.Sequential(ResBlock2d(c, 2), ResBlock2d(c, 1))
        self.conv2 = nn.Conv2d(c, c, 3, stride=(2, 1), padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.out_channels = c * (cfg.feat_dim // 8)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x.unsqueeze(1))))
        x = self.layer2(self.layer1(x))
        x = F.relu(self.bn2(self.conv2(x)))
        b, c, f, t = x.shape
        return x.reshape(b, c * f, t)


class TDNN(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, kernel_size, stride=stride,
                                padding=(kernel_size - 1) // 2, bias=False)
        self.nonlinear = BNReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.nonlinear(self.linear(x))


class CAMLayer(nn.Module):
    """Local conv output gated by a sigmoid mask from global + per-segment context."""

    def __init__(self, channels: int, out_channels: int, kernel_size: int, dilation: int, seg_len: int):
        super().__init__()
        self.linear_local = nn.Conv1d(channels, out_channels, kernel_size, dilation=dilation,
                                      padding=(kernel_size - 1) // 2 * dilation, bias=False)
        self.linear1 = nn.Conv1d(channels, channels // 2, 1)
        self.linear2 = nn.Conv1d(channels // 2, out_channels, 1)
        self.seg_len = seg_len

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[-1]
        # Segment means over windows of seg_len frames (the last one partial), held per frame.
        seg = F.avg_pool1d(x, self.seg_len, self.seg_len, ceil_mode=True)
        seg = seg.repeat_interleave(self.seg_len, dim=-1)[..., :t]
        context = x.mean(-1, keepdim=True) + seg
        gate = torch.sigmoid(self.linear2(F.relu(self.linear1(context))))
        return self.linear_local(x) * gate


class CAMDenseLayer(nn.Module):
    def __init__(self, in_channels: int, cfg: CAMPPlusConfig, kernel_size: int, dilation: int):
        super().__init__()
        bn_channels = cfg.bn_size * cfg.growth_rate
        self.nonlinear1 = BNReLU(in_channels)
        self.linear1 = nn.Conv1d(in_channels, bn_channels, kernel_size=1, bias=False)
        self.nonlinear2 = BNReLU(bn_channels)
        self.cam_layer = CAMLayer(bn_channels, cfg.growth_rate, kernel_size, dilation, cfg.seg_len)

    def forward(self, x: Tensor) -> Tensor:
        return self.cam_layer(self.nonlinear2(self.linear1(self.nonlinear1(x))))


class CAMDenseBlock(nn.Module):
    """Dense connectivity: every layer's 32 new channels are appended to its input."""

    def __init__(self, num_layers: int, in_channels: int, cfg: CAMPPlusConfig, kernel_size: int,
                 dilation: int):
        super().__init__()
        for i in range(num_layers):
            layer = CAMDenseLayer(in_channels + i * cfg.growth_rate, cfg, kernel_size, dilation)
            self.add_module(f"tdnnd{i + 1}", layer)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.children():
            x = torch.cat((x, layer(x)), 1)
        return x


class Transit(nn.Module):
    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.nonlinear = BNReLU(in_channels)
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(self.nonlinear(x))


class Embedding(nn.Module):
    """Linear map of the pooled statistics, then a BatchNorm without scale and shift."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.linear = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.nonlinear = BNReLU(out_channels, relu=False, affine=False)

    def forward(self, stats: Tensor) -> Tensor:
        return self.nonlinear(self.linear(stats.unsqueeze(-1)).squeeze(-1))


class XVector(nn.Module):
    def __init__(self, cfg: CAMPPlusConfig, in_channels: int):
        super().__init__()
        self.tdnn = TDNN(in_channels, cfg.init_channels, 5, stride=2)
        channels = cfg.init_channels
        for i, (num_layers, kernel_size, dilation) in enumerate(cfg.blocks, start=1):
            self.add_module(f"block{i}", CAMDenseBlock(num_layers, channels, cfg, kernel_size, dilation))
            channels += num_layers * cfg.growth_rate
            self.add_module(f"transit{i}", Transit(channels, channels // 2))
            channels //= 2
        self.out_nonlinear = BNReLU(channels)
        self.dense = Embedding(2 * channels, cfg.embedding_size)
        self.n_blocks = len(cfg.blocks)

    def forward(self, x: Tensor) -> Tensor:
        x = self.tdnn(x)
        for i in range(1, self.n_blocks + 1):
            x = getattr(self, f"transit{i}")(getattr(self, f"block{i}")(x))
        x = self.out_nonlinear(x)
        stats = torch.cat([x.mean(dim=-1), x.std(dim=-1, unbiased=True)], dim=-1)
        return self.dense(stats)


class CAMPPlus(nn.Module):
    """``forward(feat (B, T, 80)) -> (B, 192)``, ``feat`` being :func:`campplus_features`."""

    def __init__(self, cfg: CAMPPlusConfig | None = None):
        super().__init__()
        cfg = cfg or CAMPPlusConfig()
        self.cfg = cfg
        self.head = FCM(cfg)
        self.xvector = XVector(cfg, self.head.out_channels)

    def forward(self, feat: Tensor) -> Tensor:
        return self.xvector(self.head(feat.transpose(1, 2)))


def campplus_features(audio_16k: Tensor) -> Tensor:
    """CAM++ input of a 16 kHz prompt ``(1, N)`` in [-1, 1]: fbank minus its time mean, ``(1, T, 80)``."""
    feat = kaldi_fbank(audio_16k, sample_rate=16000, num_mel_bins=80)
    return (feat - feat.mean(dim=0, keepdim=True)).unsqueeze(0)


def load_campplus(path: str | Path, device: torch.device | str = "cpu",
                  dtype: torch.dtype = torch.float32) -> CAMPPlus:
    """Load ``hf_cache/campplus_cn_common.bin``; like the reference, every key must match."""
    sd = read_state_dict(path)
    model = build_empty(CAMPPlus)
    load_into(model, sd, file=path)
    unexpected = sorted(set(sd) - set(model.state_dict()))
    if unexpected:
        raise CheckpointError(f"{path}: unexpected key {unexpected[0]}"
                              + (f" and {len(unexpected) - 1} more" if len(unexpected) > 1 else "")
                              + ". The file is not the CAM++ speaker model (funasr/campplus).")
    return model.to(device=device, dtype=dtype).eval()
