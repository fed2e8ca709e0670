"""Recently used voice clips, kept (trimmed to what the model uses) in the output folder.

A clip is stored once per content (SHA-256 of its bytes); clips longer than the model's
15 s are cut to their first 15 s at their own sample rate and sample format, so the stored
clip is exactly the part the engine reads.
"""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import soundfile as sf

from indextts_core.errors import AudioError
from indextts_core.files import sha256_file
from indextts_core.voice_check import MODEL_SECONDS, VoiceReport, check_voice, load_clip

log = logging.getLogger(__name__)

MAX_RECENT = 12
_SUBTYPE_DTYPES = {"PCM_16": "int16", "PCM_24": "int32", "PCM_32": "int32", "FLOAT": "float32", "DOUBLE": "float64"}


class SilentVoiceError(AudioError):
    """A clip with no audible voice: refused, never stored."""


@dataclass
class Voice:
    id: str
    name: str
    file: str
    seconds: float
    added: float
    last_used: float
    file_digest: str = ""


def _safe_stem(name: str) -> str:
    stem = "".join(c if c.isalnum() or c in "-_" else "-" for c in Path(name).stem)[:40].strip("-")
    return stem or "voice"


def write_trimmed(src: Path, dest: Path, seconds: float = MODEL_SECONDS) -> Path:
    """Write the first ``seconds`` of ``src`` to the WAV ``dest``, keeping its sample format when possible."""
    try:
        info = sf.info(str(src))
        frames = int(seconds * info.samplerate)
        dtype = _SUBTYPE_DTYPES.get(info.subtype, "float32")
        data, sr = sf.read(str(src), frames=frames, dtype=dtype, always_2d=True)
        subtype = info.subtype if info.subtype in _SUBTYPE_DTYPES else "FLOAT"
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        audio, sr = load_clip(src)
        data, subtype = audio[: int(seconds * sr)], "FLOAT"
    tmp = dest.with_name(dest.name + ".part")
    sf.write(str(tmp), data, sr, subtype=subtype, format="WAV")
    tmp.replace(dest)
    return dest


class VoiceLibrary:
    """``voices/`` with a ``voices.json`` index of the most recently used clips."""

    def __init__(self, folder: Path, max_recent: int = MAX_RECENT) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.index_file = self.folder / "voices.json"
        self.max_recent = max_recent
        self._lock = threading.Lock()
        self._voices: list[Voice] = self._read()

    def _read(self) -> list[Voice]:
        try:
            data = json.loads(self.index_file.read_text(encoding="utf-8"))
            return [Voice(**v) for v in data.get("voices", [])]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, TypeError) as e:
            log.warning("voice index %s is unreadable (%s); starting a new one", self.index_file, e)
            return []

    def _write(self) -> None:
        tmp = self.index_file.with_name(self.index_file.name + ".part")
        tmp.write_text(json.dumps({"voices": [asdict(v) for v in self._voices]}, ensure_ascii=False, indent=1),
                       encoding="utf-8")
        tmp.replace(self.index_file)

    def path_of(self, voice: Voice) -> Path:
        return self.folder / voice.file

    def add(self, src: str | Path, name: str | None = None) -> tuple[Voice, VoiceReport]:
        """Check ``src``, store it (trimmed) unless already stored, and mark it used now.

        Raises :class:`indextts_core.AudioError` when the clip cannot be read, and
        :class:`SilentVoiceError` (storing nothing) when it is silent.
        """
        src = Path(src)
        report = check_voice(src)
        if report.silent:
            # Refused clips never join Recent voices.
            raise SilentVoiceError("The voice clip is silent; upload or record a clip in which the voice can be heard.")
        digest = sha256_file(src)
        now = time.time()
        with self._lock:
            voice = next((v for v in self._voices if v.id == digest[:16]), None)
            if voice is not None and self.path_of(voice).is_file():
                voice.last_used = now
            else:
                display = name or src.name
                if report.trimmed:
                    file = f"{digest[:16]}-{_safe_stem(display)}.wav"
                    write_trimmed(src, self.folder / file)
                else:
                    file = f"{digest[:16]}-{_safe_stem(display)}{src.suffix.lower() or '.wav'}"
                    shutil.copyfile(src, self.folder / file)
                voice = Voice(id=digest[:16], name=display, file=file, seconds=report.used_seconds,
                              added=now, last_used=now, file_digest=sha256_file(self.folder / file)[:16])
                self._voices = [v for v in self._voices if v.id != voice.id] + [voice]
            self._prune()
            self._write()
        return voice, report

    def touch(self, voice_id: str) -> Voice | None:
        with self._lock:
            voice = next((v for v in self._voices if v.id == voice_id), None)
            if voice is not None:
                voice.last_used = time.time()
                self._write()
            return voice

    def find_by_file(self, path: str | Path) -> Voice | None:
        """The stored voice with the same content as ``path`` (None if not stored)."""
        path = Path(path)
        if not path.is_file():
            return None
        digest = sha256_file(path)[:16]
        with self._lock:
            # A trimmed clip is stored under the digest of the untrimmed upload: match either.
            return next((v for v in self._voices if digest in (v.id, v.file_digest)), None)

    def recent(self) -> list[Voice]:
        with self._lock:
            alive = [v for v in self._voices if self.path_of(v).is_file()]
        return sorted(alive, key=lambda v: v.last_used, reverse=True)[: self.max_recent]

    def get(self, voice_id: str) -> Voice | None:
        with self._lock:
            return next((v for v in self._voices if v.id == voice_id), None)

    def _prune(self) -> None:
        keep = sorted(self._voices, key=lambda v: v.last_used, reverse=True)
        for old in keep[self.max_recent * 2:]:
            # Old clips stay referenced by history entries; only forget them from the list.
            self._voices.remove(old)

