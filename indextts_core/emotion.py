"""Emotion control: the 8-emotion vector and its blend with the speaker's own emotion.

The vector modes work as the reference's ``infer`` runs them:

1. the vector (given, or read from a text by :class:`indextts_core.emotion_text.QwenEmotion`)
   is pre-scaled by ``alpha`` with 4-decimal truncation (:func:`scale_emotion_vector`);
2. in each emotion group of the release's speaker matrix (``feat1.pt``), the row most
   similar to the voice's CAMPPlus style is picked (:func:`select_matrix_rows`);
3. the matching rows of the emotion matrix (``feat2.pt``), weighted by the vector, replace
   that share of the speaker's own emotion embedding (:func:`blend_emotion_matrix`).

The reference web UI also de-emphasises some emotions and caps the total at 0.8
(:func:`normalize_emotion_vector`); its Python API does not, so neither do we by default.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from .checkpoint import read_state_dict
from .config import IndexTTSConfig
from .errors import CheckpointError

log = logging.getLogger(__name__)


# Web-UI-only de-emphasis of emotions that tend to sound strange, and the cap on the total.
UI_BIAS = (0.9375, 0.875, 1.0, 1.0, 0.9375, 0.9375, 0.6875, 0.5625)
UI_MAX_TOTAL = 0.8


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
