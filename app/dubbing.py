"""What the Dub, Batch and Voices tabs do, without Gradio: jobs, subtitles, batches, saved voices.

It uses only the engine's public modules (``indextts_core.jobs``, ``subtitles``, ``batch``,
``voices``, ``export``). Jobs live in one SQLite file under the takes folder, so a job survives
a restart of the app; one :class:`indextts_core.jobs.JobRunner` runs them on a background thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from indextts_core import batch, subtitles
from indextts_core.emotion import normalize_emotion_vector, scale_emotion_vector
from indextts_core.errors import IndexTTSError, InvalidOptionError
from indextts_core.export import ExportOptions
from indextts_core.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    JobRunner,
    JobStore,
    LocalWorker,
    Progress,
    SessionEngine,
)
from indextts_core.options import EMOTIONS, Duration, Emotion, SynthesisOptions
from indextts_core.voices import SavedVoice, SavedVoices

from . import controller as ctl
from .handlers import AppContext
from .i18n import t
from .settings import TakeSettings

log = logging.getLogger(__name__)

# Uploads bigger than this are refused before parsing (a 10,000-cue file is about 1 MB).
MAX_UPLOAD_BYTES = 8 << 20


class DubbingError(IndexTTSError):
    """A request from the Dub, Batch or Voices tab that cannot be carried out; the text says why."""


def jobs_dir(ctx: AppContext) -> Path:
    # Under the takes folder, which the server may serve: the cue players read from it.
    return ctx.dirs.takes_dir / "jobs"


def saved_voices_dir(ctx: AppContext) -> Path:
    return ctx.dirs.voices_dir / "saved"


class ItemTake(NamedTuple):
    audio: Path | None
    text: str
    key: str


@dataclass(frozen=True)
class JobSummary:
    job_id: int
    kind: str
    title: str
    progress: Progress
    active: bool
    error: str | None


def _read_upload(path: str | None, what: str) -> tuple[bytes, str]:
    if not path:
        raise DubbingError(f"upload a {what} first")
    p = Path(path)
    size = p.stat().st_size
    if size > MAX_UPLOAD_BYTES:
        raise DubbingError(f"{p.name} is {size >> 20} MiB; a {what} can be at most {MAX_UPLOAD_BYTES >> 20} MiB")
    return p.read_bytes(), p.name


def _label_emotion(label: str | None, intensity: float) -> Emotion | None:
    return None if not label or label == "speaker" else Emotion.from_label(label, float(intensity))


class Dubbing:
    """The service of the Dub, Batch and Voices tabs for one app."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.store = JobStore(jobs_dir(ctx))
        self.library = SavedVoices(saved_voices_dir(ctx))
        # One queue for the Dub and Batch tabs and the HTTP API's jobs; each take holds the engine
        # only while it is made, so the Create tab can still be used between two takes.
        self.runner = JobRunner(self.store, LocalWorker(SessionEngine(ctx.controller)),
                                expected=(IndexTTSError, ctl.EngineBusyError))

    # -- voices -------------------------------------------------------------------------
    def voice_names(self) -> list[str]:
        return [v.name for v in self.library.list()]

    def _voice_maps(self) -> tuple[dict[str, str], dict[str, Emotion]]:
        saved = self.library.list()
        return {v.name: str(v.clip) for v in saved}, {v.name: v.emotion for v in saved if v.emotion is not None}

    def default_voice(self, upload: str | None, saved_name: str | None) -> str | None:
        """The clip for lines that name no speaker: a saved voice, else the uploaded clip (kept with
        the recent voices, so the job still finds it after a restart)."""
        if saved_name:
            return str(self.library.get(saved_name).clip)
        if not upload:
            return None
        voice, _report = self.ctx.voices.add(upload)
        return str(self.ctx.voices.path_of(voice))

    def save_voice(self, name: str, clip: str | None, emotion_label: str | None = None,
                   intensity: float = 0.8) -> SavedVoice:
        if not clip:
            raise DubbingError("upload or record the clip to save")
        return self.library.save(name, clip, _label_emotion(emotion_label, intensity))

    def set_voice_emotion(self, name: str, emotion_label: str | None, intensity: float = 0.8) -> SavedVoice:
        return self.library.set_emotion(name, _label_emotion(emotion_label, intensity))

    def export_voice(self, name: str) -> Path:
        out = self.ctx.dirs.voices_dir / "exports"
        out.mkdir(parents=True, exist_ok=True)
        path = out / f"{name}.indextts-voice.zip"
        path.write_bytes(self.library.export(name))
        return path

    def import_voice(self, path: str | None, name: str | None = None) -> SavedVoice:
        data, _ = _read_upload(path, "voice file")
        return self.library.import_(data, name or None)

    def voice_rows(self, lang: str) -> list[list[Any]]:
        return [[v.name, self.emotion_text(lang, v.emotion), v.clip.name] for v in self.library.list()]

    @staticmethod
    def emotion_text(lang: str, emotion: Emotion | None) -> str:
        from .i18n import emotion_name

        if emotion is None or emotion.mode == "speaker":
            return emotion_name(lang, "speaker")
        if emotion.mode == "vector" and emotion.vector is not None:
            return ", ".join(f"{emotion_name(lang, n)} {v:g}" for n, v in zip(EMOTIONS, emotion.vector, strict=True)
                             if v)
        return emotion.mode

    # -- creating jobs --------------------------------------------------------------------
    def _options(self, settings: TakeSettings) -> SynthesisOptions:
        # The Create tab's settings, except its length: each cue or line brings its own.
        return settings.options().replace(duration=Duration.free())

    def create_dub(self, upload: str | None, voice: str | None, settings: TakeSettings, fit: str,
                   start: bool = True) -> tuple[int, list[subtitles.CuePlan]]:
        data, name = _read_upload(upload, "subtitle file (.srt or .vtt)")
        cues = subtitles.parse(data, name)
        voices, emotions = self._voice_maps()
        plans = subtitles.plan(cues, voices, voice, self._options(settings), fit, default_emotions=emotions)
        job_id = subtitles.create_job(self.store, plans, Path(name).stem, fit)
        if start:
            self.runner.submit(job_id)
        return job_id, plans

    def create_batch(self, upload: str | None, voice: str | None, settings: TakeSettings,
                     start: bool = True) -> int:
        data, name = _read_upload(upload, "batch file (.txt, .csv or .jsonl)")
        voices, emotions = self._voice_maps()
        reqs = batch.requests(batch.read_rows(data, name), voices, voice, name, self._options(settings), emotions)
        job_id = self.store.create("batch", Path(name).stem, reqs)
        if start:
            self.runner.submit(job_id)
        return job_id

    # -- following and steering jobs ----------------------------------------------------
    def job_choices(self, kind: str) -> list[tuple[str, int]]:
        return [(f"#{j['id']} {j['title']}", j["id"]) for j in reversed(self.store.jobs()) if j["kind"] == kind]

    def summary(self, job_id: int) -> JobSummary:
        job = self.store.job(job_id)
        return JobSummary(job_id, job["kind"], job["title"], self.store.progress(job_id),
                          self.runner.is_active(job_id), self.runner.errors.get(job_id))

    def progress_text(self, lang: str, job_id: int) -> tuple[str, float]:
        """A line for the page (done/total, failed, time left) and the fraction done."""
        s = self.summary(job_id)
        p = s.progress
        left = "" if p.seconds_left is None or not s.active else t(lang, "job.left", seconds=round(p.seconds_left))
        finished = p.is_complete and not p.counts[CANCELLED]
        state = t(lang, "job.running" if s.active else "job.complete" if finished else "job.paused")
        text = t(lang, "job.progress", done=p.counts[DONE], total=p.total, failed=p.counts[FAILED],
                 state=state) + left
        if s.error:
            text += " " + t(lang, "job.error", detail=s.error)
        return text, p.counts[DONE] / max(p.total, 1)

    def stop(self, job_id: int) -> int:
        """Stop within the segment being made; the rest waits (cancelled) until Resume."""
        self.runner.stop(job_id, cancel=True)
        return self.store.cancel(job_id)

    def resume(self, job_id: int) -> int:
        n = self.store.resume(job_id) + self.store.retry_failed(job_id)
        self.runner.submit(job_id)
        return n

    def regenerate(self, job_id: int, index: int, text: str | None = None) -> None:
        """Make one item again (a fresh seed; the edited text when given)."""
        text = None if text is None or not text.strip() or text == self.store.item(job_id, index).request.text \
            else text.strip()
        self.store.regenerate(job_id, index, text=text)
        self.runner.submit(job_id)

    # -- dubbing results -------------------------------------------------------------------
    def cue_rows(self, lang: str, job_id: int) -> list[list[Any]]:
        """Cue, start, length, speaker, text, state, achieved length and fit, for the cue table."""
        meta = self.store.job(job_id)["meta"]
        if "cues" not in meta:
            raise DubbingError(f"job {job_id} is not a dubbing job")
        sr = meta["sample_rate"]
        rows = []
        for c, it in zip(meta["cues"], self.store.items(job_id), strict=True):
            length = (c["end"] - c["start"]) / sr
            ratio = c["speed_ratio"]
            fit = f"{ratio:.2f}x" + (" ⚠" if not subtitles.COMFORT_RANGE[0] <= ratio <= subtitles.COMFORT_RANGE[1]
                                     else "")
            made = "" if it.seconds is None or it.state != DONE else f"{it.seconds:.3f}"
            rows.append([c["index"], f"{c['start'] / sr:.3f}", f"{length:.3f}", c["speaker"] or "",
                         it.request.text, _state_text(lang, it.state, it.error), made, fit])
        return rows

    def item_audio(self, job_id: int, row: int) -> ItemTake:
        """The take of the ``row``-th item (None until it is made), its text, and a key that
        changes whenever another take of it is ready or it is being made again."""
        items = self.store.items(job_id)
        if not 0 <= row < len(items):
            raise DubbingError(f"job {job_id} has no row {row + 1}")
        it = items[row]
        made = it.state == DONE and it.output is not None and it.output.is_file()
        # Every run of an item claims it once more, so the attempt count names the take on disk.
        return ItemTake(it.output if made else None, it.request.text, f"{job_id}/{row}/{it.attempts if made else '-'}")

    def dub_results(self, job_id: int, export: ExportOptions) -> subtitles.DubFiles:
        title = self.store.job(job_id)["title"]
        return subtitles.write_results(self.store, job_id, self.store.job_folder(job_id) / "results", title, export)

    def batch_rows(self, lang: str, job_id: int) -> list[list[Any]]:
        voices = {v: k for k, v in self._voice_maps()[0].items()}
        return [[it.index + 1, it.name, it.request.text, voices.get(it.request.voice, Path(it.request.voice).name),
                 _state_text(lang, it.state, it.error), "" if it.seconds is None else f"{it.seconds:.3f}"]
                for it in self.store.items(job_id)]

    def batch_zip(self, job_id: int, export: ExportOptions) -> Path:
        folder = self.store.job_folder(job_id) / "results"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{self.store.job(job_id)['title']}-batch.zip"
        path.write_bytes(batch.zip_job(self.store, job_id, self._voice_maps()[0], export))
        return path


def export_take(ctx: AppContext, take_id: str | None, options: ExportOptions) -> Path:
    """One take of the History in the export format, written beside the takes (``takes/exports/``)."""
    import soundfile as sf

    from indextts_core import export

    take = ctx.history.get(take_id) if take_id else None
    if take is None:
        raise DubbingError("pick a take in the table first")
    audio, sr = sf.read(ctx.history.path_of(take), dtype="float32")
    folder = ctx.dirs.takes_dir / "exports"
    folder.mkdir(parents=True, exist_ok=True)
    lufs = "" if options.loudness_lufs is None else f"-{options.loudness_lufs:g}lufs"
    stem = f"{Path(take.wav).stem}-{options.sample_rate}{lufs}"
    return export.write(folder / stem, audio, sr, options)


def emotion_fields(emotion: Emotion) -> dict[str, Any]:
    """A saved voice's default emotion as the Create tab's emotion fields (named as in
    :class:`TakeSettings`), so that the form then makes the takes the voice's lines get."""
    if emotion.mode == "speaker":
        return {"emotion_mode": "speaker"}
    if emotion.mode == "audio":
        return {"emotion_mode": "audio", "emotion_audio": str(emotion.audio), "emotion_weight": emotion.weight}
    if emotion.mode == "text":
        return {"emotion_mode": "text", "emotion_text": emotion.text or "", "emotion_weight": emotion.weight,
                "emotion_random": emotion.use_random}
    assert emotion.vector is not None
    vector, balance = tuple(emotion.vector), emotion.apply_ui_bias
    if emotion.weight != 1.0:
        # The form's mix has no weight of its own: it holds the values the engine would use.
        values = normalize_emotion_vector(vector) if balance else vector
        vector, balance = tuple(scale_emotion_vector(values, emotion.weight)), False
    fields: dict[str, Any] = {"emotion_mode": "vector", "emotion_vector": vector,
                              "emotion_random": emotion.use_random, "emotion_balance": balance}
    named = [(n, v) for n, v in zip(EMOTIONS, vector, strict=True) if v]
    if len(named) == 1:  # one emotion: the label and intensity boxes say which
        fields |= {"emotion_label": named[0][0], "emotion_intensity": named[0][1]}
    return fields


_STATE_KEYS: Mapping[str, str] = {PENDING: "state.pending", RUNNING: "state.running", DONE: "state.done",
                                  FAILED: "state.failed", CANCELLED: "state.cancelled"}


def _state_text(lang: str, state: str, error: str | None) -> str:
    text = t(lang, _STATE_KEYS[state])
    return f"{text}: {error}" if state == FAILED and error else text


def export_options(fmt: str, sample_rate: Any, loudness: Any) -> ExportOptions:
    """The export controls as :class:`ExportOptions`; an empty loudness box keeps the level."""
    try:
        rate = int(sample_rate)
        lufs = None if loudness is None or str(loudness).strip() == "" else float(loudness)
    except (TypeError, ValueError):
        raise InvalidOptionError(f"export: sample rate {sample_rate!r} or loudness {loudness!r} is not a number") \
            from None
    return ExportOptions(fmt, rate, lufs)
