"""Batches: many lines of text, each one take, from plain lines, CSV or JSONL.

Columns (CSV header or JSONL keys): ``text`` (required), ``voice`` (a saved voice's name),
``emotion`` (``sad`` or ``sad:0.8``), ``seconds`` (alias ``length``), ``speed``, ``seed`` and
``filename``. Each problem names its line. The result is a ZIP of the takes with a
``manifest.csv`` saying what each file is and how it was made.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import export
from .errors import IndexTTSError, InvalidOptionError
from .export import ExportOptions
from .files import decode_utf8, zip_files
from .jobs import DONE, MAX_ITEMS, JobStore, TakeRequest
from .options import Duration, Emotion, SynthesisOptions

COLUMNS = ("text", "voice", "emotion", "seconds", "speed", "seed", "filename")
_ALIASES = {"length": "seconds"}
MANIFEST_COLUMNS = ("file", "state", "text", "voice", "emotion", "duration", "seed", "seconds", "error", "options")


class BatchError(IndexTTSError):
    """A batch file has a line or column that cannot become a take."""


@dataclass(frozen=True)
class Row:
    line: int
    fields: dict[str, str]


def read_rows(data: bytes, name: str) -> list[Row]:
    """The rows of a ``.txt`` (one line a take), ``.csv`` or ``.jsonl`` file."""
    text = decode_utf8(data, name, BatchError)
    suffix = Path(name).suffix.lower()
    if suffix == ".csv":
        return _csv_rows(text, name)
    if suffix in (".jsonl", ".ndjson"):
        return _jsonl_rows(text, name)
    return [Row(n, {"text": line.strip()}) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _normal_key(key: str) -> str:
    k = key.strip().lower()
    return _ALIASES.get(k, k)


def _check_keys(keys: list[str], where: str) -> None:
    unknown = sorted(set(keys) - set(COLUMNS))
    if unknown:
        raise BatchError(f"{where}: unknown column(s) {unknown}; use {', '.join(COLUMNS)}")


def _csv_rows(text: str, name: str) -> list[Row]:
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None:
        raise BatchError(f"{name} is empty")
    keys = [_normal_key(k) for k in reader.fieldnames]
    _check_keys(keys, f"{name}, line 1")
    if "text" not in keys:
        raise BatchError(f"{name}, line 1: the header needs a 'text' column")
    rows = []
    for rec in reader:
        if None in rec:
            raise BatchError(f"{name}, line {reader.line_num}: more values than columns")
        fields = {_normal_key(k): (v or "").strip() for k, v in rec.items()}
        if any(fields.values()):
            rows.append(Row(reader.line_num, fields))
    return rows


def _jsonl_rows(text: str, name: str) -> list[Row]:
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as e:
            raise BatchError(f"{name}, line {n}: not valid JSON ({e.args[0]})") from None
        if not isinstance(rec, dict):
            raise BatchError(f"{name}, line {n}: each line must be a JSON object like {{\"text\": \"...\"}}")
        fields = {_normal_key(k): "" if v is None else str(v) for k, v in rec.items()}
        _check_keys(list(fields), f"{name}, line {n}")
        rows.append(Row(n, fields))
    return rows


def _emotion(value: str) -> Emotion:
    label, _, amount = value.partition(":")
    return Emotion.from_label(label.strip().lower(), float(amount) if amount else 1.0)


def requests(rows: list[Row], voices: Mapping[str, str], default_voice: str | None, name: str = "batch",
             options: SynthesisOptions | None = None, default_emotions: Mapping[str, Emotion] | None = None,
             max_items: int = MAX_ITEMS) -> list[tuple[str, TakeRequest]]:
    """``(file name, request)`` per row: ``options`` with the row's columns applied; a saved voice's
    default emotion applies when a row names none."""
    if not rows:
        raise BatchError(f"{name} has no lines to speak")
    if len(rows) > max_items:
        raise BatchError(f"{name} has {len(rows)} lines; a batch holds at most {max_items}. Split it up.")
    base = SynthesisOptions() if options is None else options
    out = []
    for row in rows:
        f = row.fields
        where = f"{name}, line {row.line}"
        if not f.get("text"):
            raise BatchError(f"{where}: no text")
        voice_name = f.get("voice") or None
        if voice_name is not None and voice_name not in voices:
            known = ", ".join(sorted(voices)) or "none saved yet"
            raise BatchError(f"{where}: no saved voice named {voice_name!r} (saved: {known})")
        voice = voices[voice_name] if voice_name else default_voice
        if voice is None:
            raise BatchError(f"{where}: no voice column and no default voice chosen")
        try:
            emotion = base.emotion
            if f.get("emotion"):
                emotion = _emotion(f["emotion"])
            elif voice_name and default_emotions and voice_name in default_emotions:
                emotion = default_emotions[voice_name]
            duration = base.duration
            if f.get("seconds") and f.get("speed"):
                raise InvalidOptionError("give seconds or speed, not both")
            if f.get("seconds"):
                duration = Duration.seconds(float(f["seconds"]))
            elif f.get("speed"):
                duration = Duration.speed(float(f["speed"]))
            seed = int(f["seed"]) if f.get("seed") else base.seed
            req = TakeRequest(f["text"], voice, base.replace(emotion=emotion, duration=duration, seed=seed))
        except (InvalidOptionError, ValueError) as e:
            raise BatchError(f"{where}: {e}") from None
        out.append((Path(f["filename"]).stem if f.get("filename") else f"{len(out) + 1:04d}", req))
    return out


def _describe(req: TakeRequest) -> dict[str, Any]:
    emo = req.options.emotion
    vector = emo.vector if emo.mode == "vector" else None
    emotion = emo.mode if vector is None else " ".join(f"{v:g}" for v in vector)
    d = req.options.duration
    return {"emotion": emotion, "duration": d.mode if d.value is None else f"{d.mode} {d.value:g}"}


def manifest(store: JobStore, job_id: int, voice_names: Mapping[str, str] | None = None,
             suffix: str | None = None) -> str:
    """A CSV row per item: its file (with ``suffix`` when exported to another format), state, text,
    voice, emotion, length setting, seed, length, error and the full options as JSON."""
    by_path = {v: k for k, v in (voice_names or {}).items()}
    buf = io.StringIO()
    w = csv.DictWriter(buf, MANIFEST_COLUMNS, lineterminator="\n")
    w.writeheader()
    for it in store.items(job_id):
        r = it.request
        file = "" if it.output is None else it.output.name if suffix is None else it.output.stem + suffix
        w.writerow({"file": file, "state": it.state, "text": r.text,
                    "voice": by_path.get(r.voice, Path(r.voice).name), **_describe(r), "seed": r.options.seed,
                    "seconds": "" if it.seconds is None else f"{it.seconds:.3f}", "error": it.error or "",
                    "options": r.options.to_json()})
    return buf.getvalue()


def export_takes(store: JobStore, job_id: int, options: ExportOptions | None = None) -> dict[str, Path]:
    """The finished takes of a job in the export format: name in an archive → file.

    With the default options these are the takes as made; otherwise converted copies in the
    job's folder (rewritten each time, so a regenerated item is never exported stale).
    """
    done = [it for it in store.items(job_id, (DONE,)) if it.output is not None]
    if options is None or options == ExportOptions():
        return {it.output.name: it.output for it in done}
    import soundfile as sf

    lufs = "" if options.loudness_lufs is None else f"-{options.loudness_lufs:g}lufs"
    folder = store.job_folder(job_id) / f"export-{options.format}-{options.sample_rate}{lufs}"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for it in done:
        audio, sr = sf.read(it.output, dtype="float32")
        path = export.write(folder / it.output.stem, audio, sr, options)
        out[path.name] = path
    return out


def zip_job(store: JobStore, job_id: int, voice_names: Mapping[str, str] | None = None,
            options: ExportOptions | None = None) -> bytes:
    """The finished takes of a job (in the export format) and its manifest as one ZIP."""
    suffix = None if options is None or options == ExportOptions() else options.suffix
    return zip_files(export_takes(store, job_id, options), {"manifest.csv": manifest(store, job_id, voice_names,
                                                                                     suffix)})
