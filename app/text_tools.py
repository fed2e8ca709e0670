"""The text panel's helpers on top of :mod:`indextts_core.text`: preview, pinyin checks, polyphones.

Readings are written into the text in the engine's friendly form ``重[chong2]`` (the character
stays readable; the engine turns it into the model's inline syllable before reading).
"""

from __future__ import annotations

import functools
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

from indextts_core.text import (
    PinyinInventory,
    TextFrontend,
    TextPreview,
    char_readings,
    invalid_pinyin,
    model_form,
)

log = logging.getLogger(__name__)

_CJK = re.compile(r"[\u4e00-\u9fff]")
_ANNOTATION = re.compile(r"\[([^\[\]\n]*)\]")


@dataclass(frozen=True)
class Polyphone:
    """A character of the text with more than one reading. ``index`` is its position in the text."""

    index: int
    char: str
    readings: tuple[str, ...]  # tone-number spellings to insert, default (in context) first
    context: str
    annotated: str | None = None  # the reading already written after it (``重[chong2]``)


def typed_form(syllable: str) -> str:
    """The model's spelling (``JV2``, ``LV4``, ``ZHONG4``) as people type it (``ju2``, ``lv4``, ``zhong4``)."""
    s = syllable.lower()
    return re.sub(r"^([jqx])v", r"\1u", s)


# Characters never offered although their readings differ. 一 and 不 change tone with the next
# syllable (yi1/yi2/yi4, bu4/bu2): that is tone sandhi, not a choice of reading. 的 and 了 are,
# in running text, almost always the particles de5 and le5; their other readings (的确 di2,
# 目的 di4, 了解 liao3) live in set words that the phrase dictionary already reads right. These
# four are among the ten most frequent characters of Chinese: listing them would put an entry
# in the helper for nearly every sentence and bury the characters worth checking.
NOT_OFFERED = frozenset("一不的了")
# A reading is "in use" when at least this many of pypinyin's phrases, and this share of the
# phrases holding the character, read it so: archaic and dictionary-only readings (他 tuo2,
# 大 tai4, 们 men2) fall below, and real alternatives (得 dei3, 还 huan2, 重 chong2) stay.
MIN_PHRASES = 3
MIN_SHARE = 0.01


@functools.cache
def _phrase_readings() -> dict[str, dict[str, int]]:
    """How many of pypinyin's phrases read each character each way (tone-number spelling).

    Built once from pypinyin's own phrase table (about 47,000 phrases, a second or so), which
    is fixed data shipped with the library.
    """
    from pypinyin.contrib.tone_convert import to_tone3
    from pypinyin.phrases_dict import phrases_dict

    counts: dict[str, dict[str, int]] = {}
    for phrase, readings in phrases_dict.items():
        if len(phrase) != len(readings):
            continue
        for ch, items in zip(phrase, readings, strict=True):
            spelt = to_tone3(items[0], neutral_tone_with_five=True)
            per_char = counts.setdefault(ch, {})
            per_char[spelt] = per_char.get(spelt, 0) + 1
    return counts


def readings_in_use(char: str, default: str, candidates: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The readings of ``char`` worth offering, ``default`` (its reading in context) first.

    Of ``candidates`` (every reading pypinyin knows, typed form), those in use in phrases (see
    :data:`MIN_PHRASES`); a neutral-tone form (``jia5``) is dropped when the same syllable is
    there with a full tone (``jia1``): stress, not another reading.
    """
    used = _phrase_readings().get(char, {})
    total = sum(used.values())
    keep = [default] + [c for c in candidates if c != default
                        and used.get(c, 0) >= max(MIN_PHRASES, MIN_SHARE * total)]
    full_tone = {c[:-1] for c in keep if not c.endswith("5")}
    return tuple(dict.fromkeys(c for c in keep if c == default or not (c.endswith("5") and c[:-1] in full_tone)))


def _one_reading(readings: tuple[str, ...]) -> bool:
    """True when the readings differ only by a neutral tone (``ge4``/``ge5``)."""
    return len({r[:-1] if r[-1:].isdigit() else r for r in readings}) <= 1 and \
        sum(not r.endswith("5") for r in readings) <= 1


def find_polyphones(text: str, limit: int = 200) -> list[Polyphone]:
    """Han characters of ``text`` whose reading is a real choice, in order, with their readings
    in use (default first). An annotated character is always listed (its annotation can be changed)."""
    found: list[Polyphone] = []
    for r in char_readings(text):
        if r.polyphone and r.char not in NOT_OFFERED:
            typed = tuple(dict.fromkeys(typed_form(c) for c in r.candidates))
            readings = readings_in_use(r.char, typed[0], typed)
            i = r.offset
            m = _ANNOTATION.match(text, i + 1)
            if len(readings) < 2 or _one_reading(readings):
                if m is None:
                    continue
                readings = typed  # the user chose a reading here: keep every choice open
            found.append(Polyphone(i, r.char, readings, text[max(0, i - 4): i + 5],
                                   m.group(1) if m else None))
            if len(found) >= limit:
                break
    return found


def apply_reading(text: str, index: int, reading: str) -> str:
    """Annotate the character at ``index`` with ``reading`` (``重`` → ``重[chong2]``); an existing
    ``[...]`` annotation right after it is replaced. Raises ValueError."""
    if not 0 <= index < len(text) or not _CJK.fullmatch(text[index]):
        raise ValueError("the chosen character is no longer at that place in the text")
    try:
        model_form(reading)
    except ValueError:
        raise ValueError(f"{reading!r} is not a pinyin syllable") from None
    m = _ANNOTATION.match(text, index + 1)
    rest = text[m.end():] if m else text[index + 1:]
    return f"{text[: index + 1]}[{reading}]{rest}"


class TextTools:
    """The page's text front end for the model folder: previews and pinyin checks.

    Its :class:`TextFrontend` is built here, before any model loads, so previews work while
    the weights download or load; the engine is then built with this same front end (it is
    safe to share). Built on first use; retried later if the folder had no ``bpe.model`` yet.
    """

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self._frontend: TextFrontend | None = None
        self._lock = threading.Lock()  # builds the front end once

    def frontend(self) -> TextFrontend | None:
        with self._lock:
            if self._frontend is None:
                try:
                    self._frontend = TextFrontend.from_model_dir(self.model_dir)
                except Exception as e:  # no bpe.model yet (weights missing): no preview until then
                    log.debug("no text front end for %s yet: %s", self.model_dir, e)
            return self._frontend

    def preview(self, text: str, segment_tokens: int) -> TextPreview | None:
        fe = self.frontend()
        return None if fe is None else fe.preview(text, segment_tokens)

    def invalid_pinyin(self, text: str) -> list[str]:
        """Pinyin in ``text`` the model cannot read, each as written (empty list when all is fine);
        the engine refuses such a text (:meth:`TextFrontend.invalid_pinyin` says which)."""
        if not text or not _CJK.search(text):
            return []
        fe = self.frontend()
        inventory = fe.pinyin_inventory if fe is not None else PinyinInventory.standard()
        return invalid_pinyin(text, inventory)
