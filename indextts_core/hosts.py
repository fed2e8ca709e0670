"""Who a local server answers: the ``Host`` and ``Origin`` rules shared by the page and the API.

A web page can rebind its own domain name to 127.0.0.1 and then send requests to a local
server with its own name in ``Host``; a page of another site names itself in ``Origin``.
Both are refused by the guards built on these helpers.
"""

from __future__ import annotations

from urllib.parse import urlsplit

LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def is_local_host(host: str) -> bool:
    """Whether ``host`` (a bind address or a name) is this computer alone."""
    return host.strip("[]").lower() in LOCAL_HOSTS


def allowed_hosts(bind_host: str) -> frozenset[str] | None:
    """Host names a server bound to ``bind_host`` answers to; ``None`` (any) on every interface."""
    if bind_host in ("0.0.0.0", "::", ""):
        return None
    return LOCAL_HOSTS | {bind_host.strip("[]").lower()}


def hostname(host_header: str) -> str | None:
    """The host name of a ``Host`` header (no port, no brackets); ``None`` when malformed."""
    try:
        return urlsplit("//" + host_header).hostname
    except ValueError:
        return None


def same_origin(origin: str, host_header: str) -> bool:
    """Whether an ``Origin`` names exactly the address the request was sent to."""
    try:
        parts = urlsplit(origin)
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return False
    return parts.netloc.lower() == host_header.lower()
