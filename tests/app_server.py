"""The real app, started once per test session as a subprocess on a free port.

Used by the API tests (gradio_client) and the browser tests (Playwright): both talk to the
same server, running the real engine on the tiny checkpoint, so the model loads only once.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
SPEAKER = REPO / "tests" / "fixtures" / "golden" / "audio" / "spk_librivox_0890_22k.wav"
EMOTION_CLIP = REPO / "tests" / "fixtures" / "golden" / "audio" / "emo_librivox_0920_22k.wav"

# Settings that keep a take on the tiny model to a few seconds on a CPU.
FAST = {"do_sample": False, "num_beams": 1, "max_mel_tokens": 30, "diffusion_steps": 3}


@dataclass
class AppServer:
    url: str
    process: subprocess.Popen
    output_dir: Path
    cache_dir: Path
    model_dir: Path
    log_path: Path

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def start_app(model_dir: Path, workdir: Path, *, timeout: float = 240.0) -> AppServer:
    """Start ``python -m app.webui`` on the tiny model and wait until the page and the engine are up."""
    port = free_port()
    out, cache = workdir / "outputs", workdir / "cache"
    log_path = workdir / "app.log"
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "app.webui", "--model-dir", str(model_dir), "--port", str(port),
           "--output-dir", str(out), "--cache-dir", str(cache), "--no-download", "--device", "cpu", "--verbose"]
    log = open(log_path, "w", encoding="utf-8")  # noqa: SIM115 (kept open for the process's life)
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, env=env)
    server = AppServer(f"http://127.0.0.1:{port}", proc, out, cache, model_dir, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            _get(server.url + "/")
            break
        except OSError:
            time.sleep(0.5)
    else:
        server.stop()
        raise RuntimeError(f"the app did not answer within {timeout:.0f} s:\n{server.log_tail()}")
    # The engine loads in the background; the status API tells when it is ready.
    from gradio_client import Client

    client = Client(server.url, verbose=False)
    while time.monotonic() < deadline:
        state = client.predict(api_name="/engine_status")["state"]
        if state == "ready":
            return server
        if state not in ("loading", "downloading"):
            server.stop()
            raise RuntimeError(f"the engine did not load (state {state}):\n{server.log_tail()}")
        time.sleep(0.5)
    server.stop()
    raise RuntimeError(f"the engine did not load within {timeout:.0f} s:\n{server.log_tail()}")


_SERVER: AppServer | None = None


def shared_app(config: pytest.Config, tmp_path_factory: pytest.TempPathFactory, model_dir: Path) -> AppServer:
    """One app for the whole test session (stopped when the session ends)."""
    global _SERVER
    if _SERVER is None or _SERVER.process.poll() is not None:
        _SERVER = start_app(model_dir, tmp_path_factory.mktemp("studio"))
        config.add_cleanup(_SERVER.stop)
    return _SERVER


def api_info(server: AppServer) -> dict:
    return json.loads(_get(server.url + "/gradio_api/info"))
