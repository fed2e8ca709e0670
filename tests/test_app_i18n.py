"""The Chinese interface says the engine's sentences in Chinese, and the pinyin helper offers only
characters whose reading is a real choice (issue 13, items 13 and 14).

The engine is made to produce each sentence for real (clips with each problem, texts it
refuses, settings out of range, Gradio's own range check), so a sentence the engine rewords
shows up here as English left in the Chinese page.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from app import views
from app.i18n import t
from app.i18n_engine import engine_text, is_translated
from app.settings import TakeSettings
from app.text_tools import NOT_OFFERED, find_polyphones
from indextts_core import duration
from indextts_core.errors import AudioError, InvalidOptionError, TextError
from indextts_core.options import Duration
from indextts_core.text import TextFrontend
from indextts_core.voice_check import check_voice

SR = 22050
# Latin words a Chinese sentence may hold: units, formats and names of things.
ALLOWED = {"hz", "dbfs", "wav", "flac", "ogg", "mp3", "m4a", "ffmpeg", "nan", "unk", "top-p", "top-k",
           "chóng", "chong2", "ms"}


def english_words(text: str, *allowed: str) -> list[str]:
    ok = ALLOWED | {a.lower() for a in allowed}
    return [w for w in re.findall(r"[A-Za-zóǎǐ][A-Za-z0-9óǎǐ'-]+", text) if w.lower() not in ok]


def assert_chinese(sentence: str, *allowed: str) -> None:
    assert is_translated(sentence), f"no Chinese for the engine's sentence: {sentence!r}"
    zh = engine_text("zh", sentence)
    assert not english_words(zh, *allowed), (sentence, zh)
    assert engine_text("en", sentence) == sentence


def tone(tmp_path: Path, name: str, seconds: float, *, sr: int = SR, level: float = 0.3, channels: int = 1,
         silent_share: float = 0.0) -> Path:
    n = int(seconds * sr)
    x = level * np.sin(2 * np.pi * 220 * np.arange(n) / sr) * (1 + 0.3 * np.sin(np.arange(n) / 900))
    if silent_share:
        x[: int(n * silent_share)] = 0.0
    data = np.stack([x] * channels, axis=1) if channels > 1 else x
    path = tmp_path / f"{name}.wav"
    sf.write(path, np.clip(data, -1, 1), sr, subtype="PCM_16")
    return path


def test_every_voice_check_sentence_is_said_in_chinese(tmp_path: Path) -> None:
    clips = {
        "short": tone(tmp_path, "1", 1.0),
        "fairly short": tone(tmp_path, "2", 4.0),
        "long": tone(tmp_path, "3", 20.0),
        "muffled": tone(tmp_path, "4", 6.0, sr=8000),
        "16k": tone(tmp_path, "5", 6.0, sr=16000),
        "stereo": tone(tmp_path, "6", 6.0, channels=2),
        "quiet": tone(tmp_path, "7", 6.0, level=0.004),
        "clipped": tone(tmp_path, "8", 6.0, level=3.0),
        "mostly silence": tone(tmp_path, "9", 6.0, silent_share=0.8),
        "silent": tone(tmp_path, "10", 6.0, level=0.0),
    }
    sentences: set[str] = set()
    for name, path in clips.items():
        report = check_voice(path)
        assert report.notes or report.warnings, name
        sentences |= set(report.notes) | set(report.warnings)
    sentences |= set(check_voice(clips["long"]).take_warnings)  # the 15 s cut, as a take's warning
    assert len(sentences) >= 11
    for s in sentences:
        assert_chinese(s)

    # Clips the engine cannot use at all.
    empty = tmp_path / "11.wav"
    sf.write(empty, np.zeros((0,), dtype=np.float32), SR)
    nan = tmp_path / "12.wav"
    sf.write(nan, np.full(SR, np.nan, dtype=np.float32), SR, subtype="FLOAT")
    garbage = tmp_path / "13.m4a"
    garbage.write_bytes(b"\x00not audio" * 50)
    for path in (empty, nan, garbage, tmp_path / "14.wav"):
        with pytest.raises(AudioError) as err:
            check_voice(path)
        assert_chinese(str(err.value), path.name, path.suffix.lstrip("."))


def test_the_voice_note_says_ok_only_when_nothing_is_wrong(tmp_path: Path) -> None:
    quiet = check_voice(tone(tmp_path, "quiet", 6.0, level=0.004))
    good = check_voice(tone(tmp_path, "good", 6.0))
    assert "Voice OK" in views.voice_note("en", good) and "itts-ok" in views.voice_note("en", good)
    note = views.voice_note("en", quiet)
    assert "Voice OK" not in note and "itts-warn" in note and "very quiet" in note
    zh = re.sub(r"<[^>]+>", " ", views.voice_note("zh", quiet))
    assert "音色已载入" in zh and "音色可用" not in zh and not english_words(zh), zh
    assert not english_words(re.sub(r"<[^>]+>", " ", views.voice_note("zh", None)))


@pytest.fixture(scope="module")
def frontend(tiny_model_dir: Path) -> TextFrontend:
    return TextFrontend.from_model_dir(tiny_model_dir)


@pytest.mark.parametrize("text, allowed", [
    ("", ()), ("!!!", ()), ("😀😀", ()), ("a" * 20_001, ()),
    ("重[xx9]要", ("xx9",)), ("重[chong]要", ("chong",)), ("你好{好|hao6}", ("hao6",)),
])
def test_texts_the_engine_refuses_are_explained_in_chinese(frontend: TextFrontend, text: str, allowed) -> None:
    with pytest.raises(TextError) as err:
        frontend.preview(text)
    assert_chinese(str(err.value), *allowed)


def test_text_warnings_are_said_in_chinese(frontend: TextFrontend) -> None:
    warnings = [*frontend.preview("BV3").warnings, *frontend.preview("你好 Ω ж").warnings]
    assert len(warnings) == 3
    for w in warnings:
        assert_chinese(w, "BV3")


def test_the_chinese_preview_has_no_english(frontend: TextFrontend) -> None:
    def visible(html: str) -> str:
        return re.sub(r"<[^>]+>", " ", html)

    empty = visible(views.text_preview("zh", None, [], ready=True, text=""))
    assert t("zh", "preview.empty") in empty and not english_words(empty)
    # Invalid pinyin is said once, in Chinese, without "the preview appears once the model files…".
    with pytest.raises(TextError) as err:
        frontend.preview("你好{好|hao6}")
    html = visible(views.text_preview("zh", None, ["hao6"], ready=True, error=str(err.value), text="你好{好|hao6}"))
    assert html.count("hao6") == 1 and not english_words(html, "hao6", "hao3"), html
    p = frontend.preview("你好 Ω ж")
    shown = visible(views.text_preview("zh", p, [], ready=True, text="你好 Ω ж"))
    assert "<unk>" not in shown and not english_words(shown.split("规范化文本")[0]), shown
    assert "不在模型词表中" in shown


@pytest.mark.parametrize("fields", [
    {"emotion_mode": "audio", "emotion_weight": 2.0, "emotion_audio": "x.wav"},
    {"emotion_mode": "vector", "emotion_vector": (2.0, 0, 0, 0, 0, 0, 0, 0)},
    {"emotion_mode": "audio", "emotion_audio": None},
    {"duration_mode": "speed", "speed": 5.0},
    {"duration_mode": "seconds", "target_seconds": 700},
    {"duration_mode": "tokens", "target_tokens": 2.5},
    {"temperature": 0.0}, {"top_p": 0.0}, {"top_k": -1}, {"num_beams": 20}, {"repetition_penalty": 0.0},
    {"max_mel_tokens": 0}, {"seed": 2**63}, {"segment_tokens": 0}, {"gap_ms": 9000}, {"diffusion_steps": 0},
    {"cfg_rate": 9.0}, {"gap_ms": "x"}, {"diffusion_steps": 2.5},
])
def test_settings_out_of_range_are_explained_in_chinese(fields: dict) -> None:
    with pytest.raises(InvalidOptionError) as err:
        TakeSettings(text="hi", **fields).options()
    assert_chinese(str(err.value), "x'")


def test_length_plans_the_engine_refuses_are_explained_in_chinese() -> None:
    for d, counts in ((Duration.tokens(2), [5, 5, 5]), (Duration.tokens(5000), [5]), (Duration.seconds(0.1), [5] * 9)):
        with pytest.raises(InvalidOptionError) as err:
            duration.plan(d, counts, gap_ms=200, max_codes=100)
        assert_chinese(str(err.value))


def test_gradio_range_pop_ups_are_said_in_chinese() -> None:
    import gradio as gr

    box = gr.Number(minimum=0.1, maximum=600)
    for value in (700, 0.01):
        with pytest.raises(gr.Error) as err:
            box.preprocess(value)
        assert_chinese(err.value.message)


def test_unknown_sentences_stay_as_the_engine_wrote_them() -> None:
    assert engine_text("zh", "Something new happened.") == "Something new happened."
    assert engine_text("zh", "emotion clip: The voice clip is empty; upload or record 5 to 15 seconds of speech.") \
        == "emotion clip：音色片段是空的；请上传或录制 5–15 秒的语音。"


# -- the pinyin helper (item 14) -------------------------------------------------------------
def test_the_pinyin_helper_lists_real_choices_only() -> None:
    text = ("我们不知道他了解了什么，大家都说这个地方很大，一个人在那里看着书。"
            "他得去上学了。长大了就好。最重要的是开心。")
    listed = {p.char: p.readings for p in find_polyphones(text)}
    for common in "们不了大的一个他知道家这地方那里是么":
        assert common not in listed, (common, listed.get(common))
    assert listed["重"][0] == "zhong4" and "chong2" in listed["重"]
    assert "dei3" in listed["得"] and set(listed["长"]) == {"zhang3", "chang2"}
    assert "kan1" in listed["看"]
    for char in NOT_OFFERED:  # never offered, even where pypinyin knows several readings
        assert char not in listed


def test_an_annotated_character_stays_in_the_helper() -> None:
    (p,) = find_polyphones("大[dai4]夫")
    assert p.char == "大" and p.annotated == "dai4" and "dai4" in p.readings


# -- the page's handlers (items 13, 14), on the real engine with the tiny checkpoint -----------
@pytest.fixture
def ui(tmp_path: Path, tiny_controller):
    from app.handlers import AppContext
    from app.layout import build_demo
    from app.paths import AppDirs

    return build_demo(AppContext.create(AppDirs(tmp_path / "out", tmp_path / "cache"), tiny_controller))[1]


def _note(ui, lang: str, voice: str | None) -> str:
    return ui.on_language(lang, voice)[ui.language_outputs().index(ui.voice_note)]


def test_switching_language_rewrites_the_voice_note(ui, tmp_path: Path) -> None:
    from .golden import GOLDEN_DIR

    voice = str(GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav")
    assert "音色可用" in _note(ui, "zh", voice) and "Voice OK" in _note(ui, "en", voice)
    assert t("zh", "voice.none") in _note(ui, "zh", None)
    short = str(tone(tmp_path, "short", 1.0))
    zh = re.sub(r"<[^>]+>", " ", _note(ui, "zh", short))
    assert "太短" in zh and not english_words(zh), zh


def test_a_deleted_take_comes_back_with_undo(ui) -> None:
    from app.handlers import Studio

    from .golden import GOLDEN_DIR

    events = list(Studio(ui.ctx).generate("zh", str(GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav"),
                                          TakeSettings(text="我们今天很开心", do_sample=False, num_beams=1,
                                                       max_mel_tokens=30, diffusion_steps=3)))
    take = events[-1].take
    assert "-wo-men-jin-tian-" in take.wav  # a Chinese take's file name holds its text
    out = dict(zip(ui.history_delete_outputs(), ui.on_history_delete("zh", take.id), strict=True))
    assert ui.ctx.history.get(take.id) is None and out[ui.history_deleted] == take.id
    assert "撤销" in out[ui.history_msg] and out[ui.history_undo].visible is True
    _, ids, undo, deleted, msg = ui.on_history_undo("zh", take.id)
    assert ids == [take.id] and ui.ctx.history.path_of(ui.ctx.history.get(take.id)).is_file()
    assert undo.visible is False and deleted is None and "已恢复" in msg
    *_, msg = ui.on_history_undo("zh", take.id)
    assert "没有可撤销" in msg


def test_out_of_range_values_reach_the_handler_and_are_refused_in_chinese(ui) -> None:
    seg, seconds = ui.form["segment_tokens"], ui.form["target_seconds"]
    # No English pop-up from Gradio, also after a language switch (Gradio rebuilds a component
    # from its class and arguments when a handler updates its label).
    for box, value in ((seg, 900), (seconds, 700)):
        rebuilt = type(box)(**{**box.constructor_args, "render": False})
        assert box.preprocess(value) == value and rebuilt.preprocess(value) == value
    assert seg.get_block_name() == "slider" and seconds.get_block_name() == "number"
    data = {comp: getattr(comp, "value", None) for comp in ui.form_inputs()}
    data.update({ui.lang: "zh", ui.voice: None, seg: 900, ui.form["text"]: "你好"})
    s = ui.settings_from(data)
    with pytest.raises(InvalidOptionError) as err:
        s.options()
    assert_chinese(str(err.value))
    assert "900" in engine_text("zh", str(err.value))
