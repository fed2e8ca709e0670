"""Pinyin forms, validation, inventory and the polyphone helper."""

from __future__ import annotations

from pathlib import Path

import pytest

import indextts_core
from indextts_core.errors import TextError
from indextts_core.text import (
    PinyinError,
    PinyinInventory,
    TextFrontend,
    char_readings,
    expand_annotations,
    find_inline_pinyin,
    model_form,
)
from tests.golden import load_texts

TINY_BPE = Path(indextts_core.__file__).resolve().parent / "tiny" / "model" / "bpe.model"


@pytest.fixture(scope="module")
def standard() -> PinyinInventory:
    return PinyinInventory.standard()


@pytest.fixture(scope="module")
def frontend() -> TextFrontend:
    return TextFrontend(TINY_BPE)


@pytest.mark.parametrize(("written", "model"), [
    ("chóng", "CHONG2"), ("chong2", "CHONG2"), ("Zhòng", "ZHONG4"), ("ZHONG4", "ZHONG4"),
    ("lǜ", "LV4"), ("lv4", "LV4"), ("lu:4", "LV4"), ("nü3", "NV3"), ("NÜ3", "NV3"),
    ("jú", "JV2"), ("que1", "QVE1"), ("xuan4", "XVAN4"), ("yu2", "YU2"), ("de", "DE5"),
    ("de5", "DE5"), ("lüè", "LVE4"), ("er2", "ER2"),
])
def test_model_form(written: str, model: str) -> None:
    assert model_form(written) == model


@pytest.mark.parametrize("bad", ["", "chóng2", "zh-ong", "好", "ab:c", "12"])
def test_model_form_rejects(bad: str) -> None:
    with pytest.raises(ValueError):
        model_form(bad)


def test_standard_inventory(standard: PinyinInventory) -> None:
    assert standard.source == "pypinyin"
    # Every inline syllable of the golden "valid pinyin" rows is known...
    for row in load_texts():
        if row["category"] == "pinyin_valid":
            for p in find_inline_pinyin(row["text"], standard):
                assert p.known, (row["id"], p)
    # ...and these are not syllables at all.
    for s in ("ZHUANG7", "SHI6", "BETA1", "CUA1", "ZHONG0"):
        assert s not in standard
    assert {"ZHONG4", "JV2", "LV4", "NVE4", "ER2", "DE5", "A1", "XVAN4"} <= standard.syllables


def test_inventory_from_bpe_pieces(standard: PinyinInventory) -> None:
    syllables = sorted(standard.syllables)[:300]
    pieces = ["<s>", "</s>", "<unk>", "▁THE", "MP3", *syllables, *("▁" + s for s in syllables[:5])]
    inv = PinyinInventory.from_pieces(pieces)
    assert inv.source == "bpe.model"
    assert inv.syllables == frozenset(syllables)
    # A vocabulary without pinyin pieces (the tiny model's) falls back to pypinyin's syllables.
    assert PinyinInventory.from_pieces(["<s>", "▁A", "ZHONG4"]).source == "pypinyin"


def test_expand_annotations(standard: PinyinInventory) -> None:
    assert expand_annotations("{重|chóng}新开始", standard) == "CHONG2新开始"
    assert expand_annotations("去{银行|yín háng}取钱", standard) == "去YIN2 HANG2取钱"
    assert expand_annotations("重[zhòng]要", standard) == "ZHONG4要"
    assert expand_annotations("重[zhong4]要", standard) == "ZHONG4要"
    assert expand_annotations("abc{重|chong2}", standard) == "abc CHONG2"
    # Not pinyin forms: left as they are.
    for text in ("参见[ref]和[注]", "括号[方括号]", "{花括号}", "a{b|c}", "<行|XING2>", "好[hao]"):
        assert expand_annotations(text, standard) == text


@pytest.mark.parametrize(("text", "syllable", "offset"), [
    ("他{重|chong7}新", "chong7", 4),
    ("前面的字没问题，重[zhóng2]要", "zhóng2", 10),
    ("ab{好|xyz2}", "xyz2", 5),
    ("{银行|yin2 hangg2}", "hangg2", 9),
    ("{重|}", "", 3),
])
def test_expand_annotations_errors(standard: PinyinInventory, text: str, syllable: str, offset: int) -> None:
    with pytest.raises(PinyinError) as e:
        expand_annotations(text, standard)
    assert isinstance(e.value, TextError)
    assert e.value.syllable == syllable
    assert e.value.offset == offset
    assert text[offset:offset + len(syllable)] == syllable
    assert str(offset) in str(e.value)


def test_annotation_syllable_count(standard: PinyinInventory) -> None:
    with pytest.raises(PinyinError, match="2 syllable"):
        expand_annotations("{重|zhong4 yao4}", standard)


def test_unknown_syllable_against_model_inventory() -> None:
    inv = PinyinInventory(["ZHONG4", "CHONG2"], "bpe.model")
    assert expand_annotations("{重|chóng}", inv) == "CHONG2"
    with pytest.raises(PinyinError, match="ZHONG1"):
        expand_annotations("{中|zhōng}", inv)


def test_frontend_annotations_end_to_end(frontend: TextFrontend) -> None:
    p = frontend.preview("{重|chóng}新开始，重[zhòng]要的是3个。")
    assert p.normalized == "CHONG2新开始,ZHONG4要的是三个."
    assert p.pieces[:2] == frontend.bpe.encode("CHONG2 新")[:2]
    with pytest.raises(PinyinError):
        frontend.preview("{重|chóng9}新")
    # The reference's <字|读音> form stays verbatim.
    assert frontend.normalize("他在银<行|XING2>里") == "他在银<行|XING2>里"


def test_inline_pinyin_warnings(frontend: TextFrontend) -> None:
    found = frontend.inline_pinyin("最zhong4要，cua1不是")
    assert [(p.text, p.offset, p.syllable, p.known) for p in found] == [
        ("zhong4", 1, "ZHONG4", True), ("cua1", 9, "CUA1", False)]
    # In a Chinese text a syllable the model lacks is a mistake: the take is refused, naming it.
    with pytest.raises(PinyinError, match="cua1 at character 9") as err:
        frontend.preview("最zhong4要，cua1不是")
    assert "zhong4" not in str(err.value)
    # Elsewhere it is a word that happens to look like pinyin: read out, with a warning.
    p = frontend.preview("ZHONG4 and CUA1 here")
    assert any("CUA1" in w and "character 11" in w for w in p.warnings)
    assert not any("ZHONG4" in w for w in p.warnings)


@pytest.mark.parametrize("text, bad", [
    ("这个拼音ZHUANG7不存在。", ["ZHUANG7"]),
    ("你好BV3。", ["BV3"]),
    ("重[xx9]要", ["xx9"]),
    ("重[chong]要", ["chong"]),
    ("今天很{好|hao6}。", ["hao6"]),
    ("很xao3", ["xao3"]),
    ("重[chong2]要，zhong4要", []),
    ("图[1]和mp3、win10", []),
    ("Hello hao6 ZHANG7 world", []),
])
def test_invalid_pinyin_is_refused(frontend: TextFrontend, text: str, bad: list[str]) -> None:
    assert frontend.invalid_pinyin(text) == bad
    if bad:
        with pytest.raises(PinyinError, match=bad[0]):
            frontend.preview(text)


@pytest.mark.parametrize("text", ["👍👍👍", "!!!", "……。。。", "ⴰⵣⵓⵍ"])
def test_nothing_speakable_is_refused(frontend: TextFrontend, text: str) -> None:
    with pytest.raises(TextError, match="Nothing in the text can be read aloud"):
        frontend.preview(text)


def test_char_readings() -> None:
    readings = char_readings("a重要的银行。")
    assert [r.char for r in readings] == list("重要的银行")
    assert [r.offset for r in readings] == [1, 2, 3, 4, 5]
    zhong = readings[0]
    assert zhong.reading == "ZHONG4" and zhong.marked == "zhòng"
    assert zhong.polyphone and "CHONG2" in zhong.candidates and zhong.candidates[0] == "ZHONG4"
    yin = readings[3]
    assert yin.reading == "YIN2" and not yin.polyphone and yin.candidates == ["YIN2"]
    hang = readings[4]
    assert hang.reading == "HANG2" and "XING2" in hang.candidates
    # Context: 行 in 行走 is xing2.
    assert char_readings("行走")[0].reading == "XING2"
    assert char_readings("abc 123") == []
