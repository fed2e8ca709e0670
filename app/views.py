"""Small HTML/Markdown renderings of app state (messages, previews, status panel)."""

from __future__ import annotations

import html
import re
from typing import Any

from indextts_core.text import TextPreview
from indextts_core.voice_check import VoiceReport

from . import controller as ctl
from .i18n import emotion_name, t
from .i18n_engine import engine_text
from .models import DownloadSnapshot, ModelFiles

MESSAGE_KINDS = ("info", "ok", "warn", "error")


def message(kind: str, text: str) -> str:
    """A message box; ``kind`` picks the colour. Empty text gives an empty box."""
    if not text:
        return ""
    kind = kind if kind in MESSAGE_KINDS else "info"
    return f'<div class="itts-msg itts-{kind}" role="{"alert" if kind == "error" else "status"}">' \
           f"{html.escape(text)}</div>"


def error_message(lang: str, key: str, **fields: Any) -> str:
    return message("error", t(lang, key, **fields))


def human_bytes(n: float | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GB"


def voice_note(lang: str, report: VoiceReport | None, error: str | None = None) -> str:
    """The note under the voice box. ``error`` is a sentence of the app or the engine's (translated here)."""
    if error:
        return message("error", engine_text(lang, error))
    if report is None:
        return message("info", t(lang, "voice.none"))
    # "OK" only when nothing is wrong: a clip with warnings is usable, not fine.
    head = "voice.warn" if report.warnings or not report.usable else "voice.ok"
    lines = [t(lang, head, seconds=report.duration, rate=report.sample_rate, channels=report.channels,
               peak=max(report.peak_db, -99), rms=max(report.rms_db, -99))]
    if report.trimmed:
        lines.append(t(lang, "voice.trimmed", used=report.used_seconds))
    lines += [engine_text(lang, s) for s in report.notes]
    kind = "warn" if report.warnings else "ok"
    body = "".join(f"<div>{html.escape(s)}</div>" for s in lines)
    warn = "".join(f'<div class="itts-warnline">⚠ {html.escape(engine_text(lang, s))}</div>'
                   for s in report.warnings)
    return f'<div class="itts-msg itts-{kind}" role="status">{body}{warn}</div>'


def text_preview(lang: str, preview: TextPreview | None, invalid: list[str], *, ready: bool, error: str | None = None,
                 text: str = "", estimate: float | None = None, max_chars: int | None = None) -> str:
    """``preview`` is the engine's TextPreview (normalized, pieces, segments, unknown);
    ``estimate``: seconds of work it will take (None: not measured yet); ``max_chars``: the
    longest text one take may have."""
    parts = [f'<div class="itts-preview"><div class="itts-preview-title">{html.escape(t(lang, "preview.title"))}'
             "</div>"]
    if invalid:
        parts.append(f'<div class="itts-msg itts-error" id="pinyin-error">'
                     f'{html.escape(t(lang, "preview.invalid_pinyin", words=", ".join(invalid)))}</div>')
    if max_chars is not None and len(text) > max_chars:
        parts.append(message("error", t(lang, "error.too_long", n=len(text), limit=max_chars)))
    if error and not invalid:  # invalid pinyin is said once, by the line above
        parts.append(message("error", engine_text(lang, error)))
    elif not text.strip():
        parts.append(f'<div class="itts-dim">{html.escape(t(lang, "preview.empty"))}</div>')
    elif preview is None:
        if not invalid:  # with invalid pinyin there is nothing to preview until it is fixed
            parts.append(f'<div class="itts-dim">{html.escape(t(lang, "preview.not_ready"))}</div>')
    else:
        segments = preview.segments
        n_tokens = len(preview.ids)
        parts.append(f'<div><b>{html.escape(t(lang, "preview.normalized"))}:</b> '
                     f'<span class="itts-norm">{html.escape(preview.normalized)}</span></div>')
        stats = t(lang, "preview.stats", tokens=n_tokens, segments=len(segments))
        parts.append(f'<div class="itts-stats">{html.escape(stats)}</div>')
        work = (t(lang, "preview.estimate", seconds=max(1, round(estimate))) if estimate is not None
                else t(lang, "preview.estimate_later"))
        parts.append(f'<div class="itts-stats" id="work-estimate">{html.escape(work)}</div>')
        for i, seg in enumerate(segments, 1):
            pieces = html.escape(" ".join(str(p) for p in seg))
            name = html.escape(t(lang, "preview.segment", n=i))
            parts.append(f'<div class="itts-seg"><span class="itts-seg-n">{name} ({len(seg)})</span> '
                         f"<code>{pieces}</code></div>")
        warnings = list(preview.warnings)
        unknown = preview.unknown
        if unknown and not any("<unk>" in w for w in warnings):
            warnings.append(t(lang, "preview.unknown", pieces=" ".join(map(str, unknown[:20]))))
        parts += [f'<div class="itts-warnline">⚠ {html.escape(engine_text(lang, str(w)))}</div>' for w in warnings]
    parts.append("</div>")
    return "".join(parts)


def take_info(lang: str, *, seconds: float, requested: float | None, gen: float, rtf: float, seed: int,
              segments: int, path: str, is_test_model: bool, warnings: tuple[str, ...] = ()) -> str:
    req = t(lang, "take.requested", requested=requested) if requested else ""
    lines = [t(lang, "take.info", seconds=seconds, requested=req, gen=gen, rtf=rtf, seed=seed, segments=segments),
             t(lang, "take.saved", path=path)]
    if is_test_model:
        lines.append(f"⚠ {t(lang, 'take.test_model')}")
    lines += [f"⚠ {engine_text(lang, w)}" for w in warnings]
    return "\n\n".join(lines)


def _state_text(lang: str, state: str) -> str:
    key = f"state.{state}"
    try:
        return t(lang, key)
    except KeyError:
        return state


def banner(lang: str, status: ctl.EngineStatus) -> str:
    """The strip at the top of the page: test model, missing weights, download, loading."""
    items = []
    if status.is_test_model:
        items.append(("warn", t(lang, "banner.test_model")))
    if status.state == ctl.MISSING:
        items.append(("error", t(lang, "banner.missing")))
    elif status.state == ctl.DOWNLOADING:
        items.append(("info", t(lang, "banner.downloading", progress=_download_line(lang, status.download))))
    elif status.state == ctl.LOADING:
        items.append(("info", t(lang, "banner.loading")))
    elif status.state == ctl.NO_ENGINE:
        items.append(("error", t(lang, "banner.no_engine", detail=status.detail)))
    elif status.state == ctl.FAILED:
        items.append(("error", t(lang, "banner.failed", detail=status.detail)))
    return "".join(f'<div class="itts-banner itts-{k}">{html.escape(s)}</div>' for k, s in items)


def _download_line(lang: str, snap: DownloadSnapshot | None) -> str:
    if snap is None or not snap.total_bytes:
        return ""
    return t(lang, "status.download.progress", done=human_bytes(snap.done_bytes), total=human_bytes(snap.total_bytes),
             pct=snap.fraction * 100, speed=human_bytes(snap.speed), current=snap.current or "…")


def _files_table(lang: str, files: ModelFiles) -> str:
    if not files.files:
        return ""
    present = sum(1 for f in files.files if f.state == "present")
    rows = "".join(
        f"<tr><td><code>{html.escape(f.name)}</code></td><td>{html.escape(f.state)}</td>"
        f"<td>{human_bytes(f.size) if f.size else '—'}</td>"
        f"<td>{human_bytes(f.expected) if f.expected else '—'}</td></tr>"
        for f in files.files)
    summary = t(lang, "status.files.summary", present=present, total=len(files.files),
                size=human_bytes(files.present_bytes))
    return f"<details><summary>{html.escape(summary)}</summary><table class='itts-files'>{rows}</table></details>"


def _inline_md(text: str) -> str:
    """Escape, then render `code` and **bold** (the only Markdown the status texts use)."""
    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def status_panel(lang: str, status: ctl.EngineStatus, *, output_dir: str, streaming: bool) -> str:
    mem = status.memory or {}
    if mem.get("allocated_mb") is not None:
        memory = t(lang, "status.memory.value", allocated=human_bytes(mem["allocated_mb"] * 2**20),
                   reserved=human_bytes((mem.get("reserved_mb") or 0) * 2**20))
    elif mem.get("process_mb") is not None:
        memory = t(lang, "status.memory.process", size=human_bytes(mem["process_mb"] * 2**20))
    else:
        memory = "—"
    state = _state_text(lang, status.state)
    if status.detail and status.state not in (ctl.READY, ctl.MISSING):
        state += f" — {status.detail.splitlines()[0]}"
    rows = [
        (t(lang, "status.state"), state),
        (t(lang, "status.kind"), t(lang, "status.kind.test" if status.is_test_model else "status.kind.real")),
        (t(lang, "status.folder"), str(status.model_dir)),
        (t(lang, "status.device"), str(status.device)),
        (t(lang, "status.precision"), str(status.precision)),
        (t(lang, "status.memory"), memory),
    ]
    if status.load_seconds is not None:
        rows.append((t(lang, "status.load_time"), f"{status.load_seconds:.1f} s"))
    if status.download is not None and status.download.state != "idle":
        line = status.download.error if status.download.error else _download_line(lang, status.download)
        lines = (line or status.download.state).splitlines()
        # The engine's message starts with what is missing; the "Reason:" line says why.
        reason = next((x for x in lines if x.startswith("Reason:")), lines[0])
        rows.append((t(lang, "status.download"), reason))
    rows.append((t(lang, "status.outputs"), output_dir))
    rows.append((t(lang, "status.streaming"), t(lang, "status.streaming.on" if streaming else "status.streaming.off")))
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    out = f'<table class="itts-status" id="status-table">{body}</table>'
    snap = status.download
    if snap is not None and snap.state == "running" and snap.total_bytes:
        out += f'<progress class="itts-progress" max="100" value="{snap.fraction * 100:.1f}"></progress>'
    files = status.files
    if files is not None:
        out += _files_table(lang, files)
        if not files.core_complete or status.state in (ctl.MISSING, ctl.DOWNLOADING):
            out += f'<div class="itts-offline">{_inline_md(t(lang, "status.offline", path=status.model_dir))}</div>'
            if files.help:
                out += f"<details><summary>{html.escape(t(lang, 'status.files'))}</summary>" \
                       f'<pre class="itts-help">{html.escape(files.help)}</pre></details>'
    return out


def emotion_summary(lang: str, settings: dict[str, Any]) -> str:
    mode = settings.get("emotion_mode", "speaker")
    if mode == "vector":
        vec = settings.get("emotion_vector") or []
        from indextts_core.options import EMOTIONS

        named = [(emotion_name(lang, e), v) for e, v in zip(EMOTIONS, vec, strict=False) if v]
        if len(named) == 1:
            return f"{named[0][0]} {named[0][1]:.2f}"
        return ", ".join(f"{n} {v:.2f}" for n, v in named) or emotion_name(lang, "calm")
    if mode == "text":
        return "“" + (settings.get("emotion_text") or "…")[:20] + "”"
    if mode == "audio":
        return t(lang, "emo_mode.audio")
    return t(lang, "emo_mode.speaker")
