"""The Dub, Batch and Voices tabs' service (app.dubbing) with the engine's test double."""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import numpy as np
import pytest
import soundfile as sf

from app.dubbing import MAX_UPLOAD_BYTES, Dubbing, DubbingError, export_options
from app.handlers import AppContext
from app.settings import TakeSettings
from indextts_core import export
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

    before = dub.item_audio(job, 0).audio.read_bytes()
    assert dub.item_audio(job, 1).text == "Morning! Coffee?"
    dub.regenerate(job, 1, "Morning! Tea?")
    assert dub.runner.wait(30)
    assert engine.calls[-1]["text"] == "Morning! Tea?" and dub.item_audio(job, 0).audio.read_bytes() == before
    for fmt in ("flac", "mp3"):  # the track exported at 48 kHz, normalised to the target
        again = dub.dub_results(job, export_options(fmt, "48000", -16))
        audio, rate = sf.read(again.track)
        assert again.track.suffix == f".{fmt}" and rate == 48000
        assert abs(export.loudness(audio, rate) - -16) <= 0.5
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
    assert abs(export.loudness(*hello) - -18) <= 0.5  # each take normalised on its own


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


def test_a_take_of_the_history_exports_to_flac_at_48k_normalised(ctx):
    from app.dubbing import export_take
    from app.history import History, Take

    path = ctx.history.reserve_path("hello", 1)
    t = np.arange(2 * SAMPLE_RATE) / SAMPLE_RATE
    sf.write(path, (0.1 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), SAMPLE_RATE, subtype="PCM_16")
    take = ctx.history.add(Take(id=History.new_id(), created="2026-01-01T00:00:00", wav=path.name, text="hello",
                                voice_name="v", voice_path=None, settings={}, seed=1, seconds=2.0,
                                requested_seconds=None, generation_seconds=0.1, rtf=0.1))
    out = export_take(ctx, take.id, export_options("flac", "48000", "-20"))
    data, sr = sf.read(out)
    assert out.parent == ctx.dirs.takes_dir / "exports" and sr == 48000 and len(data) == 2 * 48000
    assert abs(export.loudness(data, sr) - -20) <= 0.5
    with pytest.raises(DubbingError, match="pick a take"):
        export_take(ctx, None, export_options("wav16", "22050", ""))


def test_the_page_has_the_dub_batch_and_voices_tabs(tmp_path, tiny_model_dir):
    from app import i18n, webui

    args = webui.parse_args(["--model-dir", str(tiny_model_dir), "--output-dir", str(tmp_path / "o"),
                             "--cache-dir", str(tmp_path / "c")])
    demo, ui, app = webui.create_app(args, factory=FakeEngineForTests.from_pretrained, start=False)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"tab-dub", "tab-batch", "tab-voices", "dub-table", "batch-dl", "voices-table", "take-export"} <= ids
    assert ui.jobs.dubbing.store.folder == app.dirs.takes_dir / "jobs"
    for key in ("dub.col.cue", "batch.col.file", "voices.col.name", "state.cancelled"):
        assert i18n.t("zh", key) != i18n.t("en", key)
    table, _, _, _, voices, create, picker, _ = ui.jobs.on_language("zh", None, None)
    assert list(table.columns)[:2] == ["序号", "开始（秒）"] and voices.columns[0] == "名字"
    assert picker.constructor_args["choices"][0] == ("创作页的音色", "")
    assert create.constructor_args["choices"][0] == ("—— 选择已保存的音色 ——", "")


# -- the tabs' handlers on a built page: item panels, regenerate, what stays fresh ----------------

SKIP = gr.skip()


@dataclass
class _Click:
    """What Gradio hands a table's select handler: the clicked cell (row, column)."""

    index: list[int]


@pytest.fixture
def page(tmp_path, tiny_model_dir):
    from app import webui

    args = webui.parse_args(["--model-dir", str(tiny_model_dir), "--output-dir", str(tmp_path / "o"),
                             "--cache-dir", str(tmp_path / "c")])
    _demo, ui, app = webui.create_app(args, factory=FakeEngineForTests.from_pretrained, start=False)
    app.controller.start()
    assert app.controller.wait_ready(30) == "ready"
    ui.jobs.dubbing.save_voice("Anna", str(SPEAKER))
    ui.jobs.dubbing.save_voice("Ben", str(OTHER), "sad", 0.5)
    return ui.jobs, app


def test_a_batch_line_is_made_again_and_its_player_follows(tmp_path, page):
    jobs, app = page
    d = jobs.dubbing
    job = d.create_batch(_file(tmp_path, "lines.csv", "text,voice\nOne.,Anna\nTwo.,Ben\nThree.,\n"), str(SPEAKER),
                         TakeSettings(seed=3))
    assert d.runner.wait(30)
    _table, _progress, *panel, dl, timer = jobs.on_batch_job_change("en", None, job)
    assert panel[:3] == [None, "", None] and panel[4] is None and not dl.visible and not timer.active
    audio, text, row, button, shown = jobs.on_item_select(job, _Click([1, 2]))
    assert text == "Two." and row == 1 and button.interactive
    before = Path(audio).read_bytes()
    assert before == d.store.item(job, 1).output.read_bytes()

    def batch_player(shown: str | None) -> list:
        out = jobs.on_tick("en", None, job, None, None, 1, shown)
        assert out[:4] == [SKIP] * 4  # no dub job picked: that tab is left alone
        return out[6:8]

    assert batch_player(shown) == [SKIP, SKIP]  # nothing new: a playing take is not interrupted
    msg, timer, dl = jobs.on_batch_regen("en", job, 1, "Two, edited.")
    assert "Row 2 will be made again" in msg and timer.active and not dl.visible
    assert d.runner.wait(30)
    audio, fresh = batch_player(shown)
    assert fresh != shown and Path(audio).read_bytes() != before
    assert batch_player(fresh) == [SKIP, SKIP]
    engine = app.controller._engine
    assert engine.calls[-1]["text"] == "Two, edited." and engine.calls[-1]["seed"] != 3
    assert [r[2] for r in d.batch_rows("en", job)] == ["One.", "Two, edited.", "Three."]
    with zipfile.ZipFile(d.batch_zip(job, export_options("wav16", "22050", ""))) as z:
        manifest = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode())))
    assert manifest[1]["text"] == "Two, edited." and manifest[0]["seed"] == "3"
    assert "Click a line" in jobs.on_batch_regen("en", job, None, "")[0]


def test_a_cue_made_again_empties_its_player_then_shows_the_new_take(tmp_path, page):
    jobs, app = page
    d = jobs.dubbing
    job, _ = d.create_dub(_file(tmp_path, "scene.srt", SRT), str(SPEAKER), TakeSettings(), "exact")
    assert d.runner.wait(30)
    out = jobs.on_dub_build("en", job, "wav16", "22050", "")
    assert out[1] is not None and all(b.visible for b in out[2:])
    _audio, _text, row, _button, shown = jobs.on_item_select(job, _Click([0, 4]))
    with app.controller.session():  # the engine is busy: the cue waits to be made again
        msg, timer, track, *downloads = jobs.on_dub_regen("en", job, row, "")
        assert "Row 1 will be made again" in msg
        # The track built before still holds the old take of the cue: it is taken away.
        assert timer.active and track is None and not any(b.visible for b in downloads)
        out = jobs.on_tick("en", job, None, row, shown, None, None)
        assert out[2:4] == [None, f"{job}/0/-"] and out[-1].active
        assert out[0].iloc[0, 5] in ("waiting", "making")
        assert jobs.on_dub_job_change("en", job, None)[-1].active  # a running job keeps the page ticking
    assert d.runner.wait(30)
    out = jobs.on_tick("en", job, None, row, f"{job}/0/-", None, None)
    assert out[2] == str(d.store.item(job, 0).output) and out[3] == f"{job}/0/2" and not out[-1].active
    assert out[0].iloc[0, 5] == "done" and "5 of 5 done" in out[1]
    # Another job picked: its cues, and nothing of the cue or track of the one before.
    other, _ = d.create_dub(_file(tmp_path, "other.srt", SRT), str(SPEAKER), TakeSettings(), "exact", start=False)
    table, _progress, *panel, track, d1, d2, d3, timer = jobs.on_dub_job_change("en", other, None)
    assert len(table) == 5 and panel[:3] == [None, "", None] and not panel[3].interactive and panel[4] is None
    assert track is None and not (d1.visible or d2.visible or d3.visible) and not timer.active
    # The row picked before is not in a job that is gone: the player empties rather than fails.
    d.store.delete(other)
    assert jobs.on_tick("en", job, None, 7, "x", None, None)[2:4] == [None, None]


def test_a_page_opened_later_lists_the_jobs_and_voices_made_since(tmp_path, page):
    jobs, _app = page
    d = jobs.dubbing
    # Made after the page was built, as the HTTP API or another browser tab would.
    job = d.create_batch(_file(tmp_path, "lines.csv", "text\nHello.\n"), str(SPEAKER), TakeSettings(), start=False)
    d.save_voice("Cleo", str(SPEAKER))
    dub_jobs, batch_jobs, create, dub_voice, batch_voice = jobs.on_page_load(None)
    assert batch_jobs.constructor_args["choices"] == [(f"#{job} lines", job)]
    assert dub_jobs.constructor_args["choices"] == []
    assert ("Cleo", "Cleo") in dub_voice.constructor_args["choices"] == batch_voice.constructor_args["choices"]
    assert create.constructor_args["choices"][1:] == [("Anna", "Anna"), ("Ben", "Ben"), ("Cleo", "Cleo")]
    zh = jobs.on_page_load(SimpleNamespace(headers={"accept-language": "zh-CN,zh;q=0.9"}))
    assert zh[3].constructor_args["choices"][0] == ("创作页的音色", "")


@pytest.mark.parametrize("emotion", [
    Emotion.from_label("sad", 0.5), Emotion.from_vector([0.2, 0, 0, 0, 0, 0, 0.4, 0], apply_ui_bias=True),
    Emotion.from_audio(str(OTHER), 0.3), Emotion.from_text("gently amused", 0.7), Emotion.from_speaker()])
def test_a_saved_voices_emotion_becomes_the_create_forms_emotion(emotion):
    from app.dubbing import emotion_fields

    # Filled into the form, the fields make the emotion the voice's own lines get.
    assert TakeSettings(**emotion_fields(emotion)).emotion() == emotion


@pytest.mark.parametrize("bias", [False, True])
def test_a_weighted_mix_comes_to_the_form_as_the_values_the_engine_uses(bias):
    from app.dubbing import emotion_fields
    from indextts_core.emotion import normalize_emotion_vector, scale_emotion_vector

    values = [0.2, 0, 0, 0, 0, 0, 0.9, 0]
    form = TakeSettings(**emotion_fields(Emotion.from_vector(values, 0.5, apply_ui_bias=bias))).emotion()
    used = scale_emotion_vector(normalize_emotion_vector(values) if bias else values, 0.5)
    assert form == Emotion.from_vector(used) and form.vector != tuple(values)


def test_the_create_tab_picks_a_saved_voice_with_its_default_emotion(tmp_path, page):
    jobs, _app = page
    ui = jobs.ui
    ben = jobs.on_saved_voice("en", "Ben")
    assert ben[ui.voice] == str(jobs.dubbing.library.get("Ben").clip) and ben[jobs.saved_voice] == "Ben"
    assert "itts-error" not in ben[ui.voice_note] and ben[ui.recent_ids]  # checked and listed like an upload
    assert ben[ui.form["emotion_mode"]] == "vector" and ben[ui.form["emotion_label"]] == "sad"
    assert [ben[ui.form[f"emo_vec_{i}"]] for i in range(8)] == list(Emotion.from_label("sad", 0.5).vector)
    assert "Sad 0.5" in ben[ui.emo_note] and "Ben" in ben[ui.emo_note]
    assert set(ben) <= set(jobs.saved_voice_outputs())
    # A voice without a default emotion leaves the form's emotion as it is.
    anna = jobs.on_saved_voice("en", "Anna")
    assert ui.form["emotion_mode"] not in anna and anna[ui.emo_note] == ""
    assert jobs.on_saved_voice("en", "") == {}
    jobs.dubbing.library.delete("Anna")
    assert "Anna" in jobs.on_saved_voice("en", "Anna")[ui.voice_note]  # gone meanwhile: said, nothing changed
    # The Voices tab's "Use in Create" does the same and shows the Create tab.
    used = jobs.on_voice_use("zh", "Ben")
    assert used[ui.voice] == ben[ui.voice] and used[ui.form["emotion_label"]] == "sad"
    assert used[ui.tabs].constructor_args["selected"] == "synth" and "已载入创作页" in used[jobs.voices_msg]
    assert set(used) <= {*jobs.saved_voice_outputs(), jobs.voices_msg, ui.tabs}
    # Saving a voice lists it in every picker, the Create tab's first.
    out = jobs.on_voice_save("en", "Cleo", str(SPEAKER), "speaker", 0.8)
    assert all(("Cleo", "Cleo") in p.constructor_args["choices"] for p in out[2:5])
    assert out[2].constructor_args["choices"][0][1] == ""
