"""Jobs over HTTP: ``POST /v1/jobs`` (a list of takes, a batch file or subtitles to dub),
progress, the result, cancel.

Jobs live in the :class:`indextts_core.jobs.JobStore` of the server's output folder, so a
job survives a restart and is resumed by the next server. One :class:`indextts_core.jobs.JobRunner`
thread runs them in order through a :class:`indextts_core.jobs.Worker`: the local worker takes the engine
for one item at a time (speech requests go between items), a Ray worker spreads items over
a cluster (:mod:`indextts_core.ray_worker`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from . import batch, subtitles
from .api_speech import EmotionRequest, SpeechRequest, options_from_json, to_options
from .errors import InvalidOptionError
from .jobs import CANCELLED, DONE, FAILED, RUNNING, JobRunner, JobStore, LocalWorker, SessionEngine, TakeRequest
from .options import EMOTIONS

log = logging.getLogger(__name__)

MAX_API_ITEMS = 2000


class JobTake(BaseModel):
    """One take of an ``items`` job: the speech request's text, voice and extra fields."""

    model_config = ConfigDict(extra="forbid")

    input: str = Field(..., max_length=4096)
    voice: str | None = Field(None, description="a saved voice (default: the job's voice)")
    name: str | None = Field(None, max_length=80, description="file name of the take (default: its number)")
    emotion: Literal[EMOTIONS] | EmotionRequest | None = None  # type: ignore[valid-type]
    instructions: str | None = Field(None, max_length=1000)
    speed: float = 1.0
    duration_seconds: float | None = None
    seed: int | None = None
    options: dict[str, Any] | None = None


class JobRequest(BaseModel):
    """A job: exactly one of ``items``, ``batch`` (the text of a .txt/.csv/.jsonl file) or
    ``subtitles`` (the text of an .srt/.vtt file). ``options`` holds the SynthesisOptions fields
    every take starts from; the job's ``voice`` is used where a take or cue names none."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field("job", max_length=200)
    voice: str | None = Field(None, description="default saved voice")
    options: dict[str, Any] | None = None
    items: list[JobTake] | None = Field(None, max_length=MAX_API_ITEMS)
    batch: str | None = Field(None, description="lines, CSV or JSONL (columns: text, voice, emotion, seconds, "
                                                "speed, seed, filename)")
    batch_format: Literal["txt", "csv", "jsonl"] = "txt"
    subtitles: str | None = Field(None, description="an .srt or .vtt file's text; 'Name:' picks a saved voice")
    subtitle_format: Literal["srt", "vtt"] = "srt"
    fit: Literal["exact", "natural"] = Field("exact", description="dubbing: every take as long as its cue "
                                                                  "(exact), or natural pace cut to the cue")


def local_runner(store: JobStore, engine_source: Any) -> JobRunner:
    """Jobs run in this process, one take at a time on ``engine_source``'s engine."""
    return JobRunner(store, LocalWorker(SessionEngine(engine_source)))


def create_job(store: JobStore, req: JobRequest, voices: Any, lookup: Callable[[str], Any]) -> int:
    """Store the job a request describes; ``lookup`` finds a saved voice by name (a 404 when none)."""
    given = [n for n in ("items", "batch", "subtitles") if getattr(req, n) is not None]
    if len(given) != 1:
        raise InvalidOptionError("a job has exactly one of items, batch or subtitles"
                                 + (f" (got {', '.join(given)})" if given else ""))
    base = options_from_json(req.options)
    default = None if req.voice is None else str(lookup(req.voice).clip)
    saved = voices.list()
    paths = {v.name: str(v.clip) for v in saved}
    emotions = {v.name: v.emotion for v in saved if v.emotion is not None}
    if req.subtitles is not None:
        cues = subtitles.parse(req.subtitles.encode("utf-8"), f"subtitles.{req.subtitle_format}")
        plans = subtitles.plan(cues, paths, default, base, fit=req.fit, default_emotions=emotions)
        return subtitles.create_job(store, plans, req.title, req.fit)
    if req.batch is not None:
        rows = batch.read_rows(req.batch.encode("utf-8"), f"batch.{req.batch_format}")
        items = batch.requests(rows, paths, default, options=base, default_emotions=emotions,
                               max_items=MAX_API_ITEMS)
        return store.create("batch", req.title, items)
    items = []
    for k, take in enumerate(req.items or []):
        where = f"items[{k}]"
        name = take.voice if take.voice is not None else req.voice
        if name is None:
            raise InvalidOptionError(f"{where}: no voice, and the job has no default voice")
        voice = lookup(name)
        speech = SpeechRequest(input=take.input, voice=name, emotion=take.emotion, instructions=take.instructions,
                               speed=take.speed, duration_seconds=take.duration_seconds, seed=take.seed,
                               options=take.options)
        try:
            options = to_options(speech, lookup, voice.emotion, base=base)
        except InvalidOptionError as e:
            raise InvalidOptionError(f"{where}: {e}") from None
        items.append((take.name or f"{k + 1:04d}", TakeRequest(take.input, str(voice.clip), options)))
    return store.create("batch", req.title, items)


def job_json(store: JobStore, job_id: int, voice_names: dict[str, str], public: Callable[[str], str],
             with_items: bool = True) -> dict[str, Any]:
    """A job for a client: status, counts, and (``with_items``) every item, with voice names, never paths."""
    job = store.job(job_id)
    progress = store.progress(job_id)
    counts = progress.counts
    if not progress.is_complete:
        status = "running" if counts[RUNNING] else "queued"
    elif counts[DONE] == progress.total:
        status = "completed"
    elif counts[CANCELLED] and not counts[FAILED]:
        status = "cancelled"
    else:
        status = "finished_with_errors"
    out: dict[str, Any] = {"id": job_id, "object": "job", "kind": job["kind"], "title": job["title"],
                           "created_at": int(job["created"]), "status": status, "total": progress.total,
                           "counts": counts, "seconds_left": progress.seconds_left}
    if with_items:
        by_path = {v: k for k, v in voice_names.items()}
        out["items"] = [{"index": it.index, "name": it.name, "state": it.state, "text": it.request.text,
                         "voice": by_path.get(it.request.voice), "seed": it.request.options.seed,
                         "seconds": it.seconds, "attempts": it.attempts,
                         "error": None if it.error is None else public(it.error)} for it in store.items(job_id)]
    return out
