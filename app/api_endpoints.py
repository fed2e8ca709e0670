"""The page's programmatic endpoints (``gradio_client``): synthesize, preview_text,
analyze_emotion and engine_status.

:class:`ApiEndpoints` is mixed into :class:`app.layout.StudioUI`, whose hidden components carry
these endpoints' inputs and outputs.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from indextts_core.errors import InvalidOptionError
from indextts_core.options import EMOTIONS

from . import text_tools
from .handlers import MAX_TAKE_CHARS, AppContext, Failed, Finished, Studio
from .settings import settings_from_request

log = logging.getLogger(__name__)


class ApiEndpoints:
    """The ``api_*`` endpoints of :class:`app.layout.StudioUI`."""

    ctx: AppContext
    studio: Studio

    def api_synthesize(self, voice: str | None, emotion_audio: str | None, settings: dict | None
                       ) -> Iterator[tuple[Any, Any]]:
        """Render one take: ``settings`` holds TakeSettings fields (text, emotion_mode, duration_mode, ...).

        A generator that yields "nothing new" while the engine works, so that a client's cancel
        (which Gradio can only apply between two steps) ends the work as the page's Stop does.
        """
        fields = dict(settings) if isinstance(settings, dict) else ({} if settings is None else settings)
        lang = fields.pop("lang", "en") if isinstance(fields, dict) else "en"
        try:
            s = settings_from_request(fields)
        except InvalidOptionError as e:
            raise _refusal(str(e)) from None
        if emotion_audio:
            s.emotion_audio = emotion_audio
        for ev in self.studio.generate(lang, voice, s):
            if isinstance(ev, Failed):
                raise _refusal(ev.text)
            if isinstance(ev, Finished):
                yield str(ev.path), self._api_answer(ev)
                return
            yield gr.skip(), gr.skip()
        raise gr.Error("The engine returned no audio.")

    def _api_answer(self, ev: Finished) -> dict[str, Any]:
        tk = ev.take
        # Names inside the output folder, never absolute paths: the answer tells nothing about
        # the machine beyond the take itself.
        settings = dict(tk.settings)
        if settings.get("emotion_audio"):
            settings["emotion_audio"] = Path(settings["emotion_audio"]).name
        return {"seconds": tk.seconds, "samples": round(tk.seconds * 22050), "requested_seconds": tk.requested_seconds,
                "seed": tk.seed, "generation_seconds": tk.generation_seconds, "rtf": tk.rtf,
                "emotion_vector": tk.emotion_vector, "is_test_model": tk.is_test_model, "settings": settings,
                "file": ev.path.relative_to(self.ctx.dirs.output_dir).as_posix(), "id": tk.id,
                "segments": ev.segments, "warnings": list(ev.warnings)}

    def api_preview(self, text: str, segment_tokens: float | None) -> dict:
        seg = segment_tokens
        if seg is not None and not (isinstance(seg, (int, float)) and 1 <= seg <= 600 and seg == int(seg)):
            raise _refusal(f"Segment size must be a whole number between 1 and 600 tokens, got {segment_tokens!r}.")
        preview, invalid, error = self.studio.preview(text or "", int(segment_tokens or 120))
        out: dict[str, Any] = {"invalid_pinyin": invalid, "error": error, "ready": preview is not None,
                               "max_chars": MAX_TAKE_CHARS, "estimate_seconds": self.studio.estimate_seconds(preview),
                               "polyphones": [{"index": p.index, "char": p.char, "readings": list(p.readings)}
                                              for p in text_tools.find_polyphones(text or "")]}
        if preview is not None:
            out.update(normalized=str(preview.normalized), pieces=[str(p) for p in preview.pieces],
                       segments=[[str(p) for p in seg] for seg in preview.segments],
                       unknown=[str(u) for u in (preview.unknown or [])], warnings=list(preview.warnings))
        return out

    def api_status(self) -> dict:
        st = self.ctx.controller.status()
        return {"state": st.state, "detail": st.detail, "device": st.device, "precision": st.precision,
                "is_test_model": st.is_test_model, "memory": st.memory, "streaming": self.ctx.streaming}

    def api_emotion(self, text: str) -> dict:
        values, error = self.studio.analyze_emotion("en", text, "")
        if values is None:
            raise _refusal(error or "emotion analysis failed")
        return dict(zip(EMOTIONS, values, strict=True))


def _refusal(text: str) -> gr.Error:
    """An API error with a sentence for the caller and one log line, not a traceback: the
    request was wrong, not the app."""
    log.warning("API request refused: %s", text)
    return gr.Error(text, print_exception=False)


__all__ = ["ApiEndpoints"]
