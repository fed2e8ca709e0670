"""The pronunciation dictionary (the reference's glossary, plus pinyin entries)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import indextts_core
from indextts_core.errors import ConfigError, TextError
from indextts_core.text import PronunciationDictionary, TextFrontend, TextNormalizer

TINY_MODEL = Path(indextts_core.__file__).resolve().parent / "tiny" / "model"

REFERENCE_STYLE_YAML = """\
M.2:
  en: M dot two
  zh: M 二
PCIe 5.0:
  en: PCIE five
  zh: PCIE 五点零
PCIe: P C I E
TTS: T T S
Inc.:
  en: Ink
重庆:
  pinyin: chóng qìng
"""


@pytest.fixture(scope="module")
def normalizer() -> TextNormalizer:
    return TextNormalizer()


def test_reference_glossary_semantics(normalizer: TextNormalizer, tmp_path: Path) -> None:
    path = tmp_path / "glossary.yaml"
    path.write_text(REFERENCE_STYLE_YAML, encoding="utf-8")
    d = PronunciationDictionary.load(path)
    assert len(d) == 6
    # Per-language readings, case-insensitive, longest term first ("PCIe 5.0" before "PCIe"); as
    # in the reference, the shorter term then also matches inside the first one's reading.
    assert normalizer.normalize("Samsung pcie 5.0 SSD M.2", d) == "Samsung P C I E five SSD M dot two"
    assert normalizer.normalize("三星PCIe 5.0固态硬盘M.2", d) == "三星P C I E 五点零固态硬盘M 二"
    assert normalizer.normalize("PCIe 4 lanes", d) == "P C I E four lanes"
    # A language the entry does not give leaves the term as written in the dictionary.
    assert normalizer.normalize("Apple Inc. is big", d) == "Apple Ink is big"
    assert normalizer.normalize("苹果Inc.很大", d) == "苹果Inc.很大"
    # Pinyin entries: the model's spelling, never read as numbers, in both languages.
    assert normalizer.normalize("我爱重庆5次", d) == "我爱CHONG2 QING4 五次"
    assert normalizer.normalize("I love 重庆 5 times", d) == "I love CHONG2 QING4 五 times"


def test_english_pinyin_entry(normalizer: TextNormalizer) -> None:
    d = PronunciationDictionary({"Chongqing": {"pinyin": "chong2 qing4"}})
    assert normalizer.normalize("I love Chongqing 5 times", d) == "I love CHONG2 QING4 five times"


def test_json_and_tsv(tmp_path: Path, normalizer: TextNormalizer) -> None:
    j = tmp_path / "d.json"
    j.write_text(json.dumps({"TTS": "T T S", "重庆": {"pinyin": "chong2 qing4"}}, ensure_ascii=False),
                 encoding="utf-8")
    t = tmp_path / "d.tsv"
    t.write_text("# comment\nTTS\tT T S\n重庆\tchong2 qing4\tpinyin\nM.2\tM dot two\ten\nM.2\tM 二\tzh\n",
                 encoding="utf-8")
    dj, dt = PronunciationDictionary.load(j), PronunciationDictionary.load(t)
    assert dj.to_mapping() == {"TTS": "T T S", "重庆": {"pinyin": "CHONG2 QING4"}}
    assert dt.to_mapping() == {"TTS": "T T S", "重庆": {"pinyin": "CHONG2 QING4"},
                               "M.2": {"zh": "M 二", "en": "M dot two"}}
    assert normalizer.normalize("TTS M.2", dt) == "T T S M dot two"


@pytest.mark.parametrize(("content", "suffix", "match"), [
    ("重庆:\n  pinyin: chong9 qing4\n", ".yaml", "chong9"),
    ("2025: twenty\n", ".yaml", "2025"),
    ("TTS:\n  fr: T T S\n", ".yaml", "unknown keys"),
    ("- a\n- b\n", ".yaml", "map terms"),
    ("TTS: [1, 2]\n", ".yaml", "TTS"),
    ("{bad json", ".json", "cannot be parsed"),
    ("TTS\n", ".tsv", "line 1"),
    ("重庆\tchong2\tklingon\n", ".tsv", "unknown kind"),
])
def test_bad_files(tmp_path: Path, content: str, suffix: str, match: str) -> None:
    path = tmp_path / f"d{suffix}"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError, match=match) as e:
        PronunciationDictionary.load(path)
    assert str(path) in str(e.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        PronunciationDictionary.load(tmp_path / "nope.yaml")


def test_add_validation() -> None:
    d = PronunciationDictionary()
    d.add("重", pinyin="zhòng")
    assert d["重"].pinyin == ("ZHONG4",)
    with pytest.raises(TextError):
        d.add("", "x")
    with pytest.raises(TextError):
        d.add("x", "y", pinyin="a1")
    with pytest.raises(TextError, match="zhong8"):
        d.add("重", pinyin="zhong8")
    with pytest.raises(TextError):
        d.add("x")


def test_from_model_dir_loads_glossary(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    shutil.copy(TINY_MODEL / "bpe.model", model / "bpe.model")
    shutil.copy(TINY_MODEL / "config.yaml", model / "config.yaml")
    (model / "glossary.yaml").write_text("TTS: T T S\nAPI: A P I\n", encoding="utf-8")
    fe = TextFrontend.from_model_dir(model)
    assert fe.normalize("TTS and API") == "T T S and A P I"
    user = PronunciationDictionary({"API": "ay pee eye"})
    fe = TextFrontend.from_model_dir(model, dictionary=user)
    assert fe.normalize("TTS and API") == "T T S and ay pee eye"


def test_frontend_checks_pinyin_entries_against_model() -> None:
    from indextts_core.text import PinyinInventory

    d = PronunciationDictionary({"中": {"pinyin": "zhong1"}})
    fe = TextFrontend(TINY_MODEL / "bpe.model", dictionary=d)
    fe._inventory = PinyinInventory(["ZHONG4"], "bpe.model")
    with pytest.raises(TextError, match="ZHONG1"):
        fe.preview("中国")
