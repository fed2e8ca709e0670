"""Batches from lines, CSV and JSONL to a ZIP with its manifest."""

from __future__ import annotations

import csv
import io
import zipfile

import numpy as np
import pytest
import soundfile as sf

from indextts_core import batch
from indextts_core.jobs import JobStore, LocalWorker
from indextts_core.options import SAMPLE_RATE, Duration, Emotion, Sampling, SynthesisOptions
from tests.fake_engine import FakeEngineForTests

CSV = """text,voice,emotion,seconds,speed,seed,filename
Hello there.,Anna,,1.5,,1,hello.wav
How are you?,Ben,sad:0.8,,1.2,2,
Fine thanks.,,,,,3,fine
Really?,Anna,angry,2,,4,
Yes.,Ben,,,,5,
Goodbye.,,calm,0.75,,6,bye
"""


@pytest.fixture
def voices(tmp_path):
    out = {}
    for name in ("Anna", "Ben"):
        path = tmp_path / f"{name}.wav"
        sf.write(path, (0.1 * np.sin(np.arange(SAMPLE_RATE) / 5)).astype(np.float32), SAMPLE_RATE)
        out[name] = str(path)
    return out


def test_a_six_line_csv_becomes_a_zip_with_its_manifest(tmp_path, voices):
    rows = batch.read_rows(CSV.encode(), "lines.csv")
    shared = SynthesisOptions(sampling=Sampling.greedy(), diffusion_steps=3, gap_ms=50)
    reqs = batch.requests(rows, voices, voices["Anna"], "lines.csv", shared,
                          default_emotions={"Ben": Emotion.from_label("happy", 0.4)})
    assert [n for n, _ in reqs] == ["hello", "0002", "fine", "0004", "0005", "bye"]
    opts = [r.options for _, r in reqs]
    assert opts[0].duration == Duration.seconds(1.5) and opts[1].duration == Duration.speed(1.2)
    assert opts[1].emotion == Emotion.from_label("sad", 0.8)
    assert opts[4].emotion == Emotion.from_label("happy", 0.4)  # Ben's saved default
    assert [o.seed for o in opts] == [1, 2, 3, 4, 5, 6]
    assert all(o.replace(emotion=shared.emotion, duration=shared.duration, seed=None) == shared for o in opts)
    assert reqs[2][1].voice == voices["Anna"] and reqs[1][1].voice == voices["Ben"]
    store = JobStore(tmp_path / "out")
    job = store.create("batch", "lines", reqs)
    LocalWorker(FakeEngineForTests(tmp_path)).run(store, job)
    data = batch.zip_job(store, job, voices)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        names = sorted(z.namelist())
        manifest = list(csv.DictReader(io.StringIO(z.read("manifest.csv").decode())))
        hello = sf.read(io.BytesIO(z.read("hello.wav")))[0]
    assert names == sorted(["hello.wav", "0002.wav", "fine.wav", "0004.wav", "0005.wav", "bye.wav", "manifest.csv"])
    assert len(hello) == round(1.5 * SAMPLE_RATE)
    assert [m["file"] for m in manifest][:3] == ["hello.wav", "0002.wav", "fine.wav"]
    assert manifest[1]["voice"] == "Ben" and manifest[1]["duration"] == "speed 1.2" and manifest[1]["seed"] == "2"
    assert manifest[0]["seconds"] == "1.500" and all(m["state"] == "done" for m in manifest)


def test_plain_lines_and_jsonl():
    rows = batch.read_rows(b"first line\n\n  second  \n", "a.txt")
    assert [(r.line, r.fields["text"]) for r in rows] == [(1, "first line"), (3, "second")]
    rows = batch.read_rows(b'{"text": "hi", "length": 2}\n{"text": "yo", "seed": 3}\n', "a.jsonl")
    assert rows[0].fields == {"text": "hi", "seconds": "2"} and rows[1].line == 2


@pytest.mark.parametrize(("name", "data", "message"), [
    ("a.csv", "voice\nAnna\n", "line 1: the header needs a 'text' column"),
    ("a.csv", "text,colour\nhi,red\n", r"unknown column\(s\) \['colour'\]"),
    ("a.csv", "text,voice\nhi,Anna,extra\n", "line 2: more values than columns"),
    ("a.csv", "text,voice\nhi,Zed\n", r"line 2: no saved voice named 'Zed' \(saved: Anna, Ben\)"),
    ("a.csv", "text,seconds\nhi,abc\n", "line 2: could not convert"),
    ("a.csv", "text,seconds,speed\nhi,2,1.1\n", "line 2: give seconds or speed, not both"),
    ("a.csv", "text,emotion\nhi,grumpy\n", "line 2: unknown emotion 'grumpy'"),
    ("a.csv", "text,voice\n,Anna\n", "line 2: no text"),
    ("a.jsonl", '{"text": "hi"}\n{"text": \n', "line 2: not valid JSON"),
    ("a.jsonl", '["hi"]\n', "line 1: each line must be a JSON object"),
    ("a.txt", "", "has no lines"),
])
def test_bad_batches_name_the_line(voices, name, data, message):
    with pytest.raises(batch.BatchError, match=message):
        batch.requests(batch.read_rows(data.encode(), name), voices, voices["Anna"], name)


def test_too_many_lines_and_wrong_encoding(voices):
    with pytest.raises(batch.BatchError, match="3 lines; a batch holds at most 2"):
        batch.requests(batch.read_rows(b"a\nb\nc\n", "a.txt"), voices, voices["Anna"], "a.txt", max_items=2)
    with pytest.raises(batch.BatchError, match=r"not UTF-8 text \(first bad byte on line 2\)"):
        batch.read_rows(b"ok\ncaf\xe9\n", "a.txt")
