"""The page: components, their words in both languages, and the wiring to their handlers.

What each event does lives in :mod:`app.page_handlers`, the programmatic endpoints in
:mod:`app.api_endpoints`; both are mixed into :class:`StudioUI`, which holds every component.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gradio as gr

from indextts_core.options import EMOTIONS, MAX_EMOTION_VALUE, SPEED_RANGE

from . import views
from .api_endpoints import ApiEndpoints
from .form_fields import FormNumber, FormSlider
from .handlers import AppContext, Studio, random_seed
from .i18n import LANG_CHOICES, emotion_name, t
from .jobs_tabs import JobTabs
from .page_handlers import PageHandlers
from .settings import DEFAULT_VARIANTS, VARIANT_CHOICES, TakeSettings

CACHE_CLEANUP = (3600, 24 * 3600)  # (every, older than) in seconds

MAX_VARIANTS = len(VARIANT_CHOICES)
ENGINE = "engine"  # concurrency group of the other actions that use the engine (one at a time)
# Takes (Generate, variants, /synthesize) are let in together, up to TAKES_AT_ONCE: the engine
# itself serves them one segment each in turn (app.controller), so a short take is not queued
# behind a long one. Past that number a take waits in Gradio's queue.
TAKES = "takes"
TAKES_AT_ONCE = 8

CSS = """
.itts-msg { padding: 8px 12px; border-radius: 6px; margin: 4px 0; font-size: 0.95em; }
.itts-info { background: #eef4ff; color: #1d3a6e; }
.itts-ok { background: #ecf8ef; color: #1c5a2b; }
.itts-warn { background: #fff6e0; color: #6a4a00; }
.itts-error { background: #fdecec; color: #8a1c1c; font-weight: 600; }
.itts-warnline { color: #8a5a00; }
.itts-banner { padding: 8px 12px; border-radius: 6px; margin: 2px 0; font-weight: 600; }
.itts-banner.itts-warn { background: #fff0c2; color: #5c3d00; border: 1px solid #e0b54a; }
.itts-banner.itts-error { background: #fdecec; color: #8a1c1c; border: 1px solid #e59a9a; }
.itts-banner.itts-info { background: #eef4ff; color: #1d3a6e; }
.itts-preview { font-size: 0.9em; border: 1px solid var(--border-color-primary); border-radius: 6px; padding: 8px; }
.itts-preview-title { font-weight: 600; margin-bottom: 4px; }
.itts-dim { color: var(--body-text-color-subdued); }
.itts-seg code { white-space: pre-wrap; word-break: break-all; }
.itts-seg-n { font-weight: 600; }
.itts-status th { text-align: left; padding-right: 16px; white-space: nowrap; }
.itts-progress { width: 100%; }
.itts-offline { margin-top: 8px; font-size: 0.9em; }
#lang { max-width: 260px; }
/* Gradio's container clips with overflow:hidden, which also stops position:sticky; clip does not. */
.gradio-container { overflow: clip !important; }
#create-side { align-self: stretch; }
#generate-bar { position: sticky; top: 0; z-index: 20; flex: none !important;
                background: var(--background-fill-primary); padding-bottom: 4px; }
"""

# Tooltips: set as the HTML title of each control (and re-applied when Gradio re-renders).
TIPS_JS = """
<script>
window.ittsTips = __TIPS__;
window.ittsLang = 'en';
window.ittsApplyTips = function (lang) {
  if (lang) { window.ittsLang = lang; }
  const table = window.ittsTips[window.ittsLang] || {};
  for (const [id, tip] of Object.entries(table)) {
    const el = document.getElementById(id);
    if (!el) continue;
    el.setAttribute('title', tip);
    el.querySelectorAll('input, textarea, button, select, label').forEach((c) => c.setAttribute('title', tip));
  }
};
(function () {
  let pending = false;
  const obs = new MutationObserver(() => {
    if (pending) return;
    pending = true;
    setTimeout(() => { pending = false; window.ittsApplyTips(); }, 300);
  });
  window.addEventListener('load', () => obs.observe(document.body, {childList: true, subtree: true}));
})();
</script>
"""


@dataclass
class Texts:
    """Which interface words a component shows (keys of :data:`app.i18n.STRINGS`)."""

    label: str | None = None
    info: str | None = None
    placeholder: str | None = None
    value: str | None = None
    choices: Callable[[str], list[tuple[str, str]]] | None = None
    extra: dict[str, Callable[[str], Any]] = field(default_factory=dict)


def _emotion_choices(names: tuple[str, ...]) -> Callable[[str], list[tuple[str, str]]]:
    return lambda lang: [(emotion_name(lang, n), n) for n in names]


def _keyed_choices(prefix: str, values: tuple[str, ...]) -> Callable[[str], list[tuple[str, str]]]:
    return lambda lang: [(t(lang, f"{prefix}.{v}"), v) for v in values]


class StudioUI(PageHandlers, ApiEndpoints):
    """Builds the Blocks and holds every component."""

    def __init__(self, ctx: AppContext) -> None:
        self.ctx = ctx
        self.studio = Studio(ctx)
        self.texts: list[tuple[gr.components.Component | gr.blocks.BlockContext, Texts]] = []
        self.tips: dict[str, str] = {}
        self.form: dict[str, Any] = {}

    # -- registration -----------------------------------------------------------------
    def _r(self, comp: Any, texts: Texts | None = None, tip: str | None = None) -> Any:
        if texts is not None:
            self.texts.append((comp, texts))
        if tip and getattr(comp, "elem_id", None):
            self.tips[comp.elem_id] = tip
        return comp

    def _field(self, name: str, comp: Any, key: str | None = None, *, info: bool = True) -> Any:
        """A form input for ``TakeSettings.<name>`` whose words live under ``key``."""
        key = key or name
        self.form[name] = comp
        if info and hasattr(comp, "info") and not comp.info:
            comp.info = t("en", f"{key}.tip")
        return self._r(comp, Texts(label=f"{key}.label", info=f"{key}.tip" if info else None), tip=f"{key}.tip")

    def texts_for(self, lang: str) -> list[Any]:
        updates = []
        for _comp, tx in self.texts:
            kw: dict[str, Any] = {}
            if tx.label:
                kw["label"] = t(lang, tx.label)
            if tx.info:
                kw["info"] = t(lang, tx.info)
            if tx.placeholder:
                kw["placeholder"] = t(lang, tx.placeholder)
            if tx.value:
                kw["value"] = t(lang, tx.value)
            if tx.choices:
                kw["choices"] = tx.choices(lang)
            for k, fn in tx.extra.items():
                kw[k] = fn(lang)
            updates.append(gr.update(**kw))
        return updates

    def tips_table(self) -> dict[str, dict[str, str]]:
        return {lang: {eid: t(lang, key) for eid, key in self.tips.items()} for lang in ("en", "zh")}

    # -- building ---------------------------------------------------------------------
    def build(self) -> gr.Blocks:
        L = "en"  # initial words; the page switches to the browser's language on load
        # Gradio copies every upload and every file it shows into its cache; without a schedule
        # that folder only grows. Copies older than a day are removed hourly (and all at exit):
        # takes and voices themselves live in the output folder.
        with gr.Blocks(title="IndexTTS Studio", analytics_enabled=False, delete_cache=CACHE_CLEANUP) as demo:
            self.demo = demo
            with gr.Row(equal_height=True):
                with gr.Column(scale=5):
                    self.title_md = self._r(gr.Markdown(f"## {t(L, 'app.title')}\n{t(L, 'app.subtitle')}",
                                                        elem_id="title"),
                                            Texts(extra={"value": lambda lg: f"## {t(lg, 'app.title')}\n"
                                                                               f"{t(lg, 'app.subtitle')}"}))
                with gr.Column(scale=1, min_width=220):
                    self.lang = gr.Radio(LANG_CHOICES, value="en", label=t(L, "lang.label"), elem_id="lang",
                                         interactive=True)
                    self.tips["lang"] = "lang.tip"
            self.banner = gr.HTML(elem_id="banner")
            self.jobs = JobTabs(self)  # before the Create tab, which holds its saved-voice picker
            with gr.Tabs(elem_id="tabs") as self.tabs:
                with gr.Tab(t(L, "tab.synth"), id="synth", elem_id="tab-synth") as tab_synth:
                    self._r(tab_synth, Texts(label="tab.synth"))
                    self._build_synth(L)
                self.jobs.build(L)
                with gr.Tab(t(L, "tab.history"), id="history", elem_id="tab-history") as tab_hist:
                    self._r(tab_hist, Texts(label="tab.history"))
                    self._build_history(L)
                with gr.Tab(t(L, "tab.status"), id="status", elem_id="tab-status") as tab_status:
                    self._r(tab_status, Texts(label="tab.status"))
                    self._build_status(L)
            self.jobs.render_timer()
            self._build_api()
            self.timer = gr.Timer(1.0, active=False)
            self._wire()
        return demo

    def _build_synth(self, L: str) -> None:
        with gr.Row():
            with gr.Column(scale=3):
                # Voice and text side by side: at 1366x768 the text box is in view when the page opens.
                with gr.Row(elem_id="voice-text-row"):
                    with gr.Column(min_width=320, elem_id="voice-col"):
                        self._r(gr.Markdown(t(L, "sec.voice")), Texts(value="sec.voice"))
                        self.voice = self._r(gr.Audio(sources=["upload", "microphone"], type="filepath",
                                                      label=t(L, "voice.label"), elem_id="voice"),
                                             Texts(label="voice.label"), tip="voice.tip")
                        self.voice_note = gr.HTML(views.voice_note(L, None), elem_id="voice-note")
                        self.jobs.build_voice_picker(L)
                        self.recent = self._r(gr.Dataset(components=["textbox"], samples=[], type="index",
                                                         label=t(L, "recent.label"), elem_id="recent-voices",
                                                         samples_per_page=12, visible=False),
                                              Texts(label="recent.label"), tip="recent.tip")
                        self.recent_ids = gr.State([])
                    with gr.Column(min_width=320, elem_id="text-col"):
                        self._r(gr.Markdown(t(L, "sec.text")), Texts(value="sec.text"))
                        self.text = self._field("text", gr.Textbox(
                            lines=4, max_lines=20, label=t(L, "text.label"), info=t(L, "text.tip"),
                            placeholder=t(L, "text.placeholder"), elem_id="text"), "text")
                        self.texts[-1][1].placeholder = "text.placeholder"
                        self.preview = gr.HTML(views.text_preview(L, None, [], ready=False),
                                               elem_id="text-preview")
                        with gr.Accordion(t(L, "pinyin.acc"), open=False, elem_id="pinyin-acc") as acc:
                            self._r(acc, Texts(label="pinyin.acc"))
                            self.pinyin_note = gr.Markdown(t(L, "pinyin.none"), elem_id="pinyin-note")
                            with gr.Row():
                                self.poly_char = self._r(
                                    gr.Dropdown(choices=[], label=t(L, "pinyin.char.label"), elem_id="pinyin-char",
                                                interactive=True),
                                    Texts(label="pinyin.char.label"), tip="pinyin.char.tip")
                                self.poly_reading = self._r(
                                    gr.Radio(choices=[], label=t(L, "pinyin.reading.label"), elem_id="pinyin-reading",
                                             interactive=True),
                                    Texts(label="pinyin.reading.label"), tip="pinyin.reading.tip")
                            self.poly_insert = self._r(
                                gr.Button(t(L, "pinyin.insert"), elem_id="pinyin-insert", size="sm"),
                                Texts(value="pinyin.insert"), tip="pinyin.insert.tip")
                            self.pinyin_msg = gr.HTML(elem_id="pinyin-message")
                            self.poly_state = gr.State([])

                self._r(gr.Markdown(t(L, "sec.emotion")), Texts(value="sec.emotion"))
                self.emo_mode = self._field("emotion_mode", gr.Radio(
                    _keyed_choices("emo_mode", ("speaker", "audio", "vector", "text"))(L), value="speaker",
                    label=t(L, "emo_mode.label"), info=t(L, "emo_mode.tip"), elem_id="emo-mode"), "emo_mode")
                self.texts[-1][1].choices = _keyed_choices("emo_mode", ("speaker", "audio", "vector", "text"))
                with gr.Group(visible=False) as self.emo_audio_group:
                    self.emo_audio = self._r(gr.Audio(sources=["upload", "microphone"], type="filepath",
                                                      label=t(L, "emo_audio.label"), elem_id="emo-audio"),
                                             Texts(label="emo_audio.label"), tip="emo_audio.tip")
                    self.form["emotion_audio"] = self.emo_audio
                with gr.Group(visible=False) as self.emo_label_group, gr.Row():
                    self.emo_label = self._field("emotion_label", gr.Dropdown(
                        _emotion_choices(EMOTIONS)(L), value="happy", label=t(L, "emo_label.label"),
                        info=t(L, "emo_label.tip"), elem_id="emo-label", interactive=True), "emo_label")
                    self.texts[-1][1].choices = _emotion_choices(EMOTIONS)
                    self.emo_intensity = self._field("emotion_intensity", FormSlider(
                        0.0, MAX_EMOTION_VALUE, value=0.8, step=0.05, label=t(L, "emo_intensity.label"),
                        info=t(L, "emo_intensity.tip"), elem_id="emo-intensity"), "emo_intensity")
                with gr.Group(visible=False) as self.emo_text_group:
                    self.emo_text = self._field("emotion_text", gr.Textbox(
                        lines=2, label=t(L, "emo_text.label"), info=t(L, "emo_text.tip"),
                        placeholder=t(L, "emo_text.placeholder"), elem_id="emo-text"), "emo_text")
                    self.texts[-1][1].placeholder = "emo_text.placeholder"
                    self.emo_analyze = self._r(gr.Button(t(L, "emo_analyze"), elem_id="emo-analyze", size="sm"),
                                               Texts(value="emo_analyze"), tip="emo_analyze.tip")
                self.emo_analyzed_for = gr.State(None)
                self.emo_weight = self._field("emotion_weight", FormSlider(
                    0.0, 1.0, value=0.65, step=0.05, label=t(L, "emo_weight.label"), info=t(L, "emo_weight.tip"),
                    elem_id="emo-weight", visible=False), "emo_weight")
                self.emo_note = gr.HTML(elem_id="emo-note")
                with gr.Accordion(t(L, "emo_mix.acc"), open=False, visible=False, elem_id="emo-mix") as self.emo_mix:
                    self._r(self.emo_mix, Texts(label="emo_mix.acc"))
                    self.emo_sliders = []
                    with gr.Row():
                        for i, name in enumerate(EMOTIONS):
                            s = FormSlider(0.0, MAX_EMOTION_VALUE, value=0.0, step=0.05, label=emotion_name(L, name),
                                          elem_id=f"emo-vec-{name}", min_width=140)
                            self._r(s, Texts(extra={"label": lambda lg, n=name: emotion_name(lg, n)}),
                                    tip="emo_slider.tip")
                            self.emo_sliders.append(s)
                            self.form[f"emo_vec_{i}"] = s
                    with gr.Row():
                        self.emo_random = self._field("emotion_random", gr.Checkbox(
                            False, label=t(L, "emo_random.label"), info=t(L, "emo_random.tip"),
                            elem_id="emo-random"), "emo_random")
                        self.emo_balance = self._field("emotion_balance", gr.Checkbox(
                            True, label=t(L, "emo_balance.label"), info=t(L, "emo_balance.tip"),
                            elem_id="emo-balance"), "emo_balance")

                self._r(gr.Markdown(t(L, "sec.length")), Texts(value="sec.length"))
                self.dur_mode = self._field("duration_mode", gr.Radio(
                    _keyed_choices("dur_mode", ("free", "speed", "seconds", "tokens"))(L), value="free",
                    label=t(L, "dur_mode.label"), info=t(L, "dur_mode.tip"), elem_id="dur-mode"), "dur_mode")
                self.texts[-1][1].choices = _keyed_choices("dur_mode", ("free", "speed", "seconds", "tokens"))
                self.speed = self._field("speed", FormSlider(SPEED_RANGE[0], SPEED_RANGE[1], value=1.0, step=0.05,
                                                            label=t(L, "speed.label"), info=t(L, "speed.tip"),
                                                            elem_id="speed", visible=False))
                self.seconds = self._field("target_seconds", FormNumber(5.0, minimum=0.1, maximum=600,
                                                                       label=t(L, "seconds.label"),
                                                                       info=t(L, "seconds.tip"),
                                                                       elem_id="target-seconds", visible=False),
                                           "seconds")
                self.tokens = self._field("target_tokens", FormNumber(250, minimum=1, maximum=30000, precision=0,
                                                                     label=t(L, "tokens.label"),
                                                                     info=t(L, "tokens.tip"), elem_id="target-tokens",
                                                                     visible=False), "tokens")

                with gr.Accordion(t(L, "adv.acc"), open=False, elem_id="advanced") as adv:
                    self._r(adv, Texts(label="adv.acc"))
                    d = TakeSettings()
                    self._r(gr.Markdown(t(L, "adv.sampling")), Texts(value="adv.sampling"))
                    with gr.Row():
                        self._field("do_sample", gr.Checkbox(d.do_sample, label=t(L, "do_sample.label"),
                                                             elem_id="do-sample"))
                        self._field("temperature", FormSlider(0.05, 2.0, d.temperature, step=0.05,
                                                             label=t(L, "temperature.label"), elem_id="temperature"))
                    with gr.Row():
                        self._field("top_p", FormSlider(0.05, 1.0, d.top_p, step=0.05, label=t(L, "top_p.label"),
                                                       elem_id="top-p"))
                        self._field("top_k", FormSlider(0, 100, d.top_k, step=1, label=t(L, "top_k.label"),
                                                       elem_id="top-k"))
                    with gr.Row():
                        self._field("num_beams", FormSlider(1, 10, d.num_beams, step=1, label=t(L, "num_beams.label"),
                                                           elem_id="num-beams"))
                        self._field("repetition_penalty", FormNumber(d.repetition_penalty, minimum=0.1, maximum=100,
                                                                    label=t(L, "repetition_penalty.label"),
                                                                    elem_id="repetition-penalty"))
                        self._field("max_mel_tokens", FormNumber(d.max_mel_tokens, minimum=1, maximum=10000,
                                                                precision=0, label=t(L, "max_mel_tokens.label"),
                                                                elem_id="max-mel-tokens"))
                    self._r(gr.Markdown(t(L, "adv.segments")), Texts(value="adv.segments"))
                    with gr.Row():
                        self._field("segment_tokens", FormSlider(20, 600, d.segment_tokens, step=1,
                                                                label=t(L, "segment_tokens.label"),
                                                                elem_id="segment-tokens"))
                        self._field("gap_ms", FormSlider(0, 2000, d.gap_ms, step=10, label=t(L, "gap_ms.label"),
                                                        elem_id="gap-ms"))
                    self._r(gr.Markdown(t(L, "adv.diffusion")), Texts(value="adv.diffusion"))
                    with gr.Row():
                        self._field("diffusion_steps", FormSlider(1, 100, d.diffusion_steps, step=1,
                                                                 label=t(L, "diffusion_steps.label"),
                                                                 elem_id="diffusion-steps"))
                        self._field("cfg_rate", FormSlider(0.0, 2.0, d.cfg_rate, step=0.05,
                                                          label=t(L, "cfg_rate.label"), elem_id="cfg-rate"))
                    with gr.Row():
                        self.seed = self._field("seed", FormNumber(-1, precision=0, label=t(L, "seed.label"),
                                                                  elem_id="seed", scale=3))
                        with gr.Column(scale=1, min_width=120):
                            self.dice = self._r(gr.Button(t(L, "dice"), elem_id="dice", size="sm"),
                                                Texts(value="dice"), tip="dice.tip")

            with gr.Column(scale=2, elem_id="create-side"):
                # Generate, Stop and the status line stay in view while the form beside them scrolls.
                with gr.Column(elem_id="generate-bar"):
                    with gr.Row():
                        self.generate_btn = self._r(gr.Button(t(L, "generate"), variant="primary", size="lg",
                                                              elem_id="generate", scale=3),
                                                    Texts(value="generate"), tip="generate.tip")
                        self.stop_btn = self._r(gr.Button(t(L, "stop"), variant="stop", elem_id="stop", scale=1,
                                                          min_width=80),
                                                Texts(value="stop"), tip="stop.tip")
                    self.message = gr.HTML(elem_id="message")
                self.live_audio = self._r(gr.Audio(label=t(L, "live.label"), streaming=self.ctx.streaming,
                                                   autoplay=True, interactive=False, elem_id="live-audio",
                                                   buttons=[], type="filepath"),
                                          Texts(label="live.label"), tip="live.tip")
                self.take_audio = self._r(gr.Audio(label=t(L, "take.label"), type="filepath", interactive=False,
                                                   elem_id="take-audio", buttons=["download"]),
                                          Texts(label="take.label"), tip="take.tip")
                self.take_info = gr.Markdown(elem_id="take-info")
                self.take_download = self._r(gr.DownloadButton(t(L, "download"), visible=False,
                                                               elem_id="take-download", variant="primary"),
                                             Texts(extra={"label": lambda lg: t(lg, "download")}), tip="download.tip")

                self._r(gr.Markdown(t(L, "sec.variants")), Texts(value="sec.variants"))
                self.variant_pick = self._r(gr.CheckboxGroup(_emotion_choices(VARIANT_CHOICES)(L),
                                                             value=list(DEFAULT_VARIANTS),
                                                             label=t(L, "variants.label"), elem_id="variant-pick"),
                                            Texts(label="variants.label", choices=_emotion_choices(VARIANT_CHOICES)),
                                            tip="variants.tip")
                self.variant_btn = self._r(gr.Button(t(L, "variants.btn"), elem_id="variants-generate"),
                                           Texts(value="variants.btn"), tip="variants.btn.tip")
                self.variant_msg = gr.HTML(elem_id="variants-message")
                self.variant_slots = []
                with gr.Row(elem_id="variants"):
                    for i in range(MAX_VARIANTS):
                        self.variant_slots.append(gr.Audio(type="filepath", interactive=False, visible=False,
                                                           elem_id=f"variant-{i}", buttons=["download"],
                                                           min_width=200))

    def _build_history(self, L: str) -> None:
        # History, folders and recent voices are filled by the page's own load event, never at
        # build time: the build is the public /config, which any program on the machine can read.
        self.history_folder = gr.Markdown("", elem_id="history-folder")
        # Fixed shares: with wrapped text the Text column would otherwise push Length and Seed out of view.
        self.history_table = self._r(gr.Dataframe(value=self._history_frame(L, [])[0], interactive=False,
                                                  wrap=True, label=t(L, "history.table"), elem_id="history-table",
                                                  column_widths=["16%", "32%", "16%", "16%", "10%", "10%"]),
                                     Texts(label="history.table"), tip="history.table.tip")
        self.history_ids = gr.State([])
        self.history_sel = gr.State(None)
        with gr.Row():
            with gr.Column(scale=3):
                self.history_audio = self._r(gr.Audio(type="filepath", interactive=False, label=t(L, "history.audio"),
                                                      elem_id="history-audio", buttons=["download"]),
                                             Texts(label="history.audio"), tip="history.audio.tip")
                self.history_info = gr.Markdown(t(L, "history.pick"), elem_id="history-info")
            with gr.Column(scale=1):
                self.history_reuse = self._r(gr.Button(t(L, "history.reuse"), variant="primary",
                                                       elem_id="history-reuse", interactive=False),
                                             Texts(value="history.reuse"), tip="history.reuse.tip")
                self.history_download = self._r(gr.DownloadButton(t(L, "history.download"), visible=False,
                                                                  elem_id="history-download"),
                                                Texts(extra={"label": lambda lg: t(lg, "history.download")}),
                                                tip="download.tip")
                self.history_delete = self._r(gr.Button(t(L, "history.delete"), variant="stop",
                                                        elem_id="history-delete", interactive=False),
                                              Texts(value="history.delete"), tip="history.delete.tip")
                self.history_refresh = self._r(gr.Button(t(L, "history.refresh"), elem_id="history-refresh"),
                                               Texts(value="history.refresh"), tip="history.refresh.tip")
                self.history_undo = self._r(gr.Button(t(L, "history.undo"), elem_id="history-undo", visible=False),
                                            Texts(value="history.undo"), tip="history.undo.tip")
                self.history_deleted = gr.State(None)
                self.history_msg = gr.HTML(elem_id="history-message")
        self.jobs.build_take_export(L)

    def _build_status(self, L: str) -> None:
        self._r(gr.Markdown(t(L, "status.title")), Texts(value="status.title"))
        self.status_html = gr.HTML(elem_id="status-panel")
        with gr.Row():
            self.download_btn = self._r(gr.Button(t(L, "btn.download_model"), elem_id="download-model"),
                                        Texts(value="btn.download_model"), tip="btn.download_model.tip")
            self.load_btn = self._r(gr.Button(t(L, "btn.load"), elem_id="load-model"),
                                    Texts(value="btn.load"), tip="btn.load.tip")
            self.unload_btn = self._r(gr.Button(t(L, "btn.unload"), variant="stop", elem_id="unload-model"),
                                      Texts(value="btn.unload"), tip="btn.unload.tip")
            self.refresh_btn = self._r(gr.Button(t(L, "btn.refresh"), elem_id="refresh-status"),
                                       Texts(value="btn.refresh"), tip="btn.refresh.tip")
        self.status_msg = gr.HTML(elem_id="status-message")

    def _build_api(self) -> None:
        """Hidden components behind the programmatic endpoints (gradio_client)."""
        with gr.Group(visible=False):
            self.api_voice = gr.Audio(type="filepath", label="voice")
            self.api_emotion_audio = gr.Audio(type="filepath", label="emotion_audio")
            self.api_settings = gr.JSON(label="settings")
            self.api_out_audio = gr.Audio(type="filepath", label="audio")
            self.api_out_info = gr.JSON(label="info")
            self.api_btn = gr.Button("synthesize")
            self.api_text = gr.Textbox(label="text")
            self.api_seg = gr.Number(120, label="segment_tokens")
            self.api_json = gr.JSON(label="result")
            self.api_preview_btn = gr.Button("preview")
            self.api_emo_btn = gr.Button("emotion")
            self.api_status_btn = gr.Button("status")

    # -- helpers ----------------------------------------------------------------------
    def settings_from(self, data: dict) -> TakeSettings:
        values = {name: data.get(comp) for name, comp in self.form.items()}
        vec = tuple(float(values.pop(f"emo_vec_{i}") or 0.0) for i in range(len(EMOTIONS)))
        s = TakeSettings.from_dict({k: v for k, v in values.items() if v is not None or k == "emotion_audio"})
        s.emotion_vector = vec
        analyzed_for = data.get(self.emo_analyzed_for)
        s.emotion_text_analyzed = analyzed_for is not None and analyzed_for == (s.emotion_text or "").strip()
        seed = data.get(self.form["seed"])
        s.seed = None if seed is None or seed == "" or int(seed) < 0 else int(seed)
        return s

    def form_inputs(self) -> set[Any]:
        return {*self.form.values(), self.lang, self.voice, self.emo_analyzed_for}

    def form_updates(self, s: TakeSettings) -> dict[Any, Any]:
        d = s.to_dict()
        out: dict[Any, Any] = {}
        for name, comp in self.form.items():
            if name.startswith("emo_vec_"):
                out[comp] = float(s.emotion_vector[int(name.rsplit("_", 1)[1])])
            elif name == "seed":
                out[comp] = -1 if s.seed is None else int(s.seed)
            else:
                out[comp] = d.get(name)
        out[self.emo_analyzed_for] = s.emotion_text.strip() if s.emotion_text_analyzed else None
        return out

    # -- wiring -----------------------------------------------------------------------
    def _wire(self) -> None:
        priv = {"api_visibility": "private"}
        lang = self.lang
        text_outs = [self.preview, self.poly_char, self.poly_reading, self.pinyin_note, self.poly_state]
        self.demo.load(self.on_load, None, [lang, *self.language_outputs()], **priv).then(
            None, [lang], None, js="(l) => { window.ittsApplyTips && window.ittsApplyTips(l); }", **priv).then(
            self.on_text, [lang, self.text, self.form["segment_tokens"]], text_outs, show_progress="hidden", **priv)
        lang.input(self.on_language, [lang, self.voice], self.language_outputs(), **priv).then(
            None, [lang], None, js="(l) => { window.ittsApplyTips && window.ittsApplyTips(l); }", **priv).then(
            self.on_text, [lang, self.text, self.form["segment_tokens"]], text_outs, show_progress="hidden", **priv)
        tick_outs = [self.banner, self.status_html, self.timer, self.download_btn]
        self.timer.tick(self.on_tick, [lang], tick_outs, **priv)

        voice_outs = [self.voice, self.voice_note, self.recent, self.recent_ids]
        self.voice.upload(self.on_voice, [lang, self.voice], voice_outs, **priv)
        self.voice.stop_recording(self.on_voice, [lang, self.voice], voice_outs, **priv)
        self.voice.clear(self.on_voice_clear, [lang], [self.voice_note], **priv)
        self.recent.select(self.on_recent, [lang, self.recent_ids], voice_outs, **priv)

        text_outs = [self.preview, self.poly_char, self.poly_reading, self.pinyin_note, self.poly_state]
        for ev in (self.text.change, self.form["segment_tokens"].change):
            ev(self.on_text, [lang, self.text, self.form["segment_tokens"]], text_outs, trigger_mode="always_last",
               show_progress="hidden", **priv)
        self.poly_char.input(self.on_poly_char, [self.poly_state, self.poly_char], [self.poly_reading], **priv)
        self.poly_insert.click(self.on_poly_insert, [lang, self.text, self.poly_state, self.poly_char,
                                                     self.poly_reading], [self.text, self.pinyin_msg], **priv)

        self.emo_mode.change(self.on_emo_mode, [self.emo_mode],
                             [self.emo_audio_group, self.emo_label_group, self.emo_text_group, self.emo_weight,
                              self.emo_mix], **priv)
        for ev in (self.emo_label.input, self.emo_intensity.release, self.emo_mode.input):
            ev(self._label_if_vector, [self.emo_mode, self.emo_label, self.emo_intensity], self.emo_sliders, **priv)
        self.emo_analyze.click(self.on_analyze, [lang, self.emo_text, self.text],
                               [*self.emo_sliders, self.emo_analyzed_for, self.emo_note, self.emo_mix],
                               concurrency_id=ENGINE, concurrency_limit=1, **priv)
        self.dur_mode.change(self.on_dur_mode, [self.dur_mode], [self.speed, self.seconds, self.tokens], **priv)
        self.dice.click(random_seed, None, [self.seed], **priv)

        takes = {"concurrency_id": TAKES, "concurrency_limit": TAKES_AT_ONCE}
        self.generate_btn.click(self.on_generate, self.form_inputs(), self.generate_outputs(),
                                show_progress_on=[self.message], **takes, **priv)
        self.variant_btn.click(self.on_variants, self.form_inputs() | {self.variant_pick},
                               [self.variant_msg, *self.variant_slots, self.history_table, self.history_ids],
                               show_progress_on=[self.variant_msg], **takes, **priv)
        # Not Gradio's ``cancels``: its cancel races the take's last frames (see StopSwitch).
        self.stop_btn.click(self.on_stop, None, None, **priv)

        self.history_table.select(self.on_history_select, [lang, self.history_ids],
                                  [self.history_audio, self.history_info, self.history_sel, self.history_download,
                                   self.history_reuse, self.history_delete], **priv)
        self.history_delete.click(self.on_history_delete, [lang, self.history_sel], self.history_delete_outputs(),
                                  **priv)
        self.history_undo.click(self.on_history_undo, [lang, self.history_deleted],
                                [self.history_table, self.history_ids, self.history_undo, self.history_deleted,
                                 self.history_msg], **priv)
        self.history_refresh.click(self.on_history_refresh, [lang], [self.history_table, self.history_ids], **priv)
        self.history_reuse.click(self.on_history_reuse, [lang, self.history_sel], self.reuse_outputs(), **priv)

        status_outs = [self.status_msg, self.status_html, self.banner]
        self.unload_btn.click(self.on_unload, [lang], status_outs, concurrency_id=ENGINE, concurrency_limit=1, **priv)
        self.load_btn.click(self.on_load_model, [lang], status_outs, concurrency_id=ENGINE, concurrency_limit=1,
                            **priv)
        self.refresh_btn.click(self.on_tick, [lang], tick_outs, **priv)
        self.download_btn.click(self.on_download, [lang], [self.status_html, self.banner, self.timer], **priv)

        self.api_btn.click(self.api_synthesize, [self.api_voice, self.api_emotion_audio, self.api_settings],
                           [self.api_out_audio, self.api_out_info], api_name="synthesize", **takes)
        self.api_preview_btn.click(self.api_preview, [self.api_text, self.api_seg], [self.api_json],
                                   api_name="preview_text")
        self.api_emo_btn.click(self.api_emotion, [self.api_text], [self.api_json], api_name="analyze_emotion",
                               concurrency_id=ENGINE, concurrency_limit=1)
        self.api_status_btn.click(self.api_status, None, [self.api_json], api_name="engine_status",
                                  concurrency_limit=None)

        self.jobs.wire()


def build_demo(ctx: AppContext) -> tuple[gr.Blocks, StudioUI]:
    ui = StudioUI(ctx)
    return ui.build(), ui


def head_html(ui: StudioUI) -> str:
    # "</" is escaped so that no tooltip text can end the script element early.
    tips = json.dumps(ui.tips_table(), ensure_ascii=False).replace("</", "<\\/")
    return TIPS_JS.replace("__TIPS__", tips)


__all__ = ["CSS", "StudioUI", "build_demo", "head_html"]
