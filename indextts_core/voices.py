"""Saved voices: clips kept under a name, with an optional default emotion.

A clip is stored once per content (its SHA-256 names the file), so saving the same recording
under two names, or importing a voice already there, costs nothing. The index is a small JSON
file written atomically; a voice is exported as a ZIP holding the clip and its settings.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import threading
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import IndexTTSError
from .files import sha256_file
from .options import Emotion, SynthesisOptions
from .voice_check import load_clip

INDEX = "voices.json"
MAX_NAME = 40
MAX_IMPORT_BYTES = 64 << 20
_NAME = re.compile(r"^[^\s:：/\\][^:：/\\\n]*$")


class VoiceLibraryError(IndexTTSError):
    """A saved voice does not exist, its name is unusable, or an import file is not a voice."""


@dataclass(frozen=True)
class SavedVoice:
    name: str
    clip: Path
    digest: str
    emotion: Emotion | None
    added: float


def _emotion_json(emotion: Emotion | None) -> dict | None:
    """The emotion as SynthesisOptions stores it, so voices, jobs and requests share one format."""
    if emotion is None:
        return None
    if emotion.audio is not None and not isinstance(emotion.audio, str | Path):
        raise VoiceLibraryError("a voice's default emotion clip must be a file path")
    return SynthesisOptions(emotion=emotion).to_dict()["emotion"]


def _emotion_from(d: dict | None) -> Emotion | None:
    return None if d is None else SynthesisOptions.from_dict({"emotion": d}).emotion


def check_name(name: str) -> str:
    name = name.strip() if isinstance(name, str) else ""
    if not name or len(name) > MAX_NAME or not _NAME.match(name):
        raise VoiceLibraryError(f"a voice name is 1 to {MAX_NAME} characters without ':', '/' or '\\' "
                                f"(subtitles pick it with a 'Name:' prefix); got {name!r}")
    return name


class SavedVoices:
    """The library in ``folder``; thread-safe within one process."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict]:
        path = self.folder / INDEX
        if not path.exists():
            return {}
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as e:
            # Never start over silently: the clips are still there and the user should know.
            raise VoiceLibraryError(f"the voice index {path} is unreadable ({e}); restore or remove it") from None

    def _write(self, index: dict[str, dict]) -> None:
        path = self.folder / INDEX
        tmp = path.with_name(path.name + ".part")
        tmp.write_text(json.dumps(index, ensure_ascii=False, indent=1), encoding="utf-8")
        tmp.replace(path)

    def _voice(self, name: str, entry: dict) -> SavedVoice:
        return SavedVoice(name, self.folder / entry["file"], entry["digest"], _emotion_from(entry["emotion"]),
                          entry["added"])

    def list(self) -> list[SavedVoice]:
        with self._lock:
            index = self._read()
        return [self._voice(n, e) for n, e in sorted(index.items(), key=lambda kv: kv[0].casefold())]

    def get(self, name: str) -> SavedVoice:
        with self._lock:
            index = self._read()
        if name not in index:
            known = ", ".join(sorted(index)) or "none saved yet"
            raise VoiceLibraryError(f"no saved voice named {name!r} (saved: {known})")
        return self._voice(name, index[name])

    def paths(self) -> dict[str, str]:
        """Name → clip path, as dubbing and batch jobs take them."""
        return {v.name: str(v.clip) for v in self.list()}

    def save(self, name: str, clip: str | Path, emotion: Emotion | None = None, *, replace: bool = False
             ) -> SavedVoice:
        """Keep ``clip`` (checked to be readable audio) under ``name``."""
        name = check_name(name)
        clip = Path(clip)
        load_clip(clip)  # an unreadable clip raises AudioError here, not at the first take
        digest = sha256_file(clip)
        file = f"{digest[:32]}{clip.suffix.lower() or '.wav'}"
        emo = _emotion_json(emotion)
        with self._lock:
            index = self._read()
            if name in index and not replace:
                raise VoiceLibraryError(f"a voice named {name!r} is already saved; pick another name or replace it")
            if not (self.folder / file).exists():
                tmp = self.folder / (file + ".part")
                shutil.copyfile(clip, tmp)
                tmp.replace(self.folder / file)
            old = index.get(name)
            index[name] = {"file": file, "digest": digest, "emotion": emo, "added": time.time()}
            self._write(index)
            if old is not None:
                self._drop_unused(index, old["file"])
        return self.get(name)

    def rename(self, old: str, new: str) -> SavedVoice:
        new = check_name(new)
        with self._lock:
            index = self._read()
            if old not in index:
                raise VoiceLibraryError(f"no saved voice named {old!r}")
            if new in index and new != old:
                raise VoiceLibraryError(f"a voice named {new!r} is already saved")
            index[new] = index.pop(old)
            self._write(index)
        return self.get(new)

    def set_emotion(self, name: str, emotion: Emotion | None) -> SavedVoice:
        emo = _emotion_json(emotion)
        with self._lock:
            index = self._read()
            if name not in index:
                raise VoiceLibraryError(f"no saved voice named {name!r}")
            index[name]["emotion"] = emo
            self._write(index)
        return self.get(name)

    def delete(self, name: str) -> None:
        with self._lock:
            index = self._read()
            if name not in index:
                raise VoiceLibraryError(f"no saved voice named {name!r}")
            entry = index.pop(name)
            self._write(index)
            self._drop_unused(index, entry["file"])

    def _drop_unused(self, index: dict[str, dict], file: str) -> None:
        if all(e["file"] != file for e in index.values()):
            (self.folder / file).unlink(missing_ok=True)

    def export(self, name: str) -> bytes:
        """One voice as a ZIP: ``voice.json`` (name, default emotion) and the clip."""
        v = self.get(name)
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("voice.json", json.dumps({"format": "indextts-voice", "version": 1, "name": v.name,
                                                 "clip": "clip" + v.clip.suffix, "digest": v.digest,
                                                 "emotion": _emotion_json(v.emotion)}, ensure_ascii=False))
            z.write(v.clip, "clip" + v.clip.suffix)
        return buf.getvalue()

    def import_(self, data: bytes, name: str | None = None) -> SavedVoice:
        """Add a voice exported by :meth:`export`; ``name`` overrides the stored one."""
        if len(data) > MAX_IMPORT_BYTES:
            raise VoiceLibraryError(f"a voice file is at most {MAX_IMPORT_BYTES >> 20} MiB")
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                meta = json.loads(z.read("voice.json"))
                clip_name = Path(meta["clip"]).name
                clip = z.read(clip_name)
        except (zipfile.BadZipFile, KeyError, ValueError, TypeError) as e:
            raise VoiceLibraryError(f"this is not a voice file exported by IndexTTS Studio ({e})") from None
        if meta.get("format") != "indextts-voice":
            raise VoiceLibraryError("this is not a voice file exported by IndexTTS Studio")
        tmp = self.folder / f"import-{time.monotonic_ns()}{Path(clip_name).suffix}"
        tmp.write_bytes(clip)
        try:
            return self.save(name or meta["name"], tmp, _emotion_from(meta.get("emotion")))
        finally:
            tmp.unlink(missing_ok=True)
