"""The app's pieces without a server: settings, history, voices, text helpers, i18n, the engine
controller and the handlers.

The handlers run on the real engine with the tiny checkpoint (``tiny_ctx``). The engine's test
double (tests/fake_engine.py, ``ctx``) is kept for what needs control of time or failures: Stop
inside a slow segment, takes taking turns, injected out-of-memory errors."""

from __future__ import annotations

import json
import os
import re
import string
import threading
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from app import controller as ctl
from app import i18n
from app.handlers import AppContext, Chunk, EngineThread, Failed, Finished, Progress, Stopped, StopSwitch, Studio
from app.history import History, Take, slug
from app.paths import AppDirs
from app.settings import TakeSettings, label_vector
from app.text_tools import TextTools, apply_reading, find_polyphones, typed_form
from app.voices import VoiceLibrary
from indextts_core.errors import AudioError, InvalidOptionError, ModelNotFoundError, TextError
from indextts_core.options import EMOTIONS

from .fake_engine import FakeEngineForTests
from .golden import GOLDEN_DIR

SPEAKER = GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav"


# -- settings ----------------------------------------------------------------------------------
def test_settings_build_each_emotion_mode() -> None:
    s = TakeSettings(text="hi")
    assert s.emotion().mode == "speaker"
    with pytest.raises(InvalidOptionError, match="emotion clip"):
        TakeSettings(emotion_mode="audio").emotion()
    e = TakeSettings(emotion_mode="audio", emotion_audio="x.wav", emotion_weight=0.3).emotion()
    assert (e.mode, e.audio, e.weight) == ("audio", "x.wav", 0.3)
    v = TakeSettings(emotion_mode="vector", emotion_vector=tuple(label_vector("sad", 0.7))).emotion()
    assert v.mode == "vector" and v.vector[EMOTIONS.index("sad")] == 0.7 and v.apply_ui_bias and v.weight == 1.0
    text = TakeSettings(emotion_mode="text", emotion_text="  furious ", emotion_weight=0.6).emotion()
    assert (text.mode, text.text, text.weight) == ("text", "furious", 0.6)
    assert TakeSettings(emotion_mode="text").emotion().text is None  # the line itself
    analyzed = TakeSettings(emotion_mode="text", emotion_text="furious", emotion_text_analyzed=True,
                            emotion_vector=(0, 0.9, 0, 0, 0, 0, 0, 0), emotion_weight=0.6).emotion()
    assert analyzed.mode == "vector" and analyzed.weight == 0.6 and not analyzed.apply_ui_bias


def test_settings_build_each_duration_mode_and_check_ranges() -> None:
    assert TakeSettings().duration().mode == "free"
    assert TakeSettings(duration_mode="speed", speed=1.5).duration().value == 1.5
    assert TakeSettings(duration_mode="seconds", target_seconds=3).duration().value == 3.0
    assert TakeSettings(duration_mode="tokens", target_tokens=40.0).duration().value == 40
    with pytest.raises(InvalidOptionError, match="speed must be between"):
        TakeSettings(duration_mode="speed", speed=3.0).duration()
    with pytest.raises(InvalidOptionError, match="whole number"):
        TakeSettings(duration_mode="tokens", target_tokens=2.5).duration()
    with pytest.raises(InvalidOptionError, match="gap"):
        TakeSettings(gap_ms=9000).options()
    o = TakeSettings(num_beams=1, do_sample=False, seed=7).options()
    assert o.sampling.num_beams == 1 and o.seed == 7
    assert TakeSettings(seed=-1).seed_value() is None


def test_settings_round_trip_and_variants() -> None:
    s = TakeSettings(text="你好", emotion_mode="vector", emotion_vector=(0.1,) * 8, seed=42, duration_mode="seconds")
    d = json.loads(json.dumps(s.to_dict()))
    assert TakeSettings.from_dict({**d, "unknown_future_field": 1}) == s
    v = s.with_emotion_label("angry")
    assert v.emotion_mode == "vector" and v.emotion_vector[EMOTIONS.index("angry")] == s.emotion_intensity
    assert sum(v.emotion_vector) == s.emotion_intensity
    assert s.with_emotion_label("speaker").emotion_mode == "speaker"


# -- history -----------------------------------------------------------------------------------
def _take(h: History, text: str = "hello") -> Take:
    path = h.reserve_path(text, 1)
    path.write_bytes(b"RIFF")
    return h.add(Take(id=History.new_id(), created="2026-01-01T00:00:00", wav=path.name, text=text, voice_name="v",
                      voice_path=None, settings={}, seed=1, seconds=1.0, requested_seconds=None,
                      generation_seconds=0.1, rtf=0.1))


def test_history_names_never_collide_and_index_survives(tmp_path: Path) -> None:
    h = History(tmp_path / "takes", tmp_path / "history.json")
    names = {h.reserve_path("same text", 5).name for _ in range(50)}
    assert len(names) == 50  # same second, same text, same seed: still distinct files
    a, b = _take(h, "one"), _take(h, "two")
    again = History(tmp_path / "takes", tmp_path / "history.json")
    assert [t.id for t in again.list()] == [b.id, a.id]  # newest first
    assert again.delete(a.id) and not (tmp_path / "takes" / a.wav).exists()
    assert [t.id for t in History(tmp_path / "takes", tmp_path / "history.json").list()] == [b.id]
    assert slug("你好 World!") == "ni-hao-world" and slug("。。") == "take"
    assert slug("今天天气很好。") == "jin-tian-tian-qi-hen-hao"


def test_history_delete_can_be_undone_once(tmp_path: Path) -> None:
    h = History(tmp_path / "takes", tmp_path / "history.json")
    a, b, c = _take(h, "one"), _take(h, "two"), _take(h, "three")
    assert h.delete(b.id, keep_for_undo=True)
    assert [t.id for t in h.list()] == [c.id, a.id] and not (tmp_path / "takes" / b.wav).exists()
    assert h.undo_delete(a.id) is None  # only the take deleted last comes back
    assert h.undo_delete(b.id).id == b.id
    assert [t.id for t in h.list()] == [c.id, b.id, a.id]  # back in its place, file and all
    assert h.undo_delete(b.id) is None  # once
    # The next deletion ends the previous one's undo; a new run keeps nothing set aside.
    h.delete(a.id, keep_for_undo=True)
    h.delete(c.id, keep_for_undo=True)
    assert h.undo_delete(a.id) is None
    again = History(tmp_path / "takes", tmp_path / "history.json")
    assert again.undo_delete(c.id) is None and not any((tmp_path / "takes" / "deleted").iterdir())
    assert [t.id for t in again.list()] == [b.id]


def test_broken_history_index_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / "history.json").write_text("{not json", encoding="utf-8")
    h = History(tmp_path / "takes", tmp_path / "history.json")
    assert h.list() == []
    assert list(tmp_path.glob("history.json.broken-*"))


# -- voices ------------------------------------------------------------------------------------
def test_voice_library_trims_to_model_length_and_dedupes(tmp_path: Path) -> None:
    long = tmp_path / "long.wav"
    sr = 16000
    data = (np.sin(np.arange(20 * sr) / 10) * 10000).astype(np.int16)
    sf.write(long, data, sr, subtype="PCM_16")
    lib = VoiceLibrary(tmp_path / "voices")
    voice, report = lib.add(long)
    stored, stored_sr = sf.read(lib.path_of(voice), dtype="int16")
    assert report.trimmed and stored_sr == sr and sf.info(lib.path_of(voice)).subtype == "PCM_16"
    assert np.array_equal(stored, data[: 15 * sr])  # exactly the first 15 s, untouched
    again, _ = lib.add(long)
    assert again.id == voice.id and len(lib.recent()) == 1
    assert lib.find_by_file(lib.path_of(voice)).id == voice.id  # the trimmed copy is recognised
    short, _ = lib.add(SPEAKER)
    assert [v.id for v in lib.recent()] == [short.id, voice.id]
    assert VoiceLibrary(tmp_path / "voices").recent()[0].name == SPEAKER.name


def test_voice_library_rejects_unreadable_clip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nope")
    with pytest.raises(AudioError):
        VoiceLibrary(tmp_path / "voices").add(bad)


# -- text helpers ------------------------------------------------------------------------------
def test_polyphones_and_annotation(tiny_model_dir: Path) -> None:
    polys = {p.char: p for p in find_polyphones("我们最重要的是长大")}
    assert polys["重"].readings[0] == "zhong4" and "chong2" in polys["重"].readings
    assert polys["长"].index == 7
    assert apply_reading("最重要", 1, "chong2") == "最重[chong2]要"
    assert apply_reading("最重[chong2]要", 1, "zhong4") == "最重[zhong4]要"  # replaced, not stacked
    assert {p.char: p for p in find_polyphones("最重[chong2]要")}["重"].annotated == "chong2"
    with pytest.raises(ValueError):
        apply_reading("最重要", 5, "zhong4")
    with pytest.raises(ValueError):
        apply_reading("最重要", 1, "zhong9")
    assert typed_form("JV2") == "ju2" and typed_form("LV4") == "lv4"


@pytest.mark.parametrize("text, bad", [
    ("今天很hao6。", ["hao6"]),
    ("今天很{好|hao6}。", ["hao6"]),
    ("很xao3", ["xao3"]),
    ("最zhong4要", []),
    ("重[chong2]要", []),
    ("我喜欢mp3和win10", []),
    ("Hello hao6 world", []),
    ("", []),
])
def test_invalid_pinyin(tiny_model_dir: Path, text: str, bad: list[str]) -> None:
    assert TextTools(tiny_model_dir).invalid_pinyin(text) == bad


def test_text_tools_preview_without_engine(tiny_model_dir: Path, tmp_path: Path) -> None:
    p = TextTools(tiny_model_dir).preview("Hello, world. Second sentence here.", 4)
    assert p.normalized and len(p.segments) > 1
    assert TextTools(tmp_path).preview("hello", 120) is None  # no model folder yet: no preview


# -- i18n --------------------------------------------------------------------------------------
def _fields(s: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(s) if f}


def test_every_string_exists_in_both_languages_with_the_same_fields() -> None:
    for key, (en, zh) in i18n.STRINGS.items():
        assert en.strip() and zh.strip(), key
        assert _fields(en) == _fields(zh), key
    for name, (en, zh) in i18n.EMOTION_NAMES.items():
        assert en and zh, name
    assert set(EMOTIONS) <= set(i18n.EMOTION_NAMES)


def test_every_key_used_by_the_code_exists() -> None:
    app_dir = Path(__file__).resolve().parent.parent / "app"
    used: set[str] = set()
    for path in app_dir.glob("*.py"):
        src = path.read_text(encoding="utf-8")
        used |= set(re.findall(r"""\bt\(\s*\w+,\s*["']([a-z_.0-9]+)["']""", src))
        used |= set(re.findall(r"""Texts\((?:[a-z]+=)["']([a-z_.0-9]+)["']""", src))
    missing = sorted(k for k in used if k not in i18n.STRINGS)
    assert not missing
    assert len(used) > 100


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_take_summary_markup_renders_in_both_languages(lang: str) -> None:
    from markdown_it import MarkdownIt

    text = i18n.t(lang, "take.info", seconds=1.2, requested="", gen=1.0, rtf=0.5, seed=3, segments=1)
    html = MarkdownIt().render(text)
    assert "**" not in html and html.count("<strong>") == 5


def test_language_detection() -> None:
    assert i18n.detect_language("zh-CN,zh;q=0.9,en;q=0.8") == "zh"
    assert i18n.detect_language("en-US,en;q=0.9,zh;q=0.5") == "en"
    assert i18n.detect_language("fr-FR") == "en"
    assert i18n.detect_language(None) == "en"
    assert i18n.t("zh", "generate") == "生成" and i18n.t("en", "generate") == "Generate"


# -- controller and handlers with the engine's test double ---------------------------------------
@pytest.fixture
def ctx(tmp_path: Path, tiny_model_dir: Path) -> AppContext:
    controller = ctl.EngineController(tiny_model_dir, factory=FakeEngineForTests.from_pretrained,
                                      allow_download=False)
    controller.start()
    assert controller.wait_ready(30) == ctl.READY
    return AppContext.create(AppDirs(tmp_path / "out", tmp_path / "cache"), controller)


def run(events) -> list:
    return list(events)


# Takes on the tiny model in a second or two: greedy, one beam, few codes and diffusion steps.
QUICK = {"do_sample": False, "num_beams": 1, "max_mel_tokens": 30, "diffusion_steps": 3}


@pytest.fixture
def tiny_ctx(tmp_path: Path, tiny_controller) -> AppContext:
    """The app's context on the real engine (the tiny checkpoint), with this test's own folders."""
    return AppContext.create(AppDirs(tmp_path / "out", tmp_path / "cache"), tiny_controller)


def test_generate_streams_segments_then_saves_an_exact_take(tiny_ctx: AppContext) -> None:
    ctx = tiny_ctx
    text = "one two three four five six seven"
    segments = len(Studio(ctx).preview(text, 4)[0].segments)
    assert segments > 1
    s = TakeSettings(text=text, segment_tokens=4, duration_mode="seconds", target_seconds=3.0, seed=11, **QUICK)
    events = run(Studio(ctx).generate("en", str(SPEAKER), s))
    chunks = [e for e in events if isinstance(e, Chunk)]
    assert len(chunks) == segments and [c.total for c in chunks] == [segments] * segments
    assert any(isinstance(e, Progress) for e in events)
    done = events[-1]
    assert isinstance(done, Finished)
    audio, sr = sf.read(done.path, dtype="int16")
    assert (len(audio), sr, sf.info(done.path).subtype) == (66150, 22050, "PCM_16")
    assert done.take.seed == 11 and done.take.settings["seed"] == 11
    assert done.take.requested_seconds == 3.0 and done.take.is_test_model
    assert ctx.history.list()[0].id == done.take.id
    assert len(ctx.voices.recent()) == 1


@pytest.mark.parametrize("lang, voice, text, needle", [
    ("en", None, "hello", "Add a voice first"),
    ("zh", None, "hello", "请先添加音色"),
    ("en", str(SPEAKER), "  ", "Type the text"),
    ("en", str(SPEAKER), "今天很{好|hao6}", "invalid pinyin: hao6"),
    ("zh", str(SPEAKER), "今天很hao6", "无效拼音：hao6"),
])
def test_generate_refuses_bad_inputs_with_a_sentence(tiny_ctx: AppContext, lang, voice, text, needle) -> None:
    ctx = tiny_ctx
    events = run(Studio(ctx).generate(lang, voice, TakeSettings(text=text)))
    assert len(events) == 1 and isinstance(events[0], Failed)
    assert needle in events[0].text
    assert ctx.history.list() == []


def test_a_long_clip_cut_to_15_s_is_announced_with_the_take(tiny_ctx: AppContext, tmp_path: Path) -> None:
    """The library stores the clip cut, so the engine never sees the long one: the take's
    warnings (the page, /synthesize, variants) carry the upload's."""
    data, sr = sf.read(SPEAKER, dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(data, int(40 * sr / len(data)) + 1)[: 40 * sr], sr)
    done = run(Studio(tiny_ctx).generate("en", str(long), TakeSettings(text="hello", **QUICK)))[-1]
    assert isinstance(done, Finished)
    assert "The voice clip is 40.0 s long; only its first 15 s are used." in done.warnings
    assert len(done.warnings) == len(set(done.warnings))
    assert "40.0 s" in done.info
    (variant,) = [e for e in run(Studio(tiny_ctx).variants("en", str(long), TakeSettings(text="hi", **QUICK),
                                                           ["calm"])) if isinstance(e, Finished)]
    assert any("only its first 15 s" in w for w in variant.warnings)
    short = run(Studio(tiny_ctx).generate("en", str(SPEAKER), TakeSettings(text="hello", **QUICK)))[-1]
    assert not any("only its first" in w for w in short.warnings)


def test_silent_voice_is_refused(tiny_ctx: AppContext, tmp_path: Path) -> None:
    ctx = tiny_ctx
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(22050 * 5, dtype=np.int16), 22050)
    (event,) = run(Studio(ctx).generate("en", str(silent), TakeSettings(text="hi")))
    assert isinstance(event, Failed) and "silent" in event.text


@pytest.mark.parametrize("exc, needle", [
    (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), "Out of memory"),
    (RuntimeError("CUDA error: out of memory"), "Unload models"),
    (TextError("The text is empty."), "problem with the text: The text is empty."),
    (ModelNotFoundError("gpt.pth is missing."), "weights are missing"),
    (ValueError("boom"), "Something went wrong (ValueError: boom)"),
])
def test_engine_failures_become_sentences(ctx: AppContext, exc, needle) -> None:
    with ctx.controller.session() as tts:
        tts.fail_next = exc
    events = run(Studio(ctx).generate("en", str(SPEAKER), TakeSettings(text="hello")))
    assert isinstance(events[-1], Failed) and needle in events[-1].text
    # Nothing is stuck: the next take works.
    assert isinstance(run(Studio(ctx).generate("en", str(SPEAKER), TakeSettings(text="hello")))[-1], Finished)


def test_engine_steps_run_one_at_a_time(ctx: AppContext) -> None:
    studio = Studio(ctx)
    results: list = []

    def work() -> None:
        results.append(run(studio.generate("en", str(SPEAKER), TakeSettings(text="a b c d e f", segment_tokens=2))))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    with ctx.controller.session() as tts:
        assert tts.max_computing == 1, "takes share the engine one segment at a time, never two at once"
    assert all(isinstance(r[-1], Finished) for r in results) and len(results) == 4


def test_a_short_take_is_served_between_the_segments_of_a_long_one_and_stop_ends_it(ctx: AppContext) -> None:
    import time

    studio = Studio(ctx)
    with ctx.controller.session() as tts:
        tts.segment_seconds = 0.05
        tts.made.clear()
    long_text = " ".join(f"long{i}" for i in range(40))  # 40 segments of one token: 2 s of work
    long = studio.generate("en", str(SPEAKER), TakeSettings(text=long_text, segment_tokens=1))
    while not isinstance(next(long), Chunk):  # the long take is under way
        pass
    short: list = []
    worker = threading.Thread(target=lambda: short.extend(studio.generate("en", str(SPEAKER),
                                                                          TakeSettings(text="short line"))))
    worker.start()
    worker.join(30)
    assert isinstance(short[-1], Finished)
    made_then = len([1 for word, _ in tts.made if word == "long0"])
    assert made_then < 40 and tts.active == 1, "the short take finished while the long one still ran"
    long.close()  # Stop
    deadline = time.monotonic() + 10
    while tts.active and time.monotonic() < deadline:
        time.sleep(0.01)
    assert tts.active == 0
    made_after = len([1 for word, _ in tts.made if word == "long0"])
    assert made_after < 40, "Stop ended the long take before its end"
    # ... and the next take does not wait for what the long one had left.
    assert isinstance(run(studio.generate("en", str(SPEAKER), TakeSettings(text="next one")))[-1], Finished)
    assert len([1 for word, _ in tts.made if word == "long0"]) == made_after
    assert not any(t.text == long_text for t in ctx.history.list())


def test_stop_switch_ends_the_sessions_takes_with_their_own_stopped_event(ctx: AppContext) -> None:
    """The page's Stop: the take itself ends on a Stopped event (its last frame), within a
    heartbeat; nothing is saved; another session's take runs on; the next take is not stopped."""
    import time

    studio = Studio(ctx)
    with ctx.controller.session() as tts:
        tts.segment_seconds = 0.05
    long_text = " ".join(f"stopme{i}" for i in range(40))
    other: list = []
    with studio.stops.running("page-a") as stop_a, studio.stops.running("page-b") as stop_b:
        take = studio.generate("en", str(SPEAKER), TakeSettings(text=long_text, segment_tokens=1), stop_a)
        while not isinstance(next(take), Chunk):
            pass
        worker = threading.Thread(target=lambda: other.extend(
            studio.generate("en", str(SPEAKER), TakeSettings(text="other page"), stop_b)))
        worker.start()
        assert studio.stops.stop("page-a") == 1
        asked = time.monotonic()
        rest = list(take)
        assert time.monotonic() - asked < 5
        assert isinstance(rest[-1], Stopped) and "Stopped" in rest[-1].text
        assert not any(isinstance(ev, Finished) for ev in rest)
        worker.join(30)
    assert isinstance(other[-1], Finished), "the other page's take is not stopped"
    assert not stop_b.is_set()
    assert not any(t.text == long_text for t in ctx.history.list())
    assert studio.stops.stop("page-a") == 0, "a finished take leaves nothing to stop"
    with studio.stops.running("page-a") as stop:
        assert isinstance(run(studio.generate("en", str(SPEAKER), TakeSettings(text="next one"), stop))[-1], Finished)


def test_a_take_stopped_before_its_engine_turn_takes_none(ctx: AppContext) -> None:
    studio = Studio(ctx)
    with ctx.controller.session() as tts:
        tts.made.clear()
    with studio.stops.running("page") as stop:
        stop.set()
        events = run(studio.generate("en", str(SPEAKER), TakeSettings(text="never made"), stop))
        variants = run(studio.variants("en", str(SPEAKER), TakeSettings(text="never made"), ["calm"], stop))
    assert isinstance(events[-1], Stopped) and isinstance(variants[-1], Stopped)
    assert tts.made == [] and ctx.history.list() == []


def test_stop_switch_counts_per_session() -> None:
    switch = StopSwitch()
    with switch.running("s") as a, switch.running("s") as b, switch.running("t") as c:
        assert switch.stop("s") == 2 and a.is_set() and b.is_set() and not c.is_set()
    assert switch.stop("s") == 0 and switch.stop("t") == 0


def test_a_take_over_the_length_limit_is_refused_by_name(ctx: AppContext) -> None:
    from app.handlers import MAX_TAKE_CHARS

    events = run(Studio(ctx).generate("en", str(SPEAKER), TakeSettings(text="a" * (MAX_TAKE_CHARS + 1))))
    assert isinstance(events[-1], Failed) and f"at most {MAX_TAKE_CHARS}" in events[-1].text
    assert "Batch" in events[-1].text
    zh = run(Studio(ctx).generate("zh", str(SPEAKER), TakeSettings(text="好" * (MAX_TAKE_CHARS + 1))))
    assert f"最多 {MAX_TAKE_CHARS}" in zh[-1].text


def test_progress_inside_segments_and_the_work_estimate(ctx: AppContext) -> None:
    from app import views
    from indextts_core.progress import SynthesisProgress

    studio = Studio(ctx)
    preview, _, _ = studio.preview("one two three", 120)
    assert studio.estimate_seconds(preview) is None  # nothing measured yet
    assert "estimated after the first take" in views.text_preview("en", preview, [], ready=True, text="x",
                                                                    estimate=None)
    with ctx.controller.session() as tts:
        tts.segment_seconds = 0.3  # long enough for heartbeats inside a segment
    events = run(studio.generate("en", str(SPEAKER), TakeSettings(text="one two three four", segment_tokens=2)))
    inside = [e for e in events if isinstance(e, Progress) and re.match(r"Generating segment \d of \d: ", e.text)]
    assert inside and "speech codes" in inside[0].text and inside[0].fraction is not None
    assert isinstance(events[-1], Finished)
    estimate = studio.estimate_seconds(studio.preview("one two three four five six seven eight", 120)[0])
    assert estimate is not None and estimate > 0
    html = views.text_preview("en", preview, [], ready=True, text="x", estimate=12.4)
    assert "About 12 s of work" in html
    from app.handlers import inside_segment

    p = SynthesisProgress("mel", 1, 3, 5, 25, 0.5, 10.0)
    assert inside_segment("en", p).text == "Generating segment 2 of 3: diffusion step 5 of 25 · about 10 s left"
    assert inside_segment("zh", p).text == "正在生成第 2/3 段：扩散第 5/25 步 · 约剩 10 秒"


def test_variants_share_one_seed(tiny_ctx: AppContext) -> None:
    ctx = tiny_ctx
    events = run(Studio(ctx).variants("en", str(SPEAKER), TakeSettings(text="hello", **QUICK),
                                      ["calm", "happy", "speaker"]))
    done = [e for e in events if isinstance(e, Finished)]
    assert [d.take.variant for d in done] == ["calm", "happy", "speaker"]
    assert len({d.take.seed for d in done}) == 1
    assert done[1].take.settings["emotion_vector"][EMOTIONS.index("happy")] == pytest.approx(0.8)
    assert [d.label for d in done] == ["Calm (neutral)", "Happy", "As in the voice clip"]
    assert isinstance(run(Studio(ctx).variants("en", str(SPEAKER), TakeSettings(text="x"), []))[0], Failed)


def test_silent_clip_never_joins_recent_voices(tiny_ctx: AppContext, tmp_path: Path) -> None:
    ctx = tiny_ctx
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(22050 * 5, dtype=np.int16), 22050)
    voice, report, error = Studio(ctx).add_voice(str(silent), "zh")
    assert voice is None and report is None and error == i18n.t("zh", "error.silent_voice")
    assert ctx.voices.recent() == []


def test_page_reuse_describes_the_voice_and_pinyin_helper_says_what_it_did(tiny_ctx: AppContext) -> None:
    from app.layout import build_demo

    ctx = tiny_ctx
    _, ui = build_demo(ctx)
    done = run(Studio(ctx).generate("en", str(SPEAKER), TakeSettings(text="again", **QUICK)))[-1]
    *_, note = ui.on_history_reuse("en", done.take.id)
    assert "itts-ok" in note and i18n.t("en", "voice.none") not in note
    text = "最重要"
    state = [[1, "重", ["zhong4", "chong2"], None]]
    new_text, msg = ui.on_poly_insert("en", text, state, 1, "chong2")
    assert new_text == "最重[chong2]要" and "will be read as chong2" in msg and "Replaced" not in msg
    state = [[1, "重", ["zhong4", "chong2"], "chong2"]]
    _, msg = ui.on_poly_insert("en", new_text, state, 1, "zhong4")
    assert "instead of chong2" in msg


def test_reuse_restores_settings_and_voice(tiny_ctx: AppContext) -> None:
    ctx = tiny_ctx
    done = run(Studio(ctx).generate("en", str(SPEAKER), TakeSettings(text="again", speed=1.5,
                                                                       duration_mode="speed", **QUICK)))[-1]
    settings, voice = Studio(ctx).reuse(done.take.id)
    assert settings.text == "again" and settings.duration_mode == "speed" and settings.seed == done.take.seed
    assert voice is not None and voice.is_file()


def test_unload_frees_the_engine_and_the_next_take_reloads(tiny_ctx: AppContext) -> None:
    ctx = tiny_ctx
    with ctx.controller.session() as engine:
        pass
    assert Studio(ctx).unload()
    assert ctx.controller.state == ctl.UNLOADED and not ctx.controller.loaded
    assert not Studio(ctx).unload()
    assert isinstance(run(Studio(ctx).generate("en", str(SPEAKER), TakeSettings(text="hi", **QUICK)))[-1], Finished)
    assert ctx.controller.state == ctl.READY
    with ctx.controller.session() as again:
        assert again is not engine, "the next take loaded a new engine"


def test_missing_weights_give_a_clear_state(tmp_path: Path) -> None:
    controller = ctl.EngineController(tmp_path / "nothing-here", factory=FakeEngineForTests.from_pretrained,
                                      allow_download=False)
    controller.start()
    assert controller.wait_ready(30) == ctl.MISSING
    status = controller.status()
    assert status.files is not None and not status.files.core_complete and "gpt.pth" in status.files.help
    with pytest.raises(ctl.EngineBusyError), controller.session():
        pass


def test_engine_thread_keeps_the_stream_on_one_thread_and_stops_early(ctx: AppContext) -> None:
    import time

    seen: list[int] = []
    closed = threading.Event()
    release = threading.Event()

    def work(engine):
        assert isinstance(engine, FakeEngineForTests)
        try:
            for i in range(10):
                seen.append(threading.get_ident())
                if i == 2:
                    release.wait(10)  # a slow segment still running when the user presses Stop
                yield i
        finally:
            seen.append(threading.get_ident())
            closed.set()

    job = EngineThread(ctx.controller, work)
    it = iter(job)
    assert next(it) == 0 and next(it) == 1
    t0 = time.perf_counter()
    it.close()  # must not wait for the running segment (Gradio closes from its event loop)
    assert time.perf_counter() - t0 < 1.0
    release.set()
    assert closed.wait(5) and job.join(5)
    assert len(set(seen)) == 1 and seen[0] != threading.get_ident()
    assert len(seen) < 12  # stopped after the item being computed
    with ctx.controller.session():  # and the engine is free again
        pass


# -- the entry point ---------------------------------------------------------------------------
def test_defaults_are_local_and_private(tmp_path: Path, tiny_model_dir: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from app import webui

    for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE", "GRADIO_ANALYTICS_ENABLED"):
        monkeypatch.setenv(name, "restored-after-this-test")

    args = webui.parse_args(["--model-dir", str(tiny_model_dir), "--output-dir", str(tmp_path / "o"),
                             "--cache-dir", str(tmp_path / "c")])
    assert (args.host, args.port, args.precision) == ("127.0.0.1", 7860, "auto")
    demo, ui, ctx = webui.create_app(args, factory=FakeEngineForTests.from_pretrained, start=False)
    ctx.controller.start()
    assert ctx.controller.wait_ready(60) == ctl.READY
    with ctx.controller.session() as engine:  # one text front end for the page and the engine
        assert engine.text is not None and engine.text is ctx.text.frontend()
    kw = webui.launch_kwargs(args, ui, ctx, demo)
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False" and demo.analytics_enabled is False
    assert kw["server_name"] == "127.0.0.1" and kw["share"] is False
    assert kw["allowed_paths"] == [], "no folder is served by path"
    assert demo.delete_cache == (3600, 86400), "the upload cache is cleaned"
    assert str(tiny_model_dir) in kw["blocked_paths"][0]
    assert os.environ["GRADIO_TEMP_DIR"] == str((tmp_path / "c" / "gradio").resolve())
    assert "ittsTips" in kw["head"]
    tips = ui.tips_table()
    assert tips["en"]["generate"] != tips["zh"]["generate"]
    # Every control has a tooltip.
    assert len(tips["en"]) > 40


def test_test_model_flag_uses_a_built_tiny_checkpoint(tmp_path: Path, tiny_model_dir: Path) -> None:
    from app import webui

    args = webui.parse_args(["--test-model", "--model-dir", str(tiny_model_dir)])
    assert webui.resolve_model_dir(args, AppDirs(tmp_path / "o", tmp_path / "c")) == tiny_model_dir.resolve()
    assert ctl.EngineController(tiny_model_dir).is_test_model


def test_first_launch_downloads_with_progress_then_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing weights: the controller downloads them (progress for the page), then loads the engine."""
    import time

    from huggingface_hub import constants as hf_constants

    from app import views
    from indextts_core import layout

    from .fake_hub import FakeHub
    from .test_download import _repo_files

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "INDEXTTS_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub-cache"))
    hub = FakeHub(_repo_files()).start()
    try:
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        gpt = (layout.MAIN_REPO, layout.GPT)
        hub.hold[gpt] = threading.Event()
        controller = ctl.EngineController(tmp_path / "model", factory=FakeEngineForTests.from_pretrained)
        controller.start()
        for _ in range(500):
            status = controller.status()
            if status.download is not None and status.download.current == layout.GPT:
                break
            time.sleep(0.02)
        assert status.state == ctl.DOWNLOADING
        assert 0 < status.download.done_bytes < status.download.total_bytes
        assert "Downloading the model weights" in views.banner("en", status)
        panel = views.status_panel("en", status, output_dir="out", streaming=False)
        assert "<progress" in panel and "gpt.pth" in panel
        hub.hold[gpt].set()
        assert controller.wait_ready(60) == ctl.READY
        assert controller.status().files.core_complete
    finally:
        hub.stop()


def test_the_tab_row_holds_only_tabs(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Any other child of gr.Tabs shifts the tabs' positions: the page then showed the History
    button twice and lost the Model & settings tab after a click."""
    import gradio as gr

    from app import webui

    for name in ("GRADIO_TEMP_DIR", "GRADIO_EXAMPLES_CACHE", "GRADIO_ANALYTICS_ENABLED"):
        monkeypatch.setenv(name, "restored-after-this-test")
    args = webui.parse_args(["--model-dir", str(tiny_model_dir), "--output-dir", str(tmp_path / "o"),
                             "--cache-dir", str(tmp_path / "c")])
    _, ui, _ = webui.create_app(args, factory=FakeEngineForTests.from_pretrained, start=False)
    children = ui.tabs.children
    assert [type(c).__name__ for c in children if not isinstance(c, gr.Tab)] == []
    assert [c.id for c in children] == ["synth", "dub", "batch", "voices", "history", "status"]
