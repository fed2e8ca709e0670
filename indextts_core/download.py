"""Getting the IndexTTS-2 weights into a model folder.

``ensure_model`` fills in what is missing from the Hugging Face Hub (or the mirror named by
``HF_ENDPOINT``) and returns the folder; a folder that is already complete is returned without any
network access. What is on disk is :mod:`indextts_core.model_folder`, how one file is fetched
:mod:`indextts_core.hub`, the message for what is missing :mod:`indextts_core.download_help`, and
the UI's background download :mod:`indextts_core.download_job`.

Environment read at call time: ``HF_ENDPOINT`` (e.g. https://hf-mirror.com), ``HF_HUB_OFFLINE``,
``HF_TOKEN``, ``HF_HUB_ETAG_TIMEOUT``, ``HF_HUB_CACHE``/``HF_HOME`` (files already in a Hugging Face
cache are linked or copied from there instead of downloaded) and ``INDEXTTS_MODEL_DIR``.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock, Timeout
from huggingface_hub.utils import HfHubHTTPError, OfflineModeIsEnabled

from . import layout
from .download_help import missing_files_help
from .errors import ModelNotFoundError
from .hub import (
    DownloadCancelled,
    Hub,
    describe_error,
    download_file,
    find_in_hf_cache,
    hf_cache_dirs,
    offline_from_env,
    place_from_cache,
    transfer_errors,
)
from .layout import RemoteFile
from .model_folder import PARTIAL_DIR, ModelStatus, check_groups, model_dir_or_default, model_status

log = logging.getLogger(__name__)


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
    model_dir = model_dir_or_default(model_dir)
    groups = check_groups(groups)
    status = model_status(model_dir, groups)
    if status.all_complete:
        return model_dir
    hub = Hub.from_env(endpoint)
    if status.is_test_model:
        raise ModelNotFoundError(
            f"{model_dir} is the tiny test model but lacks files; rebuild it with "
            f"`python -m indextts_core make-test-model {model_dir}` (real weights are not mixed into it)\n"
            + missing_files_help(model_dir, status.missing(), hub.endpoint))
    offline = offline_from_env() if offline is None else offline
    # Files already in a local Hugging Face cache cost no download (and work offline).
    caches = hf_cache_dirs(model_dir)
    by_local = {f.local: f for f in layout.files_of(groups)}
    cached = [(by_local[fs.local], src) for fs in status.missing()
              if (src := find_in_hf_cache(by_local[fs.local], caches)) is not None]
    if offline and not cached:
        raise _offline_error(status, hub)

    with _exclusive(model_dir):
        for i, (f, src) in enumerate(cached, 1):
            log.info("using %s from the Hugging Face cache (%s)", f.local, src)
            _notify(progress, f, "copying", 0, None, 0.0, i, len(cached))
            place_from_cache(src, model_dir, f.local)
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

                download_file(f, model_dir, hub, report, cancel)
        except (DownloadCancelled, ModelNotFoundError):
            raise
        except transfer_errors() as err:
            now = model_status(model_dir, groups)
            raise ModelNotFoundError(missing_files_help(
                model_dir, now.missing(), hub.endpoint,
                reason=f"while fetching {current}: {describe_error(err, hub.endpoint)}",
                offline=isinstance(err, OfflineModeIsEnabled))) from err

    final = model_status(model_dir, groups)
    if not final.all_complete:
        raise ModelNotFoundError(missing_files_help(
            model_dir, final.missing(), hub.endpoint,
            reason=f"{hub.endpoint} does not provide these files (absent from the repository listing)"))
    _remove_empty_partial_dirs(model_dir)
    return model_dir


def _offline_error(status: ModelStatus, hub: Hub) -> ModelNotFoundError:
    return ModelNotFoundError(missing_files_help(
        status.model_dir, status.missing(), hub.endpoint, offline=True,
        reason="offline mode is on (HF_HUB_OFFLINE=1 or --offline), so nothing was downloaded"))


def _notify(progress: Callable[[DownloadProgress], None] | None, f: RemoteFile, state: str, done: int,
            total: int | None, speed: float, index: int, count: int) -> None:
    if progress is not None:
        progress(DownloadProgress(f.local, f.repo_id, f.filename, done, total, speed, state, index, count))


def _plan(model_dir: Path, groups: tuple[str, ...], status: ModelStatus, hub: Hub) -> list[RemoteFile]:
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
                        folder.repo_id, folder.prefix, describe_error(err, hub.endpoint))
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
