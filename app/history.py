"""Every take the user made: WAV files plus a JSON index, in the output folder.

File names are unique (date, time, seed, a random suffix) and a name is reserved by
creating the file exclusively, so no take ever overwrites another. The index is rewritten
atomically (temporary file + rename) under a lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

INDEX_VERSION = 1
UNDO_DIR = "deleted"  # inside the takes folder: the last deleted take's file, until undone or replaced


@dataclass
class Take:
    """One saved take. ``wav`` is the file name inside the takes folder."""

    id: str
    created: str
    wav: str
    text: str
    voice_name: str
    voice_path: str | None
    settings: dict[str, Any]
    seed: int
    seconds: float
    requested_seconds: float | None
    generation_seconds: float
    rtf: float
    emotion_vector: list[float] | None = None
    is_test_model: bool = False
    kind: str = "take"
    variant: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Take:
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in d.items() if k in names})


def slug(text: str, limit: int = 24) -> str:
    """An ASCII file-name fragment from the start of ``text`` (``take`` if none); Han characters
    are spelt in pinyin, so a Chinese take is as findable by name as an English one."""
    from pypinyin import lazy_pinyin

    spelt = " ".join(lazy_pinyin(text[: limit * 4]))
    s = re.sub(r"[^A-Za-z0-9]+", "-", spelt).strip("-").lower()[:limit].strip("-")
    return s or "take"


class History:
    """The takes folder and its ``history.json`` index."""

    def __init__(self, takes_dir: Path, index_file: Path) -> None:
        self.takes_dir = Path(takes_dir)
        self.index_file = Path(index_file)
        self.takes_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._takes: list[Take] = self._read()
        self._undo: tuple[Take, int] | None = None  # the last take deleted with keep_for_undo, and its place
        # An undo does not outlive the app: what a previous run kept aside is deleted now.
        self._empty_undo()

    # -- files ------------------------------------------------------------------------
    def reserve_path(self, text: str, seed: int, suffix: str = "") -> Path:
        """Create and return a new, empty, uniquely named WAV file in the takes folder."""
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
        extra = f"-{slug(suffix, 12)}" if suffix else ""
        for _ in range(100):
            name = f"{stamp}-{slug(text)}{extra}-seed{seed}-{secrets.token_hex(3)}.wav"
            path = self.takes_dir / name
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                continue
            os.close(fd)
            return path
        raise RuntimeError(f"Could not find a free file name in {self.takes_dir}")

    def path_of(self, take: Take) -> Path:
        return self.takes_dir / take.wav

    # -- index ------------------------------------------------------------------------
    def _read(self) -> list[Take]:
        if not self.index_file.is_file():
            return []
        try:
            data = json.loads(self.index_file.read_text(encoding="utf-8"))
            return [Take.from_dict(d) for d in data.get("takes", [])]
        except (OSError, ValueError, TypeError) as e:
            # Keep the unreadable index for the user and start a fresh one beside it.
            backup = self.index_file.with_name(f"{self.index_file.name}.broken-{int(time.time())}")
            log.warning("history index %s is unreadable (%s); moved it to %s", self.index_file, e, backup)
            with contextlib.suppress(OSError):
                self.index_file.replace(backup)
            return []

    def _write(self) -> None:
        tmp = self.index_file.with_name(self.index_file.name + ".part")
        payload = {"version": INDEX_VERSION, "takes": [asdict(t) for t in self._takes]}
        tmp.write_text(json.dumps(payload, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(self.index_file)

    def add(self, take: Take) -> Take:
        with self._lock:
            self._takes.append(take)
            self._write()
        return take

    def list(self) -> list[Take]:
        """Newest first; takes whose WAV file was removed by hand are left out."""
        with self._lock:
            takes = [t for t in self._takes if (self.takes_dir / t.wav).is_file()]
        return list(reversed(takes))

    def get(self, take_id: str) -> Take | None:
        with self._lock:
            return next((t for t in self._takes if t.id == take_id), None)

    def delete(self, take_id: str, *, keep_for_undo: bool = False) -> bool:
        """Remove a take and its file. With ``keep_for_undo`` the file is set aside instead, until
        :meth:`undo_delete` brings it back or the next such deletion (one level of undo)."""
        with self._lock:
            take = next((t for t in self._takes if t.id == take_id), None)
            if take is None:
                return False
            place = self._takes.index(take)
            self._takes.remove(take)
            self._write()
            if keep_for_undo:
                self._empty_undo()
                aside = self.takes_dir / UNDO_DIR
                aside.mkdir(exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    (self.takes_dir / take.wav).replace(aside / take.wav)
                self._undo = (take, place)
                return True
        (self.takes_dir / take.wav).unlink(missing_ok=True)
        return True

    def undo_delete(self, take_id: str) -> Take | None:
        """Bring back the take deleted last with ``keep_for_undo`` (None if it is not ``take_id``)."""
        with self._lock:
            if self._undo is None or self._undo[0].id != take_id:
                return None
            take, place = self._undo
            aside = self.takes_dir / UNDO_DIR / take.wav
            if not aside.is_file():
                self._undo = None
                return None
            aside.replace(self.takes_dir / take.wav)
            self._takes.insert(min(place, len(self._takes)), take)
            self._write()
            self._undo = None
            return take

    def _empty_undo(self) -> None:
        self._undo = None
        aside = self.takes_dir / UNDO_DIR
        if aside.is_dir():
            for f in aside.iterdir():
                with contextlib.suppress(OSError):
                    f.unlink()

    @staticmethod
    def new_id() -> str:
        return datetime.now().strftime("%Y%m%d%H%M%S") + secrets.token_hex(4)
