"""Access to the golden bundle copied into ``tests/fixtures/golden`` (see its README.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
import pytest

GOLDEN_DIR = Path(__file__).resolve().parent / "fixtures" / "golden"
# For tests that compare model outputs with the golden tensors: they skip, with one clear
# reason, where this machine's torch cannot rebuild the golden weights (see conftest).
needs_golden_weights = pytest.mark.usefixtures("golden_weights")

CASES = ("spk_only", "emo_audio", "emo_vector", "emo_text", "long_mixed")


@dataclass(frozen=True)
class GoldenCase:
    name: str
    inputs: dict
    expected: dict
    trace: dict[str, np.ndarray]
    wav_path: Path

    @property
    def speaker_path(self) -> Path:
        return GOLDEN_DIR / self.inputs["spk_audio_prompt"]

    @property
    def emotion_path(self) -> Path | None:
        p = self.inputs.get("emo_audio_prompt")
        return GOLDEN_DIR / p if p else None

    def key(self, name: str, segment: int | None = None) -> str:
        """A trace key, with the ``__segN`` suffix for multi-segment cases."""
        if self.expected["n_segments"] > 1 and segment is not None:
            return f"{name}__seg{segment}"
        return name


@cache
def load_case(name: str) -> GoldenCase:
    d = GOLDEN_DIR / "cases" / name
    inputs = json.loads((d / "inputs.json").read_text(encoding="utf-8"))
    expected = json.loads((d / "expected.json").read_text(encoding="utf-8"))
    with np.load(d / "trace.npz") as z:
        trace = {k: z[k] for k in z.files}
    shared = expected.get("prompt_side_tensors_in")
    if shared:
        with np.load(GOLDEN_DIR / "cases" / shared["case"] / "trace.npz") as z:
            for k in shared["keys"]:
                trace.setdefault(k, z[k])
    return GoldenCase(name, inputs, expected, trace, d / "out.wav")


@cache
def load_texts() -> list[dict]:
    with open(GOLDEN_DIR / "texts.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
