"""The dub and batch commands on the tiny test model: sample-exact cues, a ZIP with its manifest."""

from __future__ import annotations

import io
import zipfile

import pytest
import soundfile as sf

from indextts_core.cli import main
from indextts_core.jobs import JobStore, TakeRequest
from indextts_core.voices import SavedVoices
from tests.golden import GOLDEN_DIR

VOICE = str(GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav")
EMO_CLIP = str(GOLDEN_DIR / "audio" / "emo_librivox_0920_22k.wav")
FAST = ["--greedy", "--max-mel-tokens", "30", "--diffusion-steps", "2", "--seed", "1"]


@pytest.fixture
def engine_args(tiny_model_dir, test_device):
    return ["--model-dir", str(tiny_model_dir), "--device", test_device, "--offline"]


def test_dub_places_each_cue_at_its_sample(tmp_path, engine_args, capsys):
    lib = SavedVoices(tmp_path / "voices")
    lib.save("Anna", VOICE)
    lib.save("Ben", EMO_CLIP)
    subs = tmp_path / "scene.srt"
    subs.write_text("1\n00:00:00,100 --> 00:00:00,600\nAnna: 你好。\n\n"
                    "2\n00:00:01,000 --> 00:00:01,450\nBen: 再见。\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["dub", str(subs), "--voices-dir", str(tmp_path / "voices"), "--out-dir", str(out),
                 *engine_args, *FAST]) == 0
    track, sr = sf.read(out / "scene-dub.wav", dtype="int16")
    assert sr == 22050 and len(track) == round(1.45 * sr)
    with zipfile.ZipFile(out / "scene-cues.zip") as z:
        assert sorted(z.namelist()) == ["cue-0001.wav", "cue-0002.wav", "scene.srt"]
        first = sf.read(io.BytesIO(z.read("cue-0001.wav")), dtype="int16")[0]
        second = sf.read(io.BytesIO(z.read("cue-0002.wav")), dtype="int16")[0]
    assert len(first) == round(0.6 * sr) - round(0.1 * sr) and len(second) == round(1.45 * sr) - round(1.0 * sr)
    assert (track[round(0.1 * sr):round(0.6 * sr)] == first).all()
    assert (track[round(1.0 * sr):] == second).all() and not track[:round(0.1 * sr)].any()
    assert "Ben: 再见。" in (out / "scene-dub.srt").read_text(encoding="utf-8")
    assert "wrote" in capsys.readouterr().out


def test_batch_exports_flac_at_48k_with_a_manifest(tmp_path, engine_args):
    lines = tmp_path / "lines.csv"
    lines.write_text("text,seconds,filename\n你好。,0.5,hello\n再见。,0.4,\n", encoding="utf-8")
    out = tmp_path / "out"
    assert main(["batch", str(lines), "--voice", VOICE, "--out-dir", str(out), "--format", "flac",
                 "--sample-rate", "48000", *engine_args, *FAST]) == 0
    with zipfile.ZipFile(out / "lines-batch.zip") as z:
        assert sorted(z.namelist()) == ["0002.flac", "hello.flac", "manifest.csv"]
        hello, sr = sf.read(io.BytesIO(z.read("hello.flac")))
        manifest = z.read("manifest.csv").decode()
    assert sr == 48000 and len(hello) == round(0.5 * 48000)
    assert "hello.flac,done,你好。" in manifest


def test_bad_files_are_clear_errors(tmp_path, engine_args, capsys):
    subs = tmp_path / "bad.srt"
    subs.write_text("1\n00:00:02,000 --> 00:00:01,000\nhi\n", encoding="utf-8")
    assert main(["dub", str(subs), "--voice", VOICE, "--out-dir", str(tmp_path), *engine_args]) == 2
    assert "cue 1: it ends before or when it starts" in capsys.readouterr().err
    lines = tmp_path / "l.csv"
    lines.write_text("text,voice\nhi,Zed\n", encoding="utf-8")
    assert main(["batch", str(lines), "--voice", VOICE, "--out-dir", str(tmp_path), *engine_args]) == 2
    assert "line 2: no saved voice named 'Zed'" in capsys.readouterr().err
    job = JobStore(tmp_path).create("batch", "l", [("a", TakeRequest("hi", VOICE))])
    assert main(["dub", str(subs), "--resume", str(job), "--out-dir", str(tmp_path), *engine_args]) == 2
    assert f"job {job} is a batch job; resume it with that command" in capsys.readouterr().err
    assert main(["dub", str(tmp_path / "none.srt"), "--voice", VOICE, "--out-dir", str(tmp_path)]) == 2
    assert "cannot read" in capsys.readouterr().err
