"""Emotion-vector maths, the emotion model's answer parser and QwenEmotion vs the golden cases."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch

from indextts_core.config import load_config
from indextts_core.emotion import (
    EMOTION_LABELS_ZH,
    EMOTIONS,
    REFERENCE_MAX_NEW_TOKENS,
    QwenEmotion,
    blend_emotion_matrix,
    load_emotion_matrices,
    normalize_emotion_vector,
    parse_emotion_answer,
    scale_emotion_vector,
    select_matrix_rows,
)
from indextts_core.errors import CheckpointError, InvalidOptionError, ModelNotFoundError, TextError
from indextts_core.options import Emotion
from tests.golden import load_case, needs_golden_weights
from tests.parity import assert_stage


@pytest.fixture(scope="module")
def cfg(tiny_model_dir):
    return load_config(tiny_model_dir / "config.yaml")


@pytest.fixture(scope="module")
def matrices(tiny_model_dir, cfg):
    return load_emotion_matrices(tiny_model_dir, cfg)


@pytest.fixture(scope="module")
def qwen(tiny_model_dir):
    return QwenEmotion(tiny_model_dir / "qwen0.6bemo4-merge", "cpu")


def _vector_of(case) -> list[float]:
    if case.inputs["use_emo_text"]:
        return [case.expected["qwen_emotion_dict"][name] for name in EMOTIONS]
    return case.inputs["emo_vector"]


# ---------------------------------------------------------------------------------------
# Golden cases


@needs_golden_weights
def test_emo_text_analysis(qwen):
    case = load_case("emo_text")
    result = qwen.analyze(case.inputs["emo_text"], max_new_tokens=case.inputs["qwen_max_new_tokens"],
                          keep_logits=True)
    assert result.chat_text == case.expected["qwen_chat_text"]
    assert result.input_ids.tolist() == case.trace["A_qwen_input_ids"].tolist()
    assert result.generated_ids.tolist() == case.trace["A_qwen_generated_ids"].tolist()
    assert_stage("A_qwen_step_logits", result.step_logits, case.trace["A_qwen_step_logits"])
    assert result.answer == case.expected["qwen_decoded"][0]
    assert result.values == case.expected["qwen_emotion_dict"]
    assert list(result.values) == list(EMOTIONS)
    assert result.vector == case.trace["A_qwen_emotion_vector"].tolist()
    weights = scale_emotion_vector(result.vector, case.inputs["emo_alpha"])
    assert weights == case.expected["emo_vector_effective"]
    np.testing.assert_array_equal(np.float32(weights), case.trace["A_emo_weight_vector"])


@pytest.mark.parametrize("name", ["emo_vector", "emo_text"])
def test_vector_blend_matches_golden(name, matrices, cfg):
    case = load_case(name)
    spk_matrix, emo_matrix = matrices
    weights = scale_emotion_vector(_vector_of(case), case.inputs["emo_alpha"])
    assert weights == case.expected["emo_vector_effective"]
    np.testing.assert_array_equal(np.float32(weights), case.trace["A_emo_weight_vector"])

    rows = select_matrix_rows(torch.from_numpy(case.trace["A_style"]), spk_matrix, cfg.emo_num)
    assert rows == case.trace["A_emo_matrix_index"].tolist() == case.expected["emo_matrix_index"]

    emovec, emovec_mat = blend_emotion_matrix(weights, rows, emo_matrix, cfg.emo_num,
                                              torch.from_numpy(case.trace["A_emovec_merged"]))
    for got, key in ((emovec_mat, "A_emovec_mat"), (emovec, "A_emovec_used")):
        ref = torch.from_numpy(case.trace[key])
        assert got.shape == ref.shape and got.dtype == torch.float32
        assert_stage(key, got, ref)


# ---------------------------------------------------------------------------------------
# Vector maths


def test_scale_truncates_like_python_floats():
    # 0.1·0.7·10000 = 699.999…, truncated: the reference keeps 0.0699, not 0.07.
    got = scale_emotion_vector([0.1, 0.7, 0, 1.2, 0, 0, 0, 0.5], 0.7)
    assert got == [0.0699, 0.4899, 0.0, 0.84, 0.0, 0.0, 0.0, 0.35]
    assert scale_emotion_vector([0.3] * 8, 2.0) == [0.3] * 8  # alpha clamped to 1: untouched
    assert scale_emotion_vector([0.123456] * 8, 1.0) == [0.123456] * 8
    assert scale_emotion_vector([0.5] * 8, -1.0) == [0.0] * 8
    assert scale_emotion_vector(torch.tensor([0.5] * 8, dtype=torch.float64), 0.5) == [0.25] * 8


def test_normalize_like_the_web_ui():
    assert normalize_emotion_vector([0, 0, 0.5, 0, 0, 0, 0, 0]) == [0, 0, 0.5, 0, 0, 0, 0, 0]
    biased = normalize_emotion_vector([0.4, 0, 0, 0, 0, 0, 0, 0.4])
    assert biased == [0.4 * 0.9375, 0, 0, 0, 0, 0, 0, 0.4 * 0.5625]
    capped = normalize_emotion_vector([1.0, 1.0, 0, 0, 0, 0, 0, 0])
    total = 0.9375 + 0.875
    assert capped == [0.9375 * (0.8 / total), 0.875 * (0.8 / total), 0, 0, 0, 0, 0, 0]
    assert math.isclose(sum(capped), 0.8)
    unbiased = normalize_emotion_vector([1.0, 0, 0, 0, 0, 0, 0, 0], apply_bias=False)
    assert unbiased == [0.8, 0, 0, 0, 0, 0, 0, 0]


def test_random_rows_use_the_generator(matrices, cfg):
    spk_matrix, _ = matrices
    style = torch.zeros(1, spk_matrix.shape[1])
    a = select_matrix_rows(style, spk_matrix, cfg.emo_num, use_random=True,
                           generator=torch.Generator().manual_seed(3))
    b = select_matrix_rows(style, spk_matrix, cfg.emo_num, use_random=True,
                           generator=torch.Generator().manual_seed(3))
    assert a == b and all(0 <= r < n for r, n in zip(a, cfg.emo_num, strict=True))


def test_blend_weights_beyond_one_subtract_the_speaker(matrices, cfg):
    _, emo_matrix = matrices
    merged = torch.ones(1, emo_matrix.shape[1])
    rows = [0] * 8
    emovec, mat = blend_emotion_matrix([1.2, 0.5, 0, 0, 0, 0, 0, 0], rows, emo_matrix, cfg.emo_num, merged)
    torch.testing.assert_close(mat, (1.2 * emo_matrix[0] + 0.5 * emo_matrix[3]).unsqueeze(0))
    torch.testing.assert_close(emovec, mat - 0.7 * merged)
    with pytest.raises(ValueError, match="one row per emotion group"):
        blend_emotion_matrix([0.0] * 8, rows[:3], emo_matrix, cfg.emo_num, merged)


def test_load_emotion_matrices_checks_sizes(tiny_model_dir, cfg, matrices, tmp_path):
    spk_matrix, emo_matrix = matrices
    assert spk_matrix.shape == (73, 192) and emo_matrix.shape == (73, 1280)
    cfg_bad = type(cfg)(**{**cfg.__dict__, "emo_num": [3, 17, 2, 8, 4, 5, 10, 23]})
    with pytest.raises(CheckpointError, match=re.escape("feat1.pt") + ".*72 rows"):
        load_emotion_matrices(tiny_model_dir, cfg_bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_emotion_matrices(tmp_path, cfg)


def test_emotion_options_validate_vectors_and_weights():
    assert Emotion.from_vector([0, 0, 1.2, 0, 0, 0, 0, 0.5]).vector == (0.0, 0.0, 1.2, 0.0, 0.0, 0.0, 0.0, 0.5)
    for bad in ([0.1] * 7, [0, 0, 1.3, 0, 0, 0, 0, 0], [0, 0, 0, 0, -0.1, 0, 0, 0],
                [0, float("nan"), 0, 0, 0, 0, 0, 0], ["x"] * 8):
        with pytest.raises(InvalidOptionError):
            Emotion.from_vector(bad)
    assert Emotion.from_audio("clip.wav", 0).weight == 0.0
    for bad in (1.01, -0.1, float("inf")):
        with pytest.raises(InvalidOptionError):
            Emotion.from_audio("clip.wav", bad)


# ---------------------------------------------------------------------------------------
# Parsing the model's answer


def _vec(**values) -> dict[str, float]:
    return {name: float(values.get(name, 0.0)) for name in EMOTIONS}


def test_parse_json_with_chinese_keys_clamps():
    answer = ('{"高兴": 0.5, "愤怒": 0.1, "悲伤": 0.9, "恐惧": 0, "反感": 0, "低落": 0.3, '
              '"惊讶": 2.5, "自然": -1}')
    got = parse_emotion_answer(answer, "今天天气很好")
    assert got == _vec(happy=0.5, angry=0.1, sad=0.9, melancholic=0.3, surprised=1.2)
    assert list(got) == list(EMOTIONS)


def test_parse_english_keys_are_not_scores():
    # The reference reads only the Chinese keys; English score keys leave everything at 0.
    assert parse_emotion_answer('{"happy": 0.5, "sad": 0.9}', "x") == _vec(calm=1.0)


def test_parse_label_answers():
    assert parse_emotion_answer('"高兴"', "x") == _vec(happy=1.0)
    assert parse_emotion_answer('"Angry "', "x") == _vec(angry=1.0)
    assert parse_emotion_answer('{"label": "悲伤"}', "x") == _vec(sad=1.0)
    assert parse_emotion_answer('{"情绪": "surprised"}', "x") == _vec(surprised=1.0)
    # A label next to score keys is ignored; a label as a score's value moves the 1.0.
    assert parse_emotion_answer('{"emotion": "angry", "高兴": 0.2}', "x") == _vec(happy=0.2)
    assert parse_emotion_answer('{"高兴": "悲伤"}', "x") == _vec(sad=1.0)
    # Unquoted, a label is not JSON and has no score: calm.
    assert parse_emotion_answer("愤怒", "x") == _vec(calm=1.0)


def test_parse_regex_fallback():
    assert parse_emotion_answer("高兴: 0.7, 悲伤:0.2 and more", "x") == _vec(happy=0.7, sad=0.2)
    assert parse_emotion_answer('"高兴":0.4,"低落": 1.0}', "x") == _vec(happy=0.4, melancholic=1.0)
    with pytest.raises(TextError, match="unreadable score"):
        parse_emotion_answer("高兴: 0.5.", "x")


@pytest.mark.parametrize("answer", ["garbage", "", "[1, 2]", "3", '{"高兴": 0, "自然": 0}'])
def test_parse_nothing_found_is_calm(answer):
    assert parse_emotion_answer(answer, "x") == _vec(calm=1.0)


def test_parse_melancholic_swap_keys_on_the_input_text():
    answer = '{"悲伤": 0.8, "低落": 0.1}'
    assert parse_emotion_answer(answer, "他很难过") == _vec(sad=0.8, melancholic=0.1)
    for text in ("心情低落", "I feel so Depressed today", "a GLOOMY morning"):
        assert parse_emotion_answer(answer, text) == _vec(sad=0.1, melancholic=0.8)
    # The answer's words do not trigger it.
    assert parse_emotion_answer('{"悲伤": 0.8, "note": "gloomy"}', "x") == _vec(sad=0.8)
    # The reference would crash on a bare label here; the label is resolved first.
    assert parse_emotion_answer('"sad"', "gloomy") == _vec(melancholic=1.0)


def test_parse_non_numeric_score_is_a_text_error():
    with pytest.raises(TextError, match="happy"):
        parse_emotion_answer('{"高兴": "很多"}', "x")
    assert parse_emotion_answer('{"高兴": NaN}', "x") == _vec(happy=1.2)  # as max(0, min(1.2, nan))


def test_labels_in_order():
    assert len(EMOTION_LABELS_ZH) == len(EMOTIONS) == 8


# ---------------------------------------------------------------------------------------
# Loading


def test_lazy_loading_and_unload(qwen):
    fresh = QwenEmotion(qwen.folder, "cpu")
    assert not fresh.loaded
    result = fresh.analyze("我太开心了", max_new_tokens=2)
    assert fresh.loaded and result.generated_ids.shape == (1, 2) and result.step_logits is None
    fresh.unload()
    assert not fresh.loaded
    again = fresh.analyze("我太开心了", max_new_tokens=2)
    assert again.generated_ids.tolist() == result.generated_ids.tolist()
    assert REFERENCE_MAX_NEW_TOKENS == 32768 and fresh.max_new_tokens < REFERENCE_MAX_NEW_TOKENS
    with pytest.raises(InvalidOptionError):
        fresh.analyze("x", max_new_tokens=0)


def test_missing_folder_is_reported_on_first_use(tmp_path):
    folder = tmp_path / "models" / "qwen0.6bemo4-merge"
    emotion = QwenEmotion(folder)  # cheap: nothing is read yet
    with pytest.raises(ModelNotFoundError, match=re.escape(str(folder))):
        emotion.analyze("他很生气")
    assert not emotion.loaded
