"""The model download in a background thread, with progress snapshots for a UI to poll."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .download import DownloadProgress, ensure_model
from .errors import IndexTTSError
from .hub import DownloadCancelled
from .model_folder import check_groups, model_dir_or_default, model_status

log = logging.getLogger(__name__)


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
        self.model_dir = model_dir_or_default(model_dir)
        self.groups = check_groups(groups)
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
