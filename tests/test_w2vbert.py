"""w2v-BERT 2.0 (first 17 layers + IndexTTS-2 normalisation) vs the golden trace, and its loader."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from safetensors.torch import save_file

from indextts_core import layout
from indextts_core.config import load_config
from indextts_core.errors import CheckpointError, ConfigError
from indextts_core.models.w2vbert import W2VBert, W2VBertConfig, load_w2vbert

from .golden import load_case, needs_golden_weights
from .parity import assert_stage


@pytest.fixture(scope="module")
def cfg(tiny_model_dir):
    return load_config(tiny_model_dir / layout.CONFIG)


@pytest.fixture(scope="module")
def w2v(tiny_model_dir, cfg):
    return load_w2vbert(tiny_model_dir, cfg)


@needs_golden_weights
@pytest.mark.parametrize(("case", "prefix"), [("spk_only", "A_spk"), ("emo_audio", "A_emo")])
def test_normalised_layer17_matches_golden(w2v, case, prefix):
    tr = load_case(case).trace
    with torch.inference_mode():
        out = w2v(torch.from_numpy(tr[f"{prefix}_fe_features"]), torch.from_numpy(tr[f"{prefix}_fe_mask"]))
    ref = tr[f"{prefix}_w2v_feat"]
    assert out.shape == ref.shape and out.dtype == torch.float32
    assert_stage(f"{prefix}_w2v_feat", out, ref)


def test_tiny_model_has_the_indextts_depth(w2v):
    assert w2v.num_layers == 17 and len(w2v.encoder.layers) == 17


def test_full_size_config_builds_17_of_24_layers():
    cfg = W2VBertConfig()  # the released facebook/w2v-bert-2.0 values
    with torch.device("meta"):
        model = W2VBert(cfg)
        out = model(torch.zeros(1, 12, 160), torch.ones(1, 12, dtype=torch.int32))
    assert out.shape == (1, 12, 1024)
    sd = model.state_dict()
    assert len(model.encoder.layers) == 17
    assert sd["encoder.layers.16.self_attn.distance_embedding.weight"].shape == (73, 64)
    assert sd["encoder.layers.0.ffn1.intermediate_dense.weight"].shape == (4096, 1024)
    assert sd["encoder.layers.0.conv_module.depthwise_conv.weight"].shape == (1024, 1, 31)
    assert "encoder.layers.17.final_layer_norm.weight" not in sd


# --------------------------------------------------------------------------- loader, small model

SMALL = {"hidden_size": 16, "num_hidden_layers": 3, "num_attention_heads": 2, "intermediate_size": 24,
         "feature_projection_input_dim": 160, "layer_norm_eps": 1e-5, "conv_depthwise_kernel_size": 5,
         "left_max_position_embeddings": 4, "right_max_position_embeddings": 2, "hidden_act": "swish",
         "position_embeddings_type": "relative_key", "add_adapter": False}


def write_model_dir(root, sd, config=SMALL):
    w2v_dir = root / layout.W2V_BERT_DIR
    w2v_dir.mkdir(parents=True, exist_ok=True)
    (w2v_dir / "config.json").write_text(json.dumps(config))
    save_file({k: v.contiguous() for k, v in sd.items()}, str(w2v_dir / "model.safetensors"),
              metadata={"format": "pt"})
    h = config["hidden_size"]
    torch.save({"mean": torch.linspace(-1, 1, h), "var": torch.linspace(0.5, 2, h)}, root / layout.W2V_STATS)
    return w2v_dir / "model.safetensors"


@pytest.fixture()
def small_sd():
    torch.manual_seed(0)
    model = W2VBert(W2VBertConfig(**{k: v for k, v in SMALL.items() if k != "add_adapter"}), num_layers=3)
    sd = {k: torch.randn_like(v) * 0.3 for k, v in model.state_dict().items()}
    sd["masked_spec_embed"] = torch.randn(16)  # in the release, unused
    return sd


def test_loader_reads_only_the_layers_it_needs(tmp_path, small_sd, cfg):
    write_model_dir(tmp_path, small_sd)
    model = load_w2vbert(tmp_path, cfg, num_layers=2)
    assert len(model.encoder.layers) == 2
    assert torch.equal(model.encoder.layers[1].ffn2.output_dense.weight,
                       small_sd["encoder.layers.1.ffn2.output_dense.weight"])
    assert torch.allclose(model.feat_std, torch.linspace(0.5, 2, 16).sqrt())
    with pytest.raises(ConfigError, match="3 layers"):
        load_w2vbert(tmp_path, cfg, num_layers=4)


def test_padded_frames_do_not_leak_into_real_frames(tmp_path, small_sd, cfg):
    write_model_dir(tmp_path, small_sd)
    model = load_w2vbert(tmp_path, cfg, num_layers=3)
    feats = torch.randn(1, 9, 160)
    padded = torch.cat([feats, torch.ones(1, 1, 160)], dim=1)
    mask = torch.tensor([[1] * 9 + [0]], dtype=torch.int32)
    with torch.inference_mode():
        full = model(padded, mask)[:, :9]
        alone = model(feats, torch.ones(1, 9, dtype=torch.int32))
    assert torch.allclose(full, alone, atol=1e-5)


def test_missing_key_names_file_and_key(tmp_path, small_sd, cfg):
    del small_sd["encoder.layers.1.self_attn.linear_k.bias"]
    path = write_model_dir(tmp_path, small_sd)
    with pytest.raises(CheckpointError) as e:
        load_w2vbert(tmp_path, cfg, num_layers=3)
    assert str(path) in str(e.value) and "encoder.layers.1.self_attn.linear_k.bias" in str(e.value)


def test_wrong_shape_names_file_and_key(tmp_path, small_sd, cfg):
    small_sd["feature_projection.projection.weight"] = torch.zeros(16, 80)
    path = write_model_dir(tmp_path, small_sd)
    with pytest.raises(CheckpointError) as e:
        load_w2vbert(tmp_path, cfg, num_layers=3)
    assert str(path) in str(e.value) and "feature_projection.projection.weight" in str(e.value)


def test_truncated_file_is_reported(tmp_path, small_sd, cfg):
    path = write_model_dir(tmp_path, small_sd)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_w2vbert(tmp_path, cfg, num_layers=3)


def test_truncated_release_file_is_reported(tmp_path, tiny_model_dir, cfg):
    src = tiny_model_dir / layout.W2V_BERT_DIR
    dst = tmp_path / layout.W2V_BERT_DIR
    dst.mkdir(parents=True)
    shutil.copy(src / "config.json", dst / "config.json")
    with open(src / "model.safetensors", "rb") as f:
        (dst / "model.safetensors").write_bytes(f.read(1 << 20))
    shutil.copy(tiny_model_dir / layout.W2V_STATS, tmp_path / layout.W2V_STATS)
    with pytest.raises(CheckpointError, match=r"model\.safetensors.*truncated"):
        load_w2vbert(tmp_path, cfg)


def test_bad_stats_file_is_reported(tmp_path, small_sd, cfg):
    write_model_dir(tmp_path, small_sd)
    torch.save({"mean": torch.zeros(16)}, tmp_path / layout.W2V_STATS)
    with pytest.raises(CheckpointError, match="var"):
        load_w2vbert(tmp_path, cfg, num_layers=3)
