"""A small stand-in for the Hugging Face Hub, for download tests. Listens on 127.0.0.1 only.

Two HTTP servers share one state, as the real hub and its storage do:
- the "hub" answers ``HEAD``/``GET {endpoint}/{repo}/resolve/{revision}/{file}`` with the headers
  huggingface_hub reads (``X-Repo-Commit``, ``ETag``; for large files a 302 to the storage with
  ``X-Linked-Etag`` = SHA-256 and ``X-Linked-Size``), and the tree API
  ``GET /api/models/{repo}/tree/{revision}/{path}`` with ``Link: rel="next"`` pagination;
- the "cdn" (another port, so another origin) serves the bytes of large files, honouring
  ``Range: bytes=N-``.

Faults for tests: ``cut_once`` (the next transfer of a file stops after the given number of
bytes, and the servers then answer 503 until ``outage`` is reset), ``outage``, ``hold`` (a file's
body waits for an event), ``corrupt`` (one byte changed), ``tree_api`` (off: 404).
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

Key = tuple[str, str]  # (repo_id, path in repo)


@dataclass(frozen=True)
class Seen:
    """One request the fake hub received."""

    server: str  # "hub" | "cdn"
    method: str
    path: str
    headers: dict[str, str]  # lower-case names


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self, files: dict[Key, bytes], lfs_min_size: int = 1000, page_size: int = 4) -> None:
        self.files = dict(files)
        self.lfs_min_size = lfs_min_size
        self.page_size = page_size
        self.commit = "c0ffee" + "0" * 34
        self.requests: list[Seen] = []
        self.cut_once: dict[Key, int] = {}  # file -> bytes sent before the connection drops
        self.outage = False
        self.hold: dict[Key, threading.Event] = {}
        self.corrupt: set[Key] = set()
        self.tree_api = True
        self._lock = threading.Lock()
        self._servers: list[ThreadingHTTPServer] = []

    # -- life cycle

    def start(self) -> FakeHub:
        for role in ("hub", "cdn"):
            server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
            server.daemon_threads = True
            server.fake = self  # type: ignore[attr-defined]
            server.role = role  # type: ignore[attr-defined]
            threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                             daemon=True).start()
            self._servers.append(server)
        return self

    def stop(self) -> None:
        for event in self.hold.values():
            event.set()
        for server in self._servers:
            server.shutdown()
            server.server_close()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_address[1]}"

    @property
    def cdn(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_address[1]}"

    # -- inspection

    def seen(self, server: str | None = None, method: str | None = None) -> list[Seen]:
        with self._lock:
            return [r for r in self.requests
                    if (server is None or r.server == server) and (method is None or r.method == method)]

    def clear(self) -> None:
        with self._lock:
            self.requests.clear()

    def _record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    # -- content

    def is_lfs(self, key: Key) -> bool:
        return len(self.files[key]) >= self.lfs_min_size

    def _by_sha256(self, digest: str) -> Key | None:
        for key, data in self.files.items():
            if hashlib.sha256(data).hexdigest() == digest:
                return key
        return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 5  # idle keep-alive connections end after this many seconds

    def log_message(self, *args) -> None:
        pass

    def do_HEAD(self) -> None:
        self._serve(head=True)

    def do_GET(self) -> None:
        self._serve(head=False)

    # -- plumbing

    @property
    def fake(self) -> FakeHub:
        return self.server.fake  # type: ignore[attr-defined]

    def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None,
               head: bool = False) -> None:
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _serve(self, head: bool) -> None:
        role = self.server.role  # type: ignore[attr-defined]
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake._record(Seen(role, self.command, self.path, headers))
        if self.fake.outage:
            self._reply(503, b"service unavailable", head=head)
        elif role == "cdn":
            self._serve_cdn(head)
        else:
            self._serve_hub(head)

    # -- the hub

    def _serve_hub(self, head: bool) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "tree":
            self._serve_tree(f"{parts[2]}/{parts[3]}", "/".join(parts[6:]), parse_qs(url.query))
        elif len(parts) >= 5 and parts[2] == "resolve":
            self._serve_resolve((f"{parts[0]}/{parts[1]}", "/".join(parts[4:])), parts[3], head)
        else:
            self._reply(404, b"not found", head=head)

    def _serve_resolve(self, key: Key, revision: str, head: bool) -> None:
        fake = self.fake
        if revision not in ("main", fake.commit):
            self._reply(404, b"revision not found", {"X-Error-Code": "RevisionNotFound"}, head)
            return
        if key not in fake.files:
            self._reply(404, b"entry not found",
                        {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": fake.commit}, head)
            return
        data = fake.files[key]
        headers = {"X-Repo-Commit": fake.commit, "ETag": f'"{git_blob_sha1(data)}"'}
        if fake.is_lfs(key):
            digest = hashlib.sha256(data).hexdigest()
            headers.update({"Location": f"{fake.cdn}/cdn/{digest}", "X-Linked-Etag": f'"{digest}"',
                            "X-Linked-Size": str(len(data))})
            self._reply(302, b"", headers, head)
        else:
            self._reply(200, data, headers, head)

    def _serve_tree(self, repo_id: str, folder: str, query: dict[str, list[str]]) -> None:
        fake = self.fake
        if not fake.tree_api:
            self._reply(404, b"no tree api")
            return
        entries = []
        for (repo, path), data in sorted(fake.files.items()):
            if repo == repo_id and path.startswith(folder + "/"):
                entry = {"type": "file", "oid": git_blob_sha1(data), "size": len(data), "path": path}
                if fake.is_lfs((repo, path)):
                    entry["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                                    "pointerSize": 130}
                entries.append(entry)
        start = int(query.get("cursor", ["0"])[0])
        page = entries[start:start + fake.page_size]
        headers = {"Content-Type": "application/json"}
        if start + fake.page_size < len(entries):
            headers["Link"] = (f'<{fake.endpoint}/api/models/{repo_id}/tree/main/{folder}'
                               f'?recursive=true&cursor={start + fake.page_size}>; rel="next"')
        self._reply(200, json.dumps(page).encode(), headers)

    # -- the storage

    def _serve_cdn(self, head: bool) -> None:
        fake = self.fake
        match = re.fullmatch(r"/cdn/([0-9a-f]{64})", self.path)
        key = fake._by_sha256(match.group(1)) if match else None
        if key is None:
            self._reply(404, b"no such blob", head=head)
            return
        data = fake.files[key]
        if key in fake.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        rng = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range", ""))
        start = int(rng.group(1)) if rng else 0
        if start >= len(data) and data:
            self._reply(416, b"", {"Content-Range": f"bytes */{len(data)}"}, head)
            return
        body = data[start:]
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes",
                   "Content-Length": str(len(body))}
        if rng:
            headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
        self.send_response(206 if rng else 200)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if head:
            return
        if key in fake.hold:
            fake.hold[key].wait(timeout=10)
        if key in fake.cut_once:
            cut = fake.cut_once.pop(key)
            fake.outage = True  # later requests fail, so the download run ends here
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)
