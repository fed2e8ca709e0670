"""s2mel stages against the golden trace, each fed the recorded inputs of that stage."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from indextts_core.config import IndexTTSConfig, S2MelConfig, from_mapping, load_config
from indextts_core.errors import CheckpointError, ConfigError
from indextts_core.models.s2mel import S2Mel, load_s2mel, target_mel_frames

from .golden import CASES, GOLDEN_DIR, load_case, needs_golden_weights
from .parity import assert_stage


def _segments() -> list[tuple[str, int | None]]:
    out = []
    for name in CASES:
        expected = json.loads((GOLDEN_DIR / "cases" / name / "expected.json").read_text(encoding="utf-8"))
        n = expected["n_segments"]
        out += [(name, seg if n > 1 else None) for seg in range(n)]
    return out


SEGMENTS = _segments()


def t(array) -> torch.Tensor:
    return torch.from_numpy(array)



@pytest.fixture(scope="module")
def cfg(tiny_model_dir: Path) -> IndexTTSConfig:
    return load_config(tiny_model_dir / "config.yaml")


@pytest.fixture(scope="module")
def s2mel(tiny_model_dir: Path, cfg: IndexTTSConfig) -> S2Mel:
    return load_s2mel(tiny_model_dir, cfg, device="cpu")


@needs_golden_weights
@pytest.mark.parametrize(("case", "seg"), SEGMENTS)
def test_gpt_layer(s2mel: S2Mel, case: str, seg: int | None) -> None:
    g = load_case(case)
    with torch.inference_mode():
        out = s2mel.gpt_layer(t(g.trace[g.key("A_gpt_latent", seg)]))
    assert_stage("A_s2mel_gpt_layer_out", out, g.trace[g.key("A_s2mel_gpt_layer_out", seg)])


@needs_golden_weights
@pytest.mark.parametrize("case", CASES)
def test_prompt_condition(s2mel: S2Mel, case: str) -> None:
    g = load_case(case)
    ref_frames = g.trace["A_ref_mel"].shape[-1]
    with torch.inference_mode():
        out = s2mel.prompt_condition(t(g.trace["A_ref_semantic_emb"]), ref_frames)
    assert_stage("A_prompt_condition", out, g.trace["A_prompt_condition"])


@needs_golden_weights
@pytest.mark.parametrize(("case", "seg"), SEGMENTS)
def test_length_regulator(s2mel: S2Mel, case: str, seg: int | None) -> None:
    g = load_case(case)
    tr = g.trace
    m = tr[g.key("A_gpt_latent", seg)].shape[1]
    frames = target_mel_frames(m)
    assert frames == tr[g.key("A_lr_out", seg)].shape[1]
    s_infer = t(tr[g.key("A_s2mel_vq2emb", seg)]).transpose(1, 2) + t(tr[g.key("A_s2mel_gpt_layer_out", seg)])
    with torch.inference_mode():
        out = s2mel.length_regulator(s_infer, frames)
        # The same through the public entry point, from the GPT latent.
        latent, code_emb = t(tr[g.key("A_gpt_latent", seg)]), t(tr[g.key("A_s2mel_vq2emb", seg)])
        composed = s2mel.target_condition(latent, code_emb)
    assert_stage("A_lr_out", out, tr[g.key("A_lr_out", seg)])
    assert_stage("A_lr_out", composed, tr[g.key("A_lr_out", seg)])


@needs_golden_weights
@pytest.mark.parametrize(("case", "seg"), SEGMENTS)
def test_cfm(s2mel: S2Mel, case: str, seg: int | None) -> None:
    g = load_case(case)
    tr = g.trace
    noise = t(tr[g.key("A_cfm_noise", seg)])
    noise_before = noise.clone()
    mu = torch.cat([t(tr["A_prompt_condition"]), t(tr[g.key("A_lr_out", seg)])], dim=1)
    seen: dict[int, torch.Tensor] = {}
    mel_full = s2mel.cfm.inference(mu, t(tr["A_ref_mel"]), t(tr["A_style"]), noise, steps=25, cfg_rate=0.7,
                                   on_step=lambda k, v: seen.setdefault(k, v.clone()))
    assert sorted(seen) == list(range(25))
    assert torch.equal(noise, noise_before), "inference must not modify the caller's noise"
    assert_stage("A_dit_step0_out", seen[0], tr[g.key("A_dit_step0_out", seg)])
    assert_stage("A_mel_full", mel_full, tr[g.key("A_mel_full", seg)])
    tr_frames = tr["A_ref_mel"].shape[-1]
    assert_stage("A_mel", mel_full[..., tr_frames:], tr[g.key("A_mel", seg)])


@needs_golden_weights
def test_generate_mel_returns_target_part(s2mel: S2Mel) -> None:
    g = load_case("spk_only")
    tr = g.trace
    mel = s2mel.generate_mel(t(tr["A_prompt_condition"]), t(tr["A_lr_out"]), t(tr["A_ref_mel"]),
                             t(tr["A_style"]), t(tr["A_cfm_noise"]))
    assert_stage("A_mel", mel, tr["A_mel"])


@pytest.mark.parametrize("case", CASES)
def test_cfm_noise_convention(case: str) -> None:
    """The recorded noise is torch.randn from the recorded seeds (last bits depend on the kernel set)."""
    g = load_case(case)
    seeds = g.expected["cfm_noise_seeds"]
    assert len(seeds) == g.expected["n_segments"]
    for seg, seed in enumerate(seeds):
        recorded = g.trace[g.key("A_cfm_noise", seg)]
        drawn = torch.randn(recorded.shape, generator=torch.Generator("cpu").manual_seed(seed))
        assert_stage("A_cfm_noise", drawn, recorded)


def test_target_mel_frames() -> None:
    assert target_mel_frames(80) == 137
    assert target_mel_frames(0) == 0
    # The reference's float32 product floors like the float64 one over any length the GPT can emit.
    for m in range(1, 3001):
        assert target_mel_frames(m) == math.floor(m * 1.72), m


def test_full_size_shapes() -> None:
    """The released sizes build and run (on the meta device: shapes only, no compute)."""
    full = {
        "length_regulator": {"channels": 512, "in_channels": 1024, "sampling_ratios": [1, 1, 1, 1]},
        "DiT": {"hidden_dim": 512, "num_heads": 8, "depth": 13, "content_dim": 512},
        "wavenet": {"hidden_dim": 512, "num_layers": 8, "kernel_size": 5, "dilation_rate": 1},
    }
    with torch.device("meta"):
        model = S2Mel(from_mapping(S2MelConfig, full, "s2mel"))
        shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        assert shapes["cfm.estimator.transformer.layers.12.feed_forward.w1.weight"] == (1536, 512)
        assert shapes["cfm.estimator.transformer.layers.0.attention.wqkv.weight"] == (1536, 512)
        assert shapes["cfm.estimator.cond_x_merge_linear.weight"] == (512, 864)
        assert shapes["cfm.estimator.skip_linear.weight"] == (512, 592)
        assert shapes["cfm.estimator.wavenet.cond_layer.weight"] == (8192, 512, 1)
        assert shapes["cfm.estimator.wavenet.res_skip_layers.7.weight"] == (512, 512, 1)
        assert shapes["length_regulator.model.12.weight"] == (512, 512, 1)
        T = 50
        out = model.cfm.estimator(torch.empty(2, 80, T), torch.empty(2, 80, T), torch.empty(2),
                                  torch.empty(2, 192), torch.empty(2, T, 512))
        assert out.shape == (2, 80, T)
        assert model.length_regulator(torch.empty(1, 20, 1024), 34).shape == (1, 34, 512)


def test_unsupported_dit_option_is_a_config_error(cfg: IndexTTSConfig) -> None:
    bad = from_mapping(S2MelConfig, {
        "length_regulator": vars(cfg.s2mel.length_regulator),
        "DiT": {**vars(cfg.s2mel.DiT), "time_as_token": True},
        "wavenet": vars(cfg.s2mel.wavenet)}, "s2mel")
    with pytest.raises(ConfigError, match="time_as_token"):
        S2Mel(bad)


# --------------------------------------------------------------------------- loading


@pytest.fixture(scope="module")
def raw_checkpoint(tiny_model_dir: Path) -> dict:
    return torch.load(tiny_model_dir / "s2mel.pth", map_location="cpu", weights_only=True)


def _save(tmp_path: Path, state: dict) -> Path:
    path = tmp_path / "s2mel.pth"
    torch.save(state, path)
    return path


def test_missing_key_is_named(tmp_path: Path, raw_checkpoint: dict, cfg: IndexTTSConfig) -> None:
    net = {part: dict(sd) for part, sd in raw_checkpoint["net"].items()}
    del net["cfm"]["estimator.transformer.layers.1.attention.wo.weight"]
    path = _save(tmp_path, {"net": net})
    with pytest.raises(CheckpointError, match=r"net\.cfm\.estimator\.transformer\.layers\.1\.attention\.wo"):
        load_s2mel(path.parent, cfg)


def test_wrong_shape_is_named(tmp_path: Path, raw_checkpoint: dict, cfg: IndexTTSConfig) -> None:
    net = {part: dict(sd) for part, sd in raw_checkpoint["net"].items()}
    net["length_regulator"]["content_in_proj.weight"] = torch.zeros(3, 1024)
    path = _save(tmp_path, {"net": net})
    with pytest.raises(CheckpointError, match=r"net\.length_regulator\.content_in_proj\.weight.*\(3, 1024\)"):
        load_s2mel(path.parent, cfg)


def test_missing_part(tmp_path: Path, raw_checkpoint: dict, cfg: IndexTTSConfig) -> None:
    net = {part: sd for part, sd in raw_checkpoint["net"].items() if part != "gpt_layer"}
    with pytest.raises(CheckpointError, match="gpt_layer"):
        load_s2mel(_save(tmp_path, {"net": net}).parent, cfg)


def test_ddp_prefix_and_unused_keys(tmp_path: Path, raw_checkpoint: dict, cfg: IndexTTSConfig,
                                    s2mel: S2Mel) -> None:
    net = {part: {f"module.{k}": v for k, v in sd.items()} for part, sd in raw_checkpoint["net"].items()}
    net["cfm"]["module.estimator.some_training_leftover"] = torch.zeros(3)
    model = load_s2mel(_save(tmp_path, {"net": net, "epoch": 7}).parent, cfg)
    for (k, a), (_, b) in zip(model.state_dict().items(), s2mel.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
