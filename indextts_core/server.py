"""The HTTP API: OpenAI-compatible speech, the saved-voice library and jobs, on FastAPI.

:func:`create_api` builds the API as a FastAPI application mounted at ``/v1``: the web app
mounts it on Gradio's own server (one process, one engine), and ``python -m indextts_core
serve`` runs it alone (:mod:`indextts_core.serve`). The engine is reached only through an
:class:`EngineSource`, whose ``session()`` hands out the engine for one piece of work at a
time, so the page, the API and jobs never run two takes at once on one model.

What leaves the server is meant for other programs and people: every error is JSON in
OpenAI's shape (``{"error": {"message", "type", "code"}}``) with a sentence a person can act
on and the fitting status; no traceback and no path of this machine is ever sent.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import logging
import queue
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

import anyio
from fastapi import FastAPI, File, Form, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from . import batch, subtitles
from .api_jobs import JobRequest, create_job, job_json
from .api_speech import (
    OutputFormat,
    PcmEncoder,
    SpeechRequest,
    emotion_from_request,
    encode_take,
    output_format,
    to_options,
    voice_name,
)
from .api_speech import wav_header as _wav_header
from .errors import IndexTTSError, InvalidOptionError
from .files import zip_files
from .hosts import allowed_hosts, hostname, is_local_host, same_origin
from .options import SAMPLE_RATE
from .serve import API_KEY_ENV, MAX_TEXT_CHARS
from .turns import FairLock, in_turns

log = logging.getLogger(__name__)

API_PREFIX = "/v1"
MODEL_ID = "indextts-2"
# Paths that anyone may read: the API's own documentation, and whether it is up.
_PUBLIC_PATHS = frozenset({"/docs", "/openapi.json", "/docs/oauth2-redirect", "/health"})
_ABS_PATH = re.compile(r"(?:[A-Za-z]:\\|\\\\|/)(?:[^\s'\"<>|:*?]+[/\\])+[^\s'\"<>|:*?,;)]*")


class EngineUnavailableError(IndexTTSError):
    """There is no engine to run the request on right now (loading, missing weights, busy)."""


class EngineSource(Protocol):
    """Hands out the engine for one piece of work; raises :class:`EngineUnavailableError` when it cannot."""

    def session(self) -> AbstractContextManager[Any]: ...


class LoadedEngine:
    """An engine this process loaded itself, used for one step of work at a time (a segment,
    see :mod:`indextts_core.turns`), in the order the steps asked for it."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._lock = FairLock()

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        with self._lock:
            yield self.engine


@dataclass(frozen=True)
class ApiSettings:
    """Limits and access. ``api_key=None`` is only allowed when listening on this computer alone."""

    api_key: str | None = None
    bind_host: str = "127.0.0.1"
    max_text_chars: int = MAX_TEXT_CHARS
    max_json_bytes: int = 256 << 10
    max_upload_bytes: int = 32 << 20
    max_waiting: int = 16

    def __post_init__(self) -> None:
        if self.api_key is not None and len(self.api_key) < 8:
            raise InvalidOptionError("an API key must be at least 8 characters long")
        if self.api_key is None and not is_local_host(self.bind_host):
            raise InvalidOptionError(
                f"listening on {self.bind_host} lets other computers use the API: set an API key with --api-key "
                f"or the {API_KEY_ENV} environment variable (clients send it as 'Authorization: Bearer KEY')")

    @property
    def allowed_hosts(self) -> frozenset[str] | None:
        """``Host`` names the server answers to (a DNS-rebinding page sends its own); ``None``: any."""
        return allowed_hosts(self.bind_host)


@dataclass
class ApiContext:
    """What the routes work with; built once by the app or by :func:`serve`."""

    engine: EngineSource
    voices: Any  # indextts_core.voices.SavedVoices
    settings: ApiSettings = field(default_factory=ApiSettings)
    jobs: Any = None  # indextts_core.jobs.JobStore, or None when jobs are not offered
    runner: Any = None  # runs submitted jobs: anything with ``submit(job_id)`` (jobs.JobRunner)
    # Folders whose names must never reach a client, with the word shown instead.
    private_roots: dict[str, str] = field(default_factory=dict)
    is_test_model: bool = False
    _waiting: int = field(default=0, init=False, repr=False)
    _waiting_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def public(self, message: str) -> str:
        """``message`` without any path of this machine."""
        for root, word in sorted(self.private_roots.items(), key=lambda kv: -len(kv[0])):
            message = message.replace(root, word)
        return _ABS_PATH.sub("<file>", message)

    def saved_voice(self, name: str) -> Any:
        """A saved voice by name; an unknown name is a 404 listing the saved ones."""
        saved = self.voices.list()
        for v in saved:
            if v.name == name:
                return v
        known = ", ".join(v.name for v in saved) or "none yet"
        raise ApiError(404, f"there is no saved voice named {name!r} (saved: {known}); save one with "
                            "POST /v1/audio/voices", "voice_not_found", "voice")

    def job(self, job_id: int) -> dict[str, Any]:
        if self.jobs is None:
            raise ApiError(404, "this server does not run jobs", "jobs_off")
        for job in self.jobs.jobs():
            if job["id"] == job_id:
                return job
        raise ApiError(404, f"there is no job {job_id}", "job_not_found", "job_id")

    @contextlib.contextmanager
    def engine_slot(self) -> Iterator[None]:
        """Counts the requests waiting for or holding the engine; too many is a 503, not a pile-up."""
        with self._waiting_lock:
            if self._waiting >= self.settings.max_waiting:
                raise EngineUnavailableError(f"the server is busy ({self._waiting} requests are waiting for the "
                                             "engine); try again in a moment")
            self._waiting += 1
        try:
            yield
        finally:
            with self._waiting_lock:
                self._waiting -= 1


# -- errors ---------------------------------------------------------------------------------------

class ApiError(Exception):
    """An error answered as JSON: ``status``, a sentence, OpenAI's error ``type`` and a ``code``."""

    def __init__(self, status: int, message: str, code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param

    @property
    def type(self) -> str:
        if self.status in (401, 403):
            return "authentication_error"
        if self.status >= 500:
            return "server_error"
        return "invalid_request_error"


def _status_of(exc: BaseException) -> tuple[int, str]:
    if _is_out_of_memory(exc):
        return 503, "out_of_memory"
    if isinstance(exc, EngineUnavailableError):
        return 503, "engine_unavailable"
    if isinstance(exc, IndexTTSError):  # bad text, audio or option: the engine says which
        return 400, "invalid_value"
    return 500, "internal_error"


def _is_out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, torch.OutOfMemoryError | MemoryError) or (
        isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower())


def api_error(ctx: ApiContext, exc: BaseException) -> ApiError:
    """The answer for an exception: engine and library errors keep their sentence, bugs do not."""
    if isinstance(exc, ApiError):  # our own sentences name no file
        return exc
    status, code = _status_of(exc)
    if status == 500:
        log.error("request failed", exc_info=exc)
        return ApiError(500, "the server hit an internal error; the details are in its log", code)
    if code == "out_of_memory":
        return ApiError(503, "the device ran out of memory; try a shorter text or fewer tokens per segment", code)
    return ApiError(status, ctx.public(str(exc)), code)


def error_body(err: ApiError) -> dict[str, Any]:
    return {"error": {"message": err.message, "type": err.type, "param": err.param, "code": err.code}}


# -- the guard: access, origin and size, before any route runs ---------------------------------------

class ApiGuard:
    """ASGI middleware of the API application.

    * ``Host`` must name this computer or the bind address, so a web page that rebinds its
      own domain to 127.0.0.1 is refused;
    * a request from a browser page of another origin is refused (API clients send no ``Origin``);
    * with an API key set, every request but the documentation needs ``Authorization: Bearer KEY``;
    * bodies are limited (JSON requests and uploads separately) and read before the route, so
      an oversized request is a 413 whatever it contains.
    """

    def __init__(self, app: Any, ctx: ApiContext) -> None:
        self.app = app
        self.ctx = ctx

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await _send_error(send, refusal)
            return
        limit = self._limit(scope, headers)
        declared = headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_error(send, _too_large(limit))
            return
        body = bytearray()
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > limit:
                await _send_error(send, _too_large(limit))
                return
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    def _refusal(self, scope: dict, headers: dict[str, str]) -> ApiError | None:
        settings = self.ctx.settings
        host_header = headers.get("host", "")
        host = hostname(host_header)
        hosts = settings.allowed_hosts
        if hosts is not None and (host is None or host.lower() not in hosts):
            return ApiError(403, "this server only answers requests addressed to it by its own name", "bad_host")
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, host_header):
            return ApiError(403, "requests from web pages of other sites are refused", "foreign_origin")
        path = scope.get("path", "")
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root):]
        if settings.api_key is not None and path not in _PUBLIC_PATHS:
            given = headers.get("authorization", "")
            scheme, _, token = given.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                     settings.api_key.encode()):
                what = "a wrong API key was given" if given else "this server needs an API key"
                return ApiError(401, f"{what}: send it as 'Authorization: Bearer KEY'", "invalid_api_key")
        return None

    def _limit(self, scope: dict, headers: dict[str, str]) -> int:
        if headers.get("content-type", "").startswith("multipart/form-data") or scope.get("path", "").endswith(
                "/jobs"):
            return self.ctx.settings.max_upload_bytes
        return self.ctx.settings.max_json_bytes


def _too_large(limit: int) -> ApiError:
    size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit >> 10} KiB"
    return ApiError(413, f"the request is larger than this server takes ({size})", "request_too_large")


async def _send_error(send: Any, err: ApiError) -> None:
    body = json.dumps(error_body(err)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if err.status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    await send({"type": "http.response.start", "status": err.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


# -- streaming ------------------------------------------------------------------------------------

class _StreamWork:
    """One take on a thread of its own, holding the engine one segment at a time.

    The server resumes a response on whichever thread is free, so the take runs here and
    segments reach the response through a queue. Closing (the client went away) lets the
    segment being made finish and computes nothing more.
    """

    def __init__(self, ctx: ApiContext, text: str, voice: str, options: Any) -> None:
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._work, args=(ctx, text, voice, options), name="api-stream",
                                        daemon=True)
        self._thread.start()

    def _work(self, ctx: ApiContext, text: str, voice: str, options: Any) -> None:
        try:
            runs: list[Any] = []

            def start(engine: Any) -> Any:
                runs.append(engine.stream(text, voice, options))
                return runs[0]

            with ctx.engine_slot():
                turns = in_turns(ctx.engine.session, start)
                try:
                    for segment in turns:
                        self._queue.put(("segment", segment))
                        if self._stop.is_set():
                            return
                finally:
                    turns.close()
                self._queue.put(("done", runs[0].result))
        except BaseException as e:  # handed to the response, which answers or logs it
            self._queue.put(("error", e))

    def next(self) -> tuple[str, Any]:
        return self._queue.get()

    def close(self) -> None:
        self._stop.set()


class _TakeResponse(StreamingResponse):
    """A streamed take that stops the take as soon as the response ends, also when the client
    hangs up (the body's iterator is not closed then, so it cannot be relied on)."""

    def __init__(self, content: Iterator[bytes], work: _StreamWork, **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._work = work

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._work.close()


async def _whole_take(work: _StreamWork, request: Request) -> Any:
    """The finished take of ``work``, or ``None`` when the client hung up first.

    An answer sent whole says nothing before the end, so the disconnect is the only sign that
    nobody waits for it: looked at after every segment, it stops the take within one.
    """
    try:
        while True:
            kind, value = await anyio.to_thread.run_sync(work.next)
            if kind == "done":
                return value
            if kind == "error":
                raise value
            if await request.is_disconnected():
                log.info("the client went away; its take stops")
                return None
    finally:
        work.close()


def _usage(result: Any) -> dict[str, int]:
    tokens = sum(s.num_tokens for s in result.segments)
    codes = sum(s.num_codes for s in result.segments)
    return {"input_tokens": tokens, "output_tokens": codes, "total_tokens": tokens + codes}


def _stream_bytes(first: tuple[str, Any], work: _StreamWork, fmt: OutputFormat, ctx: ApiContext,
                  sse: bool) -> Iterator[bytes]:
    encoder = PcmEncoder(fmt.sample_rate)

    def event(data: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(data)}\n\n".encode()

    def audio(chunk: bytes) -> bytes:
        if not sse:
            return chunk
        return event({"type": "speech.audio.delta", "audio": base64.b64encode(chunk).decode("ascii")})

    kind, value = first
    try:
        if fmt.name == "wav":
            yield audio(_wav_header(fmt.sample_rate))
        while True:
            if kind == "segment":
                data = encoder.encode(value.audio, last=value.is_last)
                if data:
                    yield audio(data)
            elif kind == "done":
                if sse:
                    yield event({"type": "speech.audio.done", "usage": _usage(value)})
                return
            else:
                err = api_error(ctx, value)
                log.warning("a streamed take stopped: %s", err.message)
                if sse:
                    yield event({"type": "error", **error_body(err)})
                return
            kind, value = work.next()
    finally:
        work.close()


# -- the application --------------------------------------------------------------------------------

def create_api(ctx: ApiContext) -> Any:
    """The API as a FastAPI application whose routes are relative to ``/v1`` (mount it there)."""
    from . import __version__

    class Route(APIRoute):
        """Any error of a route becomes the JSON answer here (an app-wide handler would re-raise it)."""

        def get_route_handler(self) -> Any:
            handler = super().get_route_handler()

            async def answer(request: Request) -> Any:
                try:
                    return await handler(request)
                except (HTTPException, RequestValidationError):
                    raise
                except Exception as e:
                    err = api_error(ctx, e)
                    return JSONResponse(error_body(err), status_code=err.status)

            return answer

    api = FastAPI(title="IndexTTS Studio API", version=__version__, docs_url="/docs", redoc_url=None,
                  description="OpenAI-compatible speech (`POST /v1/audio/speech`), the saved-voice library and "
                              "jobs. With an API key set, send `Authorization: Bearer KEY`.")
    api.router.route_class = Route

    @api.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        for e in exc.errors()[:5]:
            where = ".".join(str(p) for p in e.get("loc", ()) if p not in ("body", "form"))
            problems.append(f"{where}: {e.get('msg', 'invalid')}" if where else e.get("msg", "invalid"))
        err = ApiError(422, ctx.public("; ".join(problems) or "the request is not valid"), "invalid_request",
                       param=str(exc.errors()[0].get("loc", ("",))[-1]) if exc.errors() else None)
        return JSONResponse(error_body(err), status_code=422)

    @api.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> JSONResponse:
        messages = {404: "there is no such endpoint; see /v1/docs", 405: "this endpoint does not take that method"}
        err = ApiError(exc.status_code, messages.get(exc.status_code, str(exc.detail)), "http_error")
        return JSONResponse(error_body(err), status_code=exc.status_code)

    @api.get("/models", summary="The model this server speaks with")
    def list_models() -> dict:
        return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "owned_by": "indextts-studio"}]}

    @api.get("/health", summary="Answers while the server runs")
    def health() -> dict:
        return {"status": "ok", "test_model": ctx.is_test_model}

    @api.post("/audio/speech", summary="Speak a text in a saved voice (OpenAI's speech API)",
              response_class=Response,
              responses={200: {"content": {t: {} for t in ("audio/mpeg", "audio/wav", "audio/flac", "audio/ogg",
                                                           "audio/pcm", "text/event-stream")}}})
    async def speech(req: SpeechRequest, request: Request) -> Response:
        text, fmt, clip, options, headers = await anyio.to_thread.run_sync(prepare_speech, req)
        work = _StreamWork(ctx, text, clip, options)
        if not fmt.streamed:
            result = await _whole_take(work, request)
            if result is None:
                return Response(status_code=499)  # nginx's "client closed request": nobody reads it
            headers["X-Audio-Seconds"] = f"{result.seconds:.3f}"
            body = await anyio.to_thread.run_sync(encode_take, result.audio, fmt)
            return Response(body, media_type=fmt.media_type, headers=headers)
        first = await anyio.to_thread.run_sync(work.next)
        if first[0] == "error":  # nothing was sent yet: answer with the right status
            work.close()
            raise first[1]
        sse = req.stream_format == "sse"
        return _TakeResponse(_stream_bytes(first, work, fmt, ctx, sse), work, headers=headers,
                             media_type="text/event-stream" if sse else fmt.media_type)

    def prepare_speech(req: SpeechRequest) -> tuple[str, OutputFormat, str, Any, dict[str, str]]:
        text = req.input
        if not text.strip():
            raise ApiError(400, "input is empty: give the text to speak", "empty_input", "input")
        if len(text) > ctx.settings.max_text_chars:
            raise ApiError(413, f"input is {len(text)} characters long; this server takes at most "
                                f"{ctx.settings.max_text_chars} per request (split it, or use a job)",
                           "input_too_long", "input")
        fmt = output_format(req)
        saved = ctx.saved_voice(voice_name(req.voice))
        options = to_options(req, ctx.saved_voice, saved.emotion, seed=secrets.randbelow(2**31))
        headers = {"X-Seed": str(options.seed), "X-Sample-Rate": str(fmt.sample_rate)}
        if ctx.is_test_model:
            headers["X-Test-Model"] = "true"
        return text, fmt, str(saved.clip), options, headers

    # -- saved voices ---------------------------------------------------------------------------
    def voice_json(v: Any) -> dict[str, Any]:
        emotion = None
        if v.emotion is not None:
            emotion = {"mode": v.emotion.mode, "weight": v.emotion.weight,
                       "vector": None if v.emotion.vector is None else list(v.emotion.vector),
                       "text": v.emotion.text}
        return {"id": v.name, "object": "audio.voice", "name": v.name, "digest": v.digest, "emotion": emotion,
                "created_at": int(v.added)}

    @api.get("/audio/voices", summary="The saved voices")
    def list_voices() -> dict:
        return {"object": "list", "data": [voice_json(v) for v in ctx.voices.list()]}

    @api.get("/audio/voices/{name}", summary="One saved voice")
    def get_voice(name: str) -> dict:
        return voice_json(ctx.saved_voice(name))

    @api.post("/audio/voices", status_code=201, summary="Save a voice clip under a name")
    def add_voice(name: Annotated[str, Form(max_length=200)], audio_sample: Annotated[UploadFile, File()],
                  emotion: Annotated[str | None, Form(description="a default emotion, as the speech `emotion` "
                                                                  "field (a name or a JSON object)")] = None,
                  replace: Annotated[bool, Form()] = False) -> dict:
        default_emotion = _form_emotion(emotion, ctx)
        suffix = Path(audio_sample.filename or "clip.wav").suffix.lower()
        if suffix not in (".wav", ".flac", ".ogg", ".mp3", ".m4a", ".opus"):
            raise ApiError(400, "audio_sample must be a wav, flac, ogg, opus, mp3 or m4a file", "bad_audio",
                           "audio_sample")
        tmp = ctx.voices.folder / f"upload-{secrets.token_hex(8)}{suffix}"
        try:
            with open(tmp, "wb") as f:
                while chunk := audio_sample.file.read(1 << 20):
                    f.write(chunk)
            return voice_json(ctx.voices.save(name, tmp, default_emotion, replace=replace))
        finally:
            tmp.unlink(missing_ok=True)

    @api.delete("/audio/voices/{name}", summary="Forget a saved voice")
    def delete_voice(name: str) -> dict:
        ctx.voices.delete(ctx.saved_voice(name).name)
        return {"id": name, "object": "audio.voice", "deleted": True}

    if ctx.jobs is not None:
        _job_routes(api, ctx)
    api.add_middleware(ApiGuard, ctx=ctx)
    return api


def _job_routes(api: Any, ctx: ApiContext) -> None:
    def names() -> dict[str, str]:
        return ctx.voices.paths()

    def describe(job_id: int, with_items: bool = True) -> dict[str, Any]:
        return job_json(ctx.jobs, job_id, names(), ctx.public, with_items)

    @api.post("/jobs", status_code=201, summary="Queue a job: takes, a batch file, or subtitles to dub")
    def submit_job(req: JobRequest) -> dict:
        job_id = create_job(ctx.jobs, req, ctx.voices, ctx.saved_voice)
        if ctx.runner is not None:
            ctx.runner.submit(job_id)
        return describe(job_id)

    @api.get("/jobs", summary="All jobs, without their items")
    def list_jobs() -> dict:
        return {"object": "list", "data": [describe(j["id"], with_items=False) for j in ctx.jobs.jobs()]}

    @api.get("/jobs/{job_id}", summary="A job's progress and items")
    def get_job(job_id: int) -> dict:
        ctx.job(job_id)
        return describe(job_id)

    @api.post("/jobs/{job_id}/cancel", summary="Cancel the items not made yet (the one being made stops "
                                                "within a segment and is cancelled too)")
    def cancel_job(job_id: int) -> dict:
        ctx.job(job_id)
        stop = getattr(ctx.runner, "stop", None)
        if stop is not None:
            stop(job_id, cancel=True)
        n = ctx.jobs.cancel(job_id)
        return {**describe(job_id, with_items=False), "cancelled": n}

    @api.get("/jobs/{job_id}/result", summary="A finished job: a ZIP of takes, or a dubbing job's track",
             response_class=Response)
    def job_result(job_id: int, format: Literal["zip", "wav", "flac", "mp3"] | None = None) -> Response:
        job = ctx.job(job_id)
        progress = ctx.jobs.progress(job_id)
        if not progress.is_complete:
            raise ApiError(409, f"job {job_id} is not finished ({progress.counts['done']} of {progress.total} "
                                "takes made); ask again when its status is no longer queued or running",
                           "job_not_finished")
        fmt = format or ("wav" if job["kind"] == "dub" else "zip")
        headers = {"Content-Disposition": f'attachment; filename="job-{job_id}.{fmt}"'}
        if fmt == "zip":
            # The manifest's error column may quote an engine message, so it is cleaned like any answer.
            manifest = ctx.public(batch.manifest(ctx.jobs, job_id, names()))
            return Response(zip_files(batch.export_takes(ctx.jobs, job_id), {"manifest.csv": manifest}),
                            media_type="application/zip", headers=headers)
        if job["kind"] != "dub":
            raise ApiError(400, "only a dubbing job has a track; ask for format=zip", "invalid_value", "format")
        track = subtitles.job_track(ctx.jobs, job_id).track
        out = OutputFormat(fmt, SAMPLE_RATE, streamed=False)
        return Response(encode_take(track, out), media_type=out.media_type, headers=headers)


def _form_emotion(raw: str | None, ctx: ApiContext) -> Any:
    if raw is None or not raw.strip():
        return None
    value: Any = raw.strip()
    if value.startswith("{"):
        try:
            value = json.loads(value)
        except ValueError:
            raise ApiError(400, "emotion is not valid JSON", "invalid_value", "emotion") from None
    try:
        req = SpeechRequest(input="-", voice="-", emotion=value)
    except ValueError as e:
        raise ApiError(422, f"emotion: {str(e).splitlines()[-1].strip()}", "invalid_value", "emotion") from None
    return emotion_from_request(req, ctx.saved_voice)


def mount(ctx: ApiContext) -> Any:
    """The API mounted at ``/v1``, ready to put in a Starlette or FastAPI route list."""
    from starlette.routing import Mount

    return Mount(API_PREFIX, app=create_api(ctx))

