from __future__ import annotations

import os
from pathlib import Path

import pytest

from indextts_core import tiny


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The golden tiny checkpoint, rebuilt from the rule once per test session.

    Set INDEXTTS_TEST_MODEL_DIR to keep the folder between sessions (faster local runs).
    """
    keep = os.environ.get("INDEXTTS_TEST_MODEL_DIR")
    if keep:
        if tiny.is_test_model(keep):
            return Path(keep)
        return tiny.build_checkpoint(keep)
    return tiny.build_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def test_device() -> str:
    """Where engine tests run: INDEXTTS_TEST_DEVICE (default cpu), e.g. cuda on a GPU machine."""
    return os.environ.get("INDEXTTS_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def tts(tiny_model_dir: Path, test_device: str):
    """The engine on the golden tiny checkpoint, shared by a test session."""
    from indextts_core import IndexTTS2

    return IndexTTS2.from_pretrained(tiny_model_dir, device=test_device, download=False)
