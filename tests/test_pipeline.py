"""The synthesis pipeline on the tiny checkpoint: duration control, streaming, caching, errors."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from indextts_core import Duration, Emotion, IndexTTS2, Sampling, SynthesisProgress
from indextts_core import SynthesisOptions as Options
from indextts_core.duration import HOP
from indextts_core.errors import AudioError, InvalidOptionError, ModelNotFoundError, TextError
from indextts_core.models.s2mel import target_mel_frames
from indextts_core.options import SAMPLE_RATE
from tests.golden import GOLDEN_DIR

VOICE = GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav"
EMO_CLIP = GOLDEN_DIR / "audio" / "emo_librivox_0920_22k.wav"
SHORT = "你好，欢迎使用。"
LONG = "今天天气很好，我们一起去公园散步吧。Then we can have lunch by the lake, and talk for a while!"
FAST = Sampling.greedy(max_mel_tokens=60)  # keeps the tiny model's runs short
# Several short segments at the least cost, for tests about how takes run rather than sound.
QUICK = Options(segment_tokens=4, sampling=Sampling.greedy(max_mel_tokens=12), diffusion_steps=2)


def test_result_fields(tts: IndexTTS2):
    r = tts.synthesize(SHORT, VOICE, Options(sampling=FAST, seed=3))
    assert r.sample_rate == SAMPLE_RATE and r.audio.dtype == np.float32 and r.audio.ndim == 1
    assert np.abs(r.audio).max() <= 1.0
    assert r.is_test_model and r.seed == 3 and r.requested_seconds is None
    for stage in ("text", "voice", "emotion", "gpt_generate", "gpt_latent", "s2mel", "vocoder", "total"):
        assert r.timings[stage] >= 0
    (seg,) = r.segments
    assert seg.num_samples == len(r.audio) == target_mel_frames(seg.num_codes) * HOP


@pytest.mark.parametrize("seconds", [0.5, 1.0, 3.0, 12.34, 30.0])
def test_seconds_single_segment_exact_to_the_sample(tts: IndexTTS2, seconds):
    # Beam sampling (the default) for one target; greedy keeps the long ones quick.
    sampling = Sampling() if seconds == 3.0 else Sampling.greedy()
    r = tts.synthesize(SHORT, VOICE, Options(duration=Duration.seconds(seconds), seed=1, sampling=sampling))
    assert len(r.audio) == round(seconds * SAMPLE_RATE)
    assert r.requested_seconds == seconds and len(r.segments) == 1


@pytest.mark.parametrize("seconds", [2.0, 3.0, 7.5, 20.0])
def test_seconds_multi_segment_exact_to_the_sample(tts: IndexTTS2, seconds):
    r = tts.synthesize(LONG, VOICE, Options(duration=Duration.seconds(seconds), segment_tokens=12, seed=2,
                       sampling=Sampling.greedy(max_mel_tokens=200)))
    assert len(r.segments) >= 3
    assert len(r.audio) == round(seconds * SAMPLE_RATE)


@pytest.mark.parametrize("ratio", [0.5, 0.75, 1.5, 2.0])
def test_speed_is_free_length_over_ratio(tts: IndexTTS2, ratio):
    kwargs = dict(segment_tokens=12, seed=4, sampling=Sampling(max_mel_tokens=80))
    free = tts.synthesize(LONG, VOICE, Options(**kwargs))
    fast = tts.synthesize(LONG, VOICE, Options(duration=Duration.speed(ratio), **kwargs))
    assert [s.num_codes for s in fast.segments] == [s.num_codes for s in free.segments]  # same delivery
    assert abs(len(fast.audio) - len(free.audio) / ratio) <= HOP


def test_tokens_mode_generates_exactly_that_many_codes(tts: IndexTTS2):
    r = tts.synthesize(LONG, VOICE, Options(duration=Duration.tokens(90), segment_tokens=12, seed=5))
    assert sum(s.num_codes for s in r.segments) == 90
    assert len(r.audio) == sum(target_mel_frames(s.num_codes) for s in r.segments) * HOP + 4410 * (
        len(r.segments) - 1)


def test_stream_yields_segments_that_make_the_whole_take(tts: IndexTTS2):
    stream = tts.stream(LONG, VOICE, Options(segment_tokens=12, sampling=FAST, seed=6, gap_ms=100))
    chunks = list(stream)
    assert [c.index for c in chunks] == list(range(len(chunks))) and chunks[-1].is_last
    assert len(chunks) == len(stream.result.segments) >= 3
    np.testing.assert_array_equal(np.concatenate([c.audio for c in chunks]), stream.result.audio)
    again = tts.synthesize(LONG, VOICE, Options(segment_tokens=12, sampling=FAST, seed=6, gap_ms=100))
    np.testing.assert_array_equal(again.audio, stream.result.audio)


def test_progress_inside_segments_changes_nothing(tts: IndexTTS2):
    opts = Options(segment_tokens=12, sampling=Sampling(max_mel_tokens=40), diffusion_steps=4, seed=8)
    seen: list[SynthesisProgress] = []
    with_progress = tts.synthesize(LONG, VOICE, opts, progress=seen.append)
    plain = tts.synthesize(LONG, VOICE, opts)
    np.testing.assert_array_equal(with_progress.audio, plain.audio)
    n = len(plain.segments)
    assert n >= 3
    assert seen[0].stage == "prepare" and seen[0].fraction == 0.0
    assert seen[-1].stage == "done" and seen[-1].fraction == 1.0 and seen[-1].seconds_left == 0.0
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions), "progress never goes back"
    assert all(0.0 <= f < 1.0 for f in fractions[:-1])
    for i, seg in enumerate(plain.segments):
        codes = [p.step for p in seen if p.stage == "codes" and p.segment == i]
        # One report per decoding step (the last chosen code needs none), all under the cap.
        assert codes[1:] == list(range(1, len(codes))) and len(codes) >= seg.num_codes
        assert {p.steps for p in seen if p.stage == "codes" and p.segment == i and p.step} == {40}
        assert [p.step for p in seen if p.stage == "mel" and p.segment == i] == [1, 2, 3, 4]
        assert [p for p in seen if p.stage == "vocoder" and p.segment == i]
    assert {p.segments for p in seen} == {n}
    inside_first = [p.fraction for p in seen if p.segment == 0 and p.stage in ("codes", "mel")]
    assert len(set(inside_first)) > 10, "the bar moves inside a segment"
    assert any(p.seconds_left is not None and p.seconds_left > 0 for p in seen)
    with pytest.raises(InvalidOptionError, match="progress must be a function"):
        tts.stream(SHORT, VOICE, opts, progress="yes")  # type: ignore[arg-type]


def test_engine_is_shared_between_threads(tts: IndexTTS2):
    """Two takes at once, and a stream resumed on another thread, give what they give alone."""
    opts = [QUICK.replace(seed=seed) for seed in (21, 22)]
    alone = [tts.synthesize(SHORT, VOICE, o).audio for o in opts]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(lambda o: tts.synthesize(SHORT, VOICE, o).audio, opts))
    for a, b in zip(alone, together, strict=True):
        np.testing.assert_array_equal(a, b)
    stream = tts.stream(SHORT, VOICE, opts[0])
    first = next(stream)
    with ThreadPoolExecutor(1) as pool:
        rest = pool.submit(list, stream).result()
    np.testing.assert_array_equal(np.concatenate([first.audio, *(c.audio for c in rest)]), alone[0])


def test_close_lets_a_running_take_finish(tiny_model_dir, test_device):
    engine = IndexTTS2.from_pretrained(tiny_model_dir, device=test_device, download=False)
    stream = engine.stream(SHORT, VOICE, QUICK.replace(seed=3))
    next(stream)
    engine.close()
    assert list(stream) and len(stream.result.segments) >= 2
    with pytest.raises(InvalidOptionError, match="closed"):
        engine.synthesize(SHORT, VOICE)


def test_seed_makes_beam_sampling_reproducible(tts: IndexTTS2):
    opts = dict(sampling=Sampling(max_mel_tokens=40))
    a = tts.synthesize(SHORT, VOICE, Options(seed=11, **opts))
    b = tts.synthesize(SHORT, VOICE, Options(seed=11, **opts))
    c = tts.synthesize(SHORT, VOICE, Options(seed=12, **opts))
    np.testing.assert_array_equal(a.audio, b.audio)
    assert len(a.audio) != len(c.audio) or not np.array_equal(a.audio, c.audio)


def test_voice_features_are_cached_by_content(tts: IndexTTS2, tmp_path, monkeypatch):
    import indextts_core.pipeline as pipeline

    copy = tmp_path / "renamed.wav"
    copy.write_bytes(VOICE.read_bytes())
    tts.synthesize(SHORT, VOICE, Options(sampling=FAST, seed=1))
    calls = []
    real = pipeline.load_speaker_audio
    monkeypatch.setattr(pipeline, "load_speaker_audio", lambda src: calls.append(src) or real(src))
    tts.synthesize(SHORT, copy, Options(sampling=FAST, seed=1))
    assert calls == []


@pytest.mark.parametrize("emotion", [
    Emotion.from_speaker(),
    Emotion.from_audio(EMO_CLIP, 0.65),
    Emotion.from_label("sad", 0.8),
    Emotion.from_vector([0.1, 0, 0.3, 0, 0, 0, 0.2, 0], 0.9, use_random=True, apply_ui_bias=True),
    Emotion.from_text("她非常生气", 0.6, max_tokens=8),
], ids=["speaker", "audio", "label", "vector", "text"])
def test_every_emotion_mode_runs(tts: IndexTTS2, emotion):
    r = tts.synthesize(SHORT, VOICE, Options(emotion=emotion, sampling=FAST, seed=1))
    assert len(r.audio) > 0
    if emotion.mode in ("vector", "text"):
        assert r.emotion_vector is not None and len(r.emotion_vector) == 8


def test_emotion_text_analysis(tts: IndexTTS2):
    values = tts.analyze_emotion_text("他听到这个消息以后非常伤心", max_tokens=8)
    assert list(values) == ["happy", "angry", "sad", "afraid", "disgusted", "melancholic", "surprised", "calm"]
    tts.unload_emotion_model()


def test_preview_text(tts: IndexTTS2):
    p = tts.preview_text("2025年3月14日，准确率提升了35.5%。", segment_tokens=120)
    assert p.normalized.startswith("二零二五年三月十四日")
    assert sum(len(s) for s in p.segment_ids) == len(p.ids)


def test_bad_inputs_are_clear_errors(tts: IndexTTS2, tmp_path):
    with pytest.raises(TextError):
        tts.synthesize("   ", VOICE)
    silent = (22050, np.zeros(22050 * 3, dtype=np.float32))
    with pytest.raises(AudioError, match="silent"):
        tts.synthesize(SHORT, silent)
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(AudioError):
        tts.synthesize(SHORT, tmp_path / "bad.wav")
    too_many = tts.config.gpt.max_text_tokens + 1
    with pytest.raises(InvalidOptionError, match="tokens per segment"):
        tts.synthesize(SHORT, VOICE, Options(segment_tokens=too_many))
    with pytest.raises(InvalidOptionError, match="SynthesisOptions"):
        tts.synthesize(SHORT, VOICE, {"seed": 1})
    with pytest.raises(InvalidOptionError, match="too short"):
        tts.synthesize(LONG, VOICE, Options(duration=Duration.seconds(0.3), segment_tokens=12))


def test_missing_weights_is_a_clear_error(tmp_path):
    with pytest.raises(ModelNotFoundError, match=r"gpt\.pth"):
        IndexTTS2.from_pretrained(tmp_path / "empty", download=False)


def test_microphone_tuple_voice(tts: IndexTTS2):
    import soundfile as sf

    data, sr = sf.read(VOICE, dtype="int16")
    r = tts.synthesize(SHORT, (sr, data), Options(sampling=FAST, seed=1))
    ref = tts.synthesize(SHORT, VOICE, Options(sampling=FAST, seed=1))
    np.testing.assert_array_equal(r.audio, ref.audio)


@pytest.mark.parametrize("dtype", ["bf16", "fp16"])
def test_reduced_precision_gpt(tiny_model_dir, test_device, dtype):
    import torch

    tts16 = IndexTTS2.from_pretrained(tiny_model_dir, device=test_device, dtype=dtype, download=False)
    assert tts16.dtype == {"bf16": torch.bfloat16, "fp16": torch.float16}[dtype]
    assert next(tts16.models.gpt.parameters()).dtype == tts16.dtype
    assert next(tts16.models.s2mel.parameters()).dtype == torch.float32  # as the reference keeps it
    r = tts16.synthesize(SHORT, VOICE, Options(emotion=Emotion.from_label("happy", 0.7), seed=1,
                         sampling=Sampling.greedy(max_mel_tokens=16)))
    assert np.isfinite(r.audio).all() and len(r.audio) == target_mel_frames(r.segments[0].num_codes) * HOP


def test_emotion_text_model_is_fetched_on_first_use(tiny_model_dir, tmp_path, monkeypatch):
    import indextts_core.download as download

    lean = tmp_path / "model"  # the tiny checkpoint without its optional Qwen folder
    for item in tiny_model_dir.rglob("*"):
        rel = item.relative_to(tiny_model_dir)
        if item.is_file() and not rel.parts[0].startswith("qwen"):
            (lean / rel).parent.mkdir(parents=True, exist_ok=True)
            (lean / rel).symlink_to(item)
    tts = IndexTTS2.from_pretrained(lean, device="cpu")
    asked = []

    def fake_ensure(model_dir, groups=("core",), **kwargs):
        asked.append(tuple(groups))
        raise ModelNotFoundError("no network here")

    monkeypatch.setattr(download, "ensure_model", fake_ensure)
    with pytest.raises(ModelNotFoundError, match="no network"):
        tts.analyze_emotion_text("好开心")
    assert asked == [("emotion_text",)]


def test_voice_and_text_warnings_travel_with_the_result(tts: IndexTTS2):
    import soundfile as sf

    data, sr = sf.read(VOICE, dtype="float32")
    opts = Options(sampling=Sampling.greedy(max_mel_tokens=20), diffusion_steps=2, seed=1)
    clean = "你好，欢迎。"  # every piece is in the tiny model's vocabulary (SHORT's 使 is not)
    assert tts.synthesize(clean, VOICE, opts).warnings == ()
    short = tts.synthesize(clean, (sr, data[: int(0.2 * sr)]), opts)
    assert any("0.2 s long, too short" in w for w in short.warnings)
    long = tts.synthesize(clean, (sr, np.tile(data, 4)), opts)
    assert any("only its first 15 s are used" in w for w in long.warnings)
    clipped = tts.synthesize(clean, (sr, np.clip(data * 50, -1, 1)), opts)
    assert any("clipped" in w for w in clipped.warnings)
    unk = tts.synthesize("Hello 😀 there.", VOICE, opts)
    assert any("<unk>: 😀" in w for w in unk.warnings)


@pytest.mark.parametrize("text, message", [
    ("👍👍👍", "Nothing in the text can be read aloud"),
    ("!!!", "Nothing in the text can be read aloud"),
    ("你好ZHANG7。", "invalid pinyin: ZHANG7"),
    ("重[chong]要", "invalid pinyin: chong"),
    ("重[xx9]要", "invalid pinyin: xx9"),
])
def test_unreadable_text_is_refused_before_any_work(tts: IndexTTS2, text, message):
    with pytest.raises(TextError, match=message):
        tts.synthesize(text, VOICE)


def test_bad_voice_arguments_are_clear_errors(tts: IndexTTS2):
    with pytest.raises(InvalidOptionError, match="voice must be"):
        tts.synthesize(SHORT, None)  # type: ignore[arg-type]
    with pytest.raises(InvalidOptionError, match="text must be"):
        tts.synthesize(None, VOICE)  # type: ignore[arg-type]
    with pytest.raises(AudioError, match="NaN"):
        tts.synthesize(SHORT, (22050, np.full(22050, np.nan, dtype=np.float32)))


def test_quick_streaming_keeps_the_first_segments_short(tts: IndexTTS2):
    text = "今天天气很好。我们一起去公园散步吧。然后去湖边吃午饭。我们可以聊一会儿天。"
    packed = tts.preview_text(text, segment_tokens=20)
    quick = tts.preview_text(text, segment_tokens=20, quick_streaming_tokens=30)
    assert len(quick.segments[0]) < len(packed.segments[0])
    assert [p for s in quick.segments for p in s] == [p for s in packed.segments for p in s]  # cut elsewhere
    options = Options(segment_tokens=20, quick_streaming_tokens=30, sampling=FAST, seed=7)
    first = next(iter(tts.stream(text, VOICE, options)))
    assert first.info.num_tokens == len(quick.segments[0]) and not first.is_last
