"""Typed view of the release's ``config.yaml``.

Only the fields inference reads are modelled. Unknown fields are ignored (the release
carries training settings too); a missing required field is a :class:`ConfigError`
naming it.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import ConfigError

T = TypeVar("T")


def from_mapping(cls: type[T], data: Any, where: str) -> T:
    """Build dataclass ``cls`` from a mapping, recursing into nested dataclass fields.

    ``where`` names the place in the file for error messages (``config.yaml: gpt``).
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{where}: required field '{f.name}' is missing")
            continue
        value = data[f.name]
        hint = hints[f.name]
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
            args = [a for a in typing.get_args(hint) if a is not type(None)]
            hint = args[0] if len(args) == 1 else hint
        if dataclasses.is_dataclass(hint) and value is not None:
            value = from_mapping(hint, value, f"{where}.{f.name}")
        kwargs[f.name] = value
    return cls(**kwargs)


@dataclass
class ConditionModuleConfig:
    """Conformer + perceiver conditioning encoder (speaker or emotion branch)."""

    output_size: int
    linear_units: int
    attention_heads: int
    num_blocks: int
    input_layer: str = "conv2d2"
    perceiver_mult: int = 2


@dataclass
class GPTConfig:
    """UnifiedVoice v2 (``gpt:`` in config.yaml)."""

    model_dim: int
    layers: int
    heads: int
    max_mel_tokens: int
    max_text_tokens: int
    number_text_tokens: int
    number_mel_codes: int
    start_mel_token: int
    stop_mel_token: int
    condition_module: ConditionModuleConfig
    emo_condition_module: ConditionModuleConfig
    start_text_token: int = 0
    stop_text_token: int = 1
    condition_type: str = "conformer_perceiver"
    condition_num_latent: int = 32
    max_conditioning_inputs: int = 1


@dataclass
class SemanticCodecConfig:
    """MaskGCT RepCodec (``semantic_codec:``)."""

    codebook_size: int
    hidden_size: int
    codebook_dim: int
    vocos_dim: int
    vocos_intermediate_dim: int
    vocos_num_layers: int


@dataclass
class SpectParams:
    n_fft: int = 1024
    win_length: int = 1024
    hop_length: int = 256
    n_mels: int = 80
    fmin: float = 0
    fmax: Any = None


@dataclass
class PreprocessParams:
    sr: int = 22050
    spect_params: SpectParams = field(default_factory=SpectParams)


@dataclass
class LengthRegulatorConfig:
    channels: int
    in_channels: int
    sampling_ratios: list[int]
    is_discrete: bool = False
    vector_quantize: bool = False
    f0_condition: bool = False


@dataclass
class DiTConfig:
    hidden_dim: int
    num_heads: int
    depth: int
    in_channels: int = 80
    content_dim: int = 512
    style_condition: bool = True
    final_layer_type: str = "wavenet"
    long_skip_connection: bool = True
    uvit_skip_connection: bool = True
    is_causal: bool = False
    time_as_token: bool = False
    style_as_token: bool = False
    zero_prompt_speech_token: bool = False


@dataclass
class WaveNetConfig:
    hidden_dim: int
    num_layers: int
    kernel_size: int
    dilation_rate: int = 1


@dataclass
class StyleEncoderConfig:
    dim: int = 192


@dataclass
class S2MelConfig:
    length_regulator: LengthRegulatorConfig
    DiT: DiTConfig
    wavenet: WaveNetConfig
    preprocess_params: PreprocessParams = field(default_factory=PreprocessParams)
    style_encoder: StyleEncoderConfig = field(default_factory=StyleEncoderConfig)


@dataclass
class IndexTTSConfig:
    """The whole ``config.yaml`` as inference needs it."""

    gpt: GPTConfig
    semantic_codec: SemanticCodecConfig
    s2mel: S2MelConfig
    gpt_checkpoint: str = "gpt.pth"
    s2mel_checkpoint: str = "s2mel.pth"
    w2v_stat: str = "wav2vec2bert_stats.pt"
    emo_matrix: str = "feat2.pt"
    spk_matrix: str = "feat1.pt"
    emo_num: list[int] = field(default_factory=lambda: [3, 17, 2, 8, 4, 5, 10, 24])
    qwen_emo_path: str = "qwen0.6bemo4-merge/"
    bpe_model: str = "bpe.model"
    version: str = "2.0"

    @classmethod
    def from_dict(cls, data: dict, where: str = "config.yaml") -> IndexTTSConfig:
        data = dict(data)
        dataset = data.get("dataset") or {}
        if isinstance(dataset, dict) and "bpe_model" in dataset:
            data.setdefault("bpe_model", dataset["bpe_model"])
        if "version" in data:
            data["version"] = str(data["version"])
        cfg = from_mapping(cls, data, where)
        if len(cfg.emo_num) != 8:
            raise ConfigError(f"{where}: emo_num must list 8 group sizes, got {cfg.emo_num}")
        return cfg


def load_config(path: str | Path) -> IndexTTSConfig:
    """Read ``config.yaml`` of a model folder."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: cannot be read as YAML ({e})") from e
    return IndexTTSConfig.from_dict(data, where=str(path))


def load_json(path: str | Path) -> dict:
    """Read a JSON config file (w2v-BERT, BigVGAN, Qwen) with a clear error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: cannot be read as JSON ({e})") from e
