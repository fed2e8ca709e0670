"""Emotion control: the 8-emotion vector, its blend with the speaker's own emotion, and the
Qwen3 model that reads emotion intensities from a text.

The vector modes work as the reference's ``infer`` runs them (spec §7):

1. the vector (given, or read from a text by :class:`QwenEmotion`) is pre-scaled by
   ``alpha`` with 4-decimal truncation (:func:`scale_emotion_vector`);
2. in each emotion group of the release's speaker matrix (``feat1.pt``), the row most
   similar to the voice's CAMPPlus style is picked (:func:`select_matrix_rows`);
3. the matching rows of the emotion matrix (``feat2.pt``), weighted by the vector, replace
   that share of the speaker's own emotion embedding (:func:`blend_emotion_matrix`).

The reference web UI also de-emphasises some emotions and caps the total at 0.8
(:func:`normalize_emotion_vector`); its Python API does not, so neither do we by default.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import read_state_dict
from .config import IndexTTSConfig
from .errors import CheckpointError, InvalidOptionError, TextError
from .options import EMOTIONS, MAX_EMOTION_VALUE

log = logging.getLogger(__name__)

# The labels the emotion model answers with, in the order of EMOTIONS.
EMOTION_LABELS_ZH = ("高兴", "愤怒", "悲伤", "恐惧", "反感", "低落", "惊讶", "自然")
_ZH_TO_EN = dict(zip(EMOTION_LABELS_ZH, EMOTIONS, strict=True))

# Web-UI-only de-emphasis of emotions that tend to sound strange, and the cap on the total.
UI_BIAS = (0.9375, 0.875, 1.0, 1.0, 0.9375, 0.9375, 0.6875, 0.5625)
UI_MAX_TOTAL = 0.8

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
# Vector arithmetic


def scale_emotion_vector(values: Sequence[float] | torch.Tensor, alpha: float) -> list[float]:
    """Pre-scale the vector by ``alpha`` clamped to [0, 1], truncating to 4 decimals.

    Done in Python floats (doubles), as the reference does: ``int(v·a·10000) / 10000``,
    the products left to right, ``int`` truncating toward zero. ``alpha == 1`` returns the
    values untouched (no truncation).
    """
    if isinstance(values, torch.Tensor):
        values = values.tolist()
    scale = max(0.0, min(1.0, alpha))
    if scale == 1.0:
        return [float(v) for v in values]
    return [int(v * scale * 10000) / 10000 for v in values]


def normalize_emotion_vector(values: Sequence[float], apply_bias: bool = True) -> list[float]:
    """The reference web UI's adjustment: per-emotion bias factors, then a total of at most 0.8.

    Python floats, in the reference's order of operations. Not part of the reference's
    Python API; callers opt in.
    """
    vals = [float(v) for v in values]
    if apply_bias:
        vals = [v * b for v, b in zip(vals, UI_BIAS, strict=True)]
    total = sum(vals)
    if total > UI_MAX_TOTAL:
        factor = UI_MAX_TOTAL / total
        vals = [v * factor for v in vals]
    return vals


def select_matrix_rows(style: torch.Tensor, spk_matrix: torch.Tensor, emo_num: Sequence[int],
                       use_random: bool = False, generator: torch.Generator | None = None) -> list[int]:
    """One row index per emotion group (within the group).

    style ``(1, S)`` is the voice's CAMPPlus embedding, spk_matrix ``(R, S)`` the release's
    speaker matrix split into groups of ``emo_num`` rows. Each group's row with the highest
    cosine similarity to ``style`` wins (the first on ties). ``use_random`` draws a row per
    group uniformly instead, through ``generator`` (the reference uses Python's ``random``,
    so random draws cannot match it; they are random there too).
    """
    _check_groups(spk_matrix, emo_num, "speaker matrix")
    if use_random:
        return [int(torch.randint(n, (1,), generator=generator)) for n in emo_num]
    if style.dim() != 2 or style.shape[0] != 1 or style.shape[1] != spk_matrix.shape[1]:
        raise ValueError(f"style must be (1, {spk_matrix.shape[1]}), got {tuple(style.shape)}")
    query = style.float().to(spk_matrix.device)
    return [int(F.cosine_similarity(query, group.float(), dim=1).argmax())
            for group in torch.split(spk_matrix, list(emo_num))]


def blend_emotion_matrix(weights: Sequence[float] | torch.Tensor, rows: Sequence[int],
                         emo_matrix: torch.Tensor, emo_num: Sequence[int], merged_emovec: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix the chosen emotion-matrix rows into the speaker's emotion embedding.

    weights: the 8 (pre-scaled) intensities; rows: one index per group
    (:func:`select_matrix_rows`); emo_matrix ``(R, E)``; merged_emovec ``(1, E)``, the
    emotion embedding of the speaker clip. Returns ``emovec (1, E) = emovec_mat +
    (1 − Σw)·merged_emovec`` and ``emovec_mat (1, E) = Σ_g w_g · emo_matrix_g[row_g]``.
    Σw > 1 gives the speaker's own emotion a negative weight; that is the reference's maths.
    """
    _check_groups(emo_matrix, emo_num, "emotion matrix")
    if len(rows) != len(emo_num):
        raise ValueError(f"need one row per emotion group ({len(emo_num)}), got {len(rows)}")
    w = torch.as_tensor(weights, dtype=torch.float32, device=emo_matrix.device)
    if w.shape != (len(emo_num),):
        raise ValueError(f"need {len(emo_num)} emotion weights, got shape {tuple(w.shape)}")
    groups = torch.split(emo_matrix, list(emo_num))
    picked = torch.stack([group[r] for group, r in zip(groups, rows, strict=True)])
    emovec_mat = (w.unsqueeze(1) * picked).sum(0).unsqueeze(0)
    emovec = emovec_mat + (1 - w.sum()) * merged_emovec
    return emovec, emovec_mat


def _check_groups(matrix: torch.Tensor, emo_num: Sequence[int], what: str) -> None:
    if matrix.dim() != 2 or sum(emo_num) != matrix.shape[0]:
        raise ValueError(f"{what} of shape {tuple(matrix.shape)} does not split into groups {list(emo_num)}")


def load_emotion_matrices(model_dir: str | Path, cfg: IndexTTSConfig, device: str | torch.device = "cpu"
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """The release's speaker matrix ``(R, S)`` (``feat1.pt``) and emotion matrix ``(R, E)``
    (``feat2.pt``), checked against ``cfg.emo_num`` (R = Σ emo_num, 73 in the release)."""
    mats = []
    for name in (cfg.spk_matrix, cfg.emo_matrix):
        path = Path(model_dir) / name
        sd = read_state_dict(path)
        if list(sd) != [""]:
            raise CheckpointError(f"{path}: expected a single tensor, found a dict with keys {list(sd)[:3]}")
        t = sd[""]
        if t.dim() != 2 or t.shape[0] != sum(cfg.emo_num):
            raise CheckpointError(
                f"{path}: shape {tuple(t.shape)} does not have {sum(cfg.emo_num)} rows, the sum of emo_num "
                f"{list(cfg.emo_num)} in config.yaml. The file and the config do not belong together.")
        mats.append(t.to(device))
    return mats[0], mats[1]


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
                model = load_qwen(self.folder, self.device, self.dtype)
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

