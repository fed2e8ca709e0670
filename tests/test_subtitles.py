"""Dubbing from subtitles: cues timed to the sample, two voices, clear errors for bad files."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import soundfile as sf

from indextts_core import subtitles as subs
from indextts_core.jobs import JobStore, LocalWorker
from indextts_core.options import SAMPLE_RATE, Duration, Emotion, SynthesisOptions
from tests.fake_engine import FakeEngineForTests

SRT = """1
00:00:00,500 --> 00:00:01,733
Anna: Good morning.

2
00:00:02,000 --> 00:00:03,250
Ben: Morning! Coffee?

3
00:00:03,250 --> 00:00:04,100
Anna: Please.

4
00:00:05,015 --> 00:00:06,999
Ben: Here you go, careful.

5
00:00:07,000 --> 00:00:08,000
Thanks a lot.
"""

VTT = """WEBVTT

intro
00:00:01.000 --> 00:00:02.250
<v Anna>Hello there

00:01.500 --> 00:00:03.000
Ben: second
"""


def _voice(path):
    sf.write(path, (0.1 * np.sin(np.arange(SAMPLE_RATE) / 7)).astype(np.float32), SAMPLE_RATE)
    return str(path)


@pytest.fixture
def voices(tmp_path):
    return {"Anna": _voice(tmp_path / "anna.wav"), "Ben": _voice(tmp_path / "ben.wav")}


def test_srt_cues_become_sample_exact_items_with_speakers():
    cues = subs.parse(SRT.encode(), "a.srt")
    assert [c.speaker for c in cues] == ["Anna", "Ben", "Anna", "Ben", None]
    assert cues[0].text == "Good morning." and cues[0].start == round(0.5 * SAMPLE_RATE)
    assert cues[0].samples == round(1.733 * SAMPLE_RATE) - round(0.5 * SAMPLE_RATE)


def test_vtt_voice_spans_and_prefixes_pick_the_speaker():
    with pytest.raises(subs.SubtitleError, match=r"cue 2 starts at 1\.500 s, before cue 1 ends"):
        subs.parse(VTT.encode(), "a.vtt")
    cues = subs.parse(VTT.replace("00:01.500", "00:02.500").encode(), "a.vtt")
    assert [(c.speaker, c.text) for c in cues] == [("Anna", "Hello there"), ("Ben", "second")]
    assert cues[1].start == round(2.5 * SAMPLE_RATE)


def test_a_five_cue_dub_with_two_voices_lands_every_cue_on_its_sample(tmp_path, voices):
    engine = FakeEngineForTests(tmp_path)
    cues = subs.parse(SRT.encode(), "a.srt")
    plans = subs.plan(cues, voices, default_voice=voices["Anna"])
    assert [p.request.voice for p in plans] == [voices[n] for n in ("Anna", "Ben", "Anna", "Ben", "Anna")]
    store = JobStore(tmp_path / "out")
    job = subs.create_job(store, plans, "scene 1")
    LocalWorker(engine).run(store, job)
    result = subs.job_track(store, job)
    assert result.missing == [] and all(p.cut == 0 for p in result.placements)
    assert len(result.track) == cues[-1].end
    for cue, it in zip(cues, store.items(job), strict=True):
        take = sf.read(it.output, dtype="float32")[0]
        assert len(take) == cue.samples
        assert np.array_equal(result.track[cue.start:cue.end], take)
    gaps = np.ones(len(result.track), bool)
    for cue in cues:
        gaps[cue.start:cue.end] = False
    assert not result.track[gaps].any()

    # Regenerate cue 2 with new text: only it runs again, and the subtitle file comes back edited.
    before = store.item(job, 0).output.read_bytes()
    store.regenerate(job, 1, text="Morning! Tea?")
    engine.calls.clear()
    LocalWorker(engine).run(store, job)
    assert [c["text"] for c in engine.calls] == ["Morning! Tea?"]
    assert store.item(job, 0).output.read_bytes() == before
    back = subs.compose_srt(subs.job_cues(store, job))
    assert "Ben: Morning! Tea?" in back and subs.parse(back.encode(), "b.srt")[1].start == cues[1].start


def test_natural_fit_only_shortens_cues_that_would_overrun(voices):
    cues = subs.parse(SRT.encode(), "a.srt")
    shared = SynthesisOptions(emotion=Emotion.from_label("calm"), seed=9, diffusion_steps=4)
    plans = subs.plan(cues, voices, voices["Anna"], shared, subs.FIT_NATURAL, natural_seconds=lambda t: len(t) / 12)
    assert all(p.request.options.replace(duration=Duration.free()) == shared for p in plans)
    sad = Emotion.from_label("sad", 0.6)
    moods = subs.plan(cues, voices, voices["Anna"], shared, default_emotions={"Ben": sad})
    assert [p.request.options.emotion for p in moods] == [shared.emotion, sad, shared.emotion, sad, shared.emotion]
    # "Here you go, careful." (1.75 s natural) fits its 1.984 s cue, so it keeps its pace;
    # "Morning! Coffee?" (1.33 s natural) would overrun its 1.25 s cue, so it is fitted.
    assert plans[3].request.options.duration == Duration.free()
    assert plans[1].request.options.duration == Duration.seconds(cues[1].samples / SAMPLE_RATE)
    assert plans[1].speed_ratio == pytest.approx((16 / 12) / cues[1].seconds)


def test_uncomfortable_speeds_are_flagged_with_the_ratio(voices):
    cues = subs.parse(SRT.encode(), "a.srt")
    plans = subs.plan(cues, voices, voices["Anna"])
    flagged = {p.cue.index: p.speed_ratio for p in plans if p.uncomfortable}
    assert sorted(flagged) == [1, 2, 3, 4] and all(not 0.75 <= r <= 1.3 for r in flagged.values())
    assert not plans[4].uncomfortable  # "Thanks a lot." in 1 s: 3 words at 2.7 a second
    assert subs.estimate_seconds("你好世界啊") == pytest.approx(5 / 4.5)


def test_a_take_that_overruns_is_cut_at_the_next_cue_and_reported():
    cues = [subs.Cue(1, 0, 100, "a"), subs.Cue(2, 150, 200, "b")]
    track, placed = subs.assemble(cues, {1: np.ones(180, np.float32), 2: np.ones(70, np.float32)})
    assert [(p.samples, p.cut) for p in placed] == [(150, 30), (70, 0)]
    assert len(track) == 220 and track[:220].all()


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.srt", "1\n00:00:01,000 --> 00:00:02,000\nhi\n\n2\n00:00:0x,000 --> 00:00:03,000\nyo\n",
     "line 5: this is not a valid cue"),
    ("a.srt", "1\n00:00:02,000 --> 00:00:02,000\nhi\n", "cue 1: it ends before or when it starts"),
    ("a.srt", "1\n00:00:01,000 --> 00:00:02,000\nBen:   \n", "cue 1: it has no text"),
    ("a.srt", "1\n00:00:01,000 --> 00:00:03,000\nhi\n\n2\n00:00:02,000 --> 00:00:04,000\nyo\n",
     r"cue 2 starts at 2\.000 s, before cue 1 ends"),
    ("a.vtt", "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nhi\n\n00:00:03.0 --> 00:00:04.000\nyo\n",
     "line 6: bad timestamps"),
    ("a.txt", "hello", "use a .srt or .vtt"),
    ("a.srt", "", "has no cues"),
])
def test_malformed_files_name_the_cue_or_line(name, text, message):
    with pytest.raises(subs.SubtitleError, match=message):
        subs.parse(text.encode(), name)


def test_wrong_encoding_and_too_many_cues_are_refused_clearly(voices):
    with pytest.raises(subs.SubtitleError, match=r"not UTF-8 text .*line 3"):
        subs.parse(b"1\n00:00:01,000 --> 00:00:02,000\ncaf\xe9\n", "a.srt")
    many = "".join(f"{i + 1}\n00:00:{i:02d},000 --> 00:00:{i:02d},500\nx\n\n" for i in range(12))
    with pytest.raises(subs.SubtitleError, match="12 cues; a dubbing job holds at most 10"):
        subs.parse(many.encode(), "a.srt", max_cues=10)
    cues = subs.parse(SRT.replace("Anna:", "Cleo:").encode(), "a.srt")
    with pytest.raises(subs.SubtitleError, match=r"cue 1: no saved voice named 'Cleo' .*Anna, Ben"):
        subs.plan(cues, voices, voices["Anna"])


def test_zip_holds_the_per_cue_files_and_the_subtitles(tmp_path):
    f = tmp_path / "x.wav"
    f.write_bytes(b"RIFF")
    data = subs.zip_takes({"cue-0001.wav": f}, {"subtitles.srt": "1\n"})
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert sorted(z.namelist()) == ["cue-0001.wav", "subtitles.srt"] and z.read("cue-0001.wav") == b"RIFF"
