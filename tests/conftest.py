from __future__ import annotations

import os
from pathlib import Path

import pytest

from indextts_core import tiny


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny test checkpoint, rebuilt from the rule once per test session.

    It builds on every machine; whether it is the golden one bit for bit depends on this
    machine's ``torch.randn`` (see ``golden_weights``). Set INDEXTTS_TEST_MODEL_DIR to keep the
    folder between sessions (faster local runs, or to run the parity tests under another CPU
    kernel set on a folder built where the weights came out golden).
    """
    keep = os.environ.get("INDEXTTS_TEST_MODEL_DIR")
    if keep:
        if tiny.is_test_model(keep):
            return Path(keep)
        return tiny.build_checkpoint(keep)
    return tiny.build_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def golden_weights(tiny_model_dir: Path) -> Path:
    """The test checkpoint, when it is the golden one; otherwise the test skips, saying why.

    Tests that compare model outputs with the golden tensors use it (``needs_golden_weights``).
    """
    report = tiny.build_report(tiny_model_dir)
    if report is None or not report.golden_identical:
        summary = report.summary() if report else "not a test checkpoint"
        pytest.skip(f"golden parity needs the golden weights, and this machine's test checkpoint is not: {summary}")
    return tiny_model_dir


@pytest.fixture(scope="session")
def test_device() -> str:
    """Where engine tests run: INDEXTTS_TEST_DEVICE (default cpu), e.g. cuda on a GPU machine."""
    return os.environ.get("INDEXTTS_TEST_DEVICE", "cpu")


@pytest.fixture(scope="session")
def tts(tiny_model_dir: Path, test_device: str):
    """The engine on the golden tiny checkpoint, shared by a test session."""
    from indextts_core import IndexTTS2

    return IndexTTS2.from_pretrained(tiny_model_dir, device=test_device, download=False)


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    """The real app on the tiny model, one for the whole session (tests/app_server.py)."""
    from tests.app_server import shared_app

    return shared_app(request.config, tmp_path_factory, tiny_model_dir)


@pytest.fixture(scope="module")
def client(server):
    """A Gradio client of :func:`server` (a module may define its own ``client``)."""
    from gradio_client import Client

    return Client(server.url, verbose=False)


@pytest.fixture(scope="module")
def tiny_controller(tiny_model_dir: Path):
    """The app's engine controller on the real engine with the tiny checkpoint, loaded once per module."""
    from app import controller as ctl

    controller = ctl.EngineController(tiny_model_dir, device="cpu", allow_download=False)
    controller.start()
    assert controller.wait_ready(120) == ctl.READY, controller.status()
    yield controller
    controller.unload()
