"""Reading emotion from a text: the release's Qwen3 classifier and its answer parser.

:class:`QwenEmotion` asks the model (``qwen0.6bemo4-merge``) for the 8 intensities of a
description, greedily as the reference does; :func:`parse_emotion_answer` turns its free-form
answer into the vector :mod:`indextts_core.emotion` blends.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import InvalidOptionError, TextError
from .options import EMOTIONS, MAX_EMOTION_VALUE

log = logging.getLogger(__name__)

# The labels the emotion model answers with, in the order of EMOTIONS.
EMOTION_LABELS_ZH = ("高兴", "愤怒", "悲伤", "恐惧", "反感", "低落", "惊讶", "自然")
_ZH_TO_EN = dict(zip(EMOTION_LABELS_ZH, EMOTIONS, strict=True))

SYSTEM_PROMPT = "文本情感分类"
# The model cannot tell sad from melancholic; the reference moves the sad score to
# melancholic when the *input text* names melancholy.
MELANCHOLIC_WORDS = ("低落", "melancholy", "melancholic", "depression", "depressed", "gloomy")
# Keys under which an answer may name a single emotion instead of scoring all eight.
_LABEL_KEYS = ("emotion", "emotion_label", "label", "情感", "情绪")
_SCORE_PATTERN = re.compile(r'([^\s":.,]+?)"?\s*:\s*([\d.]+)')

# The reference generates up to 32768 tokens; a well-formed answer is a JSON object of
# about 50 tokens, and a runaway answer would hold the UI for minutes. Generation stops
# at the end-of-turn token in either case; pass REFERENCE_MAX_NEW_TOKENS for the
# reference's cap.
DEFAULT_MAX_NEW_TOKENS = 256
REFERENCE_MAX_NEW_TOKENS = 32768


# ---------------------------------------------------------------------------------------
# Reading the emotion model's answer


def _label_to_zh(value: object) -> str | None:
    """The Chinese key a label names (Chinese or English, any case), else None."""
    if not isinstance(value, str):
        return None
    value = value.strip()
    if value in _ZH_TO_EN:
        return value
    return next((zh for zh, en in _ZH_TO_EN.items() if value.lower() == en), None)


def _resolve_labels(content: object) -> dict:
    """Turn label answers into scores, as the reference does.

    A bare label, or a label under one of :data:`_LABEL_KEYS`, scores 1.0 when the answer
    has no score keys; a score key whose value is a label moves a 1.0 to that label.
    Anything but a dict or a label yields no scores.
    """
    scores = dict(content) if isinstance(content, dict) else {}
    label = _label_to_zh(content)
    if label is None:
        label = next((z for z in map(_label_to_zh, map(scores.get, _LABEL_KEYS)) if z is not None), None)
    if label is not None and not any(k in scores for k in EMOTION_LABELS_ZH):
        scores[label] = 1.0
    # Sequential on purpose: a key rewritten here is seen as a number by later keys.
    for key in EMOTION_LABELS_ZH:
        named = _label_to_zh(scores.get(key))
        if named is not None:
            scores[key] = 1.0 if named == key else 0.0
            if named != key:
                scores[named] = 1.0
    return scores


def _clamp_score(key: str, value: object) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as e:
        raise TextError(f"the emotion model gave a non-numeric score for {_ZH_TO_EN[key]} ({value!r}). "
                        "Rephrase the emotion text, or set the emotion with a vector.") from e
    # Written as max(lo, min(hi, v)) so NaN lands on the upper bound, as in the reference.
    return max(0.0, min(MAX_EMOTION_VALUE, v))


def parse_emotion_answer(answer: str, text: str) -> dict[str, float]:
    """The 8 intensities (ordered as :data:`EMOTIONS`) in the emotion model's ``answer``.

    ``text`` is the analysed text (for the melancholic swap). Steps, as the reference:
    JSON, else ``label: number`` pairs found by regex; sad ↔ melancholic swapped when the
    text names melancholy; labels resolved; only the Chinese keys read, each clamped to
    [0, 1.2], missing ones 0; all zero → calm 1.0.

    Where the reference would crash (a score that is not a number, a JSON value that is not
    an object under the swap), this raises :class:`TextError`, resp. resolves the label first.
    """
    try:
        content: object = json.loads(answer)
    except json.JSONDecodeError:
        content = {}
        for m in _SCORE_PATTERN.finditer(answer):
            try:
                content[m.group(1)] = float(m.group(2))
            except ValueError as e:  # e.g. "0.5." — the reference fails here too
                raise TextError(f"the emotion model's answer has an unreadable score {m.group(0)!r}. "
                                "Rephrase the emotion text, or set the emotion with a vector.") from e
    lowered = text.lower()
    if any(word in lowered for word in MELANCHOLIC_WORDS):
        if not isinstance(content, dict):
            content = _resolve_labels(content)
        sad, low = EMOTION_LABELS_ZH[2], EMOTION_LABELS_ZH[5]
        content[sad], content[low] = content.get(low, 0.0), content.get(sad, 0.0)
    scores = _resolve_labels(content)
    values = {_ZH_TO_EN[key]: _clamp_score(key, scores.get(key, 0.0)) for key in EMOTION_LABELS_ZH}
    if all(v <= 0.0 for v in values.values()):
        log.info("no emotion found in the emotion model's answer; using calm")
        values["calm"] = 1.0
    return values


# ---------------------------------------------------------------------------------------
# The text-emotion model


@dataclass
class EmotionAnalysis:
    """What :meth:`QwenEmotion.analyze` found.

    values: the 8 intensities in :data:`EMOTIONS` order; answer: the model's decoded reply
    (after any ``</think>``); chat_text: the rendered prompt; input_ids ``(1, T)``,
    generated_ids ``(1, N)`` int64; step_logits ``(N, V)`` float32 when asked for.
    """

    values: dict[str, float]
    answer: str
    chat_text: str
    input_ids: torch.Tensor
    generated_ids: torch.Tensor
    step_logits: torch.Tensor | None = None

    @property
    def vector(self) -> list[float]:
        return [self.values[name] for name in EMOTIONS]


class QwenEmotion:
    """The release's Qwen3 emotion classifier, loaded on first use.

    ``folder`` is the ``qwen0.6bemo4-merge`` directory. Nothing is read until
    :meth:`analyze` (or :meth:`load`); :meth:`unload` frees the model again. float16 is the
    reference's precision, and greedy ids match only in it.
    """

    def __init__(self, folder: str | Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float16, max_new_tokens: int = DEFAULT_MAX_NEW_TOKENS):
        self.folder = Path(folder)
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_new_tokens = max_new_tokens
        # (model, tokenizer, settings), replaced as one value so a concurrent unload never
        # leaves an analysis half a model; the lock keeps two first uses from loading twice.
        self._loaded: tuple | None = None
        self._load_lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._loaded is not None

    def load(self) -> None:
        self._parts()

    def _parts(self) -> tuple:
        from .models.qwen import GenerationSettings, QwenTokenizer, load_qwen

        with self._load_lock:
            if self._loaded is None:
                tokenizer = QwenTokenizer.from_folder(self.folder)
                model = load_qwen(self.folder, device=self.device, dtype=self.dtype)
                self._loaded = (model, tokenizer, GenerationSettings.from_folder(self.folder, model.cfg))
                log.info("loaded the emotion-text model from %s on %s", self.folder, self.device)
            return self._loaded

    def unload(self) -> None:
        """Free the model; an analysis already running finishes with it first."""
        self._loaded = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        elif self.device.type == "mps":
            torch.mps.empty_cache()

    def messages(self, text: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": text}]

    def analyze(self, text: str, max_new_tokens: int | None = None, *, keep_logits: bool = False
                ) -> EmotionAnalysis:
        """The emotion intensities the model reads in ``text``.

        Greedy generation until an end-of-turn id or ``max_new_tokens`` (default: this
        object's, :data:`DEFAULT_MAX_NEW_TOKENS` unless set; the reference uses
        :data:`REFERENCE_MAX_NEW_TOKENS`). ``keep_logits`` keeps the per-step logits
        (``N × vocab`` floats: for tracing short runs only).
        """
        from .models.qwen import generate_greedy

        if not isinstance(text, str):
            raise TextError(f"the emotion text must be a string, got {type(text).__name__}")
        n = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        if not (isinstance(n, int) and n >= 1):
            raise InvalidOptionError(f"max_new_tokens must be a positive integer, got {n!r}")
        model, tok, settings = self._parts()
        chat = tok.render_chat(self.messages(text), add_generation_prompt=True, enable_thinking=False)
        input_ids = torch.tensor([tok.encode(chat)], dtype=torch.long)
        out = generate_greedy(model, input_ids, n, settings.eos_ids, settings.repetition_penalty,
                              keep_logits=keep_logits)
        ids = out.ids[0].tolist()
        # Keep only what follows the last </think>. The reference looks the id up as a
        # constant of the released vocabulary; a vocabulary without the token cuts nothing.
        think_end = tok.token_id("</think>")
        start = len(ids) - ids[::-1].index(think_end) if think_end is not None and think_end in ids else 0
        answer = tok.decode(ids[start:], skip_special_tokens=True)
        return EmotionAnalysis(parse_emotion_answer(answer, text), answer, chat, input_ids, out.ids,
                               out.step_logits)

