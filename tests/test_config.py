"""config.yaml → typed dataclasses: unknown fields tolerated, missing required ones named."""

from __future__ import annotations

import pytest
import yaml

from indextts_core.config import load_config
from indextts_core.errors import ConfigError
from indextts_core.tiny import SMALL_FILES_DIR

TINY = SMALL_FILES_DIR / "config.yaml"


def test_tiny_and_full_size_configs_load():
    from pathlib import Path

    cfg = load_config(TINY)
    assert cfg.gpt.layers == 2 and cfg.gpt.stop_mel_token == 1025 and cfg.bpe_model == "bpe.model"
    assert cfg.s2mel.DiT.depth == 2 and cfg.s2mel.preprocess_params.spect_params.hop_length == 256
    full = load_config(Path(__file__).resolve().parents[1] / "benchmarks" / "full_size" / "config.yaml")
    assert (full.gpt.layers, full.gpt.heads, full.gpt.number_mel_codes) == (24, 20, 8194)
    assert full.gpt.condition_module.num_blocks == 6 and full.semantic_codec.codebook_size == 8192
    assert sum(full.emo_num) == 73 and full.version == "2.0"


def _write(tmp_path, data):
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(data), encoding="utf-8")
    return p


def test_unknown_fields_are_ignored(tmp_path):
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    data["training"] = {"lr": 1e-4}
    data["gpt"]["some_future_option"] = True
    assert load_config(_write(tmp_path, data)).gpt.layers == 2


@pytest.mark.parametrize(("path", "name"), [(("gpt", "layers"), "layers"), (("s2mel", "DiT"), "DiT"),
                                            (("semantic_codec",), "semantic_codec")])
def test_missing_required_field_is_named(tmp_path, path, name):
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    node = data
    for key in path[:-1]:
        node = node[key]
    del node[path[-1]]
    with pytest.raises(ConfigError, match=f"'{name}' is missing"):
        load_config(_write(tmp_path, data))


def test_unreadable_or_absent_config(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "config.yaml"
    bad.write_text("gpt: [unclosed", encoding="utf-8")
    with pytest.raises(ConfigError, match="YAML"):
        load_config(bad)
    data = yaml.safe_load(TINY.read_text(encoding="utf-8"))
    data["emo_num"] = [1, 2, 3]
    with pytest.raises(ConfigError, match="emo_num"):
        load_config(_write(tmp_path, data))
