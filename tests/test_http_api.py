"""The HTTP API over a real socket, driven by the official ``openai`` client and plain HTTP.

The engine behind it is the fake engine (tones, instant), so these tests are about the API:
the OpenAI request shape, formats, streaming, our extra fields, saved voices, errors, access
and limits. ``test_http_serve.py`` runs the real tiny model end to end.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import time
import zipfile
from pathlib import Path

import httpx
import numpy as np
import openai
import pytest
import soundfile as sf

from indextts_core.api_jobs import local_runner
from indextts_core.errors import InvalidOptionError
from indextts_core.jobs import JobStore
from indextts_core.options import SAMPLE_RATE, Duration, Emotion, SynthesisOptions, to_pcm16
from indextts_core.server import ApiContext, ApiSettings, LoadedEngine
from indextts_core.voices import SavedVoices
from tests.app_server import EMOTION_CLIP, SPEAKER
from tests.fake_engine import FakeEngineForTests
from tests.http_server import ServedApi, private_roots, serve_api

TEXT = "Hello there, a short line."
# Reading a clip that is not audio tries every decoder, which takes seconds on a busy machine.
http = httpx.Client(timeout=60)


def make_ctx(root: Path, **settings) -> ApiContext:
    voices = SavedVoices(root / "voices")
    voices.save("Anna", SPEAKER)
    voices.save("Cross", EMOTION_CLIP)
    source = LoadedEngine(FakeEngineForTests(root))
    store = JobStore(root / "jobs")
    return ApiContext(engine=source, voices=voices, settings=ApiSettings(**settings), jobs=store,
                      runner=local_runner(store, source), private_roots=private_roots(root))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    api = serve_api(make_ctx(tmp_path_factory.mktemp("api")))
    yield api
    api.stop()
    api.ctx.runner.close()


@pytest.fixture
def fake(served: ServedApi) -> FakeEngineForTests:
    engine = served.ctx.engine.engine
    engine.calls.clear()
    return engine


@pytest.fixture(scope="module")
def client(served: ServedApi) -> openai.OpenAI:
    # No retries: a 5xx must show up as the error it is.
    return openai.OpenAI(base_url=served.base_url, api_key="unused-locally", max_retries=0, timeout=60)


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
    assert e.value.body["message"] == ("there is no saved voice named 'alloy' (saved: Anna, Cross); save one with "
                               "POST /v1/audio/voices")
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
    r = http.get(served.base_url + "/nothing")
    assert r.status_code == 404 and r.json()["error"]["message"].startswith("there is no such endpoint")


def test_openapi_page_documents_the_speech_fields(served) -> None:
    spec = http.get(served.base_url + "/openapi.json").json()
    props = spec["components"]["schemas"]["SpeechRequest"]["properties"]
    assert {"input", "voice", "response_format", "speed", "emotion", "duration_seconds", "seed"} <= set(props)
    assert http.get(served.base_url + "/docs").status_code == 200


# -- streaming ----------------------------------------------------------------------------------------------

SEGMENTED = {"options": {"segment_tokens": 2}}  # the fake engine then makes several segments


def stream_chunks(client: openai.OpenAI, **kwargs) -> tuple[list[bytes], dict]:
    extra = {k: kwargs.pop(k) for k in list(kwargs) if k in ("seed", "stream", "sample_rate", "options")}
    with client.audio.speech.with_streaming_response.create(model="tts-1", voice="Anna", input=TEXT,
                                                            extra_body=extra, **kwargs) as r:
        assert r.headers.get("transfer-encoding") == "chunked"
        return list(r.iter_bytes()), dict(r.headers)


def test_pcm_streams_segment_by_segment_and_equals_the_whole(client, fake) -> None:
    chunks, headers = stream_chunks(client, response_format="pcm", seed=21, sample_rate=22050, **SEGMENTED)
    whole = to_pcm16(reference(fake, 21, segment_tokens=2)).tobytes()
    assert len(fake.calls) == 2  # the API's take and the reference
    assert b"".join(chunks) == whole
    assert headers["x-seed"] == "21"


def test_pcm_at_24k_streams_without_seams(client) -> None:
    chunks, _ = stream_chunks(client, response_format="pcm", seed=22, **SEGMENTED)
    one_piece = speak(client, response_format="pcm", seed=22, options={"segment_tokens": 2})
    assert b"".join(chunks) == one_piece


def test_wav_stream_has_an_open_ended_header(client, fake) -> None:
    chunks, _ = stream_chunks(client, response_format="wav", seed=23, stream=True, **SEGMENTED)
    data = b"".join(chunks)
    assert data[:4] == b"RIFF" and data[40:44] == b"\xff\xff\xff\xff"
    whole = speak(client, response_format="wav", seed=23, options={"segment_tokens": 2})
    assert data[44:] == whole[44:]
    audio, sr = sf.read(io.BytesIO(whole), dtype="int16")
    assert sr == SAMPLE_RATE and len(audio) * 2 == len(data) - 44


def sse_events(client: openai.OpenAI, **extra) -> list[dict]:
    with client.audio.speech.with_streaming_response.create(model="gpt-4o-mini-tts", voice="Anna", input=TEXT,
                                                            response_format="pcm", stream_format="sse",
                                                            extra_body=extra) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = r.read().decode()
    return [json.loads(block[len("data: "):]) for block in text.split("\n\n") if block.startswith("data: ")]


def test_sse_events_as_openai_defines_them(client) -> None:
    events = sse_events(client, seed=24, **SEGMENTED)
    *deltas, done = events
    assert len(deltas) > 1 and all(e["type"] == "speech.audio.delta" for e in deltas)
    assert done["type"] == "speech.audio.done" and done["usage"]["total_tokens"] > 0
    audio = b"".join(base64.b64decode(e["audio"]) for e in deltas)
    assert audio == speak(client, response_format="pcm", seed=24, options={"segment_tokens": 2})


def test_a_stream_that_cannot_start_is_an_error_not_audio(client, fake) -> None:
    fake.fail_next = InvalidOptionError("emotion weight must be between 0 and 1")
    with pytest.raises(openai.BadRequestError) as e:
        stream_chunks(client, response_format="pcm")
    assert "emotion weight" in e.value.message


def test_an_sse_stream_failing_midway_ends_with_an_error_event(client, fake, monkeypatch) -> None:
    real = fake.stream

    def failing(*args, **kwargs):
        inner = iter(real(*args, **kwargs))

        class Broken:
            result = None

            def __iter__(self):
                yield next(inner)
                raise RuntimeError("a bug at /srv/secret.py")
        return Broken()

    monkeypatch.setattr(fake, "stream", failing)
    events = sse_events(client, **SEGMENTED)
    assert events[0]["type"] == "speech.audio.delta"
    assert events[-1]["type"] == "error" and "internal error" in events[-1]["error"]["message"]
    assert "secret" not in json.dumps(events)


# -- saved voices --------------------------------------------------------------------------------------

def test_voices_list_add_get_delete(served) -> None:
    url = served.base_url + "/audio/voices"
    names = [v["name"] for v in http.get(url).json()["data"]]
    assert {"Anna", "Cross"} <= set(names)
    with open(EMOTION_CLIP, "rb") as f:
        r = http.post(url, data={"name": "Bob", "emotion": json.dumps({"label": "sad", "intensity": 0.5})},
                       files={"audio_sample": ("bob.wav", f, "audio/wav")})
    assert r.status_code == 201, r.text
    bob = r.json()
    assert bob["id"] == "Bob" and bob["emotion"]["mode"] == "vector" and "clip" not in json.dumps(bob)
    assert http.get(url + "/Bob").json() == bob
    assert served.ctx.voices.get("Bob").emotion == Emotion.from_label("sad", 0.5)
    assert http.delete(url + "/Bob").json() == {"id": "Bob", "object": "audio.voice", "deleted": True}
    r = http.get(url + "/Bob")
    assert r.status_code == 404 and "no saved voice named 'Bob'" in r.json()["error"]["message"]


def test_a_saved_voice_speaks_through_the_openai_client(served, client, fake) -> None:
    with open(SPEAKER, "rb") as f:
        assert http.post(served.base_url + "/audio/voices", data={"name": "Zoë"},
                          files={"audio_sample": ("z.flac", f)}).status_code == 201
    try:
        speak(client, voice="Zoë", response_format="wav", seed=2)
        assert Path(fake.calls[-1]["speaker"]).read_bytes() == SPEAKER.read_bytes()
    finally:
        http.delete(served.base_url + "/audio/voices/Zoë")


@pytest.mark.parametrize(("data", "file", "status", "words"), [
    ({"name": "Anna"}, ("a.wav", SPEAKER.read_bytes()), 400, "already saved"),
    ({"name": "a/b"}, ("a.wav", SPEAKER.read_bytes()), 400, "without ':', '/'"),
    ({"name": "Noise"}, ("a.wav", b"not audio at all" * 100), 400, ""),
    ({"name": "Text"}, ("a.txt", b"hello"), 400, "wav, flac"),
    ({"name": "Bad emotion", "emotion": "{oops"}, ("a.wav", SPEAKER.read_bytes()), 400, "not valid JSON"),
    ({"name": "Bad emotion", "emotion": "joyful"}, ("a.wav", SPEAKER.read_bytes()), 422, "emotion"),
    ({}, ("a.wav", SPEAKER.read_bytes()), 422, "name"),
])
def test_bad_voice_uploads_say_why(served, data, file, status, words) -> None:
    r = http.post(served.base_url + "/audio/voices", data=data, files={"audio_sample": file})
    assert r.status_code == status, r.text
    message = r.json()["error"]["message"]
    assert words in message and str(served.ctx.voices.folder) not in r.text
    assert not list(served.ctx.voices.folder.glob("upload-*")), "no upload is left behind"


def test_replacing_a_voice_needs_replace(served) -> None:
    url = served.base_url + "/audio/voices"
    files = {"audio_sample": ("c.wav", SPEAKER.read_bytes())}
    r = http.post(url, data={"name": "Cross", "replace": "true"}, files=files)
    assert r.status_code == 201 and r.json()["digest"] == served.ctx.voices.get("Anna").digest
    http.post(url, data={"name": "Cross", "replace": "true"}, files={"audio_sample": ("c.wav",
                                                                                       EMOTION_CLIP.read_bytes())})


# -- access and limits --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def locked(tmp_path_factory: pytest.TempPathFactory):
    api = serve_api(make_ctx(tmp_path_factory.mktemp("locked"), api_key="s3cret-key", max_json_bytes=4096,
                             max_upload_bytes=200_000))
    yield api
    api.stop()


def test_api_key_is_required_when_set(locked) -> None:
    good = openai.OpenAI(base_url=locked.base_url, api_key="s3cret-key", max_retries=0)
    assert sf.info(io.BytesIO(speak(good, response_format="wav"))).format == "WAV"
    bad = openai.OpenAI(base_url=locked.base_url, api_key="guess", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as e:
        speak(bad)
    assert "wrong API key" in e.value.message
    r = http.get(locked.base_url + "/audio/voices")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "needs an API key" in r.json()["error"]["message"]
    assert http.get(locked.base_url + "/openapi.json").status_code == 200, "the documentation stays readable"


def test_no_key_is_refused_off_this_computer() -> None:
    with pytest.raises(InvalidOptionError, match="API key"):
        ApiSettings(bind_host="0.0.0.0")
    with pytest.raises(InvalidOptionError, match="at least 8"):
        ApiSettings(bind_host="0.0.0.0", api_key="short")
    assert ApiSettings(bind_host="0.0.0.0", api_key="long-enough").allowed_hosts is None
    assert ApiSettings().allowed_hosts == {"127.0.0.1", "localhost", "::1"}


def test_oversized_requests_are_413(locked) -> None:
    key = {"Authorization": "Bearer s3cret-key"}
    r = http.post(locked.base_url + "/audio/speech", headers=key,
                   json={"model": "tts-1", "voice": "Anna", "input": "x" * 5000})
    assert r.status_code == 413 and "4 KiB" in r.json()["error"]["message"]
    r = http.post(locked.base_url + "/audio/voices", headers=key, data={"name": "Big"},
                   files={"audio_sample": ("big.wav", b"0" * 300_000)})
    assert r.status_code == 413

    def chunked():  # no Content-Length: the size is counted as the body arrives
        for _ in range(10):
            yield b"x" * 1000

    r = http.post(locked.base_url + "/audio/speech", headers={**key, "content-type": "application/json"},
                   content=chunked())
    assert r.status_code == 413


def test_foreign_pages_and_rebound_hosts_are_refused(served) -> None:
    url = served.base_url + "/audio/voices"
    r = http.get(url, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "other sites" in r.json()["error"]["message"]
    assert http.get(url, headers={"Origin": served.url}).status_code == 200
    r = http.get(url, headers={"Host": "evil.example"})
    assert r.status_code == 403
    assert http.get(url.replace("127.0.0.1", "localhost")).status_code == 200


def test_a_full_queue_is_503(served, client) -> None:
    ctx = served.ctx
    with ctx._waiting_lock:
        ctx._waiting = ctx.settings.max_waiting
    try:
        with pytest.raises(openai.APIStatusError) as e:
            speak(client, response_format="wav")
        assert e.value.status_code == 503 and "busy" in e.value.message
    finally:
        with ctx._waiting_lock:
            ctx._waiting = 0


# -- jobs ------------------------------------------------------------------------------------------------

def wait_for(served: ServedApi, job_id: int, timeout: float = 30.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = http.get(f"{served.base_url}/jobs/{job_id}").json()
        if job["status"] not in ("queued", "running"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish: {job}")


def submit(served: ServedApi, body: dict) -> httpx.Response:
    return http.post(served.base_url + "/jobs", json=body)


def test_a_job_of_takes_runs_and_its_zip_holds_every_take(served, fake) -> None:
    r = submit(served, {"title": "lines", "voice": "Anna", "options": {"gap_ms": 100},
                        "items": [{"input": "First line.", "seed": 1, "name": "one"},
                                  {"input": "Second line.", "seed": 2, "emotion": "sad"},
                                  {"input": "Third line.", "seed": 3, "voice": "Cross", "speed": 1.25}]})
    assert r.status_code == 201, r.text
    job = wait_for(served, r.json()["id"])
    assert job["status"] == "completed" and job["counts"]["done"] == 3
    assert [it["voice"] for it in job["items"]] == ["Anna", "Anna", "Cross"]
    assert str(served.ctx.voices.folder) not in json.dumps(job)
    first, second, third = fake.calls
    assert first["gap_ms"] == 100 and second["emotion"] == Emotion.from_label("sad")
    assert third["duration"] == Duration.speed(1.25)
    fake.calls.clear()
    result = http.get(f"{served.base_url}/jobs/{job['id']}/result")
    assert result.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(result.content)) as z:
        assert sorted(z.namelist()) == ["0002.wav", "0003.wav", "manifest.csv", "one.wav"]
        audio, _ = sf.read(io.BytesIO(z.read("one.wav")), dtype="int16")
    np.testing.assert_array_equal(audio, to_pcm16(reference(fake, 1, text="First line.", gap_ms=100)))


def test_a_batch_file_job(served) -> None:
    r = submit(served, {"voice": "Anna", "batch": "text,voice,seed\nHello,,5\nWorld,Cross,6\n",
                        "batch_format": "csv"})
    assert r.status_code == 201, r.text
    job = wait_for(served, r.json()["id"])
    assert job["status"] == "completed" and [it["seed"] for it in job["items"]] == [5, 6]


def test_a_subtitle_job_gives_a_track_timed_to_the_cues(served) -> None:
    srt_text = "1\n00:00:00,500 --> 00:00:02,000\nHello there.\n\n2\n00:00:02,500 --> 00:00:04,000\nCross: Bye.\n"
    r = submit(served, {"voice": "Anna", "subtitles": srt_text, "options": {"seed": 4}})
    assert r.status_code == 201, r.text
    job = wait_for(served, r.json()["id"])
    assert job["kind"] == "dub" and job["status"] == "completed"
    track = http.get(f"{served.base_url}/jobs/{job['id']}/result")
    audio, sr = sf.read(io.BytesIO(track.content), dtype="int16")
    assert sr == SAMPLE_RATE and len(audio) == 4 * SAMPLE_RATE
    assert not audio[: SAMPLE_RATE // 2].any(), "silence before the first cue"
    flac = http.get(f"{served.base_url}/jobs/{job['id']}/result", params={"format": "flac"})
    assert sf.info(io.BytesIO(flac.content)).format == "FLAC"


@pytest.mark.parametrize(("body", "status", "words"), [
    ({"voice": "Nobody", "items": [{"input": "x"}]}, 404, "no saved voice named 'Nobody'"),
    ({"items": [{"input": "x"}]}, 400, "items[0]: no voice"),
    ({"voice": "Anna", "items": [{"input": "x", "speed": 9}]}, 400, "items[0]: speed"),
    ({"voice": "Anna", "items": [{"input": "x"}], "batch": "y"}, 400, "exactly one of"),
    ({"voice": "Anna", "subtitles": "1\n00:00:02,000 --> 00:00:01,000\nBackwards\n"}, 400, "cue 1"),
    ({"voice": "Anna", "batch": "text,colour\nx,red\n", "batch_format": "csv"}, 400, "colour"),
    ({"voice": "Anna", "batch": "x", "options": {"emotion": {"mode": "audio", "audio": "/etc/x.wav"}}}, 400,
     "saved voice"),
    ({"voice": "Anna", "items": []}, 400, "at least one item"),
])
def test_bad_jobs_say_what_is_wrong(served, body, status, words) -> None:
    r = submit(served, body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]["message"] and "/etc" not in r.text


def test_unknown_jobs_are_404(served) -> None:
    for path in ("/jobs/999", "/jobs/999/result"):
        r = http.get(served.base_url + path)
        assert r.status_code == 404 and r.json()["error"]["message"] == "there is no job 999"
    assert http.post(served.base_url + "/jobs/999/cancel").status_code == 404


def test_cancel_and_unfinished_results(served) -> None:
    engine_lock = served.ctx.engine._lock
    with engine_lock:  # the engine is busy: the job waits
        job_id = submit(served, {"voice": "Anna", "items": [{"input": f"Line {i}."} for i in range(5)]}).json()["id"]
        r = http.get(f"{served.base_url}/jobs/{job_id}/result")
        assert r.status_code == 409 and "not finished" in r.json()["error"]["message"]
        cancelled = http.post(f"{served.base_url}/jobs/{job_id}/cancel").json()
        assert cancelled["cancelled"] >= 4
    job = wait_for(served, job_id)
    assert job["status"] == "cancelled" and job["counts"]["done"] + job["counts"]["cancelled"] == 5
    listed = http.get(served.base_url + "/jobs").json()["data"]
    assert any(j["id"] == job_id and "items" not in j for j in listed)


def test_the_apps_engine_without_weights_is_503(tmp_path: Path) -> None:
    from app.api_routes import ControllerEngine
    from app.controller import EngineController

    controller = EngineController(tmp_path / "no-model", factory=FakeEngineForTests.from_pretrained,
                                  allow_download=False)
    controller.start()
    assert controller.wait_ready(30) == "missing"
    ctx = make_ctx(tmp_path)
    ctx.engine = ControllerEngine(controller)
    api = serve_api(ctx)
    try:
        client = openai.OpenAI(base_url=api.base_url, api_key="x", max_retries=0, timeout=60)
        with pytest.raises(openai.APIStatusError) as e:
            speak(client, response_format="wav")
        assert e.value.status_code == 503 and "weights are missing" in e.value.message
        assert str(tmp_path) not in e.value.response.text
    finally:
        api.stop()


def slow_segments(fake: FakeEngineForTests, monkeypatch: pytest.MonkeyPatch, made: list[tuple[str, int]]) -> None:
    """Make every segment of the fake engine take 0.2 s, noting (first word, index) of each."""
    real = fake.stream

    def slow(text, *args, **kwargs):
        run = real(text, *args, **kwargs)

        class Slow:
            def __iter__(self):
                for segment in run:
                    time.sleep(0.2)
                    made.append((text.split()[0], segment.index))
                    yield segment

            @property
            def result(self):
                return run.result
        return Slow()

    monkeypatch.setattr(fake, "stream", slow)


LONG_TEXT = " ".join(f"w{i}" for i in range(40))  # 40 segments of one token: 8 s in all


def test_a_client_that_hangs_up_frees_the_engine(served, client, fake, monkeypatch) -> None:
    made: list[tuple[str, int]] = []
    slow_segments(fake, monkeypatch, made)
    text = LONG_TEXT
    with client.audio.speech.with_streaming_response.create(
            model="tts-1", voice="Anna", input=text, response_format="pcm",
            extra_body={"options": {"segment_tokens": 1}}) as r:
        next(r.iter_bytes())
    lock = served.ctx.engine._lock
    assert lock.acquire(timeout=5), "the engine is free again soon after the client left"
    lock.release()
    assert len(made) < 40, "the take stopped instead of running to its end"


def test_a_whole_file_client_that_hangs_up_stops_the_take(served, fake, monkeypatch) -> None:
    # A WAV sent whole says nothing before the end: the disconnect alone must stop the take.
    made: list[tuple[str, int]] = []
    slow_segments(fake, monkeypatch, made)
    impatient = openai.OpenAI(base_url=served.base_url, api_key="x", max_retries=0, timeout=1.0)
    with pytest.raises(openai.APITimeoutError):
        impatient.audio.speech.create(model="tts-1", voice="Anna", input=LONG_TEXT, response_format="wav",
                                      extra_body={"options": {"segment_tokens": 1}})
    lock = served.ctx.engine._lock
    assert lock.acquire(timeout=5), "the engine is free again soon after the client left"
    lock.release()
    assert len(made) < 40, "the take stopped instead of running to its end"


def test_a_short_request_goes_between_the_segments_of_a_long_one(served, client, fake, monkeypatch) -> None:
    import threading

    made: list[tuple[str, int]] = []
    slow_segments(fake, monkeypatch, made)
    long_done = threading.Event()

    def long_take() -> None:
        try:
            speak(client, input=LONG_TEXT, response_format="wav", options={"segment_tokens": 1})
        finally:
            long_done.set()

    worker = threading.Thread(target=long_take)
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not made and time.monotonic() < deadline:
            time.sleep(0.02)
        assert made, "the long take started"
        audio = speak(client, input="short line", response_format="wav")
        assert sf.info(io.BytesIO(audio)).frames > 0
        assert not long_done.is_set(), "the short take was served while the long one still ran"
        shorts = [i for i, (word, _) in enumerate(made) if word == "short"]
        assert shorts and len([1 for word, _ in made[:shorts[-1]] if word == "w0"]) < 40
    finally:
        worker.join(60)
    assert [i for word, i in made if word == "w0"] == list(range(40)), "and the long one still ran to its end"
