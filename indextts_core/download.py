"""Getting the IndexTTS-2 weights into a model folder, and telling what is already there.

``model_status`` looks at the disk only (stat calls, no hashing). ``ensure_model`` fills in what is
missing from the Hugging Face Hub (or the mirror named by ``HF_ENDPOINT``) and returns the folder;
a folder that is already complete is returned without any network access. ``DownloadJob`` runs
``ensure_model`` in a background thread for the UI and keeps a snapshot of its progress.

How a file is fetched. huggingface_hub's ``hf_hub_download`` cannot place a file under another name
(``semantic_codec/model.safetensors`` must become ``hf_cache/semantic_codec_model.safetensors``)
and, in current releases (2.4 here), it writes into a process-unique temporary file that it deletes
when the transfer fails, so an interrupted 3.5 GB file would start again from zero. We therefore
drive huggingface_hub's own building blocks: ``get_hf_file_metadata`` (the HEAD on ``/resolve/``:
size, ETag, commit, CDN redirect, token handling) and ``http_get`` (the GET, with its retries, Range
requests and terminal progress bar). The bytes go to
``<model_dir>/.download/<path in the folder>.<etag>.incomplete``, which survives a failure or a
killed process; the next run sends a Range request for the rest. A finished file is checked
(size, and SHA-256 when the hub's ETag is one, as it is for LFS files), then renamed onto its final
path, so a file at its final path is always complete.

Environment read at call time: ``HF_ENDPOINT`` (e.g. https://hf-mirror.com), ``HF_HUB_OFFLINE``,
``HF_TOKEN``, ``HF_HUB_ETAG_TIMEOUT``, ``HF_HUB_CACHE``/``HF_HOME`` (files already in a Hugging Face
cache are linked or copied from there instead of downloaded) and ``INDEXTTS_MODEL_DIR``.
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
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

from filelock import FileLock, Timeout
from huggingface_hub import get_hf_file_metadata, try_to_load_from_cache
from huggingface_hub.file_download import http_get
from huggingface_hub.utils import (
    HfHubHTTPError,
    OfflineModeIsEnabled,
    build_hf_headers,
    get_session,
    hf_raise_for_status,
)

from . import layout
from .errors import IndexTTSError, InvalidOptionError, ModelNotFoundError
from .files import sha256_file
from .layout import RemoteFile, RemoteFolder

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
MIRROR_ENDPOINT = "https://hf-mirror.com"
PARTIAL_DIR = ".download"
_PARTIAL_SUFFIX = ".incomplete"
_LIBRARY = "indextts-studio"
_LFS_POINTER = b"version https://git-lfs"
_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_LIST_PAGES = 100


class DownloadCancelled(IndexTTSError):
    """A download was stopped on request; what was fetched so far is kept for the next run."""


# ----------------------------------------------------------------------------------------------
# Where the model folder is


def default_model_dir() -> Path:
    """``$INDEXTTS_MODEL_DIR`` if set, else ``<user cache>/indextts-studio/IndexTTS-2``.

    The user cache is ``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux and macOS, ``%LOCALAPPDATA%``
    on Windows.
    """
    return _default_model_dir(os.environ, sys.platform)


def _default_model_dir(environ: Mapping[str, str], platform: str) -> Path:
    explicit = environ.get("INDEXTTS_MODEL_DIR")
    if explicit:
        return Path(explicit).expanduser()
    if platform.startswith("win"):
        root = environ.get("LOCALAPPDATA") or str(Path.home() / "AppData" / "Local")
    else:
        root = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root).expanduser() / "indextts-studio" / "IndexTTS-2"


def _resolve_dir(model_dir: str | Path | None) -> Path:
    return default_model_dir() if model_dir is None else Path(model_dir).expanduser()


def _check_groups(groups: Sequence[str]) -> tuple[str, ...]:
    if isinstance(groups, str):
        groups = (groups,)
    unknown = [g for g in groups if g not in layout.GROUPS]
    if unknown or not groups:
        raise InvalidOptionError(f"unknown model file group(s) {unknown}; choose from {layout.GROUPS}")
    return tuple(dict.fromkeys(groups))


# ----------------------------------------------------------------------------------------------
# What is on disk


@dataclass(frozen=True)
class FileStatus:
    """One expected file of the model folder, as found on disk."""

    local: str  # path inside the model folder, e.g. "hf_cache/bigvgan/config.json"
    path: Path  # full path
    repo_id: str
    filename: str  # path inside the hub repository
    group: str
    state: str  # "present" | "partial" | "missing" | "lfs-pointer"
    size: int  # bytes on disk: the file itself, or the partial download
    expected: int  # approximate size on the hub

    @property
    def present(self) -> bool:
        return self.state == "present"

    @property
    def remaining(self) -> int:
        """Approximate bytes still to download."""
        if self.present:
            return 0
        return max(self.expected - (self.size if self.state == "partial" else 0), 0)


@dataclass(frozen=True)
class ModelStatus:
    """What a model folder holds, per file and per group."""

    model_dir: Path
    groups: tuple[str, ...]
    files: tuple[FileStatus, ...]
    is_test_model: bool
    complete: Mapping[str, bool]  # group -> every file of the group is present

    @property
    def all_complete(self) -> bool:
        return all(self.complete.values())

    def missing(self, group: str | None = None) -> list[FileStatus]:
        """Files not (completely) on disk, of one group or of all groups."""
        return [f for f in self.files if not f.present and (group is None or f.group == group)]

    @property
    def bytes_on_disk(self) -> int:
        return sum(f.size for f in self.files if f.state in ("present", "partial"))

    @property
    def bytes_to_download(self) -> int:
        """Approximate bytes still to fetch (partial downloads count what is left)."""
        return sum(f.remaining for f in self.files)

    def table(self) -> str:
        """A plain-text table for terminals and logs."""
        head = f"Model folder: {self.model_dir}"
        if self.is_test_model:
            head += "\n(a tiny random-weight test model: it produces noise, not speech)"
        width = max([len(f.local) for f in self.files] + [4])
        rows = [f"  {'state':<11} {'on disk':>9} / {'expected':<9}  {'file':<{width}}  from"]
        for f in self.files:
            on_disk = format_bytes(f.size) if f.state != "missing" else "-"
            rows.append(f"  {f.state:<11} {on_disk:>9} / {format_bytes(f.expected, approx=True):<9}"
                        f"  {f.local:<{width}}  {f.repo_id} : {f.filename}")
        summary = []
        for group in self.groups:
            missing = self.missing(group)
            if not missing:
                summary.append(f"{group}: complete")
            else:
                left = sum(f.remaining for f in missing)
                summary.append(f"{group}: {len(missing)} file(s) missing, about {format_bytes(left)} "
                               "to download")
        return "\n".join([head, *rows, "; ".join(summary)])


def model_status(model_dir: str | Path | None = None,
                 groups: Sequence[str] = ("core", "emotion_text")) -> ModelStatus:
    """List every expected file of ``groups`` in ``model_dir`` (default: ``default_model_dir()``).

    Cheap: only ``stat`` calls, plus reading the first bytes of suspiciously small weight files to
    spot Git LFS pointers (what ``git clone`` without git-lfs leaves behind).
    """
    from .tiny import is_test_model

    model_dir = _resolve_dir(model_dir)
    groups = _check_groups(groups)
    files = tuple(_file_status(model_dir, f) for f in layout.files_of(groups))
    complete = {g: all(f.present for f in files if f.group == g) for g in groups}
    return ModelStatus(model_dir, groups, files, is_test_model(model_dir), complete)


def _file_status(model_dir: Path, f: RemoteFile) -> FileStatus:
    path = model_dir / f.local
    state, size = "missing", 0
    try:
        st = path.stat()
    except OSError:
        partials = _partials(model_dir, f.local)
        if partials:
            state, size = "partial", max(p.stat().st_size for p in partials)
    else:
        state, size = "present", st.st_size
        if size < 512 and f.approx_bytes > 100_000 and _is_lfs_pointer(path):
            state = "lfs-pointer"
    return FileStatus(f.local, path, f.repo_id, f.filename, f.group, state, size, f.approx_bytes)


def _is_lfs_pointer(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_LFS_POINTER)) == _LFS_POINTER
    except OSError:
        return False


def _partial_dir(model_dir: Path, local: str) -> Path:
    return model_dir / PARTIAL_DIR / Path(local).parent


def _partials(model_dir: Path, local: str) -> list[Path]:
    """Partial downloads of ``local`` (one per hub version of the file, normally at most one)."""
    folder = _partial_dir(model_dir, local)
    prefix = Path(local).name + "."
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries
                    if e.name.startswith(prefix) and e.name.endswith(_PARTIAL_SUFFIX) and e.is_file()]
    except OSError:
        return []


def _partial_path(model_dir: Path, local: str, etag: str) -> Path:
    # Keyed by the hub's ETag: bytes of an older version of the file are never continued.
    tag = re.sub(r"[^0-9A-Za-z]", "", etag)[:16] or "noetag"
    return _partial_dir(model_dir, local) / f"{Path(local).name}.{tag}{_PARTIAL_SUFFIX}"


def format_bytes(n: int | float, approx: bool = False) -> str:
    """Decimal units, as the hub shows sizes: 3.48 GB, 476 kB."""
    prefix = "~" if approx else ""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{prefix}{value:.{digits}f} {unit}"
    return f"{prefix}{int(n)} B"


# ----------------------------------------------------------------------------------------------
# Progress


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report of ``ensure_model`` about the file it is working on."""

    local: str  # path inside the model folder
    repo_id: str
    filename: str  # path inside the hub repository
    done: int  # bytes of this file on disk so far (resumed bytes included)
    total: int | None  # its size on the hub, None until known
    speed: float  # bytes per second over the last few seconds; 0.0 until measurable
    status: str  # "checking" | "copying" | "downloading" | "verifying" | "done"
    index: int  # 1-based position among the files this call fetches
    count: int  # how many files this call fetches


class _SpeedMeter:
    """Bytes per second over a sliding window of recent samples."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_s = window_s
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, done: int, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        if self.samples and done < self.samples[-1][1]:
            self.samples.clear()  # the transfer restarted (the server ignored our Range request)
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window_s:
            self.samples.popleft()
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0


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


# ----------------------------------------------------------------------------------------------
# Talking to the hub


@dataclass(frozen=True)
class _Hub:
    endpoint: str
    token: str | None
    timeout: float

    @staticmethod
    def from_env(endpoint: str | None) -> _Hub:
        endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).strip().rstrip("/")
        try:
            timeout = float(os.environ.get("HF_HUB_ETAG_TIMEOUT") or 10)
        except ValueError:
            timeout = 10.0
        return _Hub(endpoint, os.environ.get("HF_TOKEN") or None, timeout)

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
def _transfer_errors() -> tuple[type[BaseException], ...]:
    """Exceptions that mean "the files could not be fetched" (network, HTTP, local disk).

    Most are ``OSError`` subclasses (huggingface_hub's HTTP errors, ``requests``' errors); the
    httpx-family transport errors of newer huggingface_hub releases are not.
    """
    kinds: list[type[BaseException]] = [OSError]
    for name in ("httpx2", "httpx"):
        with contextlib.suppress(ImportError):
            kinds.append(importlib.import_module(name).HTTPError)
    return tuple(kinds)


def _describe(err: BaseException, endpoint: str) -> str:
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


# ----------------------------------------------------------------------------------------------
# The user-facing message for missing files


def missing_files_help(model_dir: Path, missing: Sequence[FileStatus], endpoint: str | None = None,
                       reason: str | None = None, offline: bool = False) -> str:
    """What is missing, where each file comes from and goes, and what the user can do.

    Used for ``ModelNotFoundError`` messages, and by the UI for its "what to do" panel.
    """
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")
    total = sum(f.remaining for f in missing)
    lines = [f"IndexTTS-2 model files are missing in {model_dir}"
             + (" and could not be downloaded." if reason else ".")]
    if reason:
        lines.append(f"Reason: {reason}")
    lines.append(f"Missing ({len(missing)} file(s), about {format_bytes(total)} to download):")
    for f in missing:
        note = " (a Git LFS pointer, not the weights)" if f.state == "lfs-pointer" else ""
        note = f" ({format_bytes(f.size)} downloaded so far)" if f.state == "partial" else note
        lines += [f"  {f.local}  ~{format_bytes(f.expected)}{note}",
                  f"      hub file:   {f.repo_id} : {f.filename}",
                  f"      direct URL: {endpoint}/{f.repo_id}/resolve/main/{quote(f.filename)}",
                  f"      put it at:  {f.path}"]
    lines += [
        "What you can do:",
        f"  - Download them: python -m indextts_core download --model-dir {model_dir}",
        "    (an interrupted download continues where it stopped when run again).",
        "  - If huggingface.co is blocked or slow where you are, use a mirror: set the environment",
        f"    variable HF_ENDPOINT={MIRROR_ENDPOINT} and run the download again.",
        "  - Without internet on this machine: fetch the files elsewhere (browser, or",
        "    `hf download <repo> <file>`) and copy each one to the path shown above.",
        "  - To use a model folder elsewhere: pass --model-dir DIR (or set INDEXTTS_MODEL_DIR).",
    ]
    if offline:
        lines.append("  - Offline mode is on: unset HF_HUB_OFFLINE (or drop --offline) to allow downloads.")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------
# Fetching


def _offline_from_env() -> bool:
    from huggingface_hub import constants

    env = any(os.environ.get(k, "").strip().upper() in ("1", "ON", "YES", "TRUE")
              for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))
    # huggingface_hub fixes its own flag at import; when it is on, it refuses every request.
    return env or bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _hf_cache_dirs(model_dir: Path) -> list[Path]:
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


def _find_in_hf_cache(f: RemoteFile, cache_dirs: Sequence[Path]) -> Path | None:
    for cache in cache_dirs:
        if not (cache / f"models--{f.repo_id.replace('/', '--')}").is_dir():
            continue
        hit = try_to_load_from_cache(f.repo_id, f.filename, cache_dir=str(cache), revision=f.revision)
        if isinstance(hit, str) and os.path.isfile(hit):
            return Path(hit)
    return None


def _place_from_cache(src: Path, model_dir: Path, local: str) -> None:
    """Hard-link (or copy) a cached file to its final path, atomically."""
    final = model_dir / local
    tmp = _partial_dir(model_dir, local) / f"{Path(local).name}.{os.getpid()}.copying"
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


def _download_file(f: RemoteFile, model_dir: Path, hub: _Hub,
                   report: Callable[[str, int, int | None], None], cancel: threading.Event | None) -> None:
    """Fetch one file to its final path, continuing a partial download if there is one."""
    report("checking", 0, None)
    url = hub.resolve_url(f.repo_id, f.revision, f.filename)
    meta = get_hf_file_metadata(url, token=hub.token, timeout=hub.timeout, library_name=_LIBRARY)
    if meta.commit_hash is None or meta.etag is None:
        raise _NotAHubError(f"{url} answered without the Hub's X-Repo-Commit/ETag headers: "
                            "HF_ENDPOINT does not point at a Hugging Face Hub or mirror")
    size = meta.size
    part = _partial_path(model_dir, f.local, meta.etag)
    part.parent.mkdir(parents=True, exist_ok=True)
    for stale in _partials(model_dir, f.local):
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


@contextlib.contextmanager
def _exclusive(model_dir: Path) -> Iterator[None]:
    """One downloader per model folder (two would append to the same partial files)."""
    lock_path = model_dir / PARTIAL_DIR / "lock"
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(lock_path))
        lock.acquire(timeout=0)
    except Timeout:
        raise ModelNotFoundError(f"another download into {model_dir} is running (lock file "
                                 f"{lock_path}); wait for it to finish") from None
    except OSError as err:
        raise ModelNotFoundError(f"cannot write to the model folder {model_dir}: {err}; pick a "
                                 "writable folder with --model-dir DIR (or INDEXTTS_MODEL_DIR)") from err
    try:
        yield
    finally:
        lock.release()


def ensure_model(model_dir: str | Path | None = None, groups: Sequence[str] = ("core",),
                 progress: Callable[[DownloadProgress], None] | None = None,
                 offline: bool | None = None, *, endpoint: str | None = None,
                 cancel: threading.Event | None = None) -> Path:
    """Make sure ``model_dir`` holds every file of ``groups``; download what is missing.

    ``model_dir`` defaults to ``default_model_dir()``. A folder that is already complete is
    returned at once, without network access. Missing files are first looked for in local Hugging
    Face caches, then downloaded from ``endpoint`` (default ``$HF_ENDPOINT`` or huggingface.co),
    unless ``offline`` (default: ``$HF_HUB_OFFLINE``). ``progress`` is called with a
    ``DownloadProgress`` as each file is checked, grows (about every 10 MB, huggingface_hub's
    chunk size) and completes. Setting ``cancel`` stops the download with ``DownloadCancelled``,
    keeping the partial file for the next run.

    Raises ``ModelNotFoundError`` when files are missing and cannot be fetched; its message lists
    each file, its hub origin and its full local path, and what to do.
    """
    model_dir = _resolve_dir(model_dir)
    groups = _check_groups(groups)
    status = model_status(model_dir, groups)
    if status.all_complete:
        return model_dir
    hub = _Hub.from_env(endpoint)
    if status.is_test_model:
        raise ModelNotFoundError(
            f"{model_dir} is the tiny test model but lacks files; rebuild it with "
            f"`python -m indextts_core make-test-model {model_dir}` (real weights are not mixed into it)\n"
            + missing_files_help(model_dir, status.missing(), hub.endpoint))
    offline = _offline_from_env() if offline is None else offline
    # Files already in a local Hugging Face cache cost no download (and work offline).
    caches = _hf_cache_dirs(model_dir)
    by_local = {f.local: f for f in layout.files_of(groups)}
    cached = [(by_local[fs.local], src) for fs in status.missing()
              if (src := _find_in_hf_cache(by_local[fs.local], caches)) is not None]
    if offline and not cached:
        raise _offline_error(status, hub)

    with _exclusive(model_dir):
        for i, (f, src) in enumerate(cached, 1):
            log.info("using %s from the Hugging Face cache (%s)", f.local, src)
            _notify(progress, f, "copying", 0, None, 0.0, i, len(cached))
            _place_from_cache(src, model_dir, f.local)
            size = (model_dir / f.local).stat().st_size
            _notify(progress, f, "done", size, size, 0.0, i, len(cached))
        status = model_status(model_dir, groups)
        if status.all_complete:
            return model_dir
        if offline:
            raise _offline_error(status, hub)
        if not hub.endpoint.startswith(("http://", "https://")):
            raise ModelNotFoundError(missing_files_help(
                model_dir, status.missing(), hub.endpoint,
                reason=f"HF_ENDPOINT={hub.endpoint!r} must start with https:// (or http://)"))

        current = "the file list"
        try:
            plan = _plan(model_dir, groups, status, hub)
            for i, f in enumerate(plan, 1):
                if cancel is not None and cancel.is_set():
                    raise DownloadCancelled("download cancelled")
                current = f.local
                meter = _SpeedMeter()

                def report(state: str, done: int, total: int | None, f: RemoteFile = f, i: int = i,
                           meter: _SpeedMeter = meter) -> None:
                    speed = meter.add(done) if state == "downloading" else 0.0
                    _notify(progress, f, state, done, total, speed, i, len(plan))

                _download_file(f, model_dir, hub, report, cancel)
        except (DownloadCancelled, ModelNotFoundError):
            raise
        except _transfer_errors() as err:
            now = model_status(model_dir, groups)
            raise ModelNotFoundError(missing_files_help(
                model_dir, now.missing(), hub.endpoint,
                reason=f"while fetching {current}: {_describe(err, hub.endpoint)}",
                offline=isinstance(err, OfflineModeIsEnabled))) from err

    final = model_status(model_dir, groups)
    if not final.all_complete:
        raise ModelNotFoundError(missing_files_help(
            model_dir, final.missing(), hub.endpoint,
            reason=f"{hub.endpoint} does not provide these files (absent from the repository listing)"))
    _remove_empty_partial_dirs(model_dir)
    return model_dir


def _offline_error(status: ModelStatus, hub: _Hub) -> ModelNotFoundError:
    return ModelNotFoundError(missing_files_help(
        status.model_dir, status.missing(), hub.endpoint, offline=True,
        reason="offline mode is on (HF_HUB_OFFLINE=1 or --offline), so nothing was downloaded"))


def _notify(progress: Callable[[DownloadProgress], None] | None, f: RemoteFile, state: str, done: int,
            total: int | None, speed: float, index: int, count: int) -> None:
    if progress is not None:
        progress(DownloadProgress(f.local, f.repo_id, f.filename, done, total, speed, state, index, count))


def _plan(model_dir: Path, groups: tuple[str, ...], status: ModelStatus, hub: _Hub) -> list[RemoteFile]:
    """The files to download: the missing ones, plus what a whole-folder listing adds."""
    missing = {fs.local for fs in status.missing()}
    plan = [f for f in layout.files_of(groups) if f.local in missing]
    for folder in layout.folders_of(groups):
        required = [f for f in plan if f.local.startswith(folder.local + "/")]
        if not required:
            continue  # the folder's needed files are all here: no listing, no extras
        try:
            listed = hub.list_folder(folder)
        except HfHubHTTPError as err:
            # Some mirrors lack the tree API; the known files can still be fetched one by one.
            log.warning("could not list %s:%s (%s); fetching the known files only",
                        folder.repo_id, folder.prefix, _describe(err, hub.endpoint))
            continue
        names = {path for path, _ in listed}
        # A required file the hub does not list is left missing; the final check reports it.
        plan = [f for f in plan if f not in required or f.filename in names]
        known = {f.filename for f in layout.FILES}
        for path, size in listed:
            local = folder.local_of(path)
            if path not in known and not (model_dir / local).exists():
                plan.append(RemoteFile(local, folder.repo_id, path, size or 0, folder.group, folder.revision))
    return plan


def _remove_empty_partial_dirs(model_dir: Path) -> None:
    root = model_dir / PARTIAL_DIR
    if not root.is_dir():
        return
    for folder in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts),
                         reverse=True):
        with contextlib.suppress(OSError):
            folder.rmdir()


# ----------------------------------------------------------------------------------------------
# Background downloads for the UI


@dataclass(frozen=True)
class FileProgress:
    """One file in a ``JobSnapshot``."""

    local: str
    repo_id: str
    filename: str
    done: int
    total: int  # hub size when known, else the approximate size
    state: str  # "waiting" | "checking" | "copying" | "downloading" | "verifying" | "done"


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent view of a ``DownloadJob`` at one moment."""

    state: str  # "idle" | "running" | "done" | "failed" | "cancelled"
    files: tuple[FileProgress, ...]
    current: str | None  # local path of the file being worked on
    bytes_done: int  # of all files, including those already on disk before the job
    bytes_total: int
    speed: float  # bytes per second
    eta_s: float | None  # seconds left at the current speed, None when unknown
    error: str | None

    @property
    def fraction(self) -> float:
        return min(self.bytes_done / self.bytes_total, 1.0) if self.bytes_total else 1.0


class DownloadJob:
    """``ensure_model`` in a background thread, with progress snapshots for a UI to poll.

    >>> job = DownloadJob(model_dir, groups=("core",)).start()
    >>> job.snapshot().fraction   # poll from the UI
    >>> job.wait(); job.error     # None once the folder is complete

    The thread is a daemon: quitting the app leaves a partial file that the next job continues.
    """

    def __init__(self, model_dir: str | Path | None = None, groups: Sequence[str] = ("core",),
                 offline: bool | None = None, endpoint: str | None = None) -> None:
        self.model_dir = _resolve_dir(model_dir)
        self.groups = _check_groups(groups)
        self.offline = offline
        self.endpoint = endpoint
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self._state = "idle"
        self._files: dict[str, FileProgress] = {}
        self._current: str | None = None
        self._speed = 0.0
        self._error: BaseException | None = None

    def start(self) -> DownloadJob:
        """Start the download (once; later calls do nothing). Returns the job."""
        with self._lock:
            if self._thread is not None:
                return self
            status = model_status(self.model_dir, self.groups)
            for f in status.files:
                done = f.size if f.state in ("present", "partial") else 0
                total = f.size if f.present else f.expected
                self._files[f.local] = FileProgress(f.local, f.repo_id, f.filename, done, total,
                                                    "done" if f.present else "waiting")
            self._state = "running"
            self._thread = threading.Thread(target=self._run, name="indextts-model-download", daemon=True)
            self._thread.start()
        return self

    def cancel(self) -> None:
        """Stop at the next chunk; the partial file stays for the next run."""
        self._cancel.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the job to end; True if it has ended."""
        if self._thread is None:
            return self._state != "running"
        self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def state(self) -> str:
        return self._state

    @property
    def error(self) -> BaseException | None:
        """The exception that ended the job (``ModelNotFoundError`` for a failed download)."""
        return self._error

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            files = tuple(self._files.values())
            done = sum(f.done for f in files)
            total = sum(max(f.total, f.done) for f in files)
            running = self._state == "running"
            speed = self._speed if running else 0.0
            eta = (total - done) / speed if running and speed > 0 else None
            error = None if self._error is None else str(self._error)
            return JobSnapshot(self._state, files, self._current if running else None, done, total,
                               speed, eta, error)

    def _on_progress(self, p: DownloadProgress) -> None:
        with self._lock:
            old = self._files.get(p.local)
            total = p.total if p.total is not None else (old.total if old else 0)
            self._files[p.local] = FileProgress(p.local, p.repo_id, p.filename, p.done, total, p.status)
            self._current = p.local
            if p.status == "downloading":
                self._speed = p.speed

    def _run(self) -> None:
        try:
            ensure_model(self.model_dir, self.groups, progress=self._on_progress, offline=self.offline,
                         endpoint=self.endpoint, cancel=self._cancel)
        except DownloadCancelled as err:
            end, error = "cancelled", err
        except Exception as err:  # the thread's end: everything must reach the UI
            if not isinstance(err, IndexTTSError):
                log.exception("model download failed")
            end, error = "failed", err
        else:
            end, error = "done", None
        with self._lock:
            self._state, self._error = end, error
