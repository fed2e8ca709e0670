"""The HTTP API end to end on the real tiny model: ``python -m indextts_core serve``, the web
app's ``/v1`` routes (one process, one engine) and ``--api-only``, each a real server process,
driven by the official ``openai`` client and compared with the engine called in-process."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from indextts_core.jobs import JobStore
from indextts_core.options import Sampling, SynthesisOptions, to_pcm16
from indextts_core.voices import SavedVoices
from tests.app_server import FAST, REPO, SPEAKER, AppServer, free_port, shared_app

pytestmark = pytest.mark.slow

TEXT = "Hello there, a short line."
OPTIONS = {"sampling": {"do_sample": False, "num_beams": 1, "max_mel_tokens": FAST["max_mel_tokens"]},
           "diffusion_steps": FAST["diffusion_steps"]}


def in_process(tts, seed: int, text: str = TEXT) -> np.ndarray:
    options = SynthesisOptions(sampling=Sampling(do_sample=False, num_beams=1, max_mel_tokens=FAST["max_mel_tokens"]),
                               diffusion_steps=FAST["diffusion_steps"], seed=seed)
    return to_pcm16(tts.synthesize(text, SPEAKER, options).audio)


def start(cmd: list[str], workdir: Path, ready_path: str = "/v1/health", timeout: float = 240.0
          ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(workdir / "server.log", "w", encoding="utf-8")  # noqa: SIM115 (kept open for the process's life)
    proc = subprocess.Popen([*cmd, "--port", str(port)], cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "GRADIO_ANALYTICS_ENABLED": "False"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError((workdir / "server.log").read_text())
        try:
            status = httpx.get(url + ready_path, timeout=2).status_code
            if status == 200:
                return proc, url
            raise RuntimeError(f"{ready_path} answered {status}")
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError("the server did not start:\n" + (workdir / "server.log").read_text())


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def save_voice(url: str, name: str = "Anna", headers: dict | None = None) -> None:
    with open(SPEAKER, "rb") as f:
        r = httpx.post(url + "/v1/audio/voices", data={"name": name}, files={"audio_sample": ("anna.wav", f)},
                       headers=headers, timeout=60)
    assert r.status_code == 201, r.text


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path):
    work = tmp_path_factory.mktemp("serve")
    proc, url = start([sys.executable, "-m", "indextts_core", "serve", "--model-dir", str(tiny_model_dir),
                       "--output-dir", str(work / "out"), "--device", "cpu", "--offline",
                       "--api-key", "serve-test-key"], work)
    save_voice(url, headers={"Authorization": "Bearer serve-test-key"})
    yield url, work
    stop(proc)


def test_serve_speaks_exactly_what_the_engine_makes(served, tts) -> None:
    url, _ = served
    client = openai.OpenAI(base_url=url + "/v1", api_key="serve-test-key", max_retries=0, timeout=120)
    wav = client.audio.speech.create(model="tts-1", voice="Anna", input=TEXT, response_format="wav",
                                     extra_body={"seed": 99, "options": OPTIONS})
    audio, sr = sf.read(io.BytesIO(wav.content), dtype="int16")
    expected = in_process(tts, 99)
    assert sr == 22050
    np.testing.assert_array_equal(audio, expected)
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="Anna", input=TEXT, response_format="pcm",
            extra_body={"seed": 99, "sample_rate": 22050, "options": {**OPTIONS, "segment_tokens": 4}}) as r:
        streamed = np.frombuffer(r.read(), dtype="<i2")
    assert len(streamed) > 0 and r.headers["x-test-model"] == "true"
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=url + "/v1", api_key="wrong-key", max_retries=0).models.list()


def test_serve_runs_a_job_like_the_engine(served, tts) -> None:
    url, work = served
    key = {"Authorization": "Bearer serve-test-key"}
    r = httpx.post(url + "/v1/jobs", headers=key, timeout=60,
                   json={"voice": "Anna", "options": OPTIONS,
                         "items": [{"input": "First line.", "seed": 5}, {"input": "Second line.", "seed": 6}]})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 240
    while (job := httpx.get(f"{url}/v1/jobs/{job_id}", headers=key).json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "completed"
    z = zipfile.ZipFile(io.BytesIO(httpx.get(f"{url}/v1/jobs/{job_id}/result", headers=key).content))
    first, _ = sf.read(io.BytesIO(z.read("0001.wav")), dtype="int16")
    np.testing.assert_array_equal(first, in_process(tts, 5, "First line."))
    assert (work / "out" / "takes" / "jobs" / "jobs.sqlite3").is_file(), "the app's layout: it can share the folder"


@pytest.fixture(scope="module")
def app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path
        ) -> AppServer:
    return shared_app(request.config, tmp_path_factory, tiny_model_dir)


def test_the_app_serves_the_api_on_its_own_server(app: AppServer, tts) -> None:
    assert httpx.get(app.url + "/").status_code == 200, "the page is still there"
    save_voice(app.url, "Studio voice")
    client = openai.OpenAI(base_url=app.url + "/v1", api_key="local", max_retries=0, timeout=120)
    assert [m.id for m in client.models.list()] == ["indextts-2"]
    wav = client.audio.speech.create(model="tts-1", voice="Studio voice", input=TEXT, response_format="wav",
                                     extra_body={"seed": 7, "options": OPTIONS})
    audio, _ = sf.read(io.BytesIO(wav.content), dtype="int16")
    np.testing.assert_array_equal(audio, in_process(tts, 7))
    saved = SavedVoices(app.output_dir / "voices" / "saved").get("Studio voice")
    assert saved.clip.read_bytes() == SPEAKER.read_bytes(), "the Voices tab's library holds it"
    # A job posted over HTTP runs in the Dub tab's queue, in its job store.
    r = httpx.post(app.url + "/v1/jobs", timeout=60, json={"voice": "Studio voice", "options": OPTIONS,
                                                           "items": [{"input": "First line.", "seed": 5}]})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    deadline = time.monotonic() + 240
    while (job := httpx.get(f"{app.url}/v1/jobs/{job_id}").json())["status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job
        time.sleep(0.5)
    assert job["status"] == "completed"
    store = JobStore(app.output_dir / "takes" / "jobs")
    (item,) = store.items(job_id)
    audio, _ = sf.read(item.output, dtype="int16")
    np.testing.assert_array_equal(audio, in_process(tts, 5, "First line."))


def test_api_only_serves_no_page(tmp_path: Path, tiny_model_dir: Path) -> None:
    proc, url = start([sys.executable, "-m", "app.webui", "--api-only", "--model-dir", str(tiny_model_dir),
                       "--output-dir", str(tmp_path / "out"), "--cache-dir", str(tmp_path / "cache"),
                       "--no-download", "--device", "cpu"], tmp_path)
    try:
        home = httpx.get(url + "/", follow_redirects=False)
        assert home.status_code == 307 and home.headers["location"] == "/v1/docs"
        assert httpx.get(url + "/v1/docs").status_code == 200
        assert httpx.get(url + "/gradio_api/info").status_code == 404
    finally:
        stop(proc)


def test_api_only_off_this_computer_needs_a_key(tmp_path: Path, tiny_model_dir: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "app.webui", "--api-only", "--host", "0.0.0.0", "--model-dir",
                        str(tiny_model_dir), "--output-dir", str(tmp_path / "o"), "--cache-dir", str(tmp_path / "c"),
                        "--no-download", "--device", "cpu"], cwd=REPO, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "INDEXTTS_API_KEY": ""})
    assert r.returncode != 0 and "API key" in r.stderr
