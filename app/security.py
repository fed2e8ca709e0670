"""Guards on the app's HTTP surface: a local app is reachable by every program and web page
on the machine, so requests are checked before Gradio sees them.

* ``Host`` must name this computer (or the configured bind address): a page on another
  domain that rebinds its DNS name to 127.0.0.1 sends its own name and is refused.
* A browser request from another site is refused: a foreign ``Origin``, or (for requests
  that carry none, such as ``<img>`` or ``<audio>`` loads) ``Sec-Fetch-Site`` naming another
  site. Only navigating to the page is allowed from anywhere.
* The page's own handlers (history, delete, unload, ...) run only for the page: loading the
  page sets a per-launch key in an ``HttpOnly``, ``SameSite=Strict`` cookie, which browsers
  never send with a request started by another site and which no API client holds. Without
  it, only the documented API endpoints and the routes they need can be reached.

A program that loads the page like a browser receives the key like one; keeping such a
program out would take a secret it cannot read (a password or a token in the address).
"""

from __future__ import annotations

import hmac
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from indextts_core.hosts import hostname, same_origin

log = logging.getLogger(__name__)

API_PREFIX = "/gradio_api"
# The HTTP API (``/v1``, :mod:`indextts_core.server`) checks its own callers (Host, Origin, key, sizes).
HTTP_API_PREFIX = "/v1/"
# POST routes a client without the page key may use; the ones that start a handler are checked
# further against the public API (by name in the path or by ``fn_index`` in the body).
_NAMED_RUN_ROUTES = ("/call/v2/", "/call/", "/run/", "/api/")
_FN_INDEX_ROUTES = frozenset({"/queue/join", "/cancel"})
_OPEN_POST_ROUTES = frozenset({"/upload", "/reset"})
_MAX_JSON_BODY = 8 * 1024 * 1024

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class PublicApi:
    """What a client without the page key may start: handler numbers and API names."""

    fn_indices: frozenset[int]
    api_names: frozenset[str]


def public_api(demo: Any) -> PublicApi:
    """The handlers ``demo`` publishes (``api_visibility="public"``)."""
    fns = [(i, fn) for i, fn in demo.fns.items() if getattr(fn, "api_visibility", "public") == "public"]
    return PublicApi(frozenset(i for i, _ in fns), frozenset(fn.api_name for _, fn in fns if fn.api_name))


def new_page_key() -> str:
    """A fresh per-launch secret for the page cookie."""
    return secrets.token_urlsafe(32)


def _cookies(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            out.setdefault(name, value)
    return out


class LocalOnlyMiddleware:
    """ASGI middleware enforcing the rules in the module docstring.

    ``api`` returns the public handlers; it is a callable because Gradio numbers its handlers
    after the app object is built. ``cookie`` is the page cookie's name (one per port, since
    browsers share cookies between ports of one host) and ``key`` its value.
    """

    def __init__(self, app: ASGIApp, *, hosts: frozenset[str] | None, api: Callable[[], PublicApi],
                 cookie: str, key: str) -> None:
        self.app = app
        self.hosts = hosts
        self.api = api
        self.cookie = cookie
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        refusal = self._site_refusal(scope, headers)
        if refusal is None and not self._has_key(headers):
            refusal, receive = await self._api_refusal(scope, receive)
        if refusal is not None:
            await _refuse(scope, send, *refusal)
            return
        if scope["type"] == "http" and scope.get("method") == "GET" and scope.get("path") in ("/", ""):
            send = self._setting_key(send)
        await self.app(scope, receive, send)

    def _site_refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[str, int] | None:
        host = hostname(headers.get("host", ""))
        if self.hosts is not None and (host is None or host.lower() not in self.hosts):
            return "This app only answers requests addressed to this computer.", 403
        origin = headers.get("origin")
        if origin is not None and not same_origin(origin, headers.get("host", "")):
            return "Requests from other web sites are refused.", 403
        site = headers.get("sec-fetch-site")
        navigating = scope.get("method") == "GET" and headers.get("sec-fetch-mode") == "navigate"
        if site in ("cross-site", "same-site") and not navigating:
            return "Requests from other web sites are refused.", 403
        return None

    def _has_key(self, headers: dict[str, str]) -> bool:
        sent = _cookies(headers.get("cookie", "")).get(self.cookie, "")
        return bool(sent) and hmac.compare_digest(sent.encode(), self.key.encode())

    async def _api_refusal(self, scope: Scope, receive: Receive) -> tuple[tuple[str, int] | None, Receive]:
        """Why a request without the page key is refused (``None``: it is part of the API)."""
        if scope["type"] != "http" or scope.get("method") != "POST":
            return None, receive
        path = scope.get("path", "")
        if path.startswith(HTTP_API_PREFIX):
            return None, receive
        route = path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else path
        private = ("This part of the app belongs to the page and is not part of the API.", 403)
        if route in _OPEN_POST_ROUTES or route.startswith("/stream/"):
            return None, receive
        named = next((p for p in _NAMED_RUN_ROUTES if route.startswith(p)), None)
        if named is None and route not in _FN_INDEX_ROUTES:
            return private, receive
        api = self.api()
        if named is not None and route[len(named):].strip("/") not in api.api_names:
            return private, receive
        body = await _read_body(receive)
        if body is None:
            return ("The request is too large.", 413), receive
        fn = _fn_index(body)
        if fn is not None and fn not in api.fn_indices:
            return private, receive
        return None, _replay(body, receive)

    def _setting_key(self, send: Send) -> Send:
        cookie = f"{self.cookie}={self.key}; Path=/; HttpOnly; SameSite=Strict".encode("latin-1")

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), (b"set-cookie", cookie)]}
            await send(message)

        return wrapped


def _fn_index(body: bytes) -> int | None:
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        return None  # Gradio answers malformed bodies itself.
    fn = data.get("fn_index") if isinstance(data, dict) else None
    return fn if isinstance(fn, int) else None


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > _MAX_JSON_BODY:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """``receive`` again, starting with the body already read from it."""
    sent = False

    async def replayed() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # what follows the body: the client's disconnect

    return replayed


async def _refuse(scope: Scope, send: Send, text: str, status: int) -> None:
    log.warning("refused %s %s: %s", scope.get("method", scope["type"]), scope.get("path"), text)
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008})
        return
    body = json.dumps({"error": text}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
