"""The page's event handlers: component values in, component updates out.

:class:`PageHandlers` is mixed into :class:`app.layout.StudioUI`, which builds the components
these methods read and update and wires them to their events. The work itself (engine calls,
saving takes) is done by :class:`app.handlers.Studio`; here its events become updates. Each
``*_outputs`` list sits beside the handler whose return values follow its order.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import soundfile as sf

from indextts_core.options import EMOTIONS

from . import controller as ctl
from . import text_tools, views
from .handlers import MAX_TAKE_CHARS, AppContext, Chunk, Failed, Finished, Progress, Stopped, Studio, engine_failure
from .i18n import detect_language, emotion_name, t
from .settings import VARIANT_CHOICES, label_vector

log = logging.getLogger(__name__)


def wav_bytes(audio: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), sample_rate, subtype="PCM_16", format="WAV")
    return buf.getvalue()


class PageHandlers:
    """The ``on_*`` handlers of :class:`app.layout.StudioUI` and the helpers they share."""

    ctx: AppContext
    studio: Studio

    def _history_frame(self, lang: str, takes: list[Any] | None = None) -> tuple[pd.DataFrame, list[str]]:
        takes = self.ctx.history.list() if takes is None else takes
        headers = [t(lang, f"history.col.{c}") for c in ("time", "text", "voice", "emotion", "length", "seed")]
        rows = []
        for tk in takes:
            text = tk.text if len(tk.text) <= 40 else tk.text[:39] + "…"
            emo = emotion_name(lang, tk.variant) if tk.variant else views.emotion_summary(lang, tk.settings)
            rows.append([tk.created.replace("T", " "), text, tk.voice_name, emo, round(tk.seconds, 2), tk.seed])
        return pd.DataFrame(rows, columns=headers), [tk.id for tk in takes]

    def _recent_update(self, lang: str) -> tuple[Any, list[str]]:
        voices = self.ctx.voices.recent()
        samples = [[f"{v.name} · {v.seconds:.1f} s"] for v in voices]
        return gr.update(samples=samples, visible=bool(samples), label=t(lang, "recent.label")), [v.id for v in voices]

    def _live_value(self, ev: Chunk) -> Any:
        if self.ctx.streaming:
            return wav_bytes(ev.audio, ev.sample_rate)
        live_dir = self.ctx.dirs.uploads_dir / "live"
        live_dir.mkdir(parents=True, exist_ok=True)
        path = live_dir / f"segment-{uuid.uuid4().hex[:12]}.wav"
        sf.write(str(path), np.clip(ev.audio, -1.0, 1.0), ev.sample_rate, subtype="PCM_16")
        return str(path)

    # -- handlers ---------------------------------------------------------------------
    def on_load(self, request: gr.Request) -> list[Any]:
        lang = detect_language(request.headers.get("accept-language") if request is not None else None)
        return [lang, *self.on_language(lang)]

    def language_outputs(self) -> list[Any]:
        return [c for c, _ in self.texts] + [self.banner, self.status_html, self.history_table, self.history_ids,
                                              self.history_folder, self.recent, self.recent_ids, self.voice_note,
                                              self.timer]

    def on_language(self, lang: str, voice: str | None = None) -> list[Any]:
        """Every word of the page in ``lang``; the voice note is written again for the voice in the box."""
        frame, ids = self._history_frame(lang)
        recent, recent_ids = self._recent_update(lang)
        status = self.ctx.controller.status()
        texts = self.texts_for(lang)
        texts[self._text_index(self.download_btn)] = gr.Button(value=t(lang, "btn.download_model"),
                                                               visible=self._download_needed(status))
        return [*texts, views.banner(lang, status), self._status_html(lang, status),
                frame, ids, t(lang, "history.folder", path=self.ctx.dirs.takes_dir), recent, recent_ids,
                views.voice_note(lang, *self.studio.check_voice(voice, lang)),
                gr.Timer(active=status.state in (ctl.LOADING, ctl.DOWNLOADING))]

    def _text_index(self, comp: Any) -> int:
        return next(i for i, (c, _) in enumerate(self.texts) if c is comp)

    def _status_html(self, lang: str, status: ctl.EngineStatus | None = None) -> str:
        status = status or self.ctx.controller.status()
        return views.status_panel(lang, status, output_dir=str(self.ctx.dirs.output_dir),
                                  streaming=self.ctx.streaming)

    def on_tick(self, lang: str) -> list[Any]:
        status = self.ctx.controller.status()
        busy = status.state in (ctl.LOADING, ctl.DOWNLOADING)
        return [views.banner(lang, status), self._status_html(lang, status), gr.Timer(active=busy),
                gr.Button(visible=self._download_needed(status))]

    @staticmethod
    def _download_needed(status: ctl.EngineStatus) -> bool:
        """The download button only matters while files are missing."""
        missing = status.files is not None and not status.files.complete and not status.files.is_test_model
        return missing and status.state != ctl.DOWNLOADING

    def on_voice(self, lang: str, path: str | None) -> list[Any]:
        voice, report, error = self.studio.add_voice(path, lang)
        recent, ids = self._recent_update(lang)
        if voice is None:
            # A refused clip leaves the box: nothing unusable stays where the voice goes.
            return [None if error else gr.skip(), views.voice_note(lang, None, error), recent, ids]
        stored = str(self.studio.voice_path(voice))
        value = stored if report is not None and report.trimmed else gr.skip()
        return [value, views.voice_note(lang, report), recent, ids]

    def on_voice_clear(self, lang: str) -> str:
        return views.voice_note(lang, None)

    def on_recent(self, lang: str, ids: list[str], evt: gr.SelectData) -> list[Any]:
        index = evt.index if isinstance(evt.index, int) else evt.index[0]
        if not ids or index >= len(ids):
            return [gr.skip(), gr.skip(), gr.skip(), gr.skip()]
        voice = self.ctx.voices.touch(ids[index])
        if voice is None:
            return [gr.skip(), gr.skip(), gr.skip(), gr.skip()]
        _, report, error = self.studio.add_voice(str(self.ctx.voices.path_of(voice)), lang)
        recent, new_ids = self._recent_update(lang)
        return [str(self.ctx.voices.path_of(voice)), views.voice_note(lang, report, error), recent, new_ids]

    def on_text(self, lang: str, text: str, seg: int) -> list[Any]:
        preview, invalid, error = self.studio.preview(text or "", seg)
        html = views.text_preview(lang, preview, invalid, ready=preview is not None, error=error, text=text or "",
                                  estimate=self.studio.estimate_seconds(preview), max_chars=MAX_TAKE_CHARS)
        try:
            polys = text_tools.find_polyphones(text or "")
        except Exception as e:  # the helper must never break typing
            log.warning("polyphone listing failed: %s", e)
            polys = []
        choices = [(f"{p.char} — …{p.context}… (#{p.index + 1})" + (f" ✓ {p.annotated}" if p.annotated else ""),
                    p.index) for p in polys]
        note = t(lang, "pinyin.found", n=len(polys)) if polys else t(lang, "pinyin.none")
        state = [[p.index, p.char, list(p.readings), p.annotated] for p in polys]
        return [html, gr.update(choices=choices, value=None), gr.update(choices=[], value=None), note, state]

    def on_poly_char(self, state: list, index: int | None) -> Any:
        for idx, _char, readings, annotated in state or []:
            if idx == index:
                value = annotated if annotated in readings else (readings[0] if readings else None)
                return gr.update(choices=readings, value=value)
        return gr.update(choices=[], value=None)

    def on_poly_insert(self, lang: str, text: str, state: list, index: int | None, reading: str | None) -> list[Any]:
        if index is None or not reading:
            return [gr.skip(), views.message("warn", t(lang, "pinyin.pick_first"))]
        found = next(((c, old) for i, c, _, old in state or [] if i == index), None)
        expected = found[0] if found else None
        if expected is None or index >= len(text or "") or text[index] != expected:
            return [gr.skip(), views.message("warn", t(lang, "pinyin.moved"))]
        try:
            new_text = text_tools.apply_reading(text, index, reading)
        except ValueError:  # the reading offered is always valid; the text moved under it
            return [gr.skip(), views.message("warn", t(lang, "pinyin.moved"))]
        old = found[1]
        # "Replaced" only when an annotation was there; otherwise one is added.
        note = (t(lang, "pinyin.replaced", char=expected, reading=reading, old=old) if old and old != reading
                else t(lang, "pinyin.inserted", char=expected, reading=reading))
        return [new_text, views.message("ok", note)]

    def on_emo_mode(self, mode: str) -> list[Any]:
        return [gr.Group(visible=mode == "audio"), gr.Group(visible=mode == "vector"),
                gr.Group(visible=mode == "text"), gr.Slider(visible=mode in ("audio", "text")),
                gr.Accordion(visible=mode in ("vector", "text"))]

    def on_emo_label(self, label: str, intensity: float) -> list[float]:
        return label_vector(label, intensity)

    def on_analyze(self, lang: str, description: str, text: str) -> list[Any]:
        values, error = self.studio.analyze_emotion(lang, description, text)
        if values is None:
            return [gr.skip()] * len(EMOTIONS) + [gr.skip(), views.message("error", error or ""), gr.skip()]
        return [*values, (description or "").strip(), views.message("ok", t(lang, "emo_analyzed")),
                gr.Accordion(open=True)]

    def on_dur_mode(self, mode: str) -> list[Any]:
        return [gr.Slider(visible=mode == "speed"), gr.Number(visible=mode == "seconds"),
                gr.Number(visible=mode == "tokens")]

    def on_generate(self, data: dict, request: gr.Request,
                    progress: gr.Progress = gr.Progress()) -> Iterator[dict]:  # noqa: B008
        with self.studio.stops.running(session_of(request)) as stop:
            yield from self._generate(data, stop, progress)

    def _generate(self, data: dict, stop: Any, progress: gr.Progress) -> Iterator[dict]:
        lang = data.get(self.lang) or "en"
        try:
            s = self.settings_from(data)
        except Exception as e:
            yield {self.message: views.message("error", t(lang, "error.option", detail=str(e)))}
            return
        # Gradio sends each yield as a diff against the previous one, so an output left out after
        # it got a value would be blanked: every yield carries the latest value of every output.
        out: dict[Any, Any] = {c: gr.skip() for c in self.generate_outputs()}
        out[self.message] = views.message("info", t(lang, "progress.start"))
        out[self.take_download] = gr.DownloadButton(visible=False)
        yield out
        for ev in self.studio.generate(lang, data.get(self.voice), s, stop):
            if isinstance(ev, Progress):
                if ev.fraction is not None:
                    progress(ev.fraction, desc=ev.text)
                out[self.message] = views.message("info", ev.text)
            elif isinstance(ev, Chunk):
                out[self.live_audio] = self._live_value(ev)
                yield out
                if self.ctx.streaming:
                    out[self.live_audio] = None  # a streamed chunk is sent once
                continue
            elif isinstance(ev, Finished):
                frame, ids = self._history_frame(lang)
                recent, recent_ids = self._recent_update(lang)
                out.update({self.take_audio: str(ev.path), self.take_info: ev.info,
                            self.take_download: gr.DownloadButton(value=str(ev.path), visible=True),
                            self.message: views.message("ok", t(lang, "done", time=ev.take.generation_seconds)),
                            self.history_table: frame, self.history_ids: ids, self.recent: recent,
                            self.recent_ids: recent_ids})
            elif isinstance(ev, Failed):
                out[self.message] = views.message("error", ev.text)
            elif isinstance(ev, Stopped):
                out[self.message] = views.message("warn", ev.text)
            yield out

    def generate_outputs(self) -> list[Any]:
        return [self.message, self.live_audio, self.take_audio, self.take_info, self.take_download,
                self.history_table, self.history_ids, self.recent, self.recent_ids]

    def on_variants(self, data: dict, request: gr.Request,
                    progress: gr.Progress = gr.Progress()) -> Iterator[dict]:  # noqa: B008
        with self.studio.stops.running(session_of(request)) as stop:
            yield from self._variants(data, stop, progress)

    def _variants(self, data: dict, stop: Any, progress: gr.Progress) -> Iterator[dict]:
        lang = data.get(self.lang) or "en"
        labels = [x for x in VARIANT_CHOICES if x in (data.get(self.variant_pick) or [])]
        try:
            s = self.settings_from(data)
        except Exception as e:
            yield {self.variant_msg: views.message("error", t(lang, "error.option", detail=str(e)))}
            return
        # As in on_generate, every yield carries the latest value of every output.
        slots: list[Any] = [gr.Audio(value=None, visible=False) for _ in self.variant_slots]
        latest: dict[Any, Any] = {self.history_table: gr.skip(), self.history_ids: gr.skip(),
                                  self.variant_msg: gr.skip()}

        def with_slots(update: dict) -> dict:
            latest.update(update)
            return {**dict(zip(self.variant_slots, slots, strict=True)), **latest}

        yield with_slots({self.variant_msg: views.message("info", t(lang, "progress.start"))})
        done = 0
        for ev in self.studio.variants(lang, data.get(self.voice), s, labels, stop):
            if isinstance(ev, Progress):
                if ev.fraction is not None:
                    progress(ev.fraction, desc=ev.text)
                yield with_slots({self.variant_msg: views.message("info", ev.text)})
            elif isinstance(ev, Finished):
                slots[done] = gr.Audio(value=str(ev.path), label=f"{ev.label} · {ev.take.seconds:.2f} s",
                                       visible=True)
                done += 1
                frame, ids = self._history_frame(lang)
                yield with_slots({self.history_table: frame, self.history_ids: ids})
            elif isinstance(ev, Failed):
                yield with_slots({self.variant_msg: views.message("error", ev.text)})
                return
            elif isinstance(ev, Stopped):
                yield with_slots({self.variant_msg: views.message("warn", ev.text)})
                return
        yield with_slots({self.variant_msg: views.message("ok", t(lang, "variants.done", n=done))})

    def on_history_select(self, lang: str, ids: list[str], evt: gr.SelectData) -> list[Any]:
        row = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        if not ids or row is None or row >= len(ids):
            return [None, t(lang, "history.pick"), None, gr.skip(), gr.skip(), gr.skip()]
        take = self.ctx.history.get(ids[row])
        if take is None:
            return [None, t(lang, "history.pick"), None, gr.skip(), gr.skip(), gr.skip()]
        path = self.ctx.history.path_of(take)
        info = t(lang, "history.details", time=take.created.replace("T", " "), kind=t(lang, f"kind.{take.kind}"),
                 emotion=emotion_name(lang, take.variant) if take.variant
                 else views.emotion_summary(lang, take.settings),
                 seconds=take.seconds, seed=take.seed, text=take.text.replace("\n", " "), voice=take.voice_name,
                 file=path)
        info += f"\n\n<details><summary>{t(lang, 'history.settings')}</summary>\n\n```json\n" + json.dumps(
            take.settings, ensure_ascii=False, indent=1) + "\n```\n</details>"
        return [str(path), info, take.id, gr.DownloadButton(value=str(path), visible=True),
                gr.Button(interactive=True), gr.Button(interactive=True)]

    def history_delete_outputs(self) -> list[Any]:
        return [self.history_table, self.history_ids, self.history_audio, self.history_info, self.history_sel,
                self.history_download, self.history_reuse, self.history_delete, self.history_msg, self.history_undo,
                self.history_deleted]

    def on_history_delete(self, lang: str, take_id: str | None) -> list[Any]:
        """Delete the selected take; Undo brings it back (until the next deletion)."""
        deleted = take_id if take_id and self.ctx.history.delete(take_id, keep_for_undo=True) else None
        frame, ids = self._history_frame(lang)
        msg = views.message("ok", t(lang, "history.deleted")) if deleted else ""
        return [frame, ids, None, t(lang, "history.pick"), None, gr.DownloadButton(visible=False),
                gr.Button(interactive=False), gr.Button(interactive=False), msg,
                gr.Button(visible=deleted is not None), deleted]

    def on_history_undo(self, lang: str, take_id: str | None) -> list[Any]:
        take = self.ctx.history.undo_delete(take_id) if take_id else None
        frame, ids = self._history_frame(lang)
        msg = views.message("ok", t(lang, "history.restored")) if take else \
            views.message("warn", t(lang, "history.undo_gone"))
        return [frame, ids, gr.Button(visible=False), None, msg]

    def on_history_refresh(self, lang: str) -> list[Any]:
        frame, ids = self._history_frame(lang)
        return [frame, ids]

    def reuse_outputs(self) -> list[Any]:
        return [*self.form.values(), self.emo_analyzed_for, self.voice, self.history_msg, self.tabs, self.voice_note]

    def on_history_reuse(self, lang: str, take_id: str | None) -> list[Any]:
        n = len(self.form) + 2
        found = self.studio.reuse(take_id) if take_id else None
        if found is None:
            return [gr.skip()] * n + [views.message("warn", t(lang, "history.pick")), gr.skip(), gr.skip()]
        s, voice = found
        ups = self.form_updates(s)
        values = [ups[c] for c in self.form.values()] + [ups[self.emo_analyzed_for]]
        msg = t(lang, "history.reused") if voice else t(lang, "history.voice_gone")
        # The voice note describes the voice now in the box, as after an upload.
        note = views.voice_note(lang, *self.studio.add_voice(str(voice), lang)[1:]) if voice else gr.skip()
        return [*values, str(voice) if voice else gr.skip(),
                views.message("ok" if voice else "warn", msg), gr.Tabs(selected="synth"), note]

    def on_stop(self, request: gr.Request) -> None:
        """The running takes of this page end with their own "Stopped" line (see StopSwitch)."""
        self.studio.stops.stop(session_of(request))

    def on_unload(self, lang: str) -> list[Any]:
        done = self.studio.unload()
        msg = views.message("ok", t(lang, "unloaded" if done else "nothing_loaded"))
        status = self.ctx.controller.status()
        return [msg, self._status_html(lang, status), views.banner(lang, status)]

    def on_load_model(self, lang: str) -> list[Any]:
        try:
            with self.ctx.controller.session():
                pass
            msg = ""
        except Exception as e:
            msg = views.message("error", engine_failure(lang, e))
        status = self.ctx.controller.status()
        return [msg, self._status_html(lang, status), views.banner(lang, status)]

    def on_download(self, lang: str) -> list[Any]:
        self.ctx.controller.start_download()
        status = self.ctx.controller.status()
        return [self._status_html(lang, status), views.banner(lang, status), gr.Timer(active=True)]

    def _label_if_vector(self, mode: str, label: str, intensity: float) -> list[Any]:
        if mode != "vector":
            return [gr.skip()] * len(EMOTIONS)
        return label_vector(label, intensity)


def session_of(request: gr.Request | None) -> str:
    """The browser session a request comes from (a key no Stop can name when it has none)."""
    session = getattr(request, "session_hash", None)
    return session or f"no-session-{uuid.uuid4().hex}"


__all__ = ["PageHandlers", "session_of", "wav_bytes"]

