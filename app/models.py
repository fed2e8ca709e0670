"""Model folders as the app sees them: where the weights are, what is missing, downloading.

A thin adapter over :mod:`indextts_core.model_folder` (``model_status``), :mod:`indextts_core.download_job`
(``DownloadJob``) and
:mod:`indextts_core.tiny` (the test checkpoint), shaped for the status panel.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from indextts_core import download_help, download_job, model_folder, tiny

log = logging.getLogger(__name__)

GROUPS = ("core", "emotion_text")  # "core": any synthesis; "emotion_text": the describe-in-words mode


@dataclass
class FileState:
    name: str
    state: str  # "present" | "missing" | "partial" | "lfs-pointer"
    size: int | None = None
    expected: int | None = None


@dataclass
class ModelFiles:
    complete: bool  # every group is complete
    is_test_model: bool
    files: list[FileState] = field(default_factory=list)
    groups: dict[str, bool] = field(default_factory=dict)
    help: str = ""  # what to do about the missing files (the engine's sentence list)

    @property
    def core_complete(self) -> bool:
        return self.groups.get("core", self.complete)

    @property
    def present_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files if f.state == "present")


@dataclass
class DownloadSnapshot:
    done_bytes: int = 0
    total_bytes: int = 0
    speed: float = 0.0  # bytes per second
    current: str = ""
    eta_s: float | None = None
    state: str = "idle"  # "idle" | "running" | "done" | "failed" | "cancelled"
    error: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")

    @property
    def fraction(self) -> float:
        return min(self.done_bytes / self.total_bytes, 1.0) if self.total_bytes else 0.0


def default_model_dir() -> Path:
    return model_folder.default_model_dir()


def is_test_model(model_dir: Path) -> bool:
    try:
        return bool(tiny.is_test_model(model_dir))
    except OSError:
        return False


def ensure_test_model(folder: Path) -> Path:
    """Build the tiny random-weight checkpoint into ``folder`` once (about 1 GB, a minute or two)."""
    if tiny.is_test_model(folder):
        return folder
    print(f"Building the tiny test checkpoint in {folder} (about 1 GB, only once) ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    tiny.build_checkpoint(folder)
    print(f"Test checkpoint ready after {time.perf_counter() - t0:.0f} s; against the golden checkpoint: "
          f"{tiny.build_report(folder).summary()}.", file=sys.stderr, flush=True)
    return folder


def model_files(model_dir: Path, groups: tuple[str, ...] = GROUPS) -> ModelFiles:
    """What the folder holds (only ``stat`` calls; cheap enough to poll)."""
    status = model_folder.model_status(model_dir, groups)
    files = [FileState(name=f.local, state=f.state, size=f.size, expected=f.expected) for f in status.files]
    missing = status.missing()
    help_text = download_help.missing_files_help(status.model_dir, missing) if missing else ""
    return ModelFiles(complete=status.all_complete, is_test_model=status.is_test_model, files=files,
                      groups=dict(status.complete), help=help_text)


class DownloadManager:
    """One background :class:`indextts_core.download_job.DownloadJob`, with terminal progress lines."""

    def __init__(self, model_dir: Path, groups: tuple[str, ...] = GROUPS) -> None:
        self.model_dir = Path(model_dir)
        self.groups = groups
        self._job: download_job.DownloadJob | None = None
        self._lock = threading.Lock()
        self.error: str | None = None

    def snapshot(self) -> DownloadSnapshot:
        job = self._job
        if job is None:
            return DownloadSnapshot()
        s = job.snapshot()
        return DownloadSnapshot(done_bytes=s.bytes_done, total_bytes=s.bytes_total, speed=s.speed,
                                current=s.current or "", eta_s=s.eta_s, state=s.state, error=s.error)

    def run(self, poll_s: float = 10.0) -> bool:
        """Download what is missing (blocking). False on failure, with :attr:`error` set."""
        with self._lock:
            if self._job is None or self._job.state in ("failed", "cancelled"):
                self._job = download_job.DownloadJob(self.model_dir, self.groups)
            job = self._job.start()
        print(f"Downloading the IndexTTS-2 weights into {self.model_dir} ...", file=sys.stderr, flush=True)
        while not job.wait(poll_s):
            s = self.snapshot()
            if s.total_bytes:
                print(f"  {model_folder.format_bytes(s.done_bytes)} of {model_folder.format_bytes(s.total_bytes)} "
                      f"({s.fraction * 100:.0f}%), {model_folder.format_bytes(s.speed)}/s  {s.current}",
                      file=sys.stderr, flush=True)
        if job.error is not None:
            self.error = str(job.error)
            print(f"Download failed:\n{self.error}", file=sys.stderr, flush=True)
            return False
        print("All weights are present.", file=sys.stderr, flush=True)
        return True
