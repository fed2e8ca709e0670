"""UnifiedVoice v2 against the golden traces, each stage fed its recorded inputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from indextts_core.checkpoint import read_state_dict
from indextts_core.config import ConditionModuleConfig, GPTConfig, IndexTTSConfig, load_config
from indextts_core.errors import CheckpointError, InvalidOptionError, TextError
from indextts_core.models.conformer import ConformerEncoder, sinusoid_table
from indextts_core.models.gpt import UnifiedVoice, load_gpt, merge_emovec
from tests.golden import CASES, load_case, needs_golden_weights
from tests.parity import assert_stage

SEGMENTS = [(case, seg) for case in CASES for seg in range(load_case(case).expected["n_segments"])]
IDS = [f"{c}-{s}" for c, s in SEGMENTS]


def t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a))


@pytest.fixture(scope="module")
def model(tiny_model_dir) -> UnifiedVoice:
    return load_gpt(tiny_model_dir, load_config(tiny_model_dir / "config.yaml"))


def segments(case: str) -> range:
    return range(load_case(case).expected["n_segments"])


@needs_golden_weights
@pytest.mark.parametrize("case", CASES)
def test_speaker_latent(model, case):
    g = load_case(case)
    with torch.inference_mode():
        latent = model.get_conditioning(t(g.trace["A_spk_w2v_feat"]))
    for seg in segments(case):  # recorded once per segment; the inputs are the same
        assert_stage("A_spk_cond_latent", latent, g.trace[g.key("A_spk_cond_latent", seg)])


@needs_golden_weights
@pytest.mark.parametrize("case", CASES)
def test_emotion_vectors(model, case):
    g = load_case(case)
    spk = t(g.trace["A_spk_w2v_feat"])  # speaker path: 22.05 kHz load resampled to 16 kHz
    emo = t(g.trace["A_emo_w2v_feat"])  # emotion path: 16 kHz load (of the emotion clip, or the speaker's)
    alpha = g.expected["emo_alpha_effective"]
    with torch.inference_mode():
        from_emo = model.get_emovec(emo)
        from_spk = model.get_emovec(spk)
        merged = merge_emovec(from_spk, from_emo, alpha)
    for seg in segments(case):
        assert_stage("A_emo_vec_from_emo_audio", from_emo, g.trace[g.key("A_emo_vec_from_emo_audio", seg)])
        assert_stage("A_emo_vec_from_spk_audio", from_spk, g.trace[g.key("A_emo_vec_from_spk_audio", seg)])
        assert_stage("A_emovec_merged", merged, g.trace[g.key("A_emovec_merged", seg)])


@needs_golden_weights
@pytest.mark.parametrize("case,seg", SEGMENTS, ids=IDS)
def test_prefix_and_latent(model, case, seg):
    g = load_case(case)
    k = lambda name: g.trace[g.key(name, seg)]  # noqa: E731
    with torch.inference_mode():
        conds = model.conditioning(t(k("A_spk_cond_latent")), t(k("A_emovec_used")))
        prefix = model.prefix_embeddings(conds, t(k("A_text_ids")))
        latent = model.latent(conds, t(k("A_text_ids")), t(k("A_codes")))
    assert conds.shape == (1, 34, model.cfg.model_dim)
    assert model.prefix_padding(t(k("A_text_ids"))) == 0
    assert_stage("A_gpt_prefix_embeds", prefix, k("A_gpt_prefix_embeds"))
    assert_stage("A_gpt_latent", latent, k("A_gpt_latent"))


def test_prefix_strips_text_ids_0_and_1(model):
    g = load_case("spk_only")
    ids = t(g.trace["A_text_ids"]).long()
    dirty = torch.cat([ids[:, :3], torch.tensor([[0, 1]]), ids[:, 3:], torch.tensor([[1]])], dim=1)
    with torch.inference_mode():
        conds = model.conditioning(t(g.trace["A_spk_cond_latent"]), t(g.trace["A_emovec_used"]))
        clean = model.prefix_embeddings(conds, ids)
        padded = model.prefix_embeddings(conds, dirty)
        lat_clean = model.latent(conds, ids, t(g.trace["A_codes"])[:, :5])
        lat_dirty = model.latent(conds, dirty, t(g.trace["A_codes"])[:, :5])
    assert model.prefix_padding(dirty) == 3
    assert padded.shape[1] == clean.shape[1] + 3
    assert torch.equal(padded[:, :3], torch.zeros_like(padded[:, :3]))
    assert torch.equal(padded[:, 3:], clean)
    # the teacher-forced pass keeps the ids: the sequence changes, so the latent does too
    assert lat_dirty.shape == lat_clean.shape
    assert not torch.allclose(lat_dirty, lat_clean)


def test_text_and_code_limits(model):
    conds = torch.zeros(1, 34, model.cfg.model_dim)
    too_long = torch.full((1, model.cfg.max_text_tokens + 1), 5)
    with pytest.raises(TextError, match="at most"):
        model.prefix_embeddings(conds, too_long)
    with pytest.raises(TextError):
        model.prefix_embeddings(conds, torch.tensor([[model.cfg.number_text_tokens + 1]]))
    with pytest.raises(InvalidOptionError):
        too_many = torch.zeros(1, model.cfg.max_mel_tokens + 2, dtype=torch.long)
        model.latent(conds, torch.tensor([[5]]), too_many)


def test_pe_buffer_is_the_wenet_sinusoid(model):
    pe = model.conditioning_encoder.embed.pos_enc.pe
    assert torch.allclose(pe, sinusoid_table(pe.shape[1], pe.shape[2]), atol=1e-5)


def test_conformer_masks_frames_past_the_length_quirk():
    """Inputs longer than the 1024 'length' get their late frames treated as padding."""
    torch.manual_seed(0)
    enc = ConformerEncoder(16, ConditionModuleConfig(output_size=8, linear_units=16, attention_heads=2,
                                                     num_blocks=1)).eval()
    x = torch.randn(1, 21, 16)
    with torch.inference_mode():
        full, mask_full = enc(x, torch.tensor([21]))
        cut, mask_cut = enc(x, torch.tensor([12]))
        cut_again, _ = enc(torch.cat([x[:, :12], torch.randn(1, 9, 16)], dim=1), torch.tensor([12]))
    assert mask_full.all() and full.shape == (1, 10, 8)
    # output frame j keeps the mask of input frame 2j + 2: frames 0..4 stay
    assert mask_cut[0].tolist() == [True] * 5 + [False] * 5
    # the real frames no longer see the masked ones: changing those leaves them as they were
    assert torch.allclose(cut[:, :5], cut_again[:, :5], atol=1e-6)
    assert not torch.allclose(cut[:, :5], full[:, :5])


# -- loader -------------------------------------------------------------------------------------


def small_config() -> GPTConfig:
    cond = ConditionModuleConfig(output_size=16, linear_units=32, attention_heads=2, num_blocks=1)
    return GPTConfig(model_dim=32, layers=1, heads=2, max_mel_tokens=20, max_text_tokens=10,
                     number_text_tokens=40, number_mel_codes=30, start_mel_token=28, stop_mel_token=29,
                     condition_module=cond, emo_condition_module=dataclasses.replace(cond))


def load_small(path: Path, base: IndexTTSConfig, dtype: torch.dtype = torch.float32) -> UnifiedVoice:
    """``load_gpt`` of the folder holding ``path``, named as its GPT checkpoint, with the small sizes."""
    cfg = dataclasses.replace(base, gpt=small_config(), gpt_checkpoint=path.name)
    return load_gpt(path.parent, cfg, dtype=dtype)


@pytest.fixture(scope="module")
def base_cfg(tiny_model_dir) -> IndexTTSConfig:
    return load_config(tiny_model_dir / "config.yaml")


@pytest.fixture(scope="module")
def small_state(tmp_path_factory):
    torch.manual_seed(0)
    sd = {k: torch.randn(v.shape) * 0.1 for k, v in UnifiedVoice(small_config()).state_dict().items()}
    path = tmp_path_factory.mktemp("gpt") / "gpt.pth"
    torch.save(sd, path)
    return path, sd


def test_loader_accepts_wrapped_dict_and_ignores_extra_keys(small_state, tmp_path, base_cfg):
    path, sd = small_state
    extra = dict(sd)
    extra["gpt.wte.weight"] = torch.zeros(30, 32)
    extra["gpt.h.0.attn.bias"] = torch.ones(1, 1, 8, 8)
    extra["gpt.h.0.attn.masked_bias"] = torch.tensor(-1e4)
    extra["text_head.weight"] = torch.zeros(41, 32)
    extra["inference_model.lm_head.1.weight"] = torch.zeros(30, 32)
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": extra}, wrapped)
    plain = load_small(path, base_cfg)
    other = load_small(wrapped, base_cfg)
    for k, v in read_state_dict(path).items():
        assert torch.equal(plain.state_dict()[k], v)
        assert torch.equal(other.state_dict()[k], v)


def test_loader_missing_key_names_file_and_key(small_state, tmp_path, base_cfg):
    _, sd = small_state
    broken = {k: v for k, v in sd.items() if k != "emo_layer.weight"}
    path = tmp_path / "broken.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"broken\.pth.*emo_layer\.weight"):
        load_small(path, base_cfg)


def test_loader_wrong_shape_names_file_and_key(small_state, tmp_path, base_cfg):
    _, sd = small_state
    broken = dict(sd)
    broken["gpt.h.0.attn.c_attn.weight"] = broken["gpt.h.0.attn.c_attn.weight"].T.contiguous()
    path = tmp_path / "shape.pth"
    torch.save(broken, path)
    with pytest.raises(CheckpointError, match=r"shape\.pth.*gpt\.h\.0\.attn\.c_attn\.weight"):
        load_small(path, base_cfg)


def test_loader_uses_pe_from_file_and_dtype(small_state, tmp_path, base_cfg):
    _, sd = small_state
    path = tmp_path / "bf16.pth"
    torch.save(sd, path)
    m = load_small(path, base_cfg, torch.bfloat16)
    assert m.emo_layer.weight.dtype == torch.bfloat16
    # bf16 on the CPU: GPT-2's (in, out) weights hold the file's values, stored as (out, in)
    w = m.gpt.h[0].attn.c_attn.weight
    assert w.stride() == (1, w.shape[0]) and torch.equal(w, sd["gpt.h.0.attn.c_attn.weight"].to(torch.bfloat16))
    # the file's (random) table wins over the sinusoid the module would compute
    assert torch.equal(m.conditioning_encoder.embed.pos_enc.pe,
                       sd["conditioning_encoder.embed.pos_enc.pe"].to(torch.bfloat16))
    no_pe = {k: v for k, v in sd.items() if not k.endswith("pos_enc.pe")}
    torch.save(no_pe, path)
    m = load_small(path, base_cfg)
    pe = m.conditioning_encoder.embed.pos_enc.pe
    assert torch.equal(pe, sinusoid_table(pe.shape[1], pe.shape[2]))
