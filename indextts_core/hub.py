"""Fetching one file of the model folder from a Hugging Face Hub (or the mirror named by ``HF_ENDPOINT``).

huggingface_hub's ``hf_hub_download`` cannot place a file under another name
(``semantic_codec/model.safetensors`` must become ``hf_cache/semantic_codec_model.safetensors``)
and, in current releases (2.4 here), it writes into a process-unique temporary file that it deletes
when the transfer fails, so an interrupted 3.5 GB file would start again from zero. We therefore
drive huggingface_hub's own building blocks: ``get_hf_file_metadata`` (the HEAD on ``/resolve/``:
size, ETag, commit, CDN redirect, token handling) and ``http_get`` (the GET, with its retries, Range
requests and terminal progress bar); ``tests/test_hub_api.py`` fails if the pinned releases change
them. The bytes go to the partial file of :func:`indextts_core.model_folder.partial_path`, which
survives a failure or a killed process; the next run sends a Range request for the rest. A finished
file is checked (size, and SHA-256 when the hub's ETag is one, as it is for LFS files), then renamed
onto its final path.

Files already in a local Hugging Face cache are linked or copied from there instead.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import importlib
import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from huggingface_hub import get_hf_file_metadata, try_to_load_from_cache
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import (
    OfflineModeIsEnabled,
    build_hf_headers,
    get_session,
    hf_raise_for_status,
)

from .errors import IndexTTSError
from .files import sha256_file
from .layout import RemoteFile, RemoteFolder
from .model_folder import format_bytes, partial_dir, partial_files, partial_path

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
_LIBRARY = "indextts-studio"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_LIST_PAGES = 100


def endpoint_from_env(endpoint: str | None = None) -> str:
    """``endpoint``, else ``$HF_ENDPOINT``, else huggingface.co; without a trailing slash."""
    return (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")


class DownloadCancelled(IndexTTSError):
    """A download was stopped on request; what was fetched so far is kept for the next run."""


class _CountingFile:
    """The partial file as handed to ``http_get``: reports growth and honours cancellation."""

    def __init__(self, raw, on_size: Callable[[int], None], cancel: threading.Event | None) -> None:
        self._raw = raw
        self._on_size = on_size
        self._cancel = cancel

    def write(self, data: bytes) -> int:
        if self._cancel is not None and self._cancel.is_set():
            raise DownloadCancelled("download cancelled")
        n = self._raw.write(data)
        self._on_size(self._raw.tell())
        return n

    def __getattr__(self, name: str):
        return getattr(self._raw, name)


@dataclass(frozen=True)
class Hub:
    """One hub endpoint with the token and timeout its requests carry."""

    endpoint: str
    token: str | None
    timeout: float

    @staticmethod
    def from_env(endpoint: str | None) -> Hub:
        endpoint = endpoint_from_env(endpoint)
        try:
            timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or 10)
        except ValueError:
            timeout = 10.0
        return Hub(endpoint, os.environ.get("HF_TOKEN") or None, timeout)

    def headers(self) -> dict[str, str]:
        return build_hf_headers(token=self.token, library_name=_LIBRARY)

    def resolve_url(self, repo_id: str, revision: str, filename: str) -> str:
        return f"{self.endpoint}/{repo_id}/resolve/{quote(revision, safe='')}/{quote(filename)}"

    def list_folder(self, folder: RemoteFolder) -> list[tuple[str, int | None]]:
        """(path in repo, size) of every file under ``folder.prefix``, via the tree API."""
        url = (f"{self.endpoint}/api/models/{folder.repo_id}/tree/{quote(folder.revision, safe='')}/"
               f"{quote(folder.prefix.rstrip('/'))}")
        params: dict[str, str] | None = {"recursive": "true"}
        found: list[tuple[str, int | None]] = []
        for _ in range(_MAX_LIST_PAGES):
            response = get_session().get(url, params=params, headers=self.headers(), timeout=self.timeout)
            hf_raise_for_status(response)
            for entry in response.json():
                path = entry.get("path", "")
                if entry.get("type") == "file" and path.startswith(folder.prefix) and _safe_relpath(path):
                    size = (entry.get("lfs") or {}).get("size", entry.get("size"))
                    found.append((path, size if isinstance(size, int) else None))
            url = (response.links.get("next") or {}).get("url")
            if not url:
                return found
            params = None  # the next-page link carries its own query
        raise _NotAHubError(f"listing {folder.repo_id}:{folder.prefix} did not end after "
                            f"{_MAX_LIST_PAGES} pages")


def _safe_relpath(path: str) -> bool:
    parts = path.split("/")
    return not path.startswith("/") and ".." not in parts and "" not in parts and "\\" not in path


def _same_origin(a: str, b: str) -> bool:
    def origin(url: str) -> tuple[str, str, int | None]:
        s = urlsplit(url)
        return s.scheme, (s.hostname or "").lower(), s.port or {"http": 80, "https": 443}.get(s.scheme)
    return origin(a) == origin(b)


class _NotAHubError(OSError):
    """The endpoint answered, but not like a Hugging Face Hub."""


class _ChecksumError(OSError):
    """A downloaded file does not match the hub's SHA-256."""


class _DiskFullError(OSError):
    """Not enough free space for the next file."""


# Errors of the local disk, as opposed to the network.
_LOCAL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR,
                 errno.ENOTDIR}


@functools.lru_cache(maxsize=1)
def transfer_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the files could not be fetched" (network, HTTP, local disk).

    Most are ``OSError`` subclasses (huggingface_hub's HTTP errors, ``requests``' errors); the
    httpx-family transport errors of newer huggingface_hub releases are not.
    """
    kinds: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            kinds.append(importlib.import_module(name).HTTPError)
    return tuple(kinds)


def describe_error(err: BaseException, endpoint: str) -> str:
    """One line saying why a transfer failed, in the user's terms."""
    status = getattr(getattr(err, "response", None), "status_code", None)
    first = (str(err).strip().splitlines() or [type(err).__name__])[0]
    if isinstance(err, OfflineModeIsEnabled):
        return ("huggingface_hub is in offline mode (HF_HUB_OFFLINE was set when the program "
                "started)")
    if status in (401, 403):
        return (f"{endpoint} refused access (HTTP {status}); if the repository needs a login, set "
                "HF_TOKEN to a Hugging Face access token")
    if status == 404:
        return f"the server does not have this file (HTTP 404; a mirror may lack it): {first}"
    if status is not None:
        return f"the server answered HTTP {status}: {first}"
    if isinstance(err, (_NotAHubError, _ChecksumError, _DiskFullError)):
        return first
    if isinstance(err, OSError) and err.errno in _LOCAL_ERRNOS:
        return f"could not write to the model folder: {first}"
    return f"could not reach {endpoint}: {first}"


def offline_from_env() -> bool:
    from huggingface_hub import constants

    env = any(os.environ.get(k, "").strip().upper() in ("1", "ON", "YES", "TRUE")
              for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    # huggingface_hub fixes its own flag at import; when it is on, it refuses every request.
    return env or bool(getattr(constants, "HF_HUB_OFFLINE", False))


def hf_cache_dirs(model_dir: Path) -> list[Path]:
    """Hugging Face caches that may already hold a file: the official code's older layout under
    ``<model_dir>/hf_cache``, and the user's hub cache."""
    env = os.environ
    if env.get("HF_HUB_CACHE"):
        hub = Path(env["HF_HUB_CACHE"])
    elif env.get("HF_HOME"):
        hub = Path(env["HF_HOME"]) / "hub"
    else:
        hub = Path(env.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface" / "hub"
    return [model_dir / "hf_cache", hub.expanduser()]


def find_in_hf_cache(f: RemoteFile, cache_dirs: Sequence[Path]) -> Path | None:
    for cache in cache_dirs:
        if not (cache / f"models--{f.repo_id.replace('/', '--')}").is_dir():
            continue
        hit = try_to_load_from_cache(f.repo_id, f.filename, cache_dir=str(cache), revision=f.revision)
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def place_from_cache(src: Path, model_dir: Path, local: str) -> None:
    """Hard-link (or copy) a cached file to its final path, atomically."""
    final = model_dir / local
    tmp = partial_dir(model_dir, local) / f"{Path(local).name}.{os.getpid()}.copying"
    tmp.parent.mkdir(parents=True, exist_ok=True)
    tmp.unlink(missing_ok=True)
    try:
        try:
            os.link(os.path.realpath(src), tmp)
        except OSError:  # another file system, or no hard links there
            shutil.copyfile(src, tmp)
        final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


def download_file(f: RemoteFile, model_dir: Path, hub: Hub,
                   report: Callable[[str, int, int | None], None], cancel: threading.Event | None) -> None:
    """Fetch one file to its final path, continuing a partial download if there is one."""
    report("checking", 0, None)
    url = hub.resolve_url(f.repo_id, f.revision, f.filename)
    meta = get_hf_file_metadata(url, token=hub.token, timeout=hub.timeout, library_name=_LIBRARY)
    if meta.commit_hash is None or meta.etag is None:
        raise _NotAHubError(f"{url} answered without the Hub's X-Repo-Commit/ETag headers: "
                            "HF_ENDPOINT does not point at a Hugging Face Hub or mirror")
    size = meta.size
    part = partial_path(model_dir, f.local, meta.etag)
    part.parent.mkdir(parents=True, exist_ok=True)
    for stale in partial_files(model_dir, f.local):
        if stale != part:
            stale.unlink(missing_ok=True)
    have = part.stat().st_size if part.exists() else 0
    if size is not None and have > size:
        part.unlink()
        have = 0
    if size is not None:
        free = shutil.disk_usage(part.parent).free
        if free < size - have:
            raise _DiskFullError(f"not enough free disk space for {f.local}: it needs "
                                 f"{format_bytes(size - have)}, {part.parent} has {format_bytes(free)}")
    headers = hub.headers()
    if not _same_origin(url, meta.location):
        headers.pop("authorization", None)  # never hand the token to a CDN
    if have:
        log.info("continuing %s at byte %d of %s", f.local, have, size)
    report("downloading", have, size)
    with open(part, "ab") as raw:
        if size is None or have < size:
            sink = _CountingFile(raw, lambda done: report("downloading", done, size), cancel)
            http_get(meta.location, sink, resume_size=have, headers=headers, expected_size=size,
                     displayed_filename=f.local)
        raw.flush()
        os.fsync(raw.fileno())
    got = part.stat().st_size
    if size is not None and got != size:
        raise _ChecksumError(f"{f.local}: got {got} bytes, the hub announced {size}")
    if _SHA256.fullmatch(meta.etag):
        report("verifying", got, size)
        digest = sha256_file(part)
        if digest != meta.etag:
            part.unlink()
            raise _ChecksumError(f"{f.local} does not match the hub's SHA-256 (got {digest[:12]}…, "
                                 f"expected {meta.etag[:12]}…); the download was deleted, run it again")
    final = model_dir / f.local
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(part, final)
    report("done", got, got)
