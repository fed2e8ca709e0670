"""The app's own folders: where takes, voices and Gradio's temporary files live.

None of them is served by path: the web server hands out copies of the files it shows,
kept in Gradio's upload folder under unguessable names; see :func:`app.webui.launch_kwargs`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

APP_ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "indextts-studio"


def default_output_dir() -> Path:
    """``outputs/`` beside the app (git-ignored), where every take is saved."""
    return APP_ROOT / "outputs"


def default_cache_dir() -> Path:
    """A per-user cache folder (``INDEXTTS_CACHE_DIR`` overrides it)."""
    env = os.environ.get("INDEXTTS_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / APP_NAME


@dataclass(frozen=True)
class AppDirs:
    """``output_dir`` holds what the user keeps; ``cache_dir`` what can be rebuilt."""

    output_dir: Path
    cache_dir: Path

    @property
    def takes_dir(self) -> Path:
        return self.output_dir / "takes"

    @property
    def voices_dir(self) -> Path:
        return self.output_dir / "voices"

    @property
    def history_file(self) -> Path:
        return self.output_dir / "history.json"

    @property
    def uploads_dir(self) -> Path:
        """Gradio's upload and cache folder (``GRADIO_TEMP_DIR``)."""
        return self.cache_dir / "gradio"

    @property
    def examples_dir(self) -> Path:
        return self.cache_dir / "gradio-examples"

    @property
    def test_model_dir(self) -> Path:
        """Where ``--test-model`` builds the tiny random-weight checkpoint once."""
        return self.cache_dir / "test-model"

    def create(self) -> AppDirs:
        for d in (self.output_dir, self.takes_dir, self.voices_dir, self.uploads_dir, self.examples_dir):
            d.mkdir(parents=True, exist_ok=True)
        return self
