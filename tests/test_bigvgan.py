"""BigVGAN v2 and the int16 output conversion against the golden trace."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from indextts_core import layout
from indextts_core.checkpoint import fold_weight_norm
from indextts_core.config import IndexTTSConfig, load_config
from indextts_core.errors import CheckpointError, ConfigError
from indextts_core.models.bigvgan import BigVGAN, BigVGANConfig, load_bigvgan
from indextts_core.options import to_pcm16

from .golden import CASES, load_case, needs_golden_weights
from .parity import STAGE_ATOL, assert_stage

SILENCE = 4410  # 200 ms at 22.05 kHz between segments


def t(array) -> torch.Tensor:
    return torch.from_numpy(array)


@pytest.fixture(scope="module")
def cfg(tiny_model_dir: Path) -> IndexTTSConfig:
    return load_config(tiny_model_dir / layout.CONFIG)


@pytest.fixture(scope="module")
def vocoder(tiny_model_dir: Path, cfg: IndexTTSConfig) -> BigVGAN:
    return load_bigvgan(tiny_model_dir, cfg, device="cpu")


@pytest.fixture(scope="module")
def vocoded(vocoder: BigVGAN) -> dict[str, list[torch.Tensor]]:
    """Our waveform of every segment of every case, from the recorded A_mel."""
    out = {}
    with torch.inference_mode():
        for case in CASES:
            g = load_case(case)
            segs = [None] if g.expected["n_segments"] == 1 else range(g.expected["n_segments"])
            out[case] = [vocoder(t(g.trace[g.key("A_mel", s)])) for s in segs]
    return out


def _join(wavs: list[torch.Tensor]) -> torch.Tensor:
    """Segments (1, 1, N) joined with zero gaps, as ``infer()`` returns them: (total,)."""
    parts = []
    for i, w in enumerate(wavs):
        if i:
            parts.append(torch.zeros(SILENCE))
        parts.append(w.flatten())
    return torch.cat(parts)


@needs_golden_weights
@pytest.mark.parametrize("case", CASES)
def test_vocoder(case: str, vocoded: dict[str, list[torch.Tensor]]) -> None:
    g = load_case(case)
    for seg, wav in enumerate(vocoded[case]):
        mel = g.trace[g.key("A_mel", seg)]
        ref = t(g.trace[g.key("A_wav", seg)])
        assert wav.shape == ref.shape == (1, 1, 256 * mel.shape[-1])
        assert_stage("A_wav", wav, ref)


@needs_golden_weights
@pytest.mark.parametrize("case", CASES)
def test_pcm16(case: str, vocoded: dict[str, list[torch.Tensor]]) -> None:
    g = load_case(case)
    golden = t(g.trace["A_wav_int16"]).long()
    n = g.expected["n_segments"]
    recorded = [t(g.trace[g.key("A_wav", s)]) for s in range(n)]
    # Exact from the recorded float waveform; within 2 LSB from our own vocoder output.
    from_recorded = to_pcm16(_join(recorded).numpy())
    assert from_recorded.dtype == np.int16
    assert torch.equal(torch.from_numpy(from_recorded).long(), golden)
    ours = torch.from_numpy(to_pcm16(_join(vocoded[case]).numpy())).long()
    assert (ours - golden).abs().max().item() <= STAGE_ATOL["A_wav_int16"]


def test_pcm16_clamps_and_truncates() -> None:
    wav = np.array([2.0, -2.0, 1.0, -1.0, 0.5, -0.5, 1e-5, -1e-5], dtype=np.float32)
    assert to_pcm16(wav).tolist() == [32767, -32767, 32767, -32767, 16383, -16383, 0, 0]


def test_full_size_shapes() -> None:
    """The released vocoder's sizes build and give 256 samples per frame (meta device: shapes only)."""
    cfg = BigVGANConfig(num_mels=80, upsample_rates=[4, 4, 2, 2, 2, 2],
                        upsample_kernel_sizes=[8, 8, 4, 4, 4, 4], upsample_initial_channel=1536,
                        resblock_kernel_sizes=[3, 7, 11], resblock_dilation_sizes=[[1, 3, 5]] * 3,
                        use_tanh_at_final=False, use_bias_at_final=False)
    with torch.device("meta"):
        model = BigVGAN(cfg)
        assert model(torch.empty(1, 80, 7)).shape == (1, 1, 7 * 256)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["ups.0.0.weight"] == (1536, 768, 8)
    assert shapes["resblocks.17.convs1.2.weight"] == (24, 24, 11)
    assert shapes["conv_post.weight"] == (1, 24, 7)
    assert "conv_post.bias" not in shapes
    assert cfg.upsample_factor == 256


# --------------------------------------------------------------------------- loading


@pytest.fixture()
def vocoder_dir(tmp_path: Path, tiny_model_dir: Path) -> Path:
    folder = tmp_path / layout.BIGVGAN_DIR
    folder.mkdir(parents=True)
    shutil.copy(tiny_model_dir / "hf_cache" / "bigvgan" / "config.json", folder / "config.json")
    return folder


def _generator(tiny_model_dir: Path) -> dict[str, torch.Tensor]:
    path = tiny_model_dir / "hf_cache" / "bigvgan" / "bigvgan_generator.pt"
    return dict(torch.load(path, map_location="cpu", weights_only=True)["generator"])


def test_missing_key_is_named(vocoder_dir: Path, tiny_model_dir: Path, tmp_path: Path, cfg: IndexTTSConfig) -> None:
    sd = _generator(tiny_model_dir)
    del sd["resblocks.1.activations.3.act.beta"]
    torch.save({"generator": sd}, vocoder_dir / "bigvgan_generator.pt")
    with pytest.raises(CheckpointError, match=r"generator\.resblocks\.1\.activations\.3\.act\.beta"):
        load_bigvgan(tmp_path, cfg)


def test_missing_filter_is_an_error(vocoder_dir: Path, tiny_model_dir: Path, tmp_path: Path,
                                    cfg: IndexTTSConfig) -> None:
    sd = _generator(tiny_model_dir)
    del sd["activation_post.downsample.lowpass.filter"]
    torch.save({"generator": sd}, vocoder_dir / "bigvgan_generator.pt")
    with pytest.raises(CheckpointError, match="activation_post"):
        load_bigvgan(tmp_path, cfg)


def test_wrong_shape_is_named(vocoder_dir: Path, tiny_model_dir: Path, tmp_path: Path, cfg: IndexTTSConfig) -> None:
    sd = _generator(tiny_model_dir)
    sd["conv_pre.weight_v"] = torch.ones(64, 100, 7)
    torch.save({"generator": sd}, vocoder_dir / "bigvgan_generator.pt")
    with pytest.raises(CheckpointError, match=r"generator\.conv_pre\.weight.*\(64, 100, 7\)"):
        load_bigvgan(tmp_path, cfg)


def test_not_a_generator_file(vocoder_dir: Path, tiny_model_dir: Path, tmp_path: Path, cfg: IndexTTSConfig) -> None:
    torch.save(_generator(tiny_model_dir), vocoder_dir / "bigvgan_generator.pt")
    with pytest.raises(CheckpointError, match="generator"):
        load_bigvgan(tmp_path, cfg)


def test_folded_weights_load_too(vocoder_dir: Path, tiny_model_dir: Path, tmp_path: Path, cfg: IndexTTSConfig,
                                 vocoder: BigVGAN) -> None:
    """A generator saved after weight-norm removal (plain ``weight`` keys) loads to the same model."""
    folded = fold_weight_norm(_generator(tiny_model_dir))
    assert "conv_pre.weight" in folded and "conv_pre.weight_v" not in folded
    torch.save({"generator": folded}, vocoder_dir / "bigvgan_generator.pt")
    reloaded = load_bigvgan(tmp_path, cfg).state_dict()
    for k, v in vocoder.state_dict().items():
        assert torch.equal(reloaded[k], v), k


def test_config_errors(vocoder_dir: Path, tiny_model_dir: Path, tmp_path: Path, cfg: IndexTTSConfig) -> None:
    data = json.loads((vocoder_dir / "config.json").read_text())
    del data["upsample_rates"]
    (vocoder_dir / "config.json").write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="upsample_rates"):
        load_bigvgan(tmp_path, cfg)
    data = json.loads((tiny_model_dir / "hf_cache" / "bigvgan" / "config.json").read_text())
    (vocoder_dir / "config.json").write_text(json.dumps({**data, "resblock": "2"}))
    with pytest.raises(ConfigError, match="resblock"):
        load_bigvgan(tmp_path, cfg)
