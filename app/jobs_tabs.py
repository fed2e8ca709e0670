"""The Dub, Batch and Voices tabs: components and wiring; the work is in :mod:`app.dubbing`.

They share the Create tab's settings (emotion, sampling, advanced; its voice is the default
voice): one set of options describes every take, whether made alone, per cue or per line.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import gradio as gr
import pandas as pd

from indextts_core.errors import IndexTTSError
from indextts_core.export import FORMATS, SAMPLE_RATES, available_formats
from indextts_core.options import EMOTIONS, MAX_EMOTION_VALUE
from indextts_core.subtitles import FIT_EXACT, FIT_NATURAL

from . import views
from .dubbing import Dubbing, export_options, export_take
from .i18n import emotion_name, t

if TYPE_CHECKING:
    from .layout import StudioUI

DUB_COLUMNS = ("cue", "start", "length", "speaker", "text", "state", "made", "fit")
BATCH_COLUMNS = ("row", "file", "text", "voice", "state", "made")
VOICE_COLUMNS = ("name", "emotion", "file")


def _progress_html(text: str, fraction: float) -> str:
    return (f'<div class="itts-msg itts-info" role="status">{html.escape(text)}'
            f'<progress class="itts-progress" max="1" value="{fraction:.3f}"></progress></div>')


def _frame(lang: str, prefix: str, columns: tuple[str, ...], rows: list[list[Any]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=[t(lang, f"{prefix}.col.{c}") for c in columns])


def _row_of(evt: gr.SelectData) -> int | None:
    return evt.index[0] if isinstance(evt.index, list | tuple) else evt.index


class JobTabs:
    """Builds the three tabs inside the page of ``ui`` and wires them to a :class:`Dubbing`."""

    def __init__(self, ui: StudioUI) -> None:
        self.ui = ui
        self.dubbing = Dubbing(ui.ctx)

    # -- building ---------------------------------------------------------------------
    def build(self, L: str) -> None:
        r = self.ui._r
        from .layout import Texts

        with gr.Tab(t(L, "tab.dub"), id="dub", elem_id="tab-dub") as tab:
            r(tab, Texts(label="tab.dub"))
            self._build_dub(L, r, Texts)
        with gr.Tab(t(L, "tab.batch"), id="batch", elem_id="tab-batch") as tab:
            r(tab, Texts(label="tab.batch"))
            self._build_batch(L, r, Texts)
        with gr.Tab(t(L, "tab.voices"), id="voices", elem_id="tab-voices") as tab:
            r(tab, Texts(label="tab.voices"))
            self._build_voices(L, r, Texts)
        # Not created here: inside gr.Tabs a child that is not a tab shifts the tabs' positions,
        # and the page then shows one tab's button twice and loses another.
        self.timer = gr.Timer(1.0, active=False, render=False)

    def render_timer(self) -> None:
        """Place the progress timer on the page, outside the tabs (call after gr.Tabs closes)."""
        self.timer.render()

    def _voice_choices(self, lang: str) -> list[tuple[str, str]]:
        return [(t(lang, "jobs.voice.create"), ""), *[(n, n) for n in self.dubbing.voice_names()]]

    def _export_row(self, L: str, r: Any, Texts: Any, prefix: str) -> tuple[Any, Any, Any]:
        with gr.Row():
            fmt = r(gr.Dropdown([f for f in FORMATS if f in available_formats()], value="wav16",
                                label=t(L, "export.format.label"), elem_id=f"{prefix}-format"),
                    Texts(label="export.format.label"), tip="export.format.tip")
            rate = r(gr.Dropdown([str(s) for s in SAMPLE_RATES], value=str(SAMPLE_RATES[0]),
                                 label=t(L, "export.rate.label"), elem_id=f"{prefix}-rate"),
                     Texts(label="export.rate.label"), tip="export.rate.tip")
            # A text box, not a number: empty means "keep the level", which a number box cannot hold.
            lufs = r(gr.Textbox("", max_lines=1, placeholder="-16", label=t(L, "export.lufs.label"),
                                elem_id=f"{prefix}-lufs"), Texts(label="export.lufs.label"), tip="export.lufs.tip")
        return fmt, rate, lufs

    def _job_controls(self, L: str, r: Any, Texts: Any, prefix: str, kind: str) -> None:
        with gr.Row():
            setattr(self, f"{prefix}_job", r(gr.Dropdown(self.dubbing.job_choices(kind), value=None,
                                                         label=t(L, "jobs.job.label"), elem_id=f"{prefix}-job",
                                                         scale=3), Texts(label="jobs.job.label"),
                                             tip="jobs.job.tip"))
            setattr(self, f"{prefix}_stop", r(gr.Button(t(L, "jobs.stop"), variant="stop", elem_id=f"{prefix}-stop",
                                                        scale=1), Texts(value="jobs.stop"), tip="jobs.stop.tip"))
            setattr(self, f"{prefix}_resume", r(gr.Button(t(L, "jobs.resume"), elem_id=f"{prefix}-resume",
                                                          scale=1), Texts(value="jobs.resume"), tip="jobs.resume.tip"))
        setattr(self, f"{prefix}_progress", gr.HTML(elem_id=f"{prefix}-progress"))

    def _build_dub(self, L: str, r: Any, Texts: Any) -> None:
        r(gr.Markdown(t(L, "dub.intro")), Texts(value="dub.intro"))
        with gr.Row():
            with gr.Column(scale=2):
                self.dub_file = r(gr.File(file_types=[".srt", ".vtt"], type="filepath", label=t(L, "dub.file.label"),
                                          elem_id="dub-file"), Texts(label="dub.file.label"), tip="dub.file.tip")
            with gr.Column(scale=2):
                self.dub_voice = r(gr.Dropdown(self._voice_choices(L), value="", label=t(L, "jobs.voice.label"),
                                               elem_id="dub-voice"), Texts(label="jobs.voice.label"),
                                   tip="jobs.voice.tip")
                self.dub_fit = r(gr.Radio([(t(L, "dub.fit.exact"), FIT_EXACT), (t(L, "dub.fit.natural"), FIT_NATURAL)],
                                          value=FIT_EXACT, label=t(L, "dub.fit.label"), elem_id="dub-fit"),
                                 Texts(label="dub.fit.label", choices=lambda lg: [(t(lg, "dub.fit.exact"), FIT_EXACT),
                                                                                 (t(lg, "dub.fit.natural"),
                                                                                  FIT_NATURAL)]),
                                 tip="dub.fit.tip")
                self.dub_start = r(gr.Button(t(L, "dub.start"), variant="primary", elem_id="dub-start"),
                                   Texts(value="dub.start"), tip="dub.start.tip")
        self.dub_msg = gr.HTML(elem_id="dub-message")
        self._job_controls(L, r, Texts, "dub", "dub")
        self.dub_table = r(gr.Dataframe(_frame(L, "dub", DUB_COLUMNS, []), interactive=False, wrap=True,
                                        label=t(L, "dub.table"), elem_id="dub-table"),
                           Texts(label="dub.table"), tip="dub.table.tip")
        with gr.Row():
            with gr.Column(scale=3):
                self.dub_cue_audio = r(gr.Audio(type="filepath", interactive=False, label=t(L, "dub.cue.audio"),
                                                elem_id="dub-cue-audio"), Texts(label="dub.cue.audio"))
                self.dub_cue_text = r(gr.Textbox(lines=2, label=t(L, "dub.cue.text"), elem_id="dub-cue-text"),
                                      Texts(label="dub.cue.text"), tip="dub.cue.text.tip")
            with gr.Column(scale=1):
                self.dub_regen = r(gr.Button(t(L, "dub.regen"), elem_id="dub-regen", interactive=False),
                                   Texts(value="dub.regen"), tip="dub.regen.tip")
        self.dub_row = gr.State(None)
        r(gr.Markdown(t(L, "export.title")), Texts(value="export.title"))
        self.dub_format, self.dub_rate, self.dub_lufs = self._export_row(L, r, Texts, "dub")
        self.dub_build = r(gr.Button(t(L, "dub.build"), variant="primary", elem_id="dub-build"),
                           Texts(value="dub.build"), tip="dub.build.tip")
        self.dub_track = r(gr.Audio(type="filepath", interactive=False, label=t(L, "dub.track"), elem_id="dub-track"),
                           Texts(label="dub.track"))
        with gr.Row():
            self.dub_dl_track = gr.DownloadButton(t(L, "dub.dl.track"), visible=False, elem_id="dub-dl-track")
            self.dub_dl_zip = gr.DownloadButton(t(L, "dub.dl.zip"), visible=False, elem_id="dub-dl-zip")
            self.dub_dl_srt = gr.DownloadButton(t(L, "dub.dl.srt"), visible=False, elem_id="dub-dl-srt")
        for b, key in ((self.dub_dl_track, "dub.dl.track"), (self.dub_dl_zip, "dub.dl.zip"),
                       (self.dub_dl_srt, "dub.dl.srt")):
            r(b, Texts(extra={"label": lambda lg, k=key: t(lg, k)}))

    def _build_batch(self, L: str, r: Any, Texts: Any) -> None:
        r(gr.Markdown(t(L, "batch.intro")), Texts(value="batch.intro"))
        with gr.Row():
            self.batch_file = r(gr.File(file_types=[".txt", ".csv", ".jsonl"], type="filepath",
                                        label=t(L, "batch.file.label"), elem_id="batch-file", scale=2),
                                Texts(label="batch.file.label"), tip="batch.file.tip")
            with gr.Column(scale=2):
                self.batch_voice = r(gr.Dropdown(self._voice_choices(L), value="", label=t(L, "jobs.voice.label"),
                                                 elem_id="batch-voice"), Texts(label="jobs.voice.label"),
                                     tip="jobs.voice.tip")
                self.batch_start = r(gr.Button(t(L, "batch.start"), variant="primary", elem_id="batch-start"),
                                     Texts(value="batch.start"), tip="batch.start.tip")
        self.batch_msg = gr.HTML(elem_id="batch-message")
        self._job_controls(L, r, Texts, "batch", "batch")
        self.batch_table = r(gr.Dataframe(_frame(L, "batch", BATCH_COLUMNS, []), interactive=False, wrap=True,
                                          label=t(L, "batch.table"), elem_id="batch-table"),
                             Texts(label="batch.table"), tip="batch.table.tip")
        self.batch_audio = r(gr.Audio(type="filepath", interactive=False, label=t(L, "dub.cue.audio"),
                                      elem_id="batch-audio"), Texts(label="dub.cue.audio"))
        r(gr.Markdown(t(L, "export.title")), Texts(value="export.title"))
        self.batch_format, self.batch_rate, self.batch_lufs = self._export_row(L, r, Texts, "batch")
        self.batch_build = r(gr.Button(t(L, "batch.build"), variant="primary", elem_id="batch-build"),
                             Texts(value="batch.build"), tip="batch.build.tip")
        self.batch_dl = gr.DownloadButton(t(L, "batch.dl"), visible=False, elem_id="batch-dl")
        r(self.batch_dl, Texts(extra={"label": lambda lg: t(lg, "batch.dl")}))

    def _build_voices(self, L: str, r: Any, Texts: Any) -> None:
        r(gr.Markdown(t(L, "voices.intro")), Texts(value="voices.intro"))
        self.voices_table = r(gr.Dataframe(_frame(L, "voices", VOICE_COLUMNS, self.dubbing.voice_rows(L)),
                                           interactive=False, label=t(L, "voices.table"), elem_id="voices-table"),
                              Texts(label="voices.table"), tip="voices.table.tip")
        with gr.Row():
            with gr.Column(scale=2):
                self.voices_clip = r(gr.Audio(sources=["upload", "microphone"], type="filepath",
                                              label=t(L, "voices.clip"), elem_id="voices-clip"),
                                     Texts(label="voices.clip"), tip="voices.clip.tip")
                self.voices_name = r(gr.Textbox(label=t(L, "voices.name"), elem_id="voices-name", max_lines=1),
                                     Texts(label="voices.name"), tip="voices.name.tip")
                with gr.Row():
                    choices = [("speaker", "speaker"), *[(n, n) for n in EMOTIONS]]
                    self.voices_emotion = r(gr.Dropdown([(emotion_name(L, n), v) for n, v in choices],
                                                        value="speaker", label=t(L, "voices.emotion"),
                                                        elem_id="voices-emotion"),
                                            Texts(label="voices.emotion",
                                                  choices=lambda lg: [(emotion_name(lg, n), v) for n, v in choices]),
                                            tip="voices.emotion.tip")
                    self.voices_intensity = r(gr.Slider(0.0, MAX_EMOTION_VALUE, 0.8, step=0.05,
                                                        label=t(L, "emo_intensity.label"),
                                                        elem_id="voices-intensity"),
                                              Texts(label="emo_intensity.label"))
            with gr.Column(scale=1):
                self.voices_save = r(gr.Button(t(L, "voices.save"), variant="primary", elem_id="voices-save"),
                                     Texts(value="voices.save"), tip="voices.save.tip")
                self.voices_set_emotion = r(gr.Button(t(L, "voices.set_emotion"), elem_id="voices-set-emotion"),
                                            Texts(value="voices.set_emotion"), tip="voices.set_emotion.tip")
                self.voices_use = r(gr.Button(t(L, "voices.use"), elem_id="voices-use"),
                                    Texts(value="voices.use"), tip="voices.use.tip")
                self.voices_new_name = r(gr.Textbox(label=t(L, "voices.new_name"), elem_id="voices-new-name",
                                                    max_lines=1), Texts(label="voices.new_name"))
                self.voices_rename = r(gr.Button(t(L, "voices.rename"), elem_id="voices-rename"),
                                       Texts(value="voices.rename"), tip="voices.rename.tip")
                self.voices_delete = r(gr.Button(t(L, "voices.delete"), variant="stop", elem_id="voices-delete"),
                                       Texts(value="voices.delete"), tip="voices.delete.tip")
                self.voices_export = r(gr.Button(t(L, "voices.export"), elem_id="voices-export"),
                                       Texts(value="voices.export"), tip="voices.export.tip")
                self.voices_dl = gr.DownloadButton(t(L, "voices.dl"), visible=False, elem_id="voices-dl")
                r(self.voices_dl, Texts(extra={"label": lambda lg: t(lg, "voices.dl")}))
                self.voices_import = r(gr.File(file_types=[".zip"], type="filepath", label=t(L, "voices.import"),
                                               elem_id="voices-import"), Texts(label="voices.import"),
                                       tip="voices.import.tip")
        self.voices_msg = gr.HTML(elem_id="voices-message")

    def build_take_export(self, L: str) -> None:
        """Under the History table: the selected take in another format, rate or loudness."""
        from .layout import Texts

        r = self.ui._r
        r(gr.Markdown(t(L, "export.title")), Texts(value="export.title"))
        self.take_format, self.take_rate, self.take_lufs = self._export_row(L, r, Texts, "take")
        with gr.Row():
            self.take_export = r(gr.Button(t(L, "take.export"), elem_id="take-export"), Texts(value="take.export"),
                                 tip="take.export.tip")
            self.take_dl = gr.DownloadButton(t(L, "take.dl"), visible=False, elem_id="take-export-dl")
            r(self.take_dl, Texts(extra={"label": lambda lg: t(lg, "take.dl")}))
        self.take_msg = gr.HTML(elem_id="take-export-message")

    # -- handlers: dub ------------------------------------------------------------------
    def _fail(self, lang: str, e: Exception) -> str:
        if isinstance(e, IndexTTSError | OSError):
            return views.message("error", t(lang, "jobs.failed", detail=str(e)))
        raise e

    def on_dub_start(self, data: dict) -> list[Any]:
        lang = data.get(self.ui.lang) or "en"
        try:
            voice = self.dubbing.default_voice(data.get(self.ui.voice), data.get(self.dub_voice) or None)
            job_id, plans = self.dubbing.create_dub(data.get(self.dub_file), voice, self.ui.settings_from(data),
                                                    data.get(self.dub_fit) or FIT_EXACT)
        except Exception as e:
            return [self._fail(lang, e), gr.skip(), gr.skip(), gr.skip()]
        flagged = [f"{p.cue.index} ({p.speed_ratio:.2f}x)" for p in plans if p.uncomfortable]
        text = t(lang, "dub.created", n=len(plans))
        if flagged:
            text += " " + t(lang, "dub.flagged", cues=", ".join(flagged))
        # The file is now a job: the upload box is emptied for the next one.
        return [views.message("warn" if flagged else "ok", text),
                gr.Dropdown(choices=self.dubbing.job_choices("dub"), value=job_id), gr.Timer(active=True), None]

    def on_dub_job(self, lang: str, job_id: int | None) -> list[Any]:
        if job_id is None:
            return [_frame(lang, "dub", DUB_COLUMNS, []), ""]
        text, fraction = self.dubbing.progress_text(lang, job_id)
        return [_frame(lang, "dub", DUB_COLUMNS, self.dubbing.cue_rows(lang, job_id)), _progress_html(text, fraction)]

    def on_dub_select(self, lang: str, job_id: int | None, evt: gr.SelectData) -> list[Any]:
        row = _row_of(evt)
        if job_id is None or row is None:
            return [None, "", None, gr.Button(interactive=False)]
        audio, text = self.dubbing.item_audio(job_id, row)
        return [None if audio is None else str(audio), text, row, gr.Button(interactive=True)]

    def on_dub_regen(self, lang: str, job_id: int | None, row: int | None, text: str) -> list[Any]:
        if job_id is None or row is None:
            return [views.message("warn", t(lang, "dub.pick")), gr.skip()]
        try:
            self.dubbing.regenerate(job_id, row, text)
        except Exception as e:
            return [self._fail(lang, e), gr.skip()]
        return [views.message("info", t(lang, "dub.regen.queued", row=row + 1)), gr.Timer(active=True)]

    def on_dub_build(self, lang: str, job_id: int | None, fmt: str, rate: str, lufs: str | None) -> list[Any]:
        hidden = [gr.DownloadButton(visible=False)] * 3
        if job_id is None:
            return [views.message("warn", t(lang, "jobs.pick")), None, *hidden]
        try:
            files = self.dubbing.dub_results(job_id, export_options(fmt, rate, lufs))
        except Exception as e:
            return [self._fail(lang, e), None, *hidden]
        missing = files.result.missing
        cut = [p.cue.index for p in files.result.placements if p.cut]
        text = t(lang, "dub.built", n=len(files.result.placements))
        if missing:
            text += " " + t(lang, "dub.missing", cues=", ".join(map(str, missing)))
        if cut:
            text += " " + t(lang, "dub.cut", cues=", ".join(map(str, cut)))
        return [views.message("warn" if missing or cut else "ok", text), str(files.track),
                gr.DownloadButton(value=str(files.track), visible=True),
                gr.DownloadButton(value=str(files.cues_zip), visible=True),
                gr.DownloadButton(value=str(files.subtitles), visible=True)]

    # -- handlers: batch ------------------------------------------------------------------
    def on_batch_start(self, data: dict) -> list[Any]:
        lang = data.get(self.ui.lang) or "en"
        try:
            voice = self.dubbing.default_voice(data.get(self.ui.voice), data.get(self.batch_voice) or None)
            job_id = self.dubbing.create_batch(data.get(self.batch_file), voice, self.ui.settings_from(data))
        except Exception as e:
            return [self._fail(lang, e), gr.skip(), gr.skip(), gr.skip()]
        n = self.dubbing.summary(job_id).progress.total
        return [views.message("ok", t(lang, "batch.created", n=n)),
                gr.Dropdown(choices=self.dubbing.job_choices("batch"), value=job_id), gr.Timer(active=True), None]

    def on_batch_job(self, lang: str, job_id: int | None) -> list[Any]:
        if job_id is None:
            return [_frame(lang, "batch", BATCH_COLUMNS, []), ""]
        text, fraction = self.dubbing.progress_text(lang, job_id)
        return [_frame(lang, "batch", BATCH_COLUMNS, self.dubbing.batch_rows(lang, job_id)),
                _progress_html(text, fraction)]

    def on_batch_select(self, job_id: int | None, evt: gr.SelectData) -> Any:
        row = _row_of(evt)
        if job_id is None or row is None:
            return None
        audio, _ = self.dubbing.item_audio(job_id, row)
        return None if audio is None else str(audio)

    def on_batch_build(self, lang: str, job_id: int | None, fmt: str, rate: str, lufs: str | None) -> list[Any]:
        if job_id is None:
            return [views.message("warn", t(lang, "jobs.pick")), gr.DownloadButton(visible=False)]
        try:
            path = self.dubbing.batch_zip(job_id, export_options(fmt, rate, lufs))
        except Exception as e:
            return [self._fail(lang, e), gr.DownloadButton(visible=False)]
        return [views.message("ok", t(lang, "batch.built", file=path.name)),
                gr.DownloadButton(value=str(path), visible=True)]

    def on_take_export(self, lang: str, take_id: str | None, fmt: str, rate: str, lufs: str | None) -> list[Any]:
        try:
            path = export_take(self.ui.ctx, take_id, export_options(fmt, rate, lufs))
        except Exception as e:
            return [self._fail(lang, e), gr.DownloadButton(visible=False)]
        return [views.message("ok", t(lang, "batch.built", file=path.name)),
                gr.DownloadButton(value=str(path), visible=True)]

    # -- handlers: both jobs ----------------------------------------------------------------
    def on_stop(self, lang: str, job_id: int | None) -> str:
        if job_id is None:
            return views.message("warn", t(lang, "jobs.pick"))
        n = self.dubbing.stop(job_id)
        return views.message("warn", t(lang, "jobs.stopped", n=n))

    def on_resume(self, lang: str, job_id: int | None) -> list[Any]:
        if job_id is None:
            return [views.message("warn", t(lang, "jobs.pick")), gr.skip()]
        self.dubbing.resume(job_id)
        return [views.message("info", t(lang, "jobs.resumed")), gr.Timer(active=True)]

    def on_tick(self, lang: str, dub_job: int | None, batch_job: int | None) -> list[Any]:
        # Asked before reading the tables: a job that ends in between still gets one more tick.
        busy = any(self.dubbing.runner.is_active(j) for j in (dub_job, batch_job) if j is not None)
        dub = self.on_dub_job(lang, dub_job) if dub_job is not None else [gr.skip(), gr.skip()]
        bat = self.on_batch_job(lang, batch_job) if batch_job is not None else [gr.skip(), gr.skip()]
        return [*dub, *bat, gr.Timer(active=busy)]

    def on_language(self, lang: str, dub_job: int | None, batch_job: int | None) -> list[Any]:
        """The tables and the voice pickers in the page's new language."""
        dub = self.on_dub_job(lang, dub_job)
        bat = self.on_batch_job(lang, batch_job)
        choices = self._voice_choices(lang)
        return [*dub, *bat, _frame(lang, "voices", VOICE_COLUMNS, self.dubbing.voice_rows(lang)),
                gr.Dropdown(choices=choices), gr.Dropdown(choices=choices)]

    # -- handlers: voices -------------------------------------------------------------------
    def _voices_outputs(self, lang: str, msg: str) -> list[Any]:
        choices = self._voice_choices(lang)
        return [views.message("ok", msg) if msg else "",
                _frame(lang, "voices", VOICE_COLUMNS, self.dubbing.voice_rows(lang)),
                gr.Dropdown(choices=choices), gr.Dropdown(choices=choices)]

    def _voices_op(self, lang: str, op: Any, done_key: str) -> list[Any]:
        try:
            name = op()
        except Exception as e:
            return [self._fail(lang, e), gr.skip(), gr.skip(), gr.skip()]
        return self._voices_outputs(lang, t(lang, done_key, name=name))

    def on_voice_save(self, lang: str, name: str, clip: str | None, emotion: str, intensity: float) -> list[Any]:
        try:
            saved = self.dubbing.save_voice(name, clip, emotion, intensity)
        except Exception as e:
            return [self._fail(lang, e), gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.skip()]
        # Once saved, the form is cleared for the next voice; after an error the inputs stay.
        return [*self._voices_outputs(lang, t(lang, "voices.saved", name=saved.name)), None, ""]

    def on_voice_set_emotion(self, lang: str, name: str, emotion: str, intensity: float) -> list[Any]:
        return self._voices_op(lang, lambda: self.dubbing.set_voice_emotion(name, emotion, intensity).name,
                               "voices.emotion_set")

    def on_voice_rename(self, lang: str, name: str, new: str) -> list[Any]:
        return self._voices_op(lang, lambda: self.dubbing.library.rename(name, new).name, "voices.renamed")

    def _delete(self, name: str) -> str:
        self.dubbing.library.delete(name)
        return name

    def on_voice_delete(self, lang: str, name: str) -> list[Any]:
        return self._voices_op(lang, lambda: self._delete(name), "voices.deleted")

    def on_voice_import(self, lang: str, path: str | None, name: str) -> list[Any]:
        return self._voices_op(lang, lambda: self.dubbing.import_voice(path, name).name, "voices.imported")

    def on_voice_export(self, lang: str, name: str) -> list[Any]:
        try:
            path = self.dubbing.export_voice(name)
        except Exception as e:
            return [self._fail(lang, e), gr.DownloadButton(visible=False)]
        return ["", gr.DownloadButton(value=str(path), visible=True)]

    def on_voice_select(self, lang: str, evt: gr.SelectData) -> list[Any]:
        row = _row_of(evt)
        names = self.dubbing.voice_names()
        if row is None or row >= len(names):
            return [gr.skip(), gr.skip()]
        v = self.dubbing.library.get(names[row])
        return [v.name, str(v.clip)]

    def on_voice_use(self, lang: str, name: str) -> list[Any]:
        try:
            v = self.dubbing.library.get(name)
        except Exception as e:
            return [self._fail(lang, e), gr.skip(), gr.skip()]
        return [views.message("ok", t(lang, "voices.used", name=v.name)), str(v.clip), gr.Tabs(selected="synth")]

    # -- wiring -----------------------------------------------------------------------------
    def wire(self) -> None:
        ui, priv = self.ui, {"api_visibility": "private"}
        lang = ui.lang
        engine = {"concurrency_id": "jobs", "concurrency_limit": 1}
        shared = ui.form_inputs()

        self.dub_start.click(self.on_dub_start, shared | {self.dub_file, self.dub_voice, self.dub_fit},
                             [self.dub_msg, self.dub_job, self.timer, self.dub_file], **engine, **priv)
        self.dub_job.change(self.on_dub_job, [lang, self.dub_job], [self.dub_table, self.dub_progress], **priv)
        self.dub_table.select(self.on_dub_select, [lang, self.dub_job],
                              [self.dub_cue_audio, self.dub_cue_text, self.dub_row, self.dub_regen], **priv)
        self.dub_regen.click(self.on_dub_regen, [lang, self.dub_job, self.dub_row, self.dub_cue_text],
                             [self.dub_msg, self.timer], **priv)
        self.dub_build.click(self.on_dub_build, [lang, self.dub_job, self.dub_format, self.dub_rate, self.dub_lufs],
                             [self.dub_msg, self.dub_track, self.dub_dl_track, self.dub_dl_zip, self.dub_dl_srt],
                             **engine, **priv)

        self.batch_start.click(self.on_batch_start, shared | {self.batch_file, self.batch_voice},
                               [self.batch_msg, self.batch_job, self.timer, self.batch_file], **engine, **priv)
        self.batch_job.change(self.on_batch_job, [lang, self.batch_job], [self.batch_table, self.batch_progress],
                              **priv)
        self.batch_table.select(self.on_batch_select, [self.batch_job], [self.batch_audio], **priv)
        self.batch_build.click(self.on_batch_build, [lang, self.batch_job, self.batch_format, self.batch_rate,
                                                     self.batch_lufs], [self.batch_msg, self.batch_dl],
                               **engine, **priv)

        self.take_export.click(self.on_take_export, [lang, ui.history_sel, self.take_format, self.take_rate,
                                                     self.take_lufs], [self.take_msg, self.take_dl], **priv)

        for prefix in ("dub", "batch"):
            job, msg = getattr(self, f"{prefix}_job"), getattr(self, f"{prefix}_msg")
            getattr(self, f"{prefix}_stop").click(self.on_stop, [lang, job], [msg], **priv)
            getattr(self, f"{prefix}_resume").click(self.on_resume, [lang, job], [msg, self.timer], **priv)
        self.timer.tick(self.on_tick, [lang, self.dub_job, self.batch_job],
                        [self.dub_table, self.dub_progress, self.batch_table, self.batch_progress, self.timer],
                        show_progress="hidden", **priv)

        lang.change(self.on_language, [lang, self.dub_job, self.batch_job],
                    [self.dub_table, self.dub_progress, self.batch_table, self.batch_progress, self.voices_table,
                     self.dub_voice, self.batch_voice], show_progress="hidden", **priv)

        voice_outs = [self.voices_msg, self.voices_table, self.dub_voice, self.batch_voice]
        self.voices_save.click(self.on_voice_save, [lang, self.voices_name, self.voices_clip, self.voices_emotion,
                                                    self.voices_intensity],
                               [*voice_outs, self.voices_clip, self.voices_name], **priv)
        self.voices_set_emotion.click(self.on_voice_set_emotion, [lang, self.voices_name, self.voices_emotion,
                                                                  self.voices_intensity], voice_outs, **priv)
        self.voices_rename.click(self.on_voice_rename, [lang, self.voices_name, self.voices_new_name], voice_outs,
                                 **priv)
        self.voices_delete.click(self.on_voice_delete, [lang, self.voices_name], voice_outs, **priv)
        self.voices_import.upload(self.on_voice_import, [lang, self.voices_import, self.voices_new_name], voice_outs,
                                  **priv)
        self.voices_export.click(self.on_voice_export, [lang, self.voices_name], [self.voices_msg, self.voices_dl],
                                 **priv)
        self.voices_table.select(self.on_voice_select, [lang], [self.voices_name, self.voices_clip], **priv)
        self.voices_use.click(self.on_voice_use, [lang, self.voices_name], [self.voices_msg, ui.voice, ui.tabs],
                              **priv)
