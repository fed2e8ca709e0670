"""Attacks on the app's HTTP surface (issue 13, items 1-5), sent as another program or web page
on the same machine would send them, against the real app on the tiny model: each must fail,
while the page (which holds the key cookie set when it loads) and API clients keep working."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.app_server import EMOTION_CLIP, FAST, SPEAKER, AppServer, api_info

pytestmark = pytest.mark.slow

FOREIGN = "http://attacker.example"


@pytest.fixture(scope="module")
def take(client) -> tuple[str, dict]:
    """One take made through the API: (the served copy of its audio, the answer)."""
    return synthesize(client, {"text": "A take nobody else may delete."})


def request(server: AppServer, path: str, *, body: bytes | None = None, headers: dict[str, str] | None = None,
            method: str | None = None) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(server.url + path, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, r.read(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read(), dict(e.headers)


def page_cookie(server: AppServer) -> str:
    """What a browser holds after loading the page: the key cookie."""
    status, _, headers = request(server, "/")
    assert status == 200
    cookie = headers.get("set-cookie") or headers.get("Set-Cookie") or ""
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie, cookie
    return cookie.split(";")[0]


def join(server: AppServer, fn_index: int, data: list, *, headers: dict[str, str] | None = None) -> int:
    body = json.dumps({"fn_index": fn_index, "data": data, "session_hash": "outsider123", "event_data": None,
                       "trigger_id": None}).encode()
    status, _, _ = request(server, "/gradio_api/queue/join", body=body,
                           headers={"Content-Type": "application/json", **(headers or {})})
    return status


def call(server: AppServer, api: str, data: list) -> str:
    """Run a named endpoint over plain HTTP (as curl would) and return its event stream."""
    status, answer, _ = request(server, f"/gradio_api/call/{api}", body=json.dumps({"data": data}).encode(),
                                headers={"Content-Type": "application/json"})
    assert status == 200, answer
    event = json.loads(answer)["event_id"]
    return request(server, f"/gradio_api/call/{api}/{event}")[1].decode()


def synthesize(client, settings: dict):
    from gradio_client import handle_file

    return client.predict(voice=handle_file(str(SPEAKER)), emotion_audio=None,
                          settings={"text": "Hello there.", "seed": 1, **FAST, **settings}, api_name="/synthesize")


def dependencies(server: AppServer) -> list[dict]:
    return json.loads(request(server, "/config")[1])["dependencies"]


def private_fns(server: AppServer) -> dict[int, str]:
    return {d["id"]: d.get("api_name") or "" for d in dependencies(server) if d.get("api_visibility") == "private"}


def fn_named(server: AppServer, name: str) -> int:
    return next(d["id"] for d in dependencies(server) if d.get("api_name") == name)


def history_ids(server: AppServer) -> list[str]:
    return [t["id"] for t in json.loads((server.output_dir / "history.json").read_text(encoding="utf-8"))["takes"]]


# -- 1: reading files off the machine ------------------------------------------------------
@pytest.mark.parametrize("target", [str(EMOTION_CLIP), "/etc/passwd", "/no/such/file.wav"])
def test_emotion_audio_must_be_an_upload(client, target: str) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as err:
        synthesize(client, {"emotion_mode": "audio", "emotion_audio": target})
    # The same answer for every path: no way to tell which files exist.
    assert "Only clips uploaded to this app" in str(err.value)


@pytest.mark.parametrize("target", [str(SPEAKER), "/etc/passwd", "/no/such/file.wav"])
def test_voice_must_be_an_upload(server: AppServer, target: str) -> None:
    voice = {"path": target, "meta": {"_type": "gradio.FileData"}}
    answer = call(server, "synthesize", [voice, None, {"text": "Hello.", **FAST}])
    assert "event: error" in answer and "audio" not in answer.split("event: error", 1)[1].lower()
    assert target not in answer, "the answer does not echo the path back"


def test_an_uploaded_emotion_clip_is_still_used(client) -> None:
    from gradio_client import handle_file

    _, info = client.predict(voice=handle_file(str(SPEAKER)), emotion_audio=handle_file(str(EMOTION_CLIP)),
                             settings={"text": "Hello.", "seed": 1, "emotion_mode": "audio", **FAST},
                             api_name="/synthesize")
    assert info["settings"]["emotion_mode"] == "audio"
    assert not Path(info["settings"]["emotion_audio"]).is_absolute()


# -- 2: the page's own handlers ------------------------------------------------------------
def test_private_handlers_refused_without_the_page_key(server: AppServer, take) -> None:
    fns = private_fns(server)
    assert len(fns) > 10, "the page's handlers are private"
    own = {"Origin": server.url}
    for fn in fns:
        for headers in ({}, own, {"Origin": FOREIGN}):
            assert join(server, fn, [], headers=headers) == 403, f"fn {fn} ran for an outsider with {headers}"


def test_private_handlers_refused_by_name_and_on_other_routes(server: AppServer) -> None:
    delete = fn_named(server, "on_history_delete")
    for route in ("/gradio_api/call/on_history_delete", "/gradio_api/call/v2/on_history_delete",
                  "/gradio_api/run/on_history_delete", "/gradio_api/api/on_history_delete"):
        status, _, _ = request(server, route, body=json.dumps({"data": ["en", "x"]}).encode(),
                               headers={"Content-Type": "application/json"})
        assert status == 403, route
    for route in ("/gradio_api/run/predict", "/gradio_api/api/synthesize", "/gradio_api/cancel"):
        body = json.dumps({"fn_index": delete, "data": ["en", "x"], "session_hash": "outsider123"}).encode()
        status, _, _ = request(server, route, body=body, headers={"Content-Type": "application/json"})
        assert status == 403, route
    for route in ("/gradio_api/component_server", "/gradio_api/process_recording", "/gradio_api/vibe-edit"):
        status, _, _ = request(server, route, body=b"{}", headers={"Content-Type": "application/json"})
        assert status == 403, route


def test_an_outsider_cannot_delete_a_take(server: AppServer, take) -> None:
    take_id = take[1]["id"]
    assert take_id in history_ids(server)
    delete = fn_named(server, "on_history_delete")
    assert join(server, delete, ["en", take_id], headers={"Origin": server.url}) == 403
    assert join(server, fn_named(server, "on_unload"), ["en"]) == 403
    assert take_id in history_ids(server) and (server.output_dir / take[1]["file"]).is_file()


def test_the_page_key_opens_the_page_handlers(server: AppServer) -> None:
    cookie = page_cookie(server)
    refresh = fn_named(server, "on_history_refresh")
    assert join(server, refresh, ["en"], headers={"Cookie": cookie, "Origin": server.url}) == 200
    assert join(server, refresh, ["en"], headers={"Cookie": cookie.split("=")[0] + "=guessed"}) == 403
    # The key does not help a request started by another site.
    assert join(server, refresh, ["en"], headers={"Cookie": cookie, "Origin": FOREIGN}) == 403


def test_private_handlers_are_not_in_the_api(server: AppServer) -> None:
    named = set(api_info(server)["named_endpoints"])
    assert named <= {"/synthesize", "/preview_text", "/analyze_emotion", "/engine_status"}, named


# -- 3: files by path ----------------------------------------------------------------------
def test_app_files_are_not_served_by_path(server: AppServer, take) -> None:
    out = server.output_dir.resolve()
    voices = [p for p in (out / "voices").rglob("*") if p.is_file()]
    assert any(p.suffix == ".wav" for p in voices), "a recent voice clip exists"
    targets = [out / take[1]["file"], out / "history.json", *voices]
    for path in targets:
        for route in ("/gradio_api/file=", "/file="):
            status, _, _ = request(server, route + urllib.parse.quote(str(path)))
            assert status in (403, 404), f"{path.relative_to(out)} answered {status}"


def test_the_take_is_served_to_its_caller(server: AppServer, take) -> None:
    served = Path(take[0])
    assert served.is_file()
    # The copy the caller downloaded sits under a name derived from a secret and the content.
    assert request(server, "/gradio_api/file=" + urllib.parse.quote(_cache_path(server, take)))[0] == 200


def _cache_path(server: AppServer, take) -> str:
    name = Path(take[0]).name
    found = [p for p in (server.cache_dir / "gradio").rglob(name)]
    assert found, "Gradio keeps the copy it handed out"
    return str(found[0])


def _strings(value) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return [value] if isinstance(value, str) else []


def test_answers_carry_no_paths(client, server: AppServer, take) -> None:
    status = client.predict(api_name="/engine_status")
    for answer in (take[1], status):
        for s in _strings(answer):
            assert not s.startswith("/") and str(server.output_dir) not in s and str(server.model_dir) not in s, s


def test_history_is_not_in_the_public_config(server: AppServer, take) -> None:
    config = request(server, "/config")[1].decode()
    assert "A take nobody else may delete" not in config
    assert str(server.output_dir) not in config


# -- 4: cross-site requests and DNS rebinding ----------------------------------------------
def test_foreign_origin_is_refused(server: AppServer) -> None:
    assert request(server, "/gradio_api/info", headers={"Origin": FOREIGN})[0] == 403
    body = json.dumps({"data": ["hi", 120]}).encode()
    for origin in (FOREIGN, "null", server.url.replace("127.0.0.1", "localhost")):
        status, _, _ = request(server, "/gradio_api/call/preview_text", body=body,
                               headers={"Content-Type": "application/json", "Origin": origin})
        assert status == 403, origin


def test_cross_site_loads_without_origin_are_refused(server: AppServer, take) -> None:
    path = "/gradio_api/file=" + urllib.parse.quote(_cache_path(server, take))
    for site in ("cross-site", "same-site"):
        headers = {"Sec-Fetch-Site": site, "Sec-Fetch-Mode": "no-cors", "Sec-Fetch-Dest": "audio"}
        assert request(server, path, headers=headers)[0] == 403, site
    # Following a link to the app from another site still opens it.
    assert request(server, "/", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"})[0] == 200


def test_foreign_origin_upload_is_refused(server: AppServer) -> None:
    boundary = "xyzBOUNDARY"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"a.wav\"\r\n"
            f"Content-Type: audio/wav\r\n\r\n").encode() + SPEAKER.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}", "Origin": FOREIGN}
    status, answer, _ = request(server, "/gradio_api/upload", body=body, headers=headers)
    assert status == 403, answer
    headers["Origin"] = server.url
    assert request(server, "/gradio_api/upload", body=body, headers=headers)[0] == 200, "the page's uploads work"


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:7860", "192.168.1.5", ""])
def test_foreign_host_is_refused(server: AppServer, host: str) -> None:
    assert request(server, "/", headers={"Host": host})[0] == 403
    assert request(server, "/gradio_api/info", headers={"Host": host})[0] == 403


def test_the_page_itself_still_loads(server: AppServer) -> None:
    assert request(server, "/")[0] == 200
    host = urllib.parse.urlsplit(server.url).netloc
    assert request(server, "/config", headers={"Origin": server.url, "Host": host})[0] == 200
    local = host.replace("127.0.0.1", "localhost")
    assert request(server, "/", headers={"Host": local})[0] == 200


# -- 5: unknown and oversized settings -----------------------------------------------------
@pytest.mark.parametrize("settings, needle", [
    ({"target_secs": 2.0}, "target_secs"),
    ({"extra": {"x": "a" * 100_000}}, "extra"),
    ({"extra": "not an object"}, "extra"),
    ({"text": "a" * 50_000}, "limit"),
    ({"emotion_text": "b" * 50_000}, "emotion_text"),
])
def test_settings_are_refused_by_name_and_size(client, server: AppServer, settings: dict, needle: str) -> None:
    from gradio_client.exceptions import AppError

    before = (server.output_dir / "history.json").read_text(encoding="utf-8")
    with pytest.raises(AppError) as err:
        synthesize(client, settings)
    assert needle in str(err.value)
    assert len(str(err.value)) < 1000, "the refusal does not echo the data back"
    assert (server.output_dir / "history.json").read_text(encoding="utf-8") == before, "nothing was stored"


@pytest.mark.parametrize("settings", [[1, 2], "text=hi"])
def test_settings_that_are_not_an_object_are_refused(server: AppServer, settings) -> None:
    answer = call(server, "synthesize", [None, None, settings])
    assert "event: error" in answer and "Settings must be an object" in answer


@pytest.mark.parametrize("segment", [-5, 0, 601, 12.5])
def test_preview_segment_size_out_of_range_is_refused(client, segment) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="between 1 and 600"):
        client.predict("Hello.", segment, api_name="/preview_text")


def test_the_http_api_beside_the_page_keeps_its_own_rules(server: AppServer) -> None:
    """``/v1`` is not the page's: it answers API clients without the page key, under the API's
    own guard (another site's page is still refused)."""
    status, answer, _ = request(server, "/v1/models")
    assert status == 200 and b"indextts-2" in answer
    speech = json.dumps({"model": "indextts-2", "voice": "nobody saved me", "input": "Hello."}).encode()
    json_headers = {"Content-Type": "application/json"}
    status, answer, _ = request(server, "/v1/audio/speech", body=speech, headers=json_headers)
    assert status == 404 and b"nobody saved me" in answer, answer  # the API's answer, not the page guard's
    status, _, _ = request(server, "/v1/audio/speech", body=speech, headers={**json_headers, "Origin": FOREIGN})
    assert status == 403
