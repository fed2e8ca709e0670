"""Model folders as the app sees them: where the weights are, what is missing, downloading.

A thin adapter over :mod:`indextts_core.download` and :mod:`indextts_core.tiny`. When the
download module is not available (an engine without it), the app still runs: status is
"unknown" and loading reports missing weights itself.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import APP_ROOT

log = logging.getLogger(__name__)


@dataclass
class FileState:
    name: str
    state: str  # "present" | "missing" | "partial"
    size: int | None = None
    expected: int | None = None


@dataclass
class ModelFiles:
    complete: bool
    is_test_model: bool
    files: list[FileState] = field(default_factory=list)
    groups: dict[str, bool] = field(default_factory=dict)

    @property
    def present_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files if f.state == "present")

    @property
    def total_bytes(self) -> int:
        return sum(f.expected or f.size or 0 for f in self.files)


@dataclass
class DownloadSnapshot:
    done_bytes: int = 0
    total_bytes: int = 0
    speed: float = 0.0  # bytes per second
    current: str = ""
    finished: bool = False
    error: str | None = None

    @property
    def fraction(self) -> float:
        return self.done_bytes / self.total_bytes if self.total_bytes else 0.0


def _download_module() -> Any:
    try:
        from indextts_core import download
    except ImportError:
        return None
    return download


def default_model_dir() -> Path:
    mod = _download_module()
    if mod is not None and hasattr(mod, "default_model_dir"):
        return Path(mod.default_model_dir())
    return APP_ROOT / "checkpoints"


def is_test_model(model_dir: Path) -> bool:
    from indextts_core import tiny

    try:
        return bool(tiny.is_test_model(model_dir))
    except OSError:
        return False


def ensure_test_model(folder: Path) -> Path:
    """Build the tiny random-weight checkpoint into ``folder`` once (about 1 GB)."""
    from indextts_core import tiny

    if tiny.is_test_model(folder):
        return folder
    print(f"Building the tiny test checkpoint in {folder} (about 1 GB, only once) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    tiny.build_checkpoint(folder)
    print(f"Test checkpoint ready after {time.perf_counter() - t0:.0f} s.", file=sys.stderr, flush=True)
    return folder


def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)


def model_files(model_dir: Path) -> ModelFiles | None:
    """What is on disk, or None when this installation cannot tell."""
    if is_test_model(model_dir):
        return ModelFiles(complete=True, is_test_model=True)
    mod = _download_module()
    if mod is None or not hasattr(mod, "model_status"):
        return None
    try:
        status = mod.model_status(model_dir)
    except Exception as e:  # a status query must never break the page
        log.warning("model_status(%s) failed: %s", model_dir, e)
        return None
    files = []
    for f in _get(status, "files", []) or []:
        files.append(FileState(name=str(_get(f, "name", _get(f, "path", "?"))),
                               state=str(_get(f, "state", "missing")),
                               size=_get(f, "size"), expected=_get(f, "expected_size", _get(f, "expected"))))
    groups = dict(_get(status, "groups", {}) or {})
    complete = _get(status, "complete")
    if isinstance(complete, dict):
        groups, complete = complete, all(complete.values())
    return ModelFiles(complete=bool(complete), is_test_model=bool(_get(status, "is_test_model", False)),
                      files=files, groups={k: bool(v) for k, v in groups.items()})


class DownloadManager:
    """Runs the engine's downloader and keeps the latest progress for the UI and the terminal."""

    def __init__(self, model_dir: Path) -> None:
        self.model_dir = Path(model_dir)
        self._mod = _download_module()
        self._lock = threading.Lock()
        self._snap = DownloadSnapshot()
        self.error: str | None = None

    @property
    def available(self) -> bool:
        return self._mod is not None and hasattr(self._mod, "ensure_model")

    def snapshot(self) -> DownloadSnapshot:
        with self._lock:
            return DownloadSnapshot(**vars(self._snap))

    def _progress(self, info: Any) -> None:
        snap = DownloadSnapshot(done_bytes=int(_get(info, "done_bytes", _get(info, "downloaded", 0)) or 0),
                                total_bytes=int(_get(info, "total_bytes", _get(info, "total", 0)) or 0),
                                speed=float(_get(info, "speed", 0.0) or 0.0),
                                current=str(_get(info, "current", _get(info, "file", "")) or ""))
        with self._lock:
            self._snap = snap
        if snap.total_bytes:
            print(f"\rDownloading weights: {snap.done_bytes / 2**20:,.0f} / {snap.total_bytes / 2**20:,.0f} MiB "
                  f"({snap.fraction * 100:4.1f}%, {snap.speed / 2**20:.1f} MiB/s) {snap.current[:40]:40s}",
                  end="", file=sys.stderr, flush=True)

    def run(self) -> bool:
        """Download everything the app needs (blocking). False on failure, with :attr:`error` set."""
        if not self.available:
            self.error = "no downloader"
            return False
        try:
            self._mod.ensure_model(self.model_dir, None, progress=self._progress)
        except Exception as e:
            self.error = str(e) or type(e).__name__
            log.warning("download failed: %s", self.error)
            with self._lock:
                self._snap.error = self.error
            print(f"\nDownload failed: {self.error}", file=sys.stderr, flush=True)
            return False
        with self._lock:
            self._snap.finished = True
        print("\nAll weights are present.", file=sys.stderr, flush=True)
        return True
