"""BPE tokenisation and segmentation with the reference's exact semantics.

The reference tokenizer (``TextTokenizer.encode``): an empty text gives no pieces; a text whose
``strip()`` is one character is encoded **as it is** (no normalisation, no upper-casing); anything
else is normalised, split around every CJK character (each chunk stripped and upper-cased, joined
with single spaces) and encoded with SentencePiece (no BOS/EOS).

The segmenter (``split_segments``) cuts the piece list at sentence ends, commas and hyphens, then
packs neighbouring segments greedily up to ``max_tokens``; see :func:`split_segments`.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

from ..errors import CheckpointError, InvalidOptionError, ModelNotFoundError

log = logging.getLogger(__name__)

# Code point ranges split into single characters before BPE (Hangul Jamo, CJK radicals to Yi,
# Hangul syllables, compatibility ideographs, vertical forms, half/full-width forms, plane 2).
_CJK_RANGES = ((0x1100, 0x11FF), (0x2E80, 0xA4CF), (0xA840, 0xD7AF), (0xF900, 0xFAFF),
               (0xFE30, 0xFE4F), (0xFF65, 0xFFDC), (0x20000, 0x2FFFF))
_CJK_SPLIT_RE = re.compile("([{}])".format("".join(f"{chr(a)}-{chr(b)}" for a, b in _CJK_RANGES)))

SENTENCE_ENDS = (".", "!", "?", "▁.", "▁?", "▁...")  # "▁!" is not a piece of the released model
COMMAS = (",", "▁,")
HYPHENS = ("-",)
QUOTES = ("'", "▁'")


def split_cjk(text: str) -> str:
    """Space-separate every CJK character and upper-case the rest: ``你好 hi`` → ``你 好 HI``."""
    chunks = (c.strip().upper() for c in _CJK_SPLIT_RE.split(text.strip()))
    return " ".join(c for c in chunks if c)


class BpeModel:
    """The SentencePiece model of a checkpoint (``bpe.model``)."""

    def __init__(self, path: str | Path):
        from sentencepiece import SentencePieceProcessor

        path = Path(path)
        if not path.is_file():
            raise ModelNotFoundError(f"{path}: BPE model not found")
        try:
            self._sp = SentencePieceProcessor(model_file=str(path))
        except (OSError, RuntimeError) as e:
            raise CheckpointError(f"{path}: cannot be read as a SentencePiece model ({e})") from e
        self.path = path

    @property
    def vocab_size(self) -> int:
        return self._sp.GetPieceSize()

    @property
    def unk_id(self) -> int:
        return self._sp.unk_id()

    def pieces(self) -> list[str]:
        return [self._sp.IdToPiece(i) for i in range(self.vocab_size)]

    def encode(self, text: str) -> list[str]:
        return self._sp.Encode(text, out_type=str)

    def to_ids(self, pieces: list[str]) -> list[int]:
        return [self._sp.PieceToId(p) for p in pieces]

    def to_pieces(self, ids: list[int]) -> list[str]:
        return [self._sp.IdToPiece(i) for i in ids]


def _hard_split(seg: list[str], max_tokens: int) -> list[list[str]]:
    log.info("no sentence end, comma or hyphen within %d tokens; cutting the run every %d tokens",
             max_tokens, max_tokens)
    return [seg[i:i + max_tokens] for i in range(0, len(seg), max_tokens)]


def _split_at(pieces: list[str], cut_at: tuple[str, ...], max_tokens: int,
              quick_streaming_tokens: int) -> list[list[str]]:
    segments: list[list[str]] = []
    current: list[str] = []
    for i, piece in enumerate(pieces):
        current.append(piece)
        if cut_at != COMMAS and any(p in COMMAS for p in current):
            segments.extend(_split_at(current, COMMAS, max_tokens, quick_streaming_tokens))
        elif cut_at != HYPHENS and "-" in current:
            segments.extend(_split_at(current, HYPHENS, max_tokens, quick_streaming_tokens))
        elif len(current) > max_tokens:
            segments.extend(_hard_split(current, max_tokens))
        else:
            if piece in cut_at and len(current) > 2:
                # A quote right after the cut goes with this segment, and (reference quirk,
                # kept for token parity) also starts the next one.
                if i + 1 < len(pieces) and pieces[i + 1] in QUOTES:
                    current.append(pieces[i + 1])
                segments.append(current)
                current = []
            continue
        current = []
    if current:
        segments.append(current)
    return _pack(segments, max_tokens, quick_streaming_tokens)


def _pack(segments: list[list[str]], max_tokens: int, quick_streaming_tokens: int) -> list[list[str]]:
    """Merge each segment into the previous one while both fit in ``max_tokens`` (and the tokens
    so far exceed ``quick_streaming_tokens``), or while both fit in half of it."""
    packed: list[list[str]] = []
    seen = 0
    for seg in segments:
        seen += len(seg)
        if not seg:
            continue
        joined = len(packed[-1]) + len(seg) if packed else None
        if joined is not None and ((joined <= max_tokens and seen > quick_streaming_tokens)
                                   or joined <= max_tokens / 2):
            packed[-1] = packed[-1] + seg
        else:
            packed.append(seg)
    return packed


def check_quick_streaming_tokens(n: object) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidOptionError(f"quick_streaming_tokens must be a whole number >= 0, got {n!r}")


def split_segments(pieces: list[str], max_tokens: int = 120,
                   quick_streaming_tokens: int = 0) -> list[list[str]]:
    """Cut ``pieces`` into segments of at most ``max_tokens``, exactly as the reference does.

    Walking the pieces: a segment is closed at a sentence end (``.``/``!``/``?``/``...`` pieces, once
    it has more than 2 pieces); as soon as it holds a comma it is re-split at commas, and likewise
    at hyphens; a run longer than ``max_tokens`` without a cut is chopped every ``max_tokens``. Then
    neighbours are packed (see :func:`_pack`). The reference's quote duplication is kept.

    ``quick_streaming_tokens`` (the reference's streaming option): no packing beyond half of
    ``max_tokens`` until more than this many pieces have been read, so the first segments stay
    short and a stream's first audio comes early; 0 packs as usual.
    """
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidOptionError(f"max_tokens must be a whole number >= 1, got {max_tokens!r}")
    check_quick_streaming_tokens(quick_streaming_tokens)
    if not pieces:
        return []
    return _split_at(list(pieces), SENTENCE_ENDS, max_tokens, quick_streaming_tokens)
