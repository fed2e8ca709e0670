"""The HTTP API over a real socket, driven by the official ``openai`` client and plain HTTP.

The engine behind it is the fake engine (tones, instant), so these tests are about the API:
the OpenAI request shape, formats, streaming, our extra fields, saved voices, errors, access
and limits. ``test_http_serve.py`` runs the real tiny model end to end.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from indextts_core.options import SAMPLE_RATE, Duration, Emotion, SynthesisOptions, to_pcm16
from indextts_core.server import ApiContext, ApiSettings, LoadedEngine
from indextts_core.voices import SavedVoices
from tests.app_server import EMOTION_CLIP, SPEAKER
from tests.fake_engine import FakeEngineForTests
from tests.http_server import ServedApi, private_roots, serve_api

TEXT = "Hello there, a short line."


def make_ctx(root: Path, **settings) -> ApiContext:
    voices = SavedVoices(root / "voices")
    voices.save("Anna", SPEAKER)
    voices.save("Cross", EMOTION_CLIP)
    engine = FakeEngineForTests(root)
    return ApiContext(engine=LoadedEngine(engine), voices=voices, settings=ApiSettings(**settings),
                      private_roots=private_roots(root))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    api = serve_api(make_ctx(tmp_path_factory.mktemp("api")))
    yield api
    api.stop()


@pytest.fixture
def fake(served: ServedApi) -> FakeEngineForTests:
    engine = served.ctx.engine.engine
    engine.calls.clear()
    return engine


@pytest.fixture(scope="module")
def client(served: ServedApi) -> openai.OpenAI:
    # No retries: a 5xx must show up as the error it is.
    return openai.OpenAI(base_url=served.base_url, api_key="unused-locally", max_retries=0)


def speak(client: openai.OpenAI, **kwargs) -> bytes:
    extra = {k: kwargs.pop(k) for k in list(kwargs) if k in ("emotion", "duration_seconds", "seed", "stream",
                                                            "sample_rate", "options")}
    kwargs.setdefault("model", "indextts-2")
    kwargs.setdefault("voice", "Anna")
    kwargs.setdefault("input", TEXT)
    return client.audio.speech.create(**kwargs, extra_body=extra or None).content


def reference(fake: FakeEngineForTests, seed: int, text: str = TEXT, **options) -> np.ndarray:
    """The take the engine makes for these settings, called directly."""
    return fake.synthesize(text, SPEAKER, SynthesisOptions(seed=seed, **options)).audio


# -- speech ------------------------------------------------------------------------------------------

def test_wav_is_the_engine_take_unchanged(client, fake, served) -> None:
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="Anna", input=TEXT,
                                                       response_format="wav", extra_body={"seed": 7})
    assert raw.headers["x-seed"] == "7"
    assert raw.headers["content-type"] == "audio/wav"
    audio, sr = sf.read(io.BytesIO(raw.content), dtype="int16")
    assert sr == SAMPLE_RATE
    (call,) = fake.calls
    assert call["seed"] == 7 and Path(call["speaker"]).read_bytes() == SPEAKER.read_bytes()
    fake.calls.clear()
    np.testing.assert_array_equal(audio, to_pcm16(reference(fake, 7)))


def test_every_seed_is_reported_and_reproduces_the_take(client, fake) -> None:
    raw = client.audio.speech.with_raw_response.create(model="tts-1", voice="Anna", input=TEXT,
                                                       response_format="wav")
    seed = int(raw.headers["x-seed"])
    again = speak(client, response_format="wav", seed=seed)
    assert again == raw.content


@pytest.mark.parametrize(("fmt", "container", "rate"), [("mp3", "MP3", 22050), ("flac", "FLAC", 22050),
                                                        ("opus", "OGG", 48000), ("wav", "WAV", 22050)])
def test_formats_decode(client, fmt, container, rate) -> None:
    data = speak(client, response_format=fmt, seed=3)
    info = sf.info(io.BytesIO(data))
    assert info.format == container and info.samplerate == rate and info.channels == 1
    assert info.duration > 0.5


def test_mp3_is_the_default_format(client) -> None:
    assert sf.info(io.BytesIO(speak(client, seed=3))).format == "MP3"


def test_pcm_is_24k_16bit_as_openai_sends_it(client, fake) -> None:
    data = speak(client, response_format="pcm", seed=5)
    pcm = np.frombuffer(data, dtype="<i2")
    native = reference(fake, 5)
    assert abs(len(pcm) - round(len(native) * 24000 / SAMPLE_RATE)) <= 1
    native_rate = np.frombuffer(speak(client, response_format="pcm", seed=5, sample_rate=22050), dtype="<i2")
    np.testing.assert_array_equal(native_rate, to_pcm16(native))


def test_extra_fields_reach_the_engine(client, fake) -> None:
    speak(client, response_format="wav", seed=11, emotion={"label": "sad", "intensity": 0.8},
          duration_seconds=2.5, options={"sampling": {"num_beams": 1, "do_sample": False}, "gap_ms": 50})
    (call,) = fake.calls
    assert call["emotion"] == Emotion.from_label("sad", 0.8)
    assert call["duration"] == Duration.seconds(2.5)
    assert call["sampling"].num_beams == 1 and call["sampling"].do_sample is False
    assert call["gap_ms"] == 50 and call["seed"] == 11


def test_speed_and_emotion_forms(client, fake) -> None:
    speak(client, response_format="wav", speed=1.5, emotion="angry")
    speak(client, response_format="wav", emotion={"vector": {"happy": 0.5, "calm": 0.2}, "weight": 0.5})
    speak(client, response_format="wav", emotion={"voice": "Cross", "weight": 0.6})
    speak(client, response_format="wav", instructions="she is furious")
    speak(client, response_format="wav")
    first, vector, clip, words, plain = fake.calls
    assert first["duration"] == Duration.speed(1.5) and first["emotion"] == Emotion.from_label("angry")
    assert vector["emotion"] == Emotion.from_vector({"happy": 0.5, "calm": 0.2}, 0.5)
    assert clip["emotion"].mode == "audio" and clip["emotion"].weight == 0.6
    assert Path(clip["emotion"].audio).read_bytes() == EMOTION_CLIP.read_bytes()
    assert words["emotion"] == Emotion.from_text("she is furious")
    assert plain["emotion"] == Emotion() and plain["duration"] == Duration.free()


def test_a_saved_voice_brings_its_default_emotion(served, client, fake) -> None:
    served.ctx.voices.save("Calm Anna", SPEAKER, Emotion.from_label("calm", 0.7))
    try:
        speak(client, voice="Calm Anna", response_format="wav")
        speak(client, voice={"id": "Calm Anna"}, response_format="wav", emotion="happy")
        default, chosen = fake.calls
        assert default["emotion"] == Emotion.from_label("calm", 0.7)
        assert chosen["emotion"] == Emotion.from_label("happy")
    finally:
        served.ctx.voices.delete("Calm Anna")


# -- errors ---------------------------------------------------------------------------------------------

def test_unknown_voice_is_404_naming_the_saved_ones(client) -> None:
    with pytest.raises(openai.NotFoundError) as e:
        speak(client, voice="alloy")
    assert "alloy" in e.value.message and "Anna" in e.value.message
    assert e.value.body["type"] == "invalid_request_error"


@pytest.mark.parametrize(("kwargs", "status", "words"), [
    ({"speed": 3.0}, 400, "speed must be between 0.5 and 2.0"),
    ({"input": "   "}, 400, "input is empty"),
    ({"speed": 1.5, "duration_seconds": 2.0}, 400, "speed or duration_seconds"),
    ({"emotion": "joyful"}, 422, "emotion"),
    ({"emotion": {"label": "sad", "description": "x"}}, 400, "one source"),
    ({"instructions": "calm", "emotion": "sad"}, 400, "not both"),
    ({"response_format": "aac"}, 422, "response_format"),
    ({"options": {"segment_tokens": 0}}, 400, "segment_tokens"),
    ({"options": {"sampling": {"beams": 2}}}, 400, "unknown option sampling.beams"),
    ({"options": {"seed": 1}, "seed": 2}, 400, "seed and options.seed"),
    ({"options": {"emotion": {"mode": "audio", "audio": "/etc/passwd"}}}, 400, "saved voice"),
    ({"response_format": "mp3", "stream": True}, 400, "stream is for wav and pcm"),
    ({"response_format": "opus", "sample_rate": 22050}, 400, "48000"),
])
def test_bad_requests_say_what_is_wrong(client, kwargs, status, words) -> None:
    with pytest.raises(openai.APIStatusError) as e:
        speak(client, **kwargs)
    assert e.value.status_code == status
    assert words in e.value.message
    assert "Traceback" not in e.value.response.text and "/etc" not in e.value.response.text


def test_unknown_fields_are_refused_by_name(client) -> None:
    with pytest.raises(openai.UnprocessableEntityError) as e:
        client.audio.speech.create(model="tts-1", voice="Anna", input=TEXT, extra_body={"sead": 1})
    assert "sead" in e.value.message


def test_too_long_input_is_413(client, served) -> None:
    limit = served.ctx.settings.max_text_chars
    with pytest.raises(openai.APIStatusError) as e:
        speak(client, input="a" * (limit + 1))
    assert e.value.status_code == 413 and str(limit) in e.value.message


def test_engine_errors_never_show_a_path(client, fake, served) -> None:
    clip = served.ctx.saved_voice("Anna").clip
    moved = clip.with_name("moved.wav")
    shutil.move(clip, moved)
    try:
        with pytest.raises(openai.BadRequestError) as e:
            speak(client, response_format="wav")
    finally:
        shutil.move(moved, clip)
    body = e.value.response.text
    assert "was not found" in body and str(served.ctx.voices.folder) not in body and "/voices/" not in body


def test_a_bug_is_500_without_details(client, fake) -> None:
    fake.fail_next = RuntimeError("secret detail at /home/user/thing.py line 3")
    with pytest.raises(openai.InternalServerError) as e:
        speak(client, response_format="wav")
    assert "internal error" in e.value.message
    assert "secret" not in e.value.response.text and "thing.py" not in e.value.response.text


def test_out_of_memory_is_503(client, fake) -> None:
    fake.fail_next = MemoryError()
    with pytest.raises(openai.APIStatusError) as e:
        speak(client, response_format="wav")
    assert e.value.status_code == 503 and "out of memory" in e.value.message


def test_unknown_route_is_json_404(served) -> None:
    r = httpx.get(served.base_url + "/nothing")
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("there is no such endpoint")


def test_openapi_page_documents_the_speech_fields(served) -> None:
    spec = httpx.get(served.base_url + "/openapi.json").json()
    props = spec["components"]["schemas"]["SpeechRequest"]["properties"]
    assert {"input", "voice", "response_format", "speed", "emotion", "duration_seconds", "seed"} <= set(props)
    assert httpx.get(served.base_url + "/docs").status_code == 200
