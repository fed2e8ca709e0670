"""Mandarin pinyin as IndexTTS-2 reads it, and the friendlier forms a creator can type.

The model's own syntax is an inline tone-numbered syllable written next to (or instead of) the
characters: ``最zhong4要``, ``晕XUAN4``, ``DE5`` (tone 1-4, 5 = neutral). The tokenizer upper-cases it
and the released ``bpe.model`` has one piece per syllable it was trained on (``ZHONG4``, ``JV2``...,
1728 of them), with ``ü`` written ``V`` and ``ju/qu/xu`` written ``JV/QV/XV``. A syllable outside that
set is spelled with ordinary letter pieces: the voice then says something else, silently.

Friendly forms (expanded to the model syntax before normalisation, see :func:`expand_annotations`):

* ``{重|chóng}`` or ``{重|chong2}``; several characters: ``{银行|yín háng}`` (one syllable per
  character, separated by spaces).
* ``重[chóng]`` / ``重[chong2]``: one character followed by one syllable in square brackets. Only
  taken as pinyin when the bracket holds letters with a tone (a tone mark or a final digit 1-5),
  so ``参见[注]`` or ``[ref]`` stay text.

Both accept tone marks or tone digits, ``ü``/``v``/``u:``; an unknown syllable raises
:class:`PinyinError` (a :class:`~indextts_core.errors.TextError`) naming it and its character offset.
The reference's own ``<字|读音>`` form is not touched here (the normaliser keeps it verbatim, as the
reference does).

The set of valid syllables (:class:`PinyinInventory`) comes from the model's ``bpe.model`` when it
has pinyin pieces; otherwise (e.g. the tiny test model) from pypinyin's character table: every
syllable base pypinyin knows, in the five tones. (The official ``pinyin.vocab`` list is not shipped:
it is published under the bilibili model licence, and the real ``bpe.model`` carries the same set.)
"""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from ..errors import TextError

log = logging.getLogger(__name__)

# The syllable grammar of the reference normaliser (it decides what is protected from number
# reading). Same language as the official expression, written as explicit lists.
_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l", "g", "k", "h", "j", "q", "x",
             "z", "c", "s", "r", "y", "w")
_FINALS = ("iang", "iong", "uang", "vang", "üang", "ang", "eng", "ing", "ong", "ian", "iao", "uai",
           "uan", "van", "üan", "ai", "ei", "ao", "ou", "ia", "iu", "ie", "ua", "ui", "uo", "ue", "üe",
           "ve", "an", "en", "in", "un", "vn", "a", "e", "i", "o", "u", "ü", "v")
_SYLLABLE = "(?:(?:{})?(?:{})|ng|er)".format("|".join(_INITIALS), "|".join(_FINALS))
# (?<![a-z]) under IGNORECASE: a syllable never starts inside a Latin word.
INLINE_PINYIN_RE = re.compile(rf"(?<![a-z]){_SYLLABLE}[1-5]", re.IGNORECASE)
_SYLLABLE_FULL_RE = re.compile(rf"{_SYLLABLE}[1-5]", re.IGNORECASE)

_HAN = "\u4e00-\u9fff"
_TONE_MARKS = "āáǎàēéěèīíǐìōóǒòūúǔùǖǘǚǜńňǹḿ"
_PINYIN_LETTERS = f"a-zA-ZüÜ{_TONE_MARKS}{_TONE_MARKS.upper()}:"
# {字|pinyin}: one or more Han characters, then syllables separated by spaces.
_BRACE_RE = re.compile(rf"\{{([{_HAN}]+)\|([^{{}}|\n]*)\}}")
# 字[pinyin]: one Han character, one syllable that carries a tone.
_BRACKET_RE = re.compile(rf"([{_HAN}])\[([{_PINYIN_LETTERS}]+[1-5]?)\]")


# 字[...] holding Latin letters: meant as a reading, whether or not it is a valid one.
_ATTEMPT_RE = re.compile(rf"[{_HAN}]\[([^\[\]\n]*[A-Za-zÜü][^\[\]\n]*)\]")
# Letters and a tone digit outside 1-5 (``hao6``, ``ZHANG7``), not part of a longer number.
_BAD_TONE_RE = re.compile(r"(?<![A-Za-zÜü])([A-Za-zÜü]{1,6})([06-9])(?![0-9])")
_HAN_RE = re.compile(rf"[{_HAN}]")


class PinyinError(TextError):
    """A pinyin syllable the model does not know; ``syllable`` and character ``offset`` say where."""

    def __init__(self, message: str, syllable: str, offset: int):
        super().__init__(message)
        self.syllable = syllable
        self.offset = offset


def model_form(syllable: str) -> str:
    """A syllable with tone marks or a tone digit in the model's spelling: ``chóng`` → ``CHONG2``.

    ``ü`` (also ``v`` and ``u:``) becomes ``V``, and ``ju/qu/xu`` become ``JV/QV/XV`` as the
    reference does. Without tone mark or digit the neutral tone 5 is used. Raises ``ValueError`` if
    the text is not a single Latin syllable.
    """
    from pypinyin.contrib.tone_convert import to_tone3

    s = unicodedata.normalize("NFC", syllable.strip()).lower().replace("u:", "ü")
    if not s or ":" in s or not re.fullmatch(rf"[{_PINYIN_LETTERS}]+[1-5]?", s):
        raise ValueError(f"not a pinyin syllable: {syllable!r}")
    if s[-1].isdigit():
        base, tone = s[:-1], s[-1]
        if any(c in _TONE_MARKS for c in base):
            raise ValueError(f"pinyin syllable {syllable!r} has both a tone mark and a tone digit")
    else:
        converted = to_tone3(s, neutral_tone_with_five=True)
        if not converted[-1:].isdigit():
            converted += "5"
        base, tone = converted[:-1], converted[-1]
    base = base.replace("ü", "v")
    if any(c in _TONE_MARKS for c in base):
        raise ValueError(f"not a pinyin syllable: {syllable!r}")
    base = re.sub(r"^([jqx])u", r"\1v", base)
    return f"{base.upper()}{tone}"


def _pypinyin_bases() -> set[str]:
    """Syllable bases (model spelling, no tone) of every reading in pypinyin's character table."""
    from pypinyin import pinyin_dict
    from pypinyin.contrib.tone_convert import to_tone3

    readings = set()
    for listed in pinyin_dict.pinyin_dict.values():
        readings.update(listed.split(","))
    bases = set()
    for reading in readings:
        s = to_tone3(reading, neutral_tone_with_five=True)
        base = re.sub(r"^([jqx])u", r"\1v", s.rstrip("12345").replace("ü", "v"))
        # Bases the reference grammar cannot recognise (m, hm, ê...) can never be inline pinyin.
        if _SYLLABLE_FULL_RE.fullmatch(base + "1"):
            bases.add(base.upper())
    return bases


class PinyinInventory:
    """The tone-numbered syllables (model spelling, e.g. ``ZHONG4``) a model knows."""

    def __init__(self, syllables: Iterable[str], source: str):
        self.syllables = frozenset(syllables)
        self.source = source

    def __contains__(self, syllable: object) -> bool:
        return syllable in self.syllables

    def __len__(self) -> int:
        return len(self.syllables)

    @classmethod
    def standard(cls) -> PinyinInventory:
        """Every syllable base pypinyin knows for some character, in tones 1-5."""
        return cls((b + t for b in _pypinyin_bases() for t in "12345"), "pypinyin")

    @classmethod
    def from_pieces(cls, pieces: Iterable[str], min_count: int = 100) -> PinyinInventory:
        """The pinyin pieces of a BPE vocabulary, or :meth:`standard` if it has fewer than
        ``min_count`` (a vocabulary without pinyin training, like the tiny test model's)."""
        bases = _pypinyin_bases()
        found = set()
        for piece in pieces:
            p = piece.removeprefix("▁")
            m = re.fullmatch(r"([A-Z]+)([1-5])", p)
            if m and m.group(1) in bases:
                found.add(p)
        if len(found) >= min_count:
            return cls(found, "bpe.model")
        log.info("bpe.model has %d pinyin pieces; validating pinyin against pypinyin's syllables",
                 len(found))
        return cls.standard()


@dataclass(frozen=True)
class InlinePinyin:
    """A syllable written in the model's inline syntax, as the reference normaliser sees it."""

    text: str        # as written, e.g. "zhong4"
    offset: int      # character offset in the text
    syllable: str    # model spelling, e.g. "ZHONG4"
    known: bool      # whether the model has a piece for it


def find_inline_pinyin(text: str, inventory: PinyinInventory) -> list[InlinePinyin]:
    """Every inline tone-numbered syllable the reference protects from number reading."""
    out = []
    for m in INLINE_PINYIN_RE.finditer(text):
        syl = model_form(m.group(0))
        out.append(InlinePinyin(m.group(0), m.start(), syl, syl in inventory))
    return out


def _checked(raw: str, offset: int, inventory: PinyinInventory) -> str:
    try:
        syl = model_form(raw)
    except ValueError:
        raise PinyinError(f"'{raw}' at character {offset} is not a pinyin syllable "
                          "(write it like chóng or chong2)", raw, offset) from None
    if syl not in inventory:
        raise PinyinError(f"pinyin '{raw}' at character {offset} ({syl}) is not a syllable the model "
                          "knows; check the spelling and the tone (1-4, 5 = neutral)", raw, offset)
    return syl


def parse_syllables(reading: str, inventory: PinyinInventory, offset: int = 0) -> list[str]:
    """Space-separated syllables (tone marks or digits) → model spellings; :class:`PinyinError`
    names the first unknown one and its offset (``offset`` = position of ``reading`` in the text)."""
    out = []
    for m in re.finditer(r"\S+", reading):
        out.append(_checked(m.group(0), offset + m.start(), inventory))
    if not out:
        raise PinyinError(f"empty pinyin annotation at character {offset}", "", offset)
    return out


def invalid_pinyin(text: str, inventory: PinyinInventory) -> list[str]:
    """Pinyin in a Chinese text that the model cannot read, each as written, in order.

    Covers annotations with an unknown syllable or none at all (``{好|hao6}``, ``重[xx9]``,
    ``重[chong]``), inline syllables the model has no piece for (``xao3``, ``BV3``) and tone
    digits outside 1-5 (``ZHANG7``). Text without Han characters has no pinyin to get wrong:
    ``MP3`` or ``A7`` in English are words, not readings.
    """
    if not _HAN_RE.search(text):
        return []
    bad: list[str] = []
    blanked = list(text)
    for m in _BRACE_RE.finditer(text):
        for syl in m.group(2).split() or [m.group(2)]:
            if not _known(syl, inventory):
                bad.append(syl)
        blanked[m.start():m.end()] = " " * (m.end() - m.start())
    for m in _ATTEMPT_RE.finditer(text):
        raw = m.group(1)
        has_tone = raw[-1:].isdigit() or any(c in _TONE_MARKS for c in raw.lower())
        if not has_tone or not _known(raw, inventory):
            bad.append(raw)
        blanked[m.start():m.end()] = " " * (m.end() - m.start())
    rest = "".join(blanked)
    # ``win10`` holds the syllable-like ``win1``: part of a longer number, not pinyin.
    bad += [p.text for p in find_inline_pinyin(rest, inventory)
            if not p.known and not rest[p.offset + len(p.text):][:1].isdigit()]
    bad += [m.group(0) for m in _BAD_TONE_RE.finditer(rest) if _SYLLABLE_FULL_RE.fullmatch(m.group(1) + "1")]
    return list(dict.fromkeys(bad))


def _known(raw: str, inventory: PinyinInventory) -> bool:
    try:
        return model_form(raw) in inventory
    except ValueError:
        return False


def _join_inline(text: str, start: int, end: int, syllables: list[str]) -> str:
    """Model-syntax replacement for text[start:end]; a space keeps a syllable from gluing onto a
    preceding Latin letter (the reference does not see a syllable that starts inside a word)."""
    s = " ".join(syllables)
    if start > 0 and text[start - 1].isascii() and text[start - 1].isalpha():
        s = " " + s
    return s


def has_annotations(text: str) -> bool:
    """Whether ``text`` may hold a friendly pinyin form (cheap; no pinyin tables needed)."""
    return bool(_BRACE_RE.search(text) or _BRACKET_RE.search(text))


def expand_annotations(text: str, inventory: PinyinInventory) -> str:
    """Replace ``{字|pinyin}`` and ``字[pinyin]`` by the model's inline syllables (validated).

    Offsets in errors refer to ``text`` as given.
    """
    spans: list[tuple[int, int, list[str]]] = []
    for m in _BRACE_RE.finditer(text):
        chars, reading = m.group(1), m.group(2)
        syllables = parse_syllables(reading, inventory, m.start(2))
        if len(syllables) != len(chars):
            raise PinyinError(f"annotation at character {m.start()} has {len(chars)} character(s) but "
                              f"{len(syllables)} syllable(s): {m.group(0)}", reading, m.start(2))
        spans.append((m.start(), m.end(), syllables))
    taken = [(a, b) for a, b, _ in spans]
    for m in _BRACKET_RE.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        raw = m.group(2)
        has_tone = raw[-1].isdigit() or any(c in _TONE_MARKS for c in raw.lower())
        if not has_tone:
            continue
        spans.append((m.start(), m.end(), [_checked(raw, m.start(2), inventory)]))
    if not spans:
        return text
    spans.sort()
    parts, pos = [], 0
    for a, b, syllables in spans:
        parts.append(text[pos:a])
        parts.append(_join_inline(text, a, b, syllables))
        pos = b
    parts.append(text[pos:])
    return "".join(parts)


@dataclass(frozen=True)
class CharReading:
    """What pypinyin reads for one Han character of a text (for the UI's pinyin helper)."""

    char: str
    offset: int
    reading: str | None          # model spelling in context, e.g. "ZHONG4"; None if unknown
    marked: str | None           # the same with a tone mark, e.g. "zhòng"
    candidates: list[str]        # every reading of the character (model spelling), default first
    polyphone: bool              # more than one candidate


def char_readings(text: str) -> list[CharReading]:
    """Each Han character's default reading (pypinyin, phrase-aware) and its other readings."""
    from pypinyin import Style, pinyin
    from pypinyin.contrib.tone_convert import to_tone

    def spell(r: str) -> str | None:
        try:
            return model_form(r)
        except ValueError:
            return None

    out = []
    for run in re.finditer(f"[{_HAN}]+", text):
        in_context = pinyin(run.group(0), style=Style.TONE3, neutral_tone_with_five=True)
        if len(in_context) != len(run.group(0)):  # pypinyin keeps unknown characters as one item
            in_context = [pinyin(c, style=Style.TONE3, neutral_tone_with_five=True)[0] for c in run.group(0)]
        for i, (ch, items) in enumerate(zip(run.group(0), in_context, strict=True)):
            default = spell(items[0]) if items and items[0] != ch else None
            every = pinyin(ch, style=Style.TONE3, heteronym=True, neutral_tone_with_five=True)[0]
            candidates = []
            for r in ([items[0]] if default else []) + every:
                s = spell(r) if r != ch else None
                if s and s not in candidates:
                    candidates.append(s)
            marked = to_tone(items[0]) if default else None
            out.append(CharReading(ch, run.start() + i, default, marked, candidates, len(candidates) > 1))
    return out
