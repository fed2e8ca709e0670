"""IndexTTS-2's text front end: normalisation, pinyin, pronunciation dictionary, BPE, segments.

``TextFrontend(bpe_model).preview(text)`` gives what the GPT will read: the normalised text, the BPE
pieces and ids, and the segments synthesised one after the other. Normalisation, tokenisation and
segmentation follow the reference exactly (see :mod:`.normalizer` for the few deliberate
differences); on top of it, before normalisation, come the friendlier pinyin forms of
:mod:`.pinyin` and the user's :class:`PronunciationDictionary`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InvalidOptionError, TextError
from .dictionary import DictionaryEntry, PronunciationDictionary
from .normalizer import NormalizationTrace, TextNormalizer, use_chinese
from .pinyin import (
    INLINE_PINYIN_RE,
    CharReading,
    InlinePinyin,
    PinyinError,
    PinyinInventory,
    char_readings,
    expand_annotations,
    find_inline_pinyin,
    has_annotations,
    invalid_pinyin,
    model_form,
)
from .tokenizer import BpeModel, check_quick_streaming_tokens, split_cjk, split_segments

MAX_TEXT_CHARS = 20_000
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
GLOSSARY_FILE = "glossary.yaml"

__all__ = [
    "MAX_TEXT_CHARS",
    "BpeModel",
    "CharReading",
    "DictionaryEntry",
    "InlinePinyin",
    "NormalizationTrace",
    "PinyinError",
    "PinyinInventory",
    "PronunciationDictionary",
    "TextFrontend",
    "TextNormalizer",
    "TextPreview",
    "char_readings",
    "expand_annotations",
    "find_inline_pinyin",
    "invalid_pinyin",
    "model_form",
    "split_cjk",
    "split_segments",
    "use_chinese",
]


@dataclass
class TextPreview:
    """What the model will read for a text."""

    normalized: str
    pieces: list[str]
    ids: list[int]
    segments: list[list[str]]        # pieces per segment
    segment_ids: list[list[int]]     # ids per segment
    unknown: list[str]               # pieces mapped to <unk> (each once, in order)
    warnings: list[str] = field(default_factory=list)  # e.g. inline pinyin the model lacks

    def to_dict(self) -> dict:
        """JSON-ready: ``normalized``, ``pieces``, ``ids``, ``segments``, then the rest."""
        return {"normalized": self.normalized, "pieces": self.pieces, "ids": self.ids,
                "segments": self.segments, "segment_ids": self.segment_ids, "unknown": self.unknown,
                "warnings": self.warnings}


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise TextError(f"text must be a string, got {type(text).__name__}")
    if len(text) > MAX_TEXT_CHARS:
        raise TextError(f"the text has {len(text):,} characters; the limit is {MAX_TEXT_CHARS:,}. "
                        "Split it into several parts.")
    return text


class TextFrontend:
    """Text → normalised text → BPE pieces → segments, for one ``bpe.model``.

    Cheap to build: the SentencePiece model is read at once, the wetext grammars and the pinyin
    inventory on first use. Safe to share between threads: what it builds lazily is the same
    whichever thread builds it, so a race only builds it twice.
    """

    def __init__(self, bpe_model: str | Path, *, dictionary: PronunciationDictionary | None = None):
        self.bpe = BpeModel(bpe_model)
        self.dictionary = dictionary
        self.normalizer = TextNormalizer()
        self._inventory: PinyinInventory | None = None
        self._dictionary_checked: tuple[int, int] | None = None  # (id, size) of the checked one

    @classmethod
    def from_model_dir(cls, model_dir: str | Path,
                       dictionary: PronunciationDictionary | None = None) -> TextFrontend:
        """The front end of a model folder: its ``bpe.model`` (as named by ``config.yaml``) and its
        ``glossary.yaml`` if present (as the reference loads it), merged with ``dictionary``."""
        model_dir = Path(model_dir)
        bpe_name = "bpe.model"
        if (model_dir / "config.yaml").is_file():
            from ..config import load_config

            bpe_name = load_config(model_dir / "config.yaml").bpe_model
        glossary = model_dir / GLOSSARY_FILE
        if glossary.is_file():
            base = PronunciationDictionary.load(glossary)
            dictionary = base if dictionary is None else base.merged(dictionary)
        return cls(model_dir / bpe_name, dictionary=dictionary)

    # -- pinyin -----------------------------------------------------------------------------
    @property
    def pinyin_inventory(self) -> PinyinInventory:
        """The syllables this model knows (its pinyin pieces, else pypinyin's syllables)."""
        if self._inventory is None:
            self._inventory = PinyinInventory.from_pieces(self.bpe.pieces())
        return self._inventory

    def inline_pinyin(self, text: str) -> list[InlinePinyin]:
        """Inline tone-numbered syllables in ``text`` (after the friendly forms are expanded)."""
        return find_inline_pinyin(self._expand(text), self.pinyin_inventory)

    def invalid_pinyin(self, text: str) -> list[str]:
        """Pinyin in ``text`` the model cannot read, as written (see :func:`.pinyin.invalid_pinyin`)."""
        return invalid_pinyin(_check_text(text), self.pinyin_inventory)

    def char_readings(self, text: str) -> list[CharReading]:
        """Each Han character's default reading and whether it is a polyphone (for the UI)."""
        return char_readings(_check_text(text))

    def _expand(self, text: str) -> str:
        _check_text(text)
        # Control characters: SentencePiece deletes some of them, gluing the words around together.
        text = _CONTROL_RE.sub(" ", text)
        d = self.dictionary
        if d is not None and self._dictionary_checked != (id(d), len(d)):
            if any(e.pinyin for e in d):
                d.check(self.pinyin_inventory)
            self._dictionary_checked = (id(d), len(d))
        if not has_annotations(text):
            return text
        return expand_annotations(text, self.pinyin_inventory)

    # -- the pipeline -----------------------------------------------------------------------
    def normalize(self, text: str) -> str:
        """The reference normalisation (after pinyin forms and dictionary)."""
        return self.normalizer.normalize(self._expand(text), self.dictionary)

    def _normalize_expanded(self, expanded: str) -> str:
        return self.normalizer.normalize(expanded, self.dictionary)

    def _pieces(self, expanded: str, normalized: str | None) -> list[str]:
        if len(expanded) == 0:
            return []
        if len(expanded.strip()) == 1:
            # Reference shortcut: one visible character is encoded raw, without normalisation.
            return self.bpe.encode(expanded)
        if normalized is None:
            normalized = self._normalize_expanded(expanded)
        return self.bpe.encode(split_cjk(normalized))

    def tokenize(self, text: str) -> list[str]:
        """BPE pieces, reference semantics (``""`` → ``[]``)."""
        return self._pieces(self._expand(text), None)

    def segment(self, pieces: list[str], max_tokens: int = 120, quick_streaming_tokens: int = 0) -> list[list[str]]:
        """Segments of at most ``max_tokens`` pieces, cut where the reference cuts (see
        :func:`~indextts_core.text.tokenizer.split_segments` for ``quick_streaming_tokens``)."""
        return split_segments(pieces, max_tokens, quick_streaming_tokens)

    def to_ids(self, pieces: list[str]) -> list[int]:
        return self.bpe.to_ids(pieces)

    def preview(self, text: str, max_tokens: int = 120, quick_streaming_tokens: int = 0) -> TextPreview:
        """Everything the UI shows about a text; :class:`TextError` if there is nothing to read."""
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidOptionError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
        check_quick_streaming_tokens(quick_streaming_tokens)
        text = _check_text(text)
        if not text.strip():
            raise TextError("The text is empty: type something for the voice to say.")
        bad = self.invalid_pinyin(text)
        if bad:
            where = ", ".join(f"{b} at character {text.find(b)}" for b in bad)
            raise PinyinError(f"invalid pinyin: {where}. Write a reading like chóng or chong2 "
                              "(tone 1-4, 5 = neutral) with a syllable the model knows.", bad[0],
                              max(0, text.find(bad[0])))
        expanded = self._expand(text)
        normalized = self._normalize_expanded(expanded)
        pieces = self._pieces(expanded, normalized)
        if not pieces:
            raise TextError("Nothing is left to read after normalisation: the text has no letters, "
                            "characters or numbers the model can say.")
        ids = self.to_ids(pieces)
        segments = self.segment(pieces, max_tokens, quick_streaming_tokens)
        unk = self.bpe.unk_id
        unknown = list(dict.fromkeys(p for p, i in zip(pieces, ids, strict=True) if i == unk))
        if not any(i != unk and any(c.isalnum() for c in p) for p, i in zip(pieces, ids, strict=True)):
            missing = f" ({' '.join(unknown[:10])} are not in its vocabulary)" if unknown else ""
            raise TextError(f"Nothing in the text can be read aloud: it has no words, characters or numbers "
                            f"the model knows{missing}.")
        warnings = []
        if INLINE_PINYIN_RE.search(expanded):
            for p in find_inline_pinyin(expanded, self.pinyin_inventory):
                if not p.known:
                    same_offsets = expanded == _CONTROL_RE.sub(" ", text)
                    where = f" at character {p.offset}" if same_offsets else ""
                    warnings.append(f"pinyin '{p.text}'{where} ({p.syllable}) is not a syllable this "
                                    "model knows; it will be spelled out letter by letter")
        if unknown:
            warnings.append(f"{len(unknown)} piece(s) are not in the model's vocabulary and will be read "
                            f"as <unk>: {' '.join(unknown[:20])}")
        return TextPreview(normalized, pieces, ids, segments, [self.to_ids(s) for s in segments],
                           unknown, warnings)
