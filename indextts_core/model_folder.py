"""Where the model folder is and what it holds, from the disk alone (``stat`` calls, no hashing).

A file at its final path is complete (:mod:`indextts_core.hub` renames a download there only once
it is checked); an interrupted download waits under ``<model_dir>/.download/`` as
``<path in the folder>.<etag>.incomplete``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from . import layout
from .errors import InvalidOptionError
from .layout import RemoteFile

PARTIAL_DIR = ".download"
_PARTIAL_SUFFIX = ".incomplete"
_LFS_POINTER = b"version https://git-lfs"


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


def model_dir_or_default(model_dir: str | Path | None) -> Path:
    return default_model_dir() if model_dir is None else Path(model_dir).expanduser()


def check_groups(groups: Sequence[str]) -> tuple[str, ...]:
    if isinstance(groups, str):
        groups = (groups,)
    unknown = [g for g in groups if g not in layout.GROUPS]
    if unknown or not groups:
        raise InvalidOptionError(f"unknown model file group(s) {unknown}; choose from {layout.GROUPS}")
    return tuple(dict.fromkeys(groups))


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

    model_dir = model_dir_or_default(model_dir)
    groups = check_groups(groups)
    files = tuple(_file_status(model_dir, f) for f in layout.files_of(groups))
    complete = {g: all(f.present for f in files if f.group == g) for g in groups}
    return ModelStatus(model_dir, groups, files, is_test_model(model_dir), complete)


def _file_status(model_dir: Path, f: RemoteFile) -> FileStatus:
    path = model_dir / f.local
    state, size = "missing", 0
    try:
        st = path.stat()
    except OSError:
        partials = partial_files(model_dir, f.local)
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


def partial_dir(model_dir: Path, local: str) -> Path:
    return model_dir / PARTIAL_DIR / Path(local).parent


def partial_files(model_dir: Path, local: str) -> list[Path]:
    """Partial downloads of ``local`` (one per hub version of the file, normally at most one)."""
    folder = partial_dir(model_dir, local)
    prefix = Path(local).name + "."
    try:
        with os.scandir(folder) as entries:
            return [Path(e.path) for e in entries
                    if e.name.startswith(prefix) and e.name.endswith(_PARTIAL_SUFFIX) and e.is_file()]
    except OSError:
        return []


def partial_path(model_dir: Path, local: str, etag: str) -> Path:
    # Keyed by the hub's ETag: bytes of an older version of the file are never continued.
    tag = re.sub(r"[^0-9A-Za-z]", "", etag)[:16] or "noetag"
    return partial_dir(model_dir, local) / f"{Path(local).name}.{tag}{_PARTIAL_SUFFIX}"


def format_bytes(n: int | float, approx: bool = False) -> str:
    """Decimal units, as the hub shows sizes: 3.48 GB, 476 kB."""
    prefix = "~" if approx else ""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            value = n / scale
            digits = 2 if value < 10 else 1 if value < 100 else 0
            return f"{prefix}{value:.{digits}f} {unit}"
    return f"{prefix}{int(n)} B"
