"""Qwen3 emotion model: chat prompt, tokenizer and greedy float16 generation vs the golden trace."""

from __future__ import annotations

import json
import re
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from indextts_core.errors import CheckpointError, ModelNotFoundError
from indextts_core.models.qwen import (
    GenerationSettings,
    Qwen3,
    QwenConfig,
    QwenTokenizer,
    generate_greedy,
    load_qwen,
)
from tests.golden import load_case, needs_golden_weights
from tests.parity import assert_stage


@pytest.fixture(scope="module")
def qwen_dir(tiny_model_dir):
    return tiny_model_dir / "qwen0.6bemo4-merge"


@pytest.fixture(scope="module")
def tokenizer(qwen_dir):
    return QwenTokenizer.from_folder(qwen_dir)


@pytest.fixture(scope="module")
def model16(qwen_dir):
    return load_qwen(qwen_dir, device="cpu", dtype=torch.float16)


@pytest.fixture(scope="module")
def model32(qwen_dir):
    return load_qwen(qwen_dir, device="cpu", dtype=torch.float32)


def test_chat_prompt_and_ids(tokenizer):
    case = load_case("emo_text")
    messages = case.expected["qwen_messages"]
    chat = tokenizer.render_chat(messages, add_generation_prompt=True, enable_thinking=False)
    assert chat == case.expected["qwen_chat_text"]
    assert tokenizer.encode(chat) == case.trace["A_qwen_input_ids"][0].tolist()
    # Without the flag the template leaves the think block out.
    assert "<think>" not in tokenizer.render_chat(messages, add_generation_prompt=True)


@needs_golden_weights
def test_greedy_generation_matches_golden(model16, tokenizer, qwen_dir):
    case = load_case("emo_text")
    settings = GenerationSettings.from_folder(qwen_dir, model16.cfg)
    assert settings.eos_ids == (tokenizer.eos_id,)
    prompt = torch.from_numpy(case.trace["A_qwen_input_ids"])
    n = case.inputs["qwen_max_new_tokens"]
    out = generate_greedy(model16, prompt, n, settings.eos_ids, keep_logits=True)
    assert out.ids.tolist() == case.trace["A_qwen_generated_ids"].tolist()
    ref = torch.from_numpy(case.trace["A_qwen_step_logits"])
    assert out.step_logits.shape == ref.shape
    assert_stage("A_qwen_step_logits", out.step_logits, ref)
    assert tokenizer.decode(out.ids[0].tolist()) == case.expected["qwen_decoded"][0]


def test_generation_stops_at_eos(model16):
    prompt = torch.from_numpy(load_case("emo_text").trace["A_qwen_input_ids"])
    first = generate_greedy(model16, prompt, 3).ids[0].tolist()
    # Declare the second greedy token an eos: generation keeps it and stops there.
    out = generate_greedy(model16, prompt, 10, eos_ids=(first[1],))
    assert out.ids[0].tolist() == first[:2]
    assert out.step_logits is None


def test_incremental_decoding_matches_full_prefill(model32):
    """Cached single-token steps, chunked prefill and a cache that must grow all give the
    logits of one causal pass over the whole sequence (float32, so only summation order differs)."""
    ids = torch.from_numpy(load_case("emo_text").trace["A_qwen_input_ids"])
    T = ids.shape[1]
    with torch.inference_mode():
        full = [model32(ids[:, : t + 1], 0, model32.new_cache(1, t + 1)) for t in (T - 3, T - 2, T - 1)]
        cache = model32.new_cache(1, 4)  # too small on purpose: it must grow
        model32(ids[:, :20], 0, cache)
        model32(ids[:, 20 : T - 3], 20, cache)  # chunk at an offset: explicit causal mask
        steps = [model32(ids[:, t : t + 1], t, cache) for t in (T - 3, T - 2, T - 1)]
    for a, b in zip(full, steps, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=0)


def _full_size_config(tmp_path, **overrides):
    cfg = {"model_type": "qwen3", "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072,
           "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128,
           "rms_norm_eps": 1e-6, "rope_theta": 1000000, "max_position_embeddings": 40960,
           "tie_word_embeddings": True, "torch_dtype": "bfloat16", "use_sliding_window": False,
           "sliding_window": None, "rope_scaling": None, "eos_token_id": 151645}
    cfg.update(overrides)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(cfg))
    return path


def test_full_size_config_shapes(tmp_path):
    cfg = QwenConfig.from_file(_full_size_config(tmp_path))
    with torch.device("meta"):
        model = Qwen3(cfg, tied=True, dtype=torch.float16)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["model.layers.27.self_attn.q_proj.weight"] == (2048, 1024)  # head_dim 128 ≠ 1024/16
    assert shapes["model.layers.0.self_attn.k_proj.weight"] == (1024, 1024)
    assert shapes["model.layers.0.self_attn.q_norm.weight"] == (128,)
    assert shapes["model.embed_tokens.weight"] == (151936, 1024)
    assert "lm_head.weight" not in shapes
    # Qwen3-0.6B: 0.44 B parameters outside the (tied) embedding.
    assert sum(v.numel() for v in model.parameters()) == 596_049_920


def test_head_dim_default(tmp_path):
    # Qwen3's config class supplies head_dim 128 when the file has none.
    path = _full_size_config(tmp_path)
    data = json.loads(path.read_text())
    del data["head_dim"]
    path.write_text(json.dumps(data))
    assert QwenConfig.from_file(path).head_dim == 128


def test_bf16_weights_with_separate_head(qwen_dir, tmp_path):
    """A bf16 file, untied config with an lm_head: loads, converts, and uses that head."""
    folder = tmp_path / "qwen"
    shutil.copytree(qwen_dir, folder)
    sd = load_file(folder / "model.safetensors")
    sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
    sd["lm_head.weight"] = torch.zeros_like(sd["model.embed_tokens.weight"])
    save_file(sd, folder / "model.safetensors", metadata={"format": "pt"})
    cfg = json.loads((folder / "config.json").read_text())
    cfg["tie_word_embeddings"] = False
    (folder / "config.json").write_text(json.dumps(cfg))
    model = load_qwen(folder, device="cpu", dtype=torch.float16)
    assert model.lm_head is not None and model.lm_head.weight.dtype == torch.float16
    with torch.inference_mode():
        logits = model(torch.tensor([[1, 2, 3]]), 0, model.new_cache(1, 3))
    assert torch.count_nonzero(logits) == 0


def test_missing_folder_names_it(tmp_path):
    missing = tmp_path / "qwen0.6bemo4-merge"
    with pytest.raises(ModelNotFoundError, match=re.escape("qwen0.6bemo4-merge")):
        load_qwen(missing)
    with pytest.raises(ModelNotFoundError, match=re.escape("qwen0.6bemo4-merge")):
        QwenTokenizer.from_folder(missing)


def test_missing_weights_and_bad_keys(qwen_dir, tmp_path):
    folder = tmp_path / "qwen"
    shutil.copytree(qwen_dir, folder)
    sd = load_file(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelNotFoundError, match=re.escape("model.safetensors")):
        load_qwen(folder)
    bad = dict(sd)
    del bad["model.layers.1.mlp.up_proj.weight"]
    save_file(bad, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=re.escape("model.layers.1.mlp.up_proj.weight")):
        load_qwen(folder)
    bad = dict(sd)
    bad["model.norm.weight"] = torch.ones(3)
    save_file(bad, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=re.escape("model.norm.weight")):
        load_qwen(folder)


def test_chat_template_from_tokenizer_config(qwen_dir, tmp_path):
    folder = tmp_path / "qwen"
    shutil.copytree(qwen_dir, folder)
    template = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    (folder / "chat_template.jinja").unlink()
    with pytest.raises(ModelNotFoundError, match=re.escape("chat_template.jinja")):
        QwenTokenizer.from_folder(folder)
    tcfg = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    tcfg["chat_template"] = template
    (folder / "tokenizer_config.json").write_text(json.dumps(tcfg), encoding="utf-8")
    case = load_case("emo_text")
    tokenizer = QwenTokenizer.from_folder(folder)
    chat = tokenizer.render_chat(case.expected["qwen_messages"], add_generation_prompt=True,
                                 enable_thinking=False)
    assert chat == case.expected["qwen_chat_text"]
