"""SynthesisOptions: one validated, JSON round-trippable value per take."""

from __future__ import annotations

import dataclasses
import json

import pytest

from indextts_core import Duration, Emotion, InvalidOptionError, Sampling, SynthesisOptions
from indextts_core.options import MAX_SEED


def test_defaults_are_the_reference_settings():
    o = SynthesisOptions()
    assert o.emotion == Emotion() and o.duration == Duration() and o.sampling == Sampling()
    assert (o.seed, o.segment_tokens, o.gap_ms, o.diffusion_steps, o.cfg_rate) == (None, 120, 200.0, 25, 0.7)


@pytest.mark.parametrize("options", [
    SynthesisOptions(),
    SynthesisOptions(emotion=Emotion.from_label("sad", 0.8), duration=Duration.seconds(3.5), seed=7,
                     segment_tokens=60, quick_streaming_tokens=40, gap_ms=150, diffusion_steps=10, cfg_rate=0.5),
    SynthesisOptions(emotion=Emotion.from_audio("clips/angry.wav", 0.6), duration=Duration.speed(1.25),
                     sampling=Sampling.greedy(max_mel_tokens=300)),
    SynthesisOptions(emotion=Emotion.from_text("a little sad", 0.7, max_tokens=16, use_random=True),
                     duration=Duration.tokens(90), seed=MAX_SEED),
    SynthesisOptions(emotion=Emotion.from_vector([0.1, 0, 0.3, 0, 0, 0, 0.2, 0], 0.9, apply_ui_bias=True)),
], ids=["defaults", "label", "audio", "text", "vector"])
def test_json_round_trip(options):
    text = options.to_json()
    assert SynthesisOptions.from_json(text) == options
    assert SynthesisOptions.from_dict(json.loads(text)) == options


def test_frozen_and_replace_validates():
    o = SynthesisOptions(seed=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.seed = 2  # type: ignore[misc]
    assert o.replace(seed=2).seed == 2
    with pytest.raises(InvalidOptionError, match="seed"):
        o.replace(seed=-1)


@pytest.mark.parametrize(("field", "value"), [
    ("seed", -1), ("seed", MAX_SEED + 1), ("seed", 1.5), ("seed", True),
    ("segment_tokens", 0), ("segment_tokens", 601), ("segment_tokens", 12.0),
    ("quick_streaming_tokens", -1), ("quick_streaming_tokens", 2.5), ("quick_streaming_tokens", None),
    ("gap_ms", -1), ("gap_ms", 5001), ("gap_ms", float("nan")), ("gap_ms", "200"),
    ("diffusion_steps", 0), ("diffusion_steps", 201),
    ("cfg_rate", -0.1), ("cfg_rate", 3.5),
    ("emotion", "happy"), ("duration", 3.0), ("sampling", {"top_k": 5}),
])
def test_each_bad_field_is_named(field, value):
    with pytest.raises(InvalidOptionError, match=field):
        SynthesisOptions(**{field: value})


def test_from_dict_names_unknown_and_bad_nested_fields():
    with pytest.raises(InvalidOptionError, match="unknown option speeed"):
        SynthesisOptions.from_dict({"speeed": 2})
    with pytest.raises(InvalidOptionError, match=r"unknown option sampling\.topk"):
        SynthesisOptions.from_dict({"sampling": {"topk": 3}})
    with pytest.raises(InvalidOptionError, match="duration: speed must be between"):
        SynthesisOptions.from_dict({"duration": {"mode": "speed", "value": 9}})
    with pytest.raises(InvalidOptionError, match=r"emotion\.vector"):
        SynthesisOptions.from_dict({"emotion": {"mode": "vector", "vector": ["x"] * 8}})
    with pytest.raises(InvalidOptionError, match="JSON object"):
        SynthesisOptions.from_dict({"emotion": "happy"})
    with pytest.raises(InvalidOptionError, match="not valid JSON"):
        SynthesisOptions.from_json("{")
    assert SynthesisOptions.from_dict({"duration": {"mode": "seconds", "value": 2}}).duration == Duration.seconds(2)


def test_in_memory_emotion_clip_is_not_serialisable():
    import numpy as np

    o = SynthesisOptions(emotion=Emotion.from_audio((16000, np.zeros(16000, np.float32))))
    with pytest.raises(InvalidOptionError, match=r"emotion\.audio"):
        o.to_dict()
