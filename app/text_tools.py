"""Helpers behind the pinyin helper: polyphonic characters, readings, invalid pinyin.

Pinyin annotations are inline tone-numbered syllables that replace a character
(``最重要`` → ``最zhong4要``); the tokenizer reads such a syllable instead of guessing the
character's reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_CJK = re.compile(r"[\u4e00-\u9fff]")
# A run of Latin letters ending in a digit, not glued to other letters: how people type pinyin.
_PINYIN_LIKE = re.compile(r"(?<![A-Za-zÜüÊê])([A-Za-zÜüÊê]+)(\d+)(?![A-Za-z0-9])")
# One Mandarin syllable (initial + final), tone 1-5 (5 = neutral).
_SYLLABLE = re.compile(
    r"(?:[bpmfdtnlgkhjqxzcsryw]|[zcs]h)?"
    r"(?:[aeiouüv]|[ae]i|u[aio]|ao|ou|i[aue]|[uüv]e|[uvü]ang?|uai|[aeiuv]n|[aeio]ng|ia[no]|i[ao]ng)"
    r"|ng|er|m|n|hm|hng",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Polyphone:
    """A character of the text with more than one reading. ``index`` is its position in the text."""

    index: int
    char: str
    readings: tuple[str, ...]
    context: str


def _readings(char: str) -> tuple[str, ...]:
    from pypinyin import Style, pinyin

    out = pinyin(char, heteronym=True, style=Style.TONE3, neutral_tone_with_five=True)
    return tuple(dict.fromkeys(r for r in out[0] if r and r[-1].isdigit()))


def find_polyphones(text: str, limit: int = 200) -> list[Polyphone]:
    """Polyphonic Chinese characters of ``text`` in order, with their tone-numbered readings."""
    found: list[Polyphone] = []
    for m in _CJK.finditer(text):
        readings = _readings(m.group())
        if len(readings) > 1:
            i = m.start()
            found.append(Polyphone(i, m.group(), readings, text[max(0, i - 4): i + 5]))
            if len(found) >= limit:
                break
    return found


def is_valid_syllable(word: str) -> bool:
    """``zhong4`` → True; ``zhong6``, ``xyz3`` → False."""
    m = re.fullmatch(r"([A-Za-zÜüÊê]+)([1-5])", word)
    return bool(m and _SYLLABLE.fullmatch(m.group(1)))


def _looks_like_pinyin(letters: str, digits: str) -> bool:
    """A typed syllable attempt: a syllable with a wrong tone, or a short vowel-bearing word with a tone."""
    if _SYLLABLE.fullmatch(letters):
        return True
    return len(digits) == 1 and len(letters) <= 6 and bool(re.search(r"[aeiouüv]", letters, re.IGNORECASE))


def invalid_pinyin(text: str) -> list[str]:
    """Pinyin-looking words (letters + tone digit) that are not a valid syllable with tone 1-5.

    Only text containing Chinese characters is checked, and words that do not look like a
    syllable attempt (``mp3``, ``b2b``) are left alone: they are read as ordinary text.
    """
    if not _CJK.search(text):
        return []
    bad = [m.group(0) for m in _PINYIN_LIKE.finditer(text)
           if not is_valid_syllable(m.group(0)) and _looks_like_pinyin(m.group(1), m.group(2))]
    return list(dict.fromkeys(bad))


def apply_reading(text: str, index: int, reading: str) -> str:
    """Replace the character at ``index`` by the pinyin ``reading``. Raises ValueError."""
    if not 0 <= index < len(text) or not _CJK.fullmatch(text[index]):
        raise ValueError("the chosen character is no longer at that place in the text")
    if not is_valid_syllable(reading):
        raise ValueError(f"{reading!r} is not a valid tone-numbered pinyin syllable")
    return text[:index] + reading + text[index + 1:]
