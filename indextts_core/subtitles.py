"""Timed dubbing from subtitle files: cues in, job items timed to the sample, one track out.

``.srt`` is read with the ``srt`` library and ``.vtt`` with ``webvtt-py``. Every problem is
reported with the cue (and line) it is in, and the file itself is never changed, so nothing the
user wrote is lost. A cue's length in samples is ``round(end * sr) - round(start * sr)``, so
cues placed back at ``round(start * sr)`` tile the timeline without drift.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import srt
import webvtt

from . import export
from .batch import export_takes
from .errors import IndexTTSError
from .export import ExportOptions
from .files import decode_utf8, zip_files
from .jobs import DONE, JobStore, TakeRequest
from .options import SAMPLE_RATE, Duration, Emotion, SynthesisOptions

MAX_CUES = 5000
FIT_EXACT, FIT_NATURAL = "exact", "natural"
# Speeds a listener still hears as natural delivery; outside it the line should be rewritten.
COMFORT_RANGE = (0.75, 1.3)
_NAME_PREFIX = re.compile(r"^\s*([^\s:：][^:：\n]{0,40})[:：]\s*(.*)$", re.S)
_VTT_TIMING = re.compile(r"^\s*((?:\d+:)?\d{2}:\d{2}\.\d{3})\s+-->\s+((?:\d+:)?\d{2}:\d{2}\.\d{3})(\s.*)?$")


class SubtitleError(IndexTTSError):
    """A subtitle file cannot be read, or one of its cues cannot be dubbed as written."""


@dataclass(frozen=True)
class Cue:
    index: int  # 1-based position in the file, as the user sees it
    start: int  # samples
    end: int
    text: str
    speaker: str | None = None

    @property
    def samples(self) -> int:
        return self.end - self.start

    @property
    def seconds(self) -> float:
        return self.samples / SAMPLE_RATE


def _samples(seconds: float, sr: int) -> int:
    return round(seconds * sr)


def _split_speaker(text: str) -> tuple[str, str | None]:
    m = _NAME_PREFIX.match(text)
    if m and not m.group(1).strip().isdigit():
        return m.group(2).strip(), m.group(1).strip()
    return text.strip(), None


def _vtt_seconds(stamp: str) -> float:
    parts = [float(p) for p in stamp.split(":")]
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def parse(data: bytes, name: str = "subtitles.srt", sr: int = SAMPLE_RATE, max_cues: int = MAX_CUES) -> list[Cue]:
    """Read an ``.srt`` or ``.vtt`` file's bytes into cues; raises :class:`SubtitleError` naming the cue."""
    text = decode_utf8(data, name, SubtitleError)
    suffix = Path(name).suffix.lower()
    if suffix == ".vtt" or text.lstrip().startswith("WEBVTT"):
        raw = _parse_vtt(text, name)
    elif suffix == ".srt":
        raw = _parse_srt(text, name)
    else:
        raise SubtitleError(f"{name}: use a .srt or .vtt subtitle file")
    if not raw:
        raise SubtitleError(f"{name} has no cues")
    if len(raw) > max_cues:
        raise SubtitleError(f"{name} has {len(raw)} cues; a dubbing job holds at most {max_cues}. Split the file.")
    cues = []
    for i, (start, end, body, voice) in enumerate(raw, 1):
        spoken, speaker = _split_speaker(body)
        cue = Cue(i, _samples(start, sr), _samples(end, sr), spoken, voice or speaker)
        if cue.end <= cue.start:
            raise SubtitleError(f"{name}, cue {i}: it ends before or when it starts ({start:.3f} s → {end:.3f} s); "
                                "fix its timing")
        if not cue.text:
            raise SubtitleError(f"{name}, cue {i}: it has no text to speak; add text or delete the cue")
        if cues and cue.start < cues[-1].end:
            raise SubtitleError(f"{name}, cue {i} starts at {start:.3f} s, before cue {i - 1} ends "
                                f"({cues[-1].end / sr:.3f} s); one voice cannot speak both — move or merge them")
        cues.append(cue)
    return cues


def _parse_srt(text: str, name: str) -> list[tuple[float, float, str, str | None]]:
    try:
        subs = list(srt.parse(text))
    except srt.SRTParseError as e:
        line = text[:e.expected_start].count("\n") + 1
        raise SubtitleError(f"{name}, line {line}: this is not a valid cue (number, "
                            "'00:00:01,000 --> 00:00:02,500', text); fix the timestamp line") from None
    return [(s.start.total_seconds(), s.end.total_seconds(), s.content, None) for s in subs]


def _parse_vtt(text: str, name: str) -> list[tuple[float, float, str, str | None]]:
    # webvtt-py skips a cue whose timing it cannot read; check every timing line first so none vanishes.
    for n, line in enumerate(text.splitlines(), 1):
        if "-->" in line and not _VTT_TIMING.match(line):
            raise SubtitleError(f"{name}, line {n}: bad timestamps {line.strip()!r}; "
                                "write them as 00:00:01.000 --> 00:00:02.500")
    try:
        vtt = webvtt.from_string(text)
    except webvtt.errors.MalformedFileError as e:
        raise SubtitleError(f"{name}: not a valid WebVTT file ({e})") from None
    return [(_vtt_seconds(c.start), _vtt_seconds(c.end), c.text, c.voice) for c in vtt.captions]


def estimate_seconds(text: str) -> float:
    """A rough natural length: about 4.5 Chinese characters or 2.7 other words a second."""
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    words = len(re.findall(r"[^\s\u3400-\u9fff]+", re.sub(r"[\u3400-\u9fff]", " ", text)))
    return cjk / 4.5 + words / 2.7


@dataclass(frozen=True)
class CuePlan:
    cue: Cue
    request: TakeRequest
    speed_ratio: float  # natural length over the cue's length: above 1 the voice must hurry

    @property
    def uncomfortable(self) -> bool:
        return not COMFORT_RANGE[0] <= self.speed_ratio <= COMFORT_RANGE[1]


def plan(cues: list[Cue], voices: Mapping[str, str], default_voice: str | None,
         options: SynthesisOptions | None = None, fit: str = FIT_EXACT,
         natural_seconds: Callable[[str], float] = estimate_seconds, sr: int = SAMPLE_RATE,
         default_emotions: Mapping[str, Emotion] | None = None) -> list[CuePlan]:
    """Turn cues into take requests. ``voices`` maps a speaker name to a saved voice's clip path.

    ``exact``: every take lasts its cue to the sample. ``natural``: a take keeps its natural pace
    and is only shortened (to the cue) when it would overrun. ``options`` supplies emotion,
    sampling and the rest; its duration is replaced per cue, and a cue whose speaker is a saved
    voice with a default emotion (``default_emotions``) takes that emotion.
    """
    if fit not in (FIT_EXACT, FIT_NATURAL):
        raise SubtitleError(f"unknown fit {fit!r}: use '{FIT_EXACT}' or '{FIT_NATURAL}'")
    base = SynthesisOptions() if options is None else options
    out = []
    for cue in cues:
        if cue.speaker is not None and cue.speaker not in voices:
            known = ", ".join(sorted(voices)) or "none saved yet"
            raise SubtitleError(f"cue {cue.index}: no saved voice named {cue.speaker!r} (saved: {known}); "
                                "save one under that name or fix the name")
        voice = voices[cue.speaker] if cue.speaker is not None else default_voice
        if voice is None:
            raise SubtitleError(f"cue {cue.index} names no speaker and no default voice is chosen")
        ratio = natural_seconds(cue.text) / (cue.samples / sr)
        exact = Duration.seconds(cue.samples / sr)
        duration = exact if fit == FIT_EXACT or ratio > 1.0 else Duration.free()
        emotion = (default_emotions or {}).get(cue.speaker or "", base.emotion)
        out.append(CuePlan(cue, TakeRequest(cue.text, voice, base.replace(duration=duration, emotion=emotion)),
                           ratio))
    return out


def item_names(cues: list[Cue]) -> list[str]:
    return [f"cue-{c.index:04d}" for c in cues]


@dataclass(frozen=True)
class Placement:
    cue: Cue
    samples: int  # how much of the take was placed
    cut: int  # samples dropped because the take ran into the next cue


def assemble(cues: list[Cue], takes: Mapping[int, np.ndarray], total: int | None = None
             ) -> tuple[np.ndarray, list[Placement]]:
    """One track with each cue's take at its exact start sample and silence elsewhere.

    A take longer than the room before the next cue (possible with natural fit) is cut there
    and reported. Cues without a take (not made yet) stay silent.
    """
    length = max(total or 0, cues[-1].end)
    track = np.zeros(length, np.float32)
    placed = []
    for k, cue in enumerate(cues):
        if cue.index not in takes:
            continue
        audio = np.asarray(takes[cue.index], np.float32)
        room = cues[k + 1].start - cue.start if k + 1 < len(cues) else len(audio)
        n = min(len(audio), room)
        if cue.start + n > len(track):
            track = np.concatenate([track, np.zeros(cue.start + n - len(track), np.float32)])
        track[cue.start:cue.start + n] = audio[:n]
        placed.append(Placement(cue, n, len(audio) - n))
    return track, placed


def create_job(store: JobStore, plans: list[CuePlan], title: str, fit: str = FIT_EXACT) -> int:
    """Store a dubbing job; its cues (timing, speaker, speed ratio) travel in the job's meta."""
    cues = [{"index": p.cue.index, "start": p.cue.start, "end": p.cue.end, "speaker": p.cue.speaker,
             "speed_ratio": round(p.speed_ratio, 3)} for p in plans]
    return store.create("dub", title, list(zip(item_names([p.cue for p in plans]), [p.request for p in plans],
                                               strict=True)),
                        meta={"fit": fit, "sample_rate": SAMPLE_RATE, "cues": cues})


def job_cues(store: JobStore, job_id: int) -> list[Cue]:
    """The job's cues with the text as it is now (after any edit made through regenerate)."""
    meta = store.job(job_id)["meta"]
    if "cues" not in meta:
        raise SubtitleError(f"job {job_id} is not a dubbing job")
    items = store.items(job_id)
    return [Cue(c["index"], c["start"], c["end"], it.request.text, c["speaker"])
            for c, it in zip(meta["cues"], items, strict=True)]


@dataclass(frozen=True)
class DubResult:
    track: np.ndarray
    placements: list[Placement]
    missing: list[int]  # cue numbers without a finished take yet


def job_track(store: JobStore, job_id: int) -> DubResult:
    """Assemble the finished cues of a dubbing job into one track."""
    import soundfile as sf

    cues = job_cues(store, job_id)
    takes = {}
    for cue, it in zip(cues, store.items(job_id), strict=True):
        if it.state == DONE and it.output is not None:
            takes[cue.index] = sf.read(it.output, dtype="float32")[0]
    track, placed = assemble(cues, takes)
    return DubResult(track, placed, [c.index for c in cues if c.index not in takes])


def compose_srt(cues: list[Cue], sr: int = SAMPLE_RATE) -> str:
    """The cues back as an .srt (with any edits), speakers as ``Name:`` prefixes."""
    return srt.compose([srt.Subtitle(c.index, timedelta(seconds=c.start / sr), timedelta(seconds=c.end / sr),
                                     f"{c.speaker}: {c.text}" if c.speaker else c.text) for c in cues],
                       reindex=False)


def zip_takes(files: Mapping[str, Path], extra: Mapping[str, str] | None = None) -> bytes:
    """A ZIP of the per-cue files (name in archive → file) plus small text files."""
    return zip_files(files, extra)


@dataclass(frozen=True)
class DubFiles:
    track: Path  # every finished cue at its start sample
    cues_zip: Path  # the per-cue files and the subtitles
    subtitles: Path  # the cues back as .srt, with any edits
    result: DubResult


def write_results(store: JobStore, job_id: int, folder: str | Path, stem: str,
                  options: ExportOptions | None = None) -> DubFiles:
    """Write a dubbing job's track, per-cue ZIP and .srt to ``folder`` (``stem``-dub.*, ``stem``-cues.zip).

    Cues not finished yet are silent in the track and missing from the ZIP; ``result.missing``
    names them, so a partial job can be listened to and finished later.
    """
    options = options or ExportOptions()
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    result = job_track(store, job_id)
    track = export.write(folder / f"{stem}-dub", result.track, SAMPLE_RATE, options)
    srt_text = compose_srt(job_cues(store, job_id))
    subs = folder / f"{stem}-dub.srt"
    subs.write_text(srt_text, encoding="utf-8")
    cues_zip = folder / f"{stem}-cues.zip"
    cues_zip.write_bytes(zip_takes(export_takes(store, job_id, options), {f"{stem}.srt": srt_text}))
    return DubFiles(track, cues_zip, subs, result)
