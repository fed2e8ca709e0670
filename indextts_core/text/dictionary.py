"""A user pronunciation dictionary: term → replacement text or pinyin, applied before normalisation.

It is the reference's term glossary (``glossary.yaml`` in the model folder) with one addition:

* Matching is the reference's: case-insensitive literal match of the term, longest terms first (ties
  in file order), one pass per term, after the language of the text has been chosen and ``'s``
  contractions expanded (so a later, shorter term can match inside an earlier replacement, as there).
* A replacement is either one text for both languages, or per language ``{zh: ..., en: ...}`` (a
  missing language leaves the term as it is), or **pinyin** ``{pinyin: "chóng qìng"}``: syllables with
  tone marks or digits, validated, inserted in the model's spelling (``CHONG2 QING4``) and protected
  from the number reader in both languages.

Files (chosen by suffix):

* YAML (``.yaml``/``.yml``), the reference's glossary format::

      M.2:
        en: M dot two
        zh: M 二
      TTS: T T S
      重庆:
        pinyin: chóng qìng

* JSON (``.json``): the same mapping.
* TSV (``.tsv``/``.txt``): ``term<TAB>replacement[<TAB>zh|en|pinyin]``; ``#`` starts a comment line.
  Without the third column the replacement is used for both languages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import yaml

from ..errors import ConfigError, TextError
from .pinyin import PinyinInventory, parse_syllables


@dataclass(frozen=True)
class DictionaryEntry:
    term: str
    zh: str | None = None                  # replacement in texts read as Chinese
    en: str | None = None                  # replacement in texts read as English
    pinyin: tuple[str, ...] | None = None  # model spellings, e.g. ("CHONG2", "QING4")

    def replacement(self, lang: str) -> str:
        value = self.zh if lang == "zh" else self.en
        return self.term if value is None else value


class PronunciationDictionary:
    """Terms and how to say them. ``PronunciationDictionary({"TTS": "T T S"})``."""

    def __init__(self, entries: Mapping[str, object] | None = None,
                 inventory: PinyinInventory | None = None):
        self._inventory = inventory
        self._entries: dict[str, DictionaryEntry] = {}
        for term, value in (entries or {}).items():
            self._add_value(term, value, where="")

    # -- building ---------------------------------------------------------------------------
    def _standard(self) -> PinyinInventory:
        if self._inventory is None:
            self._inventory = PinyinInventory.standard()
        return self._inventory

    def add(self, term: str, replacement: str | None = None, *, zh: str | None = None,
            en: str | None = None, pinyin: str | None = None) -> None:
        """Add or replace ``term``: one ``replacement`` for both languages, or ``zh``/``en``, or
        ``pinyin`` (syllables separated by spaces; :class:`~.pinyin.PinyinError` if one is unknown)."""
        if not isinstance(term, str) or not term.strip():
            raise TextError(f"dictionary term must be a non-empty text, got {term!r}")
        if pinyin is not None:
            if replacement is not None or zh is not None or en is not None:
                raise TextError(f"dictionary term {term!r}: give either pinyin or replacement text, not both")
            syllables = tuple(parse_syllables(pinyin, self._standard()))
            self._entries[term] = DictionaryEntry(term, pinyin=syllables)
            return
        if replacement is not None:
            if zh is not None or en is not None:
                raise TextError(f"dictionary term {term!r}: give one replacement or zh/en, not both")
            zh = en = replacement
        for value in (zh, en):
            if value is not None and not isinstance(value, str):
                raise TextError(f"dictionary term {term!r}: replacement must be text, got {value!r}")
        if zh is None and en is None:
            raise TextError(f"dictionary term {term!r} has no replacement")
        self._entries[term] = DictionaryEntry(term, zh=zh, en=en)

    def _add_value(self, term: object, value: object, where: str) -> None:
        try:
            if not isinstance(term, str):
                raise TextError(f"dictionary term {term!r} must be text (quote it in YAML)")
            if isinstance(value, str):
                self.add(term, value)
            elif isinstance(value, Mapping):
                unknown = set(value) - {"zh", "en", "pinyin"}
                if unknown:
                    raise TextError(f"dictionary term {term!r}: unknown keys {sorted(unknown)} "
                                    "(use zh, en or pinyin)")
                self.add(term, zh=value.get("zh"), en=value.get("en"), pinyin=value.get("pinyin"))
            else:
                raise TextError(f"dictionary term {term!r}: value must be text or a mapping, got {value!r}")
        except TextError as e:
            if where:
                raise ConfigError(f"{where}: {e}") from e
            raise

    @classmethod
    def load(cls, path: str | Path, inventory: PinyinInventory | None = None) -> PronunciationDictionary:
        """Read a YAML, JSON or TSV dictionary file (format by suffix, see the module docstring)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: dictionary file not found")
        try:
            raw = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{path}: cannot be read ({e})") from e
        d = cls(inventory=inventory)
        suffix = path.suffix.lower()
        if suffix in (".tsv", ".txt"):
            d._load_tsv(raw, path)
            return d
        try:
            data = json.loads(raw) if suffix == ".json" else yaml.safe_load(raw)
        except (ValueError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot be parsed ({e})") from e
        if data is None:
            return d
        if not isinstance(data, Mapping):
            raise ConfigError(f"{path}: a dictionary file must map terms to readings")
        for term, value in data.items():
            d._add_value(term, value, where=str(path))
        return d

    def _load_tsv(self, raw: str, path: Path) -> None:
        for n, line in enumerate(raw.splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            cols = line.split("\t")
            where = f"{path}, line {n}"
            if len(cols) not in (2, 3) or not cols[0].strip():
                raise ConfigError(f"{where}: expected term<TAB>replacement[<TAB>zh|en|pinyin]")
            term, value = cols[0].strip(), cols[1].strip()
            kind = cols[2].strip().lower() if len(cols) == 3 else ""
            try:
                if kind in ("", "both"):
                    self.add(term, value)
                elif kind == "pinyin":
                    self.add(term, pinyin=value)
                elif kind in ("zh", "en"):
                    old = self._entries.get(term)
                    zh = value if kind == "zh" else (old.zh if old and old.pinyin is None else None)
                    en = value if kind == "en" else (old.en if old and old.pinyin is None else None)
                    self._entries.pop(term, None)
                    self.add(term, zh=zh, en=en)
                else:
                    raise TextError(f"unknown kind {kind!r} (use zh, en or pinyin)")
            except TextError as e:
                raise ConfigError(f"{where}: {e}") from e

    def merged(self, other: PronunciationDictionary) -> PronunciationDictionary:
        """A new dictionary with this one's entries, then ``other``'s (which win)."""
        d = PronunciationDictionary(inventory=self._inventory)
        d._entries = {**self._entries, **other._entries}
        return d

    # -- reading ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[DictionaryEntry]:
        return iter(self._entries.values())

    def __contains__(self, term: object) -> bool:
        return term in self._entries

    def __getitem__(self, term: str) -> DictionaryEntry:
        return self._entries[term]

    def to_mapping(self) -> dict[str, object]:
        """The entries in the file format (for saving as YAML/JSON)."""
        out: dict[str, object] = {}
        for e in self:
            if e.pinyin is not None:
                out[e.term] = {"pinyin": " ".join(e.pinyin)}
            elif e.zh == e.en:
                out[e.term] = e.zh
            else:
                out[e.term] = {k: v for k, v in (("zh", e.zh), ("en", e.en)) if v is not None}
        return out

    def check(self, inventory: PinyinInventory) -> None:
        """Raise :class:`TextError` if a pinyin entry uses a syllable ``inventory`` lacks."""
        for e in self:
            for syl in e.pinyin or ():
                if syl not in inventory:
                    raise TextError(f"dictionary term {e.term!r}: pinyin {syl} is not a syllable this "
                                    f"model knows")

    def apply(self, text: str, lang: str, tag: Callable[[int], str]) -> tuple[str, dict[str, str]]:
        """Replace every term in ``text`` (``lang`` "zh" or "en").

        Pinyin entries become placeholders ``tag(i)`` (letters only, so no normaliser rule touches
        them); returns the text and ``{placeholder: syllables}`` to put back after normalisation.
        """
        protected: dict[str, str] = {}
        ordered = sorted(self._entries.values(), key=lambda e: len(e.term), reverse=True)
        for e in ordered:
            pattern = re.compile(re.escape(e.term), re.IGNORECASE)
            if e.pinyin is not None:
                if not pattern.search(text):
                    continue
                key = tag(len(protected))
                protected[key] = " ".join(e.pinyin)
                text = pattern.sub(lambda m, k=key: _spaced(m, k), text)
            else:
                # A function, not a template: backslashes in a reading stay literal.
                reading = e.replacement(lang)
                text = pattern.sub(lambda _m, r=reading: r, text)
        return text, protected


def _spaced(m: re.Match, key: str) -> str:
    """``key`` (letters) with a space on a side where it would glue onto a Latin letter or digit."""
    s = m.string

    def glues(c: str) -> bool:
        return c.isascii() and c.isalnum()

    before = " " if m.start() > 0 and glues(s[m.start() - 1]) else ""
    after = " " if m.end() < len(s) and glues(s[m.end()]) else ""
    return f"{before}{key}{after}"
