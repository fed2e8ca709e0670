"""The Create form's sliders and number boxes: their range is checked by the form's handler.

Gradio checks a slider's or number box's range before any handler runs and answers a value out
of range with an English pop-up ("Value 900 is greater than maximum value 600."), whatever the
page's language. These subclasses let the value through; the handler then refuses it with a
sentence in the page's language (:meth:`app.settings.TakeSettings.options` holds every range, the
engine's). They are drawn by Gradio's own slider and number box.

Gradio writes a type stub (``form_fields.pyi``) beside any module that defines a component
subclass; it is ignored by git.
"""

from __future__ import annotations

import gradio as gr


class FormSlider(gr.Slider):
    """A slider whose typed-in value reaches the handler even when out of range."""

    def preprocess(self, payload: float | None) -> float | None:
        return gr.Number.round_to_precision(payload, self.precision)

    def get_block_name(self) -> str:
        return "slider"


class FormNumber(gr.Number):
    """A number box whose value reaches the handler even when out of range."""

    @staticmethod
    def raise_if_out_of_bounds(num: float | int, minimum: float | int | None, maximum: float | int | None) -> None:
        return None

    def get_block_name(self) -> str:
        return "number"


__all__ = ["FormNumber", "FormSlider"]
