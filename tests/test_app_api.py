"""The app's programmatic API through gradio_client, against the real engine on the tiny model.

Every emotion mode (speaker, audio, vector/label, text) and every length mode (free, speed,
seconds, tokens) goes through ``/synthesize``, which runs the same code as the Generate button.
Also: the file routes serve nothing by path, not even the app's own folders.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import soundfile as sf

from indextts_core.options import EMOTIONS
from tests.app_server import EMOTION_CLIP, FAST, SPEAKER, AppServer

pytestmark = pytest.mark.slow

TEXT = "Hello there, a short line."


def synthesize(client, settings: dict, *, voice: Path | None = SPEAKER, emotion_audio: Path | None = None):
    from gradio_client import handle_file

    path, info = client.predict(voice=handle_file(str(voice)) if voice else None,
                                emotion_audio=handle_file(str(emotion_audio)) if emotion_audio else None,
                                settings={"text": TEXT, "seed": 1234, **FAST, **settings}, api_name="/synthesize")
    audio, sr = sf.read(path, dtype="int16")
    assert sr == 22050 and sf.info(path).subtype == "PCM_16" and audio.ndim == 1
    assert info["samples"] == len(audio)
    assert info["file"].startswith("takes/"), "the take's name inside the output folder, not a full path"
    return audio, info


def frames_of(codes: int) -> int:
    return math.floor(codes * 1.72)


def test_status_reports_the_test_model(client) -> None:
    st = client.predict(api_name="/engine_status")
    assert st["state"] == "ready"
    assert st["is_test_model"] is True
    assert st["device"] == "cpu"


def test_speaker_emotion_free_length(client) -> None:
    audio, info = synthesize(client, {"emotion_mode": "speaker", "duration_mode": "free"})
    (seg,) = info["segments"]
    assert len(audio) == frames_of(seg["num_codes"]) * 256
    assert info["emotion_vector"] is None
    assert info["requested_seconds"] is None
    assert info["is_test_model"] is True


def test_audio_emotion_with_speed(client) -> None:
    audio, info = synthesize(client, {"emotion_mode": "audio", "emotion_weight": 0.6, "duration_mode": "speed",
                                      "speed": 2.0}, emotion_audio=EMOTION_CLIP)
    (seg,) = info["segments"]
    assert len(audio) == round(frames_of(seg["num_codes"]) / 2.0) * 256
    assert info["settings"]["emotion_audio"], "the emotion clip is kept for 'use again'"


def test_label_emotion_exact_seconds(client) -> None:
    audio, info = synthesize(client, {"emotion_mode": "vector", "emotion_vector": [0, 0, 0.9, 0, 0, 0, 0, 0],
                                      "emotion_label": "sad", "emotion_intensity": 0.9, "emotion_balance": False,
                                      "duration_mode": "seconds", "target_seconds": 2.5})
    assert len(audio) == round(2.5 * 22050)
    assert info["requested_seconds"] == pytest.approx(2.5)
    weights = dict(zip(EMOTIONS, info["emotion_vector"], strict=True))
    assert weights["sad"] == pytest.approx(0.9)
    assert sum(weights.values()) == pytest.approx(0.9)


def test_mixed_vector_is_balanced_like_the_official_app(client) -> None:
    _, info = synthesize(client, {"emotion_mode": "vector", "emotion_vector": [0.8, 0, 0, 0, 0, 0, 0.8, 0],
                                  "emotion_balance": True, "duration_mode": "seconds", "target_seconds": 1.0})
    assert sum(info["emotion_vector"]) == pytest.approx(0.8, abs=1e-4)


def test_text_emotion_exact_token_count(client) -> None:
    audio, info = synthesize(client, {"emotion_mode": "text", "emotion_text": "she is furious",
                                      "emotion_weight": 0.6, "duration_mode": "tokens", "target_tokens": 20})
    (seg,) = info["segments"]
    assert seg["num_codes"] == 20
    assert len(audio) == frames_of(20) * 256
    assert len(info["emotion_vector"]) == len(EMOTIONS)
    assert all(0.0 <= v <= 1.2 * 0.6 + 1e-6 for v in info["emotion_vector"])


def test_analyze_emotion_endpoint(client) -> None:
    values = client.predict(text="I am so happy today!", api_name="/analyze_emotion")
    assert list(values) == list(EMOTIONS)
    assert all(0.0 <= v <= 1.2 for v in values.values())


def test_warnings_travel_with_the_take(client, tmp_path: Path) -> None:
    data, sr = sf.read(SPEAKER, dtype="float32")
    short = tmp_path / "short.wav"
    sf.write(short, data[: int(1.0 * sr)], sr)
    _, info = synthesize(client, {"text": "Hello 😀 there."}, voice=short)
    assert any("1.0 s long, too short" in w for w in info["warnings"]), info["warnings"]
    assert any("<unk>" in w for w in info["warnings"])
    _, clean = synthesize(client, {})
    assert clean["warnings"] == []


def test_preview_endpoint_flags_every_invalid_reading(client) -> None:
    for text, bad in (("重[xx9]要", "xx9"), ("重[chong]要", "chong"), ("你好ZHANG7", "ZHANG7")):
        out = client.predict(text=text, segment_tokens=120, api_name="/preview_text")
        assert out["invalid_pinyin"] == [bad] and not out["ready"] and bad in out["error"]


def test_preview_endpoint_reports_invalid_pinyin_and_polyphones(client) -> None:
    out = client.predict(text="我们最重要的是{好|hao6}", segment_tokens=120, api_name="/preview_text")
    assert "hao6" in out["invalid_pinyin"]
    assert any(p["char"] == "重" for p in out["polyphones"])
    ok = client.predict(text="Hello, world.", segment_tokens=120, api_name="/preview_text")
    assert ok["invalid_pinyin"] == [] and ok["segments"] and ok["normalized"]


@pytest.mark.parametrize("voice, settings, needle", [
    (None, {"text": TEXT}, "Add a voice first"),
    (SPEAKER, {"text": "   "}, "Type the text"),
    (SPEAKER, {"text": "今天天气很{好|hao6}。"}, "invalid pinyin"),
    (SPEAKER, {"text": "重[chong]要"}, "chong"),
    (SPEAKER, {"text": "重[xx9]要"}, "xx9"),
    (SPEAKER, {"text": "你好ZHANG7。"}, "ZHANG7"),
    (SPEAKER, {"text": "👍👍👍"}, "Nothing in the text can be read aloud"),
    (SPEAKER, {"text": "!!!"}, "Nothing in the text can be read aloud"),
    (SPEAKER, {"text": TEXT, "duration_mode": "speed", "speed": 5.0}, "speed must be between"),
])
def test_bad_requests_get_a_sentence(client, voice, settings, needle) -> None:
    from gradio_client import handle_file

    with pytest.raises(Exception, match=needle):
        client.predict(voice=handle_file(str(voice)) if voice else None, emotion_audio=None,
                       settings={**FAST, **settings}, api_name="/synthesize")


def _status_of(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.parametrize("target", ["/etc/passwd", "{model}/config.yaml", "{repo}/app/webui.py",
                                    "{outputs}/../../../../etc/passwd", "{outputs}/history.json"])
def test_files_outside_the_app_folders_cannot_be_fetched(server: AppServer, target: str) -> None:
    path = target.format(model=server.model_dir, repo=Path(__file__).resolve().parent.parent,
                         outputs=server.output_dir)
    for route in ("/gradio_api/file=", "/file="):
        status = _status_of(server.url + route + urllib.parse.quote(path))
        assert status in (403, 404), f"{route}{path} answered {status}"


def test_takes_are_saved_and_served_only_as_the_answer(client, server: AppServer) -> None:
    audio, info = synthesize(client, {"duration_mode": "seconds", "target_seconds": 0.5})
    saved = server.output_dir / info["file"]
    assert saved.is_file() and (sf.read(saved, dtype="int16")[0] == audio).all()
    # The saved take itself is not served by path (tests/test_security.py); the answer's copy is.
    assert _status_of(server.url + "/gradio_api/file=" + urllib.parse.quote(str(saved))) in (403, 404)


@pytest.mark.parametrize("settings, needle", [
    ({"text": 123}, "'text' must be text"),
    ({"emotion_mode": "vector", "emotion_vector": "abc"}, "'emotion_vector' must be a list of 8 numbers"),
    ({"emotion_mode": "vector", "emotion_vector": None}, "'emotion_vector' must be a list of 8 numbers"),
    ({"emotion_weight": "x"}, "'emotion_weight' must be a number"),
    ({"temperature": "hot"}, "'temperature' must be a number"),
    ({"cfg_rate": "x"}, "'cfg_rate' must be a number"),
    ({"do_sample": "yes"}, "'do_sample' must be true or false"),
])
def test_settings_of_the_wrong_type_are_clear_errors(client, server: AppServer, settings, needle) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=needle):
        synthesize(client, settings)
    assert "Traceback" not in server.log_tail(20_000)


def submit_long(client, text: str, seed: int):
    """Submit a many-segment take and return its job once it is a few segments in."""
    import time

    from gradio_client import handle_file

    job = client.submit(voice=handle_file(str(SPEAKER)), emotion_audio=None,
                        settings={"text": text, "seed": seed, **FAST, "segment_tokens": 12},
                        api_name="/synthesize")
    deadline = time.monotonic() + 60
    while job.status().code.name not in ("PROCESSING", "ITERATING") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.0)  # inside the engine, a few segments in
    return job


def test_cancelling_a_take_through_the_api_ends_its_work(client, server: AppServer) -> None:
    long_text = "A long take that is cancelled. " * 30
    job = submit_long(client, long_text, 1)
    job.cancel()
    # Served between the long take's segments, or at once if the cancel already ended it.
    _, info = synthesize(client, {"text": "Short after the cancel."})
    assert info["file"].startswith("takes/")
    texts = [t["text"] for t in json.loads(
        (server.output_dir / "history.json").read_text(encoding="utf-8"))["takes"]]
    assert long_text not in texts, "the cancelled take ran to the end and was saved"


def test_a_short_take_finishes_while_a_long_one_runs_then_the_long_one_is_cancelled(client, server: AppServer) -> None:
    import time

    long_text = "A long take shared with a short one. " * 60
    job = submit_long(client, long_text, 2)
    stops_before = server.log_tail(10**7).count("stopped: the rest of the work is dropped")
    _, info = synthesize(client, {"text": "Short while the long one runs."})
    assert info["file"].startswith("takes/")
    assert not job.done(), "the short take was served between the long one's segments, not after its end"
    job.cancel()
    deadline = time.monotonic() + 60
    while (server.log_tail(10**7).count("stopped: the rest of the work is dropped") == stops_before
           and time.monotonic() < deadline):
        time.sleep(0.1)
    assert server.log_tail(10**7).count("stopped: the rest of the work is dropped") > stops_before, \
        "the cancel ended the long take's engine work"
    texts = [t["text"] for t in json.loads(
        (server.output_dir / "history.json").read_text(encoding="utf-8"))["takes"]]
    assert long_text not in texts and "Short while the long one runs." in texts


def test_preview_names_the_length_limit_and_estimates_the_work(client) -> None:
    synthesize(client, {"text": "A take that measures the speed."})
    out = client.predict(text="A line to estimate.", segment_tokens=120, api_name="/preview_text")
    assert out["max_chars"] == 4096 and out["estimate_seconds"] > 0
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="at most 4096"):
        synthesize(client, {"text": "x" * 4097})
