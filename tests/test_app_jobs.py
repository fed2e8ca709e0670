"""The Dub, Batch and Voices tabs' service (app.dubbing) with the engine's test double."""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app.dubbing import MAX_UPLOAD_BYTES, Dubbing, DubbingError, export_options
from app.handlers import AppContext
from app.settings import TakeSettings
from indextts_core.batch import BatchError
from indextts_core.errors import InvalidOptionError
from indextts_core.jobs import CANCELLED, DONE, LocalWorker
from indextts_core.options import SAMPLE_RATE, Emotion
from indextts_core.subtitles import SubtitleError
from indextts_core.voices import VoiceLibraryError

from . import test_app_units
from .fake_engine import FakeEngineForTests
from .golden import GOLDEN_DIR
from .test_subtitles import SRT

SPEAKER = GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav"
OTHER = GOLDEN_DIR / "audio" / "emo_librivox_0920_22k.wav"

ctx = test_app_units.ctx  # the fixture: the app's context with the engine's test double


@pytest.fixture
def dub(ctx: AppContext) -> Dubbing:
    d = Dubbing(ctx)
    d.save_voice("Anna", str(SPEAKER))
    d.save_voice("Ben", str(OTHER), "sad", 0.5)
    return d


def _file(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_a_five_cue_dub_with_two_voices_lands_each_cue_on_its_sample(tmp_path, ctx, dub):
    settings = TakeSettings(emotion_mode="vector", emotion_vector=(0, 0, 0, 0, 0, 0, 0, 0.4), seed=11,
                            duration_mode="speed", speed=1.5)
    job, plans = dub.create_dub(_file(tmp_path, "scene.srt", SRT), dub.default_voice(str(SPEAKER), None),
                                settings, "exact")
    assert dub.runner.wait(30)
    engine = ctx.controller._engine
    # Ben's saved emotion for his cues; the Create tab's emotion for the others; each cue its own length.
    assert [c["emotion"] for c in engine.calls] == [settings.emotion(), Emotion.from_label("sad", 0.5),
                                                   settings.emotion(), Emotion.from_label("sad", 0.5),
                                                   settings.emotion()]
    assert {c["seed"] for c in engine.calls} == {11}
    rows = dub.cue_rows("en", job)
    assert [r[3] for r in rows] == ["Anna", "Ben", "Anna", "Ben", ""] and {r[5] for r in rows} == {"done"}
    assert rows[2][7].endswith("⚠")  # "Please." stretched over 0.85 s is flagged
    files = dub.dub_results(job, export_options("wav16", "22050", None))
    track, sr = sf.read(files.track, dtype="int16")
    assert sr == SAMPLE_RATE and not files.result.missing
    with zipfile.ZipFile(files.cues_zip) as z:
        assert sorted(z.namelist()) == [*(f"cue-{i:04d}.wav" for i in range(1, 6)), "scene.srt"]
        for p in plans:
            take = sf.read(io.BytesIO(z.read(f"cue-{p.cue.index:04d}.wav")), dtype="int16")[0]
            assert len(take) == p.cue.end - p.cue.start
            assert (track[p.cue.start:p.cue.end] == take).all()
    gaps = np.ones(len(track), bool)
    for p in plans:
        gaps[p.cue.start:p.cue.end] = False
    assert not track[gaps].any()

    before = dub.item_audio(job, 0)[0].read_bytes()
    assert dub.item_audio(job, 1)[1] == "Morning! Coffee?"
    dub.regenerate(job, 1, "Morning! Tea?")
    assert dub.runner.wait(30)
    assert engine.calls[-1]["text"] == "Morning! Tea?" and dub.item_audio(job, 0)[0].read_bytes() == before
    again = dub.dub_results(job, export_options("flac", "48000", -16))
    assert again.track.suffix == ".flac" and sf.info(str(again.track)).samplerate == 48000
    assert "Ben: Morning! Tea?" in again.subtitles.read_text(encoding="utf-8")


def test_a_job_cut_off_by_a_restart_resumes_with_finished_cues_intact(tmp_path, ctx, dub):
    job, _ = dub.create_dub(_file(tmp_path, "scene.srt", SRT), str(SPEAKER), TakeSettings(), "natural",
                            start=False)
    stop = threading.Event()

    def stop_after_two(p, it):
        if p.finished == 2:
            stop.set()

    with ctx.controller.session() as engine:
        LocalWorker(engine).run(dub.store, job, stop=stop, on_progress=stop_after_two)
    first = {it.index: it.output.read_bytes() for it in dub.store.items(job, (DONE,))}
    assert sorted(first) == [0, 1]
    # The app comes back: a new service over the same folder finds the job and finishes it.
    reborn = Dubbing(ctx)
    assert reborn.runner.resume_interrupted() == [job] and reborn.runner.wait(30)
    assert reborn.summary(job).progress.counts[DONE] == 5
    assert {i: reborn.store.item(job, i).output.read_bytes() for i in first} == first
    text, fraction = reborn.progress_text("en", job)
    assert text.startswith("5 of 5 done, 0 failed") and fraction == 1.0


def test_stop_keeps_finished_items_and_resume_finishes(tmp_path, ctx, dub):
    job, _ = dub.create_dub(_file(tmp_path, "scene.srt", SRT), str(SPEAKER), TakeSettings(), "exact", start=False)
    with ctx.controller.session() as engine:
        stop = threading.Event()
        LocalWorker(engine).run(dub.store, job, stop=stop, on_progress=lambda p, it: stop.set())
    assert dub.stop(job) == 4
    assert [it.state for it in dub.store.items(job)] == [DONE] + [CANCELLED] * 4
    assert dub.runner.resume_interrupted() == []  # a stopped job waits for Resume
    assert "stopped" in dub.progress_text("en", job)[0]
    dub.resume(job)
    assert dub.runner.wait(30) and dub.summary(job).progress.counts[DONE] == 5


def test_a_six_line_csv_becomes_a_zip_with_its_manifest(tmp_path, ctx, dub):
    lines = ("text,voice,seconds,filename\nHello.,Anna,1.5,hello\nHi.,Ben,,\nThree.,,2,\nFour.,Anna,,\n"
             "Five.,,,five\nSix.,Ben,0.75,\n")
    job = dub.create_batch(_file(tmp_path, "lines.csv", lines), str(SPEAKER), TakeSettings(seed=3))
    assert dub.runner.wait(30)
    assert [r[3] for r in dub.batch_rows("en", job)][:2] == ["Anna", "Ben"]
    path = dub.batch_zip(job, export_options("mp3", "48000", -18))
    with zipfile.ZipFile(path) as z:
        names = sorted(z.namelist())
        manifest = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode())))
        hello = sf.read(io.BytesIO(z.read("hello.mp3")))
    assert names == ["0002.mp3", "0003.mp3", "0004.mp3", "0006.mp3", "five.mp3", "hello.mp3", "manifest.csv"]
    assert [m["file"] for m in manifest][:2] == ["hello.mp3", "0002.mp3"] and manifest[1]["voice"] == "Ben"
    assert {m["state"] for m in manifest} == {"done"} and manifest[0]["seed"] == "3"
    assert hello[1] == 48000 and abs(len(hello[0]) / 48000 - 1.5) < 0.1


@pytest.mark.parametrize(("name", "text", "needle"), [
    ("a.srt", "1\n00:00:02,000 --> 00:00:01,000\nhi\n", "cue 1"),
    ("a.srt", SRT.replace("Ben:", "Zed:"), "no saved voice named 'Zed'"),
    ("a.csv", "words,voice\nhi,Anna\n", "line 1"),
])
def test_bad_files_name_their_line_and_make_no_job(tmp_path, dub, name, text, needle):
    upload = _file(tmp_path, name, text)
    with pytest.raises((SubtitleError, BatchError), match=needle):
        if name.endswith(".srt"):
            dub.create_dub(upload, str(SPEAKER), TakeSettings(), "exact", start=False)
        else:
            dub.create_batch(upload, str(SPEAKER), TakeSettings(), start=False)
    assert dub.store.jobs() == []


def test_uploads_over_the_limit_and_missing_uploads_are_refused(tmp_path, dub):
    big = tmp_path / "big.srt"
    big.write_bytes(b" " * (MAX_UPLOAD_BYTES + 1))
    with pytest.raises(DubbingError, match="at most 8 MiB"):
        dub.create_dub(str(big), str(SPEAKER), TakeSettings(), "exact")
    with pytest.raises(DubbingError, match="upload a subtitle file"):
        dub.create_dub(None, str(SPEAKER), TakeSettings(), "exact")
    with pytest.raises(InvalidOptionError, match="not a number"):
        export_options("wav16", "fast", None)


def test_the_voice_library_saves_renames_exports_and_imports(tmp_path, dub):
    assert dub.voice_names() == ["Anna", "Ben"]
    assert dub.voice_rows("en")[1][1] == "Sad 0.5"
    dub.set_voice_emotion("Anna", "happy", 0.3)
    assert dub.library.get("Anna").emotion == Emotion.from_label("happy", 0.3)
    dub.library.rename("Ben", "Benedict")
    exported = dub.export_voice("Benedict")
    dub.library.delete("Benedict")
    assert dub.import_voice(str(exported), "Ben").emotion == Emotion.from_label("sad", 0.5)
    assert dub.default_voice(None, "Ben") == str(dub.library.get("Ben").clip)
    with pytest.raises(VoiceLibraryError, match="already saved"):
        dub.save_voice("Ben", str(SPEAKER))
    with pytest.raises(DubbingError, match="upload or record"):
        dub.save_voice("Cleo", None)


def test_the_page_has_the_dub_batch_and_voices_tabs(tmp_path, tiny_model_dir):
    from app import i18n, webui

    args = webui.parse_args(["--model-dir", str(tiny_model_dir), "--output-dir", str(tmp_path / "o"),
                             "--cache-dir", str(tmp_path / "c")])
    demo, ui, app = webui.create_app(args, factory=FakeEngineForTests.from_pretrained, start=False)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"tab-dub", "tab-batch", "tab-voices", "dub-table", "batch-dl", "voices-table"} <= ids
    assert ui.jobs.dubbing.store.folder == app.dirs.takes_dir / "jobs"
    for key in ("dub.col.cue", "batch.col.file", "voices.col.name", "state.cancelled"):
        assert i18n.t("zh", key) != i18n.t("en", key)
