r"""Text normalisation as the IndexTTS-2 reference does it, on the ``wetext`` grammars.

The reference (``TextNormalizer.normalize`` of the official front end, WeTextProcessing 1.2.0 on
Linux) runs, in this order:

1. ``<word|reading>`` annotations are hidden behind letter-only placeholders (put back verbatim at
   the very end).
2. Language: Chinese if the text has a CJK ideograph (U+4E00-U+9FFF), or no ASCII letter, or is
   exactly one e-mail address, or holds an inline tone-numbered pinyin syllable; else English.
3. ``what's/where's/who's/which's/how's/there's/here's/it's/she's/he's/that's/this's`` → ``… is``
   (case-insensitive, no word boundary).
4. The term glossary (here: :class:`~.dictionary.PronunciationDictionary`).
5. Hyphens inside tech terms (``GPT-5-nano``) are hidden as ``<H>`` and put back as ``-`` (eating
   the spaces around them).
6. Chinese only: trailing whitespace is dropped; inline pinyin (``zhong4``) and hyphen/dot-joined
   names (``克里斯托弗·诺兰``) are hidden behind ``<pinyin_a>``/``<n_a>`` placeholders; restored pinyin
   with initial j/q/x is respelled (``ju2`` → ``JV2``).
7. The grammar (Chinese: ``remove_erhua=False``, traditional → simplified, full → half width;
   English: defaults), then a character map (``：；;，`` → ``,``, ``。`` → ``.``, quotes and brackets →
   ``'``, dashes and tildes → ``-``, ``...``/``……`` → ``…``, newline → space; Chinese also ``$`` → ``.``)
   applied as one regex alternation in the reference's key order, so the first listed key wins, not
   the longest (``，，，`` → ``,,,``).

We run the same rules around ``wetext`` 0.1.8 (the reference's own back end off Linux). Where raw
wetext output differs from WeTextProcessing and the reference is right, a general rule brings it back
(see ``TextNormalizer._run_grammar``):

* wetext strips leading whitespace: we keep it (rows 203, 209);
* its English grammar raises on runs of spaces: we collapse them to one, as WeTextProcessing's English
  grammar does (row 205);
* it escapes ``\`` and ``"`` in its output whenever its grammar ran: we unescape (rows 180, 182);
* it reads ``2.1.3`` as ``two.one point three``: we say ``point`` (row 121);
* after a month-day-comma-year date it writes ``of march, twenty…`` where WeTextProcessing writes
  ``of march , twenty…``: we write the latter (row 108).

Deliberate differences from the reference (each has its own test in ``tests/test_text_frontend.py``):

| # | input | reference | ours |
|---|---|---|---|
| 1 | `Email me at john@example.com.` | `… at exampl e dot com dot ` | `… at example dot com.` |
| 2 | `… 1, 2, … 11, … 14, 15.` | `… one one, … one four, one five.` | `… eleven, … fourteen, fifteen.` |
| 3 | `版本号是2.0.1。` | `版本号是二.零点一.` | `版本号是二点零点一.` |
| 4 | `It costs $1,234.56.` | `It costs thousand two hundred …` | `It costs one thousand two hundred …` |
| 5 | Chinese grammar raises | `""`: the whole text is lost | per chunk (below) |
| 6 | English grammar raises | the text, not normalised | per chunk (below) |
| 7 | > 26 distinct inline syllables/names | placeholders `<pinyin_{>`, `<n_}>`… | `<pinyin_aa>`, `<n_ab>`… |
| 8 | one syllable inside another (`jun1 un1`) | hidden in set (random) order | longest first: `JVN1 un1` |
| 9 | glossary reading with a `\` | used as a `re.sub` template | inserted as written |
| 10 | `我说5 hello`, `在8:30 studio` | `我说五小时ello`, `…秒tudio` | `我说五 hello`, `…三十分studio` |
| 11 | `$1,234.56`, `总共$5元` (Chinese) | `一美元,两百三十四点五六`, `总共.五元` | `一千…点五六美元`, `总共五元` |

1, 2: rows 116 and 224 of the goldens; the reference is wrong, wetext is right, we keep wetext.
3: row 51; the stray ``.`` is read as a sentence end (and cuts a segment); a three-part dotted number
is read with 点 / "point" between its parts, as the reference already does in English.
4: also ``1,234``, ``$1234``, ``1234.5``: English numbers of 1000-1999 read as cardinals lose their
"one" in wetext (no golden row; WeTextProcessing shares the grammar). We add it where the number of
such inputs and of bare "thousand"s in the output agree.
5, 6: each whitespace-separated chunk is normalised alone; a chunk that still fails stays as typed.
7: the reference's ``chr(ord("a") + i)`` runs past ``z``; the grammar may mangle such placeholders.
8: deterministic instead of depending on the hash seed. 9: ``\1`` raised, ``\\`` was halved.
10: the Chinese grammar takes the first letters of a Latin word after a number for a unit (h, m, s,
v, L, kg...) and leaves the rest of the word; such a word (found by asking the grammar about it alone)
is hidden from the grammar. A whole unit (``5 kg``, ``8:00 AM``, ``2TB``) is read as before.
11: no golden row; in Chinese a thousands-grouped number loses its commas before the grammar (which
splits it at them unless a measure word follows), except in row 30's form (``￥1,299.50元``), and a
``$`` before an amount followed by 元/美元 is dropped (the grammar leaves it, and the character map
would make it a full stop). In English the "one" of 1000-1999 (item 4) is also added before a comma
(``It was $1,234.56, thanks.``).

English contractions (``we'll``, ``can't``, ``she'd``) are kept as written, as in the reference; only
the ``'s`` forms of step 3 are expanded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from .dictionary import PronunciationDictionary
from .pinyin import INLINE_PINYIN_RE

log = logging.getLogger(__name__)

_HAN_RE = re.compile("[\u4e00-\u9fff]")
_ASCII_LETTER_RE = re.compile("[a-zA-Z]")
_EMAIL_RE = re.compile(r"[a-zA-Z0-9]+@[a-zA-Z0-9]+\.[a-zA-Z]+$")
_ANNOTATION_RE = re.compile(r"<[^|>\n]+\|[^>\n]+>")
_CONTRACTION_RE = re.compile(
    "({})'s".format("|".join(("what", "where", "who", "which", "how", "there", "here", "it", "she",
                              "he", "that", "this"))),
    re.IGNORECASE)
_TECH_RE = re.compile(r"[A-Za-z][0-9A-Za-z]*(?:-[0-9A-Za-z]+)+")
_TECH_MARK = "<H>"
_TECH_RESTORE_RE = re.compile(r"\s*<H>\s*")
_NAME_RE = re.compile("[\u4e00-\u9fff]+(?:[-·—][\u4e00-\u9fff]+){1,2}")
# u/ü after j/q/x is respelled v; the repeated group keeps only its last repetition, as there.
_JQX_U_RE = re.compile(r"([jqx])[uü](n|e|an)*(\d)", re.IGNORECASE)

# (key, value) in the reference's order; the alternation takes the first key that matches.
_CHAR_MAP = (
    ("：", ","), ("；", ","), (";", ","), ("，", ","), ("。", "."), ("！", "!"), ("？", "?"), ("\n", " "),
    ("·", "-"), ("、", ","), ("...", "…"), (",,,", "…"), ("，，，", "…"), ("……", "…"),
    ("“", "'"), ("”", "'"), ('"', "'"), ("‘", "'"), ("’", "'"), ("（", "'"), ("）", "'"),
    ("(", "'"), (")", "'"), ("《", "'"), ("》", "'"), ("【", "'"), ("】", "'"), ("[", "'"), ("]", "'"),
    ("—", "-"), ("～", "-"), ("~", "-"), ("「", "'"), ("」", "'"), (":", ","),
)
_ZH_CHAR_MAP = (("$", "."), *_CHAR_MAP)


def _char_mapper(pairs: tuple[tuple[str, str], ...]) -> Callable[[str], str]:
    table = dict(pairs)
    pattern = re.compile("|".join(re.escape(k) for k, _ in pairs))
    return lambda s: pattern.sub(lambda m: table[m.group(0)], s)


_map_chars_en = _char_mapper(_CHAR_MAP)
_map_chars_zh = _char_mapper(_ZH_CHAR_MAP)

# wetext's English grammar asserts on runs of these; WeTextProcessing reads them as one space.
_SPACE_RUN_RE = re.compile("[ \t\n\r\x0b\x0c\xa0]{2,}")
_UNESCAPE_RE = re.compile(r'\\([\\"])')

_EN_NUMBER_WORDS = (
    "zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven",
    "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen", "twenty",
    "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety", "hundred", "thousand", "million",
    "billion", "trillion")
_EN_NUM = "|".join(_EN_NUMBER_WORDS)
# Exactly three dot-joined digit groups (a version number; four groups read fine).
_THREE_PART_RE = re.compile(r"(?<![\d.])\d+\.\d+\.\d+(?!\.?\d)")
_EN_DOTTED_RE = re.compile(rf"\b({_EN_NUM})\.(?=(?:{_EN_NUM})\b)")

_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september",
           "october", "november", "december")
_MONTH_ABBR = ("jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec")
_MDY_COMMA_RE = re.compile(
    r"\b(?:{})\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,\s*\d{{4}}\b".format("|".join(_MONTHS + _MONTH_ABBR)),
    re.IGNORECASE)
_OF_MONTH_COMMA_RE = re.compile(r"\bof ({}),(?= )".format("|".join(_MONTHS)))

# English numbers of 1000-1999 that the grammar reads as a cardinal ("1,234", "1234.5", "$1234"):
# wetext says "thousand two hundred ..." without the "one".
_ONE_THOUSAND_RE = re.compile(
    r"(?<![\d.,])1(?:,\d{3}(?:\.\d+)?|\d{3}\.\d+)(?!\d|,\d|\.\d|st|nd|rd|th)"
    r"|(?<=[$€£¥])1\d{3}(?![\d.,])")
_THOUSAND_RE = re.compile(r"\bthousand\b", re.IGNORECASE)

# Chinese: a thousands-grouped number ("1,234", "12,345,678.9"). The grammar reads one as a quantity
# only before some measure words ("1,234,567元", row 8); elsewhere it splits it at the commas
# ("一,两百三十四"), and after a currency sign it takes "$1" for the money and reads the rest apart.
# Without the commas it reads them all as one number. Kept: a currency sign, the number, then 元
# (row 30: "￥1,299.50元" is read as the number and the sign is left as typed).
_ZH_GROUPED_RE = re.compile(r"(?<![\d.,])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?!\d|,\d|\.\d)")
_CURRENCY_SIGNS = "$¥￥€£"


def _zh_ungroup(m: re.Match) -> str:
    s = m.string
    if m.start() and s[m.start() - 1] in _CURRENCY_SIGNS and s.startswith("元", m.end()):
        return m.group(0)
    return m.group(0).replace(",", "")


# Chinese: "$" before an amount already followed by its currency word. The grammar leaves such a "$"
# alone, and the reference's character map then turns it into a full stop (a sentence end).
_ZH_DOLLAR_AND_WORD_RE = re.compile(r"\$\s*(?=\d[\d,]*(?:\.\d+)?\s*(?:美元|元))")

# A Latin word right after a digit or a percent sign (with optional spaces between).
_NUMBER_WORD_RE = re.compile(r"(?<=[\d%])(\s*)([A-Za-z]+)")
# When the grammar raises: retry clause by clause, then word by word (separators kept).
_FALLBACK_SPLITS = (re.compile(r"((?<=[.!?;,。！？；，])\s*)"), re.compile(r"(\s+)"))


def _zh_dotted(m: re.Match) -> str:
    """``2.0.1`` → ``2点0点1``, leaving dates (``2025.06.30``, ``30.06.2025``) to the grammar."""
    parts = m.group(0).split(".")
    if len(parts[0]) == 4 or len(parts[-1]) == 4:
        return m.group(0)
    return "点".join(parts)


def _alpha_tag(n: int) -> str:
    """0 → a, 25 → z, 26 → aa, ... (bijective base 26, letters only)."""
    s = ""
    n += 1
    while n:
        n, r = divmod(n - 1, 26)
        s = chr(ord("a") + r) + s
    return s


def use_chinese(text: str) -> bool:
    """The reference's language choice (step 2 of the module docstring)."""
    if _HAN_RE.search(text) or not _ASCII_LETTER_RE.search(text) or _EMAIL_RE.match(text):
        return True
    return INLINE_PINYIN_RE.search(text) is not None


def _hide(text: str, found: list[str], key: Callable[[str], str]) -> tuple[str, list[tuple[str, str]]]:
    """Replace each distinct string of ``found`` (longest first) by ``key(tag)``."""
    pairs = []
    for i, s in enumerate(sorted(dict.fromkeys(found), key=len, reverse=True)):
        k = key(_alpha_tag(i))
        text = text.replace(s, k)
        pairs.append((k, s))
    return text, pairs


def _respell_pinyin(s: str) -> str:
    """The reference's restore spelling: ``ju2`` → ``JV2``; j/q/x syllables are upper-cased."""
    if s[:1].lower() not in ("j", "q", "x"):
        return s
    return _JQX_U_RE.sub(lambda m: f"{m.group(1)}v{m.group(2) or ''}{m.group(3)}", s).upper()


def _is_bare_thousand(text: str, pos: int) -> bool:
    """``thousand`` at ``pos`` not preceded by a number (word or digits)."""
    m = re.search(r"(\S+)\s*$", text[:pos])
    if not m:
        return True
    prev = m.group(1).lower().strip(",.;:!?'\"()")
    return not (prev in _EN_NUMBER_WORDS or prev[-1:].isdigit())


def _add_missing_one(source: str, out: str) -> str:
    """Put "one" before each bare ``thousand`` that reads a 1000-1999 number of ``source``.

    Events of ``source`` (such numbers, and bare "thousand" words typed by the user) are matched in
    order to bare "thousand"s of ``out``; if the counts differ nothing is changed.
    """
    numbers = [m.start() for m in _ONE_THOUSAND_RE.finditer(source)]
    if not numbers:
        return out
    typed = [m.start() for m in _THOUSAND_RE.finditer(source) if _is_bare_thousand(source, m.start())]
    events = sorted([(p, True) for p in numbers] + [(p, False) for p in typed])
    bare = [m.start() for m in _THOUSAND_RE.finditer(out) if _is_bare_thousand(out, m.start())]
    if len(bare) != len(events):
        log.debug("not fixing 'thousand' readings: %d candidates for %d numbers", len(bare), len(events))
        return out
    for pos, (_, is_number) in reversed(list(zip(bare, events, strict=True))):
        if is_number:
            out = out[:pos] + "one " + out[pos:]
    return out


@dataclass(frozen=True)
class NormalizationTrace:
    """Intermediate strings of one :meth:`TextNormalizer.normalize_traced` call."""

    lang: str            # "zh" or "en": which grammar ran
    grammar_input: str   # what the grammar got, after the protections
    grammar_output: str  # what it returned, after our general fixes
    normalized: str


class TextNormalizer:
    """The reference's normalisation rules around wetext's grammars (built on first use)."""

    def __init__(self) -> None:
        self._grammars: dict[str, object] = {}
        self._eats_prefix_cache: dict[tuple[str, str], bool] = {}

    def _grammar(self, lang: str):
        g = self._grammars.get(lang)
        if g is None:
            from wetext import Normalizer

            if lang == "zh":
                g = Normalizer(lang="zh", operator="tn", remove_erhua=False, traditional_to_simple=True,
                               full_to_half=True)
            else:
                g = Normalizer(lang="en", operator="tn")
            self._grammars[lang] = g
        return g

    def normalize(self, text: str, dictionary: PronunciationDictionary | None = None) -> str:
        return self.normalize_traced(text, dictionary).normalized

    def normalize_traced(self, text: str,
                         dictionary: PronunciationDictionary | None = None) -> NormalizationTrace:
        annotations: list[tuple[str, str]] = []

        def stash(m: re.Match) -> str:
            key = f"PRONPLACEHOLDER{_alpha_tag(len(annotations))}PRONPLACEHOLDER"
            annotations.append((key, m.group(0)))
            return key

        text = _ANNOTATION_RE.sub(stash, text)
        lang = "zh" if use_chinese(text) else "en"
        text = _CONTRACTION_RE.sub(r"\1 is", text)
        dict_pinyin: dict[str, str] = {}
        if dictionary is not None and len(dictionary):
            text, dict_pinyin = dictionary.apply(
                text, lang, lambda i: f"DICTPLACEHOLDER{_alpha_tag(i)}DICTPLACEHOLDER")
        if lang == "zh":
            text = text.rstrip()
        techs = sorted(set(_TECH_RE.findall(text)), key=len, reverse=True)
        for term in techs:
            text = text.replace(term, term.replace("-", _TECH_MARK))
        pinyin: list[tuple[str, str]] = []
        names: list[tuple[str, str]] = []
        if lang == "zh":
            text, pinyin = _hide(text, [m.group(0) for m in INLINE_PINYIN_RE.finditer(text)],
                                 lambda t: f"<pinyin_{t}>")
            text, names = _hide(text, _NAME_RE.findall(text), lambda t: f"<n_{t}>")
        out = self._run_grammar(lang, text)
        result = out
        for key, name in names:
            result = result.replace(key, name)
        for key, syllable in pinyin:
            result = result.replace(key, _respell_pinyin(syllable))
        if techs:
            result = _TECH_RESTORE_RE.sub("-", result)
        result = _map_chars_zh(result) if lang == "zh" else _map_chars_en(result)
        for key, syllables in dict_pinyin.items():
            result = result.replace(key, syllables)
        for key, original in annotations:
            result = result.replace(key, original)
        return NormalizationTrace(lang, text, out, result)

    # -- the grammar and the general fixes around it ----------------------------------------
    @staticmethod
    def _grammar_runs(lang: str, text: str) -> bool:
        # wetext only runs its Chinese grammar on text with a digit; it escapes output only then.
        return bool(re.search(r"\d", text)) if lang == "zh" else bool(text.strip())

    def _call(self, lang: str, text: str) -> str:
        out = self._grammar(lang).normalize(text)
        return _UNESCAPE_RE.sub(r"\1", out) if self._grammar_runs(lang, text) else out

    def _run_grammar(self, lang: str, text: str) -> str:
        body = text.strip()
        lead = text[: len(text) - len(text.lstrip())]
        if not body:
            return lead
        guarded: list[tuple[str, str]] = []
        if lang == "en":
            body = _SPACE_RUN_RE.sub(" ", body)  # runs of spaces make wetext raise
        else:
            # The Chinese grammar reads "10.2.3" as a date then ".3": spell the dots out first.
            body = _THREE_PART_RE.sub(_zh_dotted, body)
            body = _ZH_DOLLAR_AND_WORD_RE.sub("", body)
            body = _ZH_GROUPED_RE.sub(_zh_ungroup, body)
            body, guarded = self._guard_words_after_numbers(body)
        out = self._call_robust(lang, body, 0)
        for key, word in guarded:
            out = out.replace(key, word)
        if lang == "en":
            if _THREE_PART_RE.search(body):
                out = _EN_DOTTED_RE.sub(r"\1 point ", out)
            if _MDY_COMMA_RE.search(body):
                out = _OF_MONTH_COMMA_RE.sub(r"of \1 ,", out)
            out = _add_missing_one(body, out)
        return lead + out

    def _call_robust(self, lang: str, text: str, level: int) -> str:
        """The grammar on ``text``; if it raises, on its clauses, then on its words; a word that
        still fails is kept as written (the reference would drop or keep the whole text)."""
        if not text or text.isspace():
            return text
        try:
            return self._call(lang, text)
        except Exception as e:  # wetext raises AssertionError/RuntimeError on inputs it cannot parse
            if level == len(_FALLBACK_SPLITS):
                log.warning("text normaliser failed on %r (%r); keeping it as written", text, e)
                return text
            log.info("text normaliser failed on %r (%r); trying it in pieces", text[:80], e)
            parts = _FALLBACK_SPLITS[level].split(text)
            return "".join(p if i % 2 else self._call_robust(lang, p, level + 1)
                           for i, p in enumerate(parts))

    def _guard_words_after_numbers(self, body: str) -> tuple[str, list[tuple[str, str]]]:
        """Hide Latin words after a number whose first letters the Chinese grammar would take for a
        unit, leaving the rest (``5 hello`` → ``五小时ello``, ``8:30 studio`` → ``…秒tudio``)."""
        guarded: list[tuple[str, str]] = []
        verdicts = self._eats_prefix_cache
        if len(verdicts) > 10_000:
            verdicts.clear()

        def guard(m: re.Match) -> str:
            gap, word = m.group(1), m.group(2)
            probe = (("%" if body[m.start() - 1] == "%" else "") + gap[:1], word)
            if probe not in verdicts:
                verdicts[probe] = self._eats_prefix(*probe)
            if not verdicts[probe]:
                return m.group(0)
            key = f"<w_{_alpha_tag(len(guarded))}>"
            guarded.append((key, word))
            return gap + key

        return _NUMBER_WORD_RE.sub(guard, body), guarded

    def _eats_prefix(self, before: str, word: str) -> bool:
        """Whether the Chinese grammar reads a proper prefix of ``word`` as a unit after ``before``
        (``%`` and/or a space after the number, as in the text)."""
        try:
            out = self._call("zh", f"5{before}{word}")
        except Exception:
            return False
        return word not in out and any(out.endswith(word[i:]) for i in range(1, len(word)))
