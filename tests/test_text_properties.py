"""Property tests: the front end only raises its own errors and never loses what is to be said.

"Loses" after normalisation: digits become words and punctuation is folded, so the properties
check what must survive unchanged: every CJK ideograph of the input (from a pool that no rule
rewrites: no numerals, already simplified) and every Latin word (from a pool of ordinary words that
are neither units, abbreviations, month names nor pinyin) must still be in the BPE piece stream, at
least as many times as in the input. A rule that eats a character or part of a word fails it (this
is how ``5 hello`` → ``五小时ello`` was found).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import indextts_core
from indextts_core.errors import InvalidOptionError, TextError
from indextts_core.text import MAX_TEXT_CHARS, TextFrontend

TINY_BPE = Path(indextts_core.__file__).resolve().parent / "tiny" / "model" / "bpe.model"
SETTINGS = settings(max_examples=40, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

HAN = "我你他好天气今是的在有人中国大小上下来去说话"
WORDS = ("hello", "voice", "model", "studio", "piano", "garden", "river", "Window", "Table", "sunny",
         "lemon")
NUMBERS = ("5", "12", "3.5", "2025", "1,234", "50%", "$3", "¥12", "1/2", "8:30", "2.0.1", "10kg", "-7",
           "007", "13812345678", "3/4", "2025-01-02", "0.5", "100%", "第3", "1,234.56", "$1,000")
SEPARATORS = (" ", "  ", ",", "，", "。", ".", "!", "？", "\n", "\t", "😀", "❤️", "—", "-", "...", "……",
              "“", "”", '"', "'", "(", ")", "[", "]", "{", "}", "<", ">", "|", "\\", "/", "@", "#", "$",
              "%", "&", "*", "+", "=", "~", ":", ";", "\x00", "\x07", "\u200b", "\u3000", "°", "℃",
              "×", "·", "、", "١", "５")

_token = st.one_of(
    st.tuples(st.just("han"), st.text(alphabet=HAN, min_size=1, max_size=4)),
    st.tuples(st.just("word"), st.sampled_from(WORDS)),
    st.tuples(st.just("num"), st.sampled_from(NUMBERS)),
    st.tuples(st.just("sep"), st.lists(st.sampled_from(SEPARATORS), min_size=1, max_size=3).map("".join)),
    st.tuples(st.just("sep"), st.text(st.characters(categories=["P", "S", "Zs", "Cc", "So"]),
                                      min_size=1, max_size=2)),
)


def _join(tokens: list[tuple[str, str]]) -> str:
    out = ""
    for kind, s in tokens:
        # Keep words words: a Latin word never touches another letter.
        if out and ((kind == "word" and out[-1].isascii() and out[-1].isalpha())
                    or (s[:1].isascii() and s[:1].isalpha() and out[-1].isascii() and out[-1].isalpha())):
            out += " "
        out += s
    return out


@pytest.fixture(scope="module")
def frontend() -> TextFrontend:
    return TextFrontend(TINY_BPE)


@SETTINGS
@given(tokens=st.lists(_token, min_size=1, max_size=12))
def test_never_loses_characters_or_words(frontend: TextFrontend, tokens: list[tuple[str, str]]) -> None:
    text = _join(tokens)
    try:
        preview = frontend.preview(text)
    except TextError:
        assume(False)  # e.g. "{好|x}" is a (bad) pinyin annotation, or nothing to read
    stream = "".join(preview.pieces)
    wanted = Counter(c for c in text if c in HAN)
    got = Counter(c for c in stream if c in HAN)
    assert not [c for c in wanted if got[c] < wanted[c]], (text, preview.normalized)
    for word in {w for kind, w in tokens if kind == "word"}:
        assert stream.count(word.upper()) >= text.count(word), (word, text, preview.normalized)
    assert [p for s in preview.segments for p in s if p not in ("'", "▁'")] == \
        [p for p in preview.pieces if p not in ("'", "▁'")]
    assert all(len(s) <= 120 for s in preview.segments)


_anything = st.one_of(
    st.text(max_size=60),
    st.text(st.characters(categories=["P", "S"]), max_size=30),                     # punctuation only
    st.text(st.characters(min_codepoint=0x1F300, max_codepoint=0x1FAFF), max_size=10),  # emoji
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"]), max_size=20),  # controls, spaces
    st.lists(st.sampled_from(NUMBERS + SEPARATORS + WORDS + tuple(HAN)), max_size=15).map("".join),
)


@SETTINGS
@given(text=_anything, max_tokens=st.integers(min_value=-2, max_value=200))
def test_only_own_errors(frontend: TextFrontend, text: str, max_tokens: int) -> None:
    for call in (frontend.normalize, frontend.tokenize, frontend.char_readings,
                 lambda t: frontend.preview(t, max_tokens)):
        with contextlib.suppress(TextError, InvalidOptionError):
            call(text)
    if not text.strip():
        with pytest.raises(TextError):
            frontend.preview(text)
    if max_tokens < 1:
        with pytest.raises(InvalidOptionError):
            frontend.preview("你好", max_tokens)


@settings(max_examples=10, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.integers(min_value=1, max_value=50_000), char=st.sampled_from(["好", "a", " ", "5", "😀"]))
def test_huge_text_is_refused(frontend: TextFrontend, extra: int, char: str) -> None:
    text = char * (MAX_TEXT_CHARS + extra)
    with pytest.raises(TextError, match="limit"):
        frontend.preview(text)
    with pytest.raises(TextError, match="limit"):
        frontend.tokenize(text)
