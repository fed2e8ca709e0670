"""The text panel's helpers on top of :mod:`indextts_core.text`: preview, pinyin checks, polyphones.

Readings are written into the text in the engine's friendly form ``重[chong2]`` (the character
stays readable; the engine turns it into the model's inline syllable before reading).
"""

from __future__ import annotations

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


def find_polyphones(text: str, limit: int = 200) -> list[Polyphone]:
    """Polyphonic Han characters of ``text`` in order, with their readings (default first)."""
    found: list[Polyphone] = []
    for r in char_readings(text):
        if r.polyphone:
            readings = tuple(dict.fromkeys(typed_form(c) for c in r.candidates))
            i = r.offset
            m = _ANNOTATION.match(text, i + 1)
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
