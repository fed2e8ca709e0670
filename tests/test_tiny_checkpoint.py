"""The rule-built checkpoint folder: the released layout everywhere, the golden values where torch allows."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
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
        # A wrong seed or scale is off by O(1); torch's scalar randn kernels move the values by up
        # to 1.4e-6 relative (measured with ATEN_CPU_CAPABILITY=default), so that is not tested here.
        assert torch.allclose(t.flatten()[: len(first)], torch.tensor(first), rtol=1e-5, atol=0)
    var = tiny.rule_buffer(salt, "hf_cache/campplus_cn_common.bin", "head.bn1.running_var", [32],
                           torch.float32, "eab0f5abe13ee2ef")
    assert tiny.tensor_digest(var) == "eab0f5abe13ee2ef"


def test_rebuilt_folder_has_every_file_key_and_shape(tiny_model_dir):
    manifest = tiny.load_manifest()
    report = tiny.build_report(tiny_model_dir)
    assert report is not None and report.tensors == sum(len(s["keys"]) for s in manifest["files"].values())
    for name in manifest["small_files"]:
        assert (tiny_model_dir / name).is_file(), name
    differing = []
    for file, spec in manifest["files"].items():
        sd = read_state_dict(tiny_model_dir / file)
        assert set(sd) == set(spec["keys"]), file
        for key, info in spec["keys"].items():
            assert list(sd[key].shape) == info["shape"], (file, key)
            assert str(sd[key].dtype).removeprefix("torch.") == info["dtype"], (file, key)
            if tiny.tensor_digest(sd[key]) != info["sha256_16"]:
                differing.append(f"{file}|{key}")
    # The report tells the truth about the folder, whichever machine built it.
    assert differing == list(report.differing)
    assert tiny.is_test_model(tiny_model_dir)


# BatchNorm statistics are drawn by the rule like parameters (num_batches_tracked is zero).
_RANDOM_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def test_shipped_buffers_are_the_manifest_values():
    manifest = tiny.load_manifest()
    wanted = {info["sha256_16"]: (info["dtype"], info["shape"])
              for spec in manifest["files"].values() for key, info in spec["keys"].items()
              if info["kind"] != "param" and not key.endswith(_RANDOM_BUFFERS)}
    with np.load(tiny.BUFFERS_PATH) as z:
        shipped = {name: z[name] for name in z.files}
    assert set(shipped) == set(wanted)
    for digest, value in shipped.items():
        t = torch.from_numpy(value)
        assert tiny.tensor_digest(t) == digest
        assert (str(t.dtype).removeprefix("torch."), list(t.shape)) == (wanted[digest][0], wanted[digest][1])


def test_safetensors_metadata_as_released(tiny_model_dir):
    from safetensors import safe_open

    with safe_open(tiny_model_dir / "hf_cache/w2v-bert-2.0/model.safetensors", "pt") as f:
        assert f.metadata() == {"format": "pt"}
    with safe_open(tiny_model_dir / "hf_cache/semantic_codec_model.safetensors", "pt") as f:
        assert not f.metadata()


def test_wrong_digest_is_reported_not_raised(tmp_path):
    manifest = tiny.load_manifest()
    file = "hf_cache/bigvgan/bigvgan_generator.pt"
    small = {"salt": manifest["salt"], "files": {file: json.loads(json.dumps(manifest["files"][file]))}}
    small["files"][file]["keys"]["generator.conv_pre.bias"]["sha256_16"] = "0" * 16
    dest = tiny.build_checkpoint(tmp_path / "m", manifest=small)
    report = tiny.build_report(dest)
    assert tiny.is_test_model(dest) and report is not None
    assert f"{file}|generator.conv_pre.bias" in report.differing and not report.golden_identical
    # Elsewhere only rule-drawn tensors may differ (where this machine's randn draws other bits).
    drawn = {f"{file}|{k}" for k, v in small["files"][file]["keys"].items()
             if v["kind"] == "param" or k.endswith(_RANDOM_BUFFERS)}
    assert set(report.differing) - {f"{file}|generator.conv_pre.bias"} <= drawn
    assert f"{len(report.differing)} of " in report.summary() and "skip" in report.summary()
    assert json.loads((dest / tiny.REPORT_FILE).read_text())["golden_identical"] is False
    assert "generator.conv_pre.bias" in read_state_dict(dest / file)


def _subset(manifest: dict, keep) -> dict:
    files = {}
    for file, spec in manifest["files"].items():
        keys = {k: v for k, v in spec["keys"].items() if keep(k, v)}
        if keys:
            files[file] = {**spec, "keys": keys}
    return {"salt": manifest["salt"], "files": files}


_BUILD_IN_CHILD = textwrap.dedent("""
    import json, sys, torch
    from indextts_core import tiny
    manifest = json.loads(open(sys.argv[1]).read())
    dest = tiny.build_checkpoint(sys.argv[2], manifest=manifest)
    print(json.dumps({"capability": torch.backends.cpu.get_cpu_capability(),
                      "differing": list(tiny.build_report(dest).differing)}))
""")


@pytest.mark.parametrize("capability", ["default", "avx2"])
def test_builds_under_another_cpu_kernel_set(tmp_path, capability):
    """Buffers come out identical under every kernel set; random parameters may not, and still build."""
    manifest = tiny.load_manifest()
    buffers = lambda k, v: v["kind"] != "param"  # noqa: E731
    sample = {"gpt.pth|final_norm.bias", "gpt.pth|text_embedding.weight",
              "s2mel.pth|net.cfm.estimator.transformer.layers.0.attention.wo.weight"}
    small = _subset(manifest, lambda k, v: buffers(k, v) or any(s.endswith("|" + k) for s in sample))
    (tmp_path / "manifest.json").write_text(json.dumps(small))
    env = {**os.environ, "ATEN_CPU_CAPABILITY": capability}
    out = subprocess.run([sys.executable, "-c", _BUILD_IN_CHILD, str(tmp_path / "manifest.json"), str(tmp_path / "m")],
                         env=env, capture_output=True, text=True, check=True, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    if result["capability"].lower() != capability:
        pytest.skip(f"this CPU cannot run the {capability} kernels (torch chose {result['capability']})")
    fixed = {f"{f}|{k}" for f, spec in small["files"].items() for k, v in spec["keys"].items()
             if buffers(k, v) and not k.endswith(_RANDOM_BUFFERS)}
    assert fixed and not set(result["differing"]) & fixed, "a non-random buffer depends on the CPU kernels"
    # The folder loads like any other test checkpoint: every file, key and shape.
    for file, spec in small["files"].items():
        sd = read_state_dict(tmp_path / "m" / file)
        assert {k: list(v.shape) for k, v in sd.items()} == {k: v["shape"] for k, v in spec["keys"].items()}
