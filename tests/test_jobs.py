"""Jobs: stored in SQLite, resumed after a crash, finished items never redone."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import soundfile as sf

from indextts_core.errors import AudioError, InvalidOptionError
from indextts_core.jobs import (
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    RUNNING,
    JobError,
    JobRunner,
    JobStore,
    LocalWorker,
    TakeRequest,
)
from indextts_core.options import SAMPLE_RATE, Duration, Emotion, Sampling, SynthesisOptions
from tests.fake_engine import FakeEngineForTests


@pytest.fixture
def voice(tmp_path):
    path = tmp_path / "voice.wav"
    sf.write(path, (0.1 * np.sin(np.arange(SAMPLE_RATE) / 10)).astype(np.float32), SAMPLE_RATE)
    return str(path)


@pytest.fixture
def engine(tmp_path):
    return FakeEngineForTests(tmp_path)


def _job(store, voice, n=3, **kw):
    return store.create("batch", "test", [(f"line {i}", TakeRequest(f"Line number {i}.", voice, SynthesisOptions(**kw)))
                                          for i in range(n)])


def test_items_run_to_wavs_of_the_requested_length(tmp_path, voice, engine):
    store = JobStore(tmp_path / "out")
    job = _job(store, voice, duration=Duration.seconds(1.25), emotion=Emotion.from_label("sad"))
    seen = []
    progress = LocalWorker(engine).run(store, job, on_progress=lambda p, it: seen.append((p.finished, it.state)))
    assert progress.is_complete and progress.counts[DONE] == 3 and progress.seconds_left == 0
    assert seen == [(1, DONE), (2, DONE), (3, DONE)]
    for it in store.items(job):
        data, sr = sf.read(it.output, dtype="int16")
        assert sr == SAMPLE_RATE and len(data) == round(1.25 * SAMPLE_RATE)
        assert it.output.name == f"line_{it.index}.wav" and it.result["seed"] == it.request.options.seed
    assert [c["emotion"] for c in engine.calls] == [Emotion.from_label("sad")] * 3


def test_a_job_survives_a_restart_and_never_redoes_finished_items(tmp_path, voice, engine):
    store = JobStore(tmp_path)
    job = _job(store, voice, n=4)
    stop = threading.Event()

    def stop_after_two(p, it):
        if p.finished == 2:
            stop.set()

    LocalWorker(engine).run(store, job, stop=stop, on_progress=stop_after_two)
    first = {it.index: it.output.read_bytes() for it in store.items(job, (DONE,))}
    assert sorted(first) == [0, 1]
    # A crash while item 2 ran leaves it "running"; reopening the folder puts it back in the queue.
    store._move_one(store.item(job, 2), RUNNING)
    reopened = JobStore(tmp_path)
    assert reopened.item(job, 2).state == PENDING
    engine.calls.clear()
    LocalWorker(engine).run(reopened, job)
    assert [c["text"] for c in engine.calls] == ["Line number 2.", "Line number 3."]
    assert {it.index: it.output.read_bytes() for it in reopened.items(job) if it.index < 2} == first


def test_seeds_are_fixed_when_the_job_is_made_so_a_resumed_take_is_the_same(tmp_path, voice, engine):
    store = JobStore(tmp_path)
    job = store.create("batch", "t", [("a", TakeRequest("Hello.", voice)),
                                      ("b", TakeRequest("Hi.", voice, SynthesisOptions(seed=7)))])
    seeds = [it.request.options.seed for it in store.items(job)]
    assert seeds[1] == 7 and isinstance(seeds[0], int)
    LocalWorker(engine).run(store, job)
    assert [c["seed"] for c in engine.calls] == seeds


def test_engine_errors_fail_one_item_and_retry_runs_it_again(tmp_path, voice, engine):
    store = JobStore(tmp_path)
    job = _job(store, voice)
    engine.fail_next = AudioError("The voice clip is silent.")
    progress = LocalWorker(engine).run(store, job)
    assert progress.counts[FAILED] == 1 and progress.counts[DONE] == 2 and progress.is_complete
    failed = store.items(job, (FAILED,))[0]
    assert failed.index == 0 and failed.error == "The voice clip is silent." and failed.output is None
    assert store.retry_failed(job) == 1
    assert LocalWorker(engine).run(store, job).counts[DONE] == 3
    assert store.item(job, 0).attempts == 2


def test_a_bug_hands_the_item_back_and_propagates(tmp_path, voice, engine):
    store = JobStore(tmp_path)
    job = _job(store, voice, n=1)
    engine.fail_next = RuntimeError("boom")
    with pytest.raises(RuntimeError, match="boom"):
        LocalWorker(engine).run(store, job)
    assert store.item(job, 0).state == PENDING


def test_cancel_keeps_finished_items_and_resume_requeues_the_rest(tmp_path, voice, engine):
    store = JobStore(tmp_path)
    job = _job(store, voice)
    stop = threading.Event()
    LocalWorker(engine).run(store, job, stop=stop, on_progress=lambda p, it: stop.set())
    assert store.cancel(job) == 2
    assert [it.state for it in store.items(job)] == [DONE, CANCELLED, CANCELLED]
    assert LocalWorker(engine).run(store, job).counts[CANCELLED] == 2
    assert store.resume(job) == 2
    assert LocalWorker(engine).run(store, job).counts[DONE] == 3


class _GatedEngine:
    """Holds each take until the test lets it go, so a Stop can land while a take is made."""

    def __init__(self, engine) -> None:
        self.engine, self.started, self.go = engine, threading.Event(), threading.Event()

    def stream(self, text, voice, options=None):
        self.started.set()
        assert self.go.wait(10)
        return self.engine.stream(text, voice, options)


def test_work_handed_to_a_job_while_it_stops_is_run(tmp_path, voice, engine):
    store = JobStore(tmp_path)
    job = _job(store, voice)
    gated = _GatedEngine(engine)
    runner = JobRunner(store, LocalWorker(gated))
    runner.submit(job)
    assert gated.started.wait(10)
    runner.stop(job)  # Stop while item 0 is being made ...
    store.cancel(job)
    store.resume(job)  # ... and Resume before it is finished
    runner.submit(job)
    gated.go.set()
    assert runner.wait(10) and store.progress(job).counts[DONE] == 3


def test_regenerate_with_edited_text_or_a_fresh_seed(tmp_path, voice, engine):
    store = JobStore(tmp_path)
    job = _job(store, voice, n=2)
    LocalWorker(engine).run(store, job)
    old_seed = store.item(job, 1).request.options.seed
    item = store.regenerate(job, 1, text="Edited line.")
    assert item.state == PENDING and item.request.text == "Edited line." and item.request.options.seed != old_seed
    engine.calls.clear()
    LocalWorker(engine).run(store, job)
    assert [c["text"] for c in engine.calls] == ["Edited line."]
    assert store.regenerate(job, 0, seed=42).request.options.seed == 42


def test_names_are_made_safe_and_unique(tmp_path, voice):
    store = JobStore(tmp_path)
    job = store.create("batch", "t", [("../x", TakeRequest("A.", voice)), ("../x", TakeRequest("B.", voice)),
                                      ("", TakeRequest("C.", voice))])
    assert [it.name for it in store.items(job)] == ["x", "x-2", "0003"]


def test_bad_jobs_and_requests_are_refused_clearly(tmp_path, voice):
    store = JobStore(tmp_path)
    with pytest.raises(JobError, match="at most 2 items; this one has 3"):
        store.create("batch", "t", [("a", TakeRequest("A.", voice))] * 3, max_items=2)
    with pytest.raises(JobError, match="at least one item"):
        store.create("batch", "t", [])
    with pytest.raises(JobError, match="no job 99"):
        store.progress(99)
    with pytest.raises(InvalidOptionError, match="needs text"):
        TakeRequest("  ", voice)
    with pytest.raises(InvalidOptionError, match="file path, not audio in memory"):
        TakeRequest("A.", voice, SynthesisOptions(emotion=Emotion.from_audio((SAMPLE_RATE, np.zeros(10)))))
    with pytest.raises(InvalidOptionError, match="must be a SynthesisOptions, got dict"):
        TakeRequest("A.", voice, {"seed": 2})
    with pytest.raises(InvalidOptionError, match="unknown option speed"):
        TakeRequest.from_json('{"text": "A.", "voice": "v.wav", "options": {"speed": 2}}')


def test_requests_round_trip_through_json(voice):
    req = TakeRequest("Hi.", voice, SynthesisOptions(emotion=Emotion.from_vector([0.1] * 8, weight=0.5),
                                                     duration=Duration.speed(1.2), seed=5, gap_ms=100))
    assert TakeRequest.from_json(req.to_json()) == req
    clip = TakeRequest("Hi.", voice, SynthesisOptions(emotion=Emotion.from_audio(voice, 0.3)))
    assert TakeRequest.from_json(clip.to_json()) == clip


def test_a_job_on_the_test_model_resumes_after_a_restart(tmp_path, tts):
    from tests.golden import GOLDEN_DIR

    voice = str(GOLDEN_DIR / "audio" / "spk_librivox_0890_22k.wav")
    store = JobStore(tmp_path)
    options = SynthesisOptions(sampling=Sampling.greedy(max_mel_tokens=40), diffusion_steps=2)
    job = store.create("dub", "e2e", [(f"cue{i}", TakeRequest("你好。", voice,
                                                              options.replace(duration=Duration.seconds(0.5 + i / 4))))
                                      for i in range(2)])
    stop = threading.Event()
    LocalWorker(tts).run(store, job, stop=stop, on_progress=lambda p, it: stop.set())
    done = store.item(job, 0).output.read_bytes()
    progress = LocalWorker(tts).run(JobStore(tmp_path), job)
    assert progress.counts[DONE] == 2 and store.item(job, 0).output.read_bytes() == done
    for i, it in enumerate(store.items(job)):
        assert len(sf.read(it.output)[0]) == round((0.5 + i / 4) * SAMPLE_RATE)
