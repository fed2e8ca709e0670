"""CAM++ speaker encoder vs the golden trace (style vector and its fbank input), and its loader."""

from __future__ import annotations

import pytest
import torch

from indextts_core import layout
from indextts_core.checkpoint import read_state_dict
from indextts_core.config import load_config
from indextts_core.errors import CheckpointError
from indextts_core.models.campplus import CAMPPlus, campplus_features, load_campplus

from .golden import load_case, needs_golden_weights
from .parity import assert_stage


@pytest.fixture(scope="module")
def campplus(tiny_model_dir, cfg):
    return load_campplus(tiny_model_dir, cfg)


@pytest.fixture(scope="module")
def spk():
    return load_case("spk_only")


def test_features_from_recorded_16k_audio(spk):
    feat = campplus_features(torch.from_numpy(spk.trace["A_spk_audio_16k"]))
    ref = spk.trace["A_campplus_feat"]
    assert feat.shape == ref.shape
    assert_stage("A_campplus_feat", feat, ref)


@needs_golden_weights
def test_style_matches_golden(campplus, spk):
    with torch.inference_mode():
        style = campplus(torch.from_numpy(spk.trace["A_campplus_feat"]))
    assert style.shape == (1, 192)
    assert_stage("A_style", style, spk.trace["A_style"])


def test_batch_rows_are_independent(campplus):
    # (The golden prompt already has a partial last 100-frame CAM segment: 264 frames.)
    feat = torch.randn(1, 206, 80)
    with torch.inference_mode():
        one = campplus(feat)
        two = campplus(torch.cat([feat, feat.flip(1)]))
    assert torch.isfinite(one).all()
    assert torch.allclose(two[0], one[0], atol=1e-5)


def test_model_matches_the_file_key_for_key(tiny_model_dir):
    file_keys = set(read_state_dict(tiny_model_dir / layout.CAMPPLUS))
    assert set(CAMPPlus().state_dict()) == file_keys


# --------------------------------------------------------------------------- loader errors

@pytest.fixture(scope="module")
def cfg(tiny_model_dir):
    return load_config(tiny_model_dir / layout.CONFIG)


@pytest.fixture()
def release_sd(tiny_model_dir):
    return read_state_dict(tiny_model_dir / layout.CAMPPLUS)


def test_missing_key_names_file_and_key(tmp_path, release_sd, cfg):
    del release_sd["xvector.block2.tdnnd7.cam_layer.linear2.bias"]
    path = tmp_path / layout.CAMPPLUS
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(release_sd, path)
    with pytest.raises(CheckpointError) as e:
        load_campplus(tmp_path, cfg)
    assert str(path) in str(e.value) and "xvector.block2.tdnnd7.cam_layer.linear2.bias" in str(e.value)


def test_wrong_shape_names_file_and_key(tmp_path, release_sd, cfg):
    release_sd["xvector.dense.linear.weight"] = torch.zeros(512, 1024, 1)
    path = tmp_path / layout.CAMPPLUS
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(release_sd, path)
    with pytest.raises(CheckpointError) as e:
        load_campplus(tmp_path, cfg)
    assert str(path) in str(e.value) and "xvector.dense.linear.weight" in str(e.value)


def test_unexpected_key_is_an_error(tmp_path, release_sd, cfg):
    release_sd["xvector.block4.tdnnd1.linear1.weight"] = torch.zeros(1)
    path = tmp_path / layout.CAMPPLUS
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(release_sd, path)
    with pytest.raises(CheckpointError, match=r"unexpected key xvector\.block4"):
        load_campplus(tmp_path, cfg)


def test_truncated_file_is_reported(tmp_path, tiny_model_dir, cfg):
    data = (tiny_model_dir / layout.CAMPPLUS).read_bytes()
    path = tmp_path / layout.CAMPPLUS
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"campplus_cn_common\.bin.*truncated"):
        load_campplus(tmp_path, cfg)
