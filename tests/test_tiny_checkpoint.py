"""The rule-built checkpoint folder is the golden one: every file, key, shape and value."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch

from indextts_core import tiny
from indextts_core.checkpoint import read_state_dict


def test_recipe_is_the_golden_bundles():
    # sha256 of the golden bundle's manifest.json: the shipped recipe must be that file.
    digest = hashlib.sha256(tiny.MANIFEST_PATH.read_bytes()).hexdigest()
    assert digest == "cad0f536a4797c058670e60f42c467e44e02bb4a21fc73319062f122fa8fcc53"
    assert tiny.load_manifest()["rule"] == "golden-rule-v1"


def test_spot_checks_from_bundle_readme():
    salt = tiny.load_manifest()["salt"]
    cases = [("gpt.pth", "text_embedding.weight", [1025, 1280], [0.0021680943, 0.011112622, -0.02537114]),
             ("gpt.pth", "final_norm.bias", [1280], [-0.078892067, -0.017922955, 0.11358843]),
             ("s2mel.pth", "net.cfm.estimator.transformer.layers.0.attention.wo.weight", [64, 64],
              [-0.011320131, 0.019814037, 0.0072282241]),
             ("hf_cache/bigvgan/bigvgan_generator.pt", "generator.conv_post.weight_g", [1, 1, 1],
              [0.010122079])]
    for file, key, shape, first in cases:
        t = tiny.rule_param(salt, file, key, shape)
        assert torch.allclose(t.flatten()[: len(first)], torch.tensor(first), rtol=1e-6, atol=0)
    var = tiny.rule_buffer(salt, "hf_cache/campplus_cn_common.bin", "head.bn1.running_var", [32],
                           torch.float32)
    assert tiny.tensor_digest(var) == "eab0f5abe13ee2ef"


def test_rebuilt_folder_has_every_file_key_and_shape(tiny_model_dir):
    manifest = tiny.load_manifest()
    for name in manifest["small_files"]:
        assert (tiny_model_dir / name).is_file(), name
    for file, spec in manifest["files"].items():
        sd = read_state_dict(tiny_model_dir / file)
        assert set(sd) == set(spec["keys"]), file
        for key, info in spec["keys"].items():
            assert list(sd[key].shape) == info["shape"], (file, key)
            assert tiny.tensor_digest(sd[key]) == info["sha256_16"], (file, key)
    assert tiny.is_test_model(tiny_model_dir)


def test_safetensors_metadata_as_released(tiny_model_dir):
    from safetensors import safe_open

    with safe_open(tiny_model_dir / "hf_cache/w2v-bert-2.0/model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}
    with safe_open(tiny_model_dir / "hf_cache/semantic_codec_model.safetensors", "pt") as f:
        assert not f.metadata()


def test_wrong_digest_is_reported(tmp_path):
    manifest = tiny.load_manifest()
    file = "hf_cache/bigvgan/bigvgan_generator.pt"
    small = {"salt": manifest["salt"], "files": {file: json.loads(json.dumps(manifest["files"][file]))}}
    small["files"][file]["keys"]["generator.conv_pre.bias"]["sha256_16"] = "0" * 16
    with pytest.raises(RuntimeError, match="differ from the manifest"):
        tiny.build_checkpoint(tmp_path / "m", manifest=small)
