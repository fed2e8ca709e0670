"""Jobs on Ray: two local workers (``ray.init(num_cpus=2)``) on the tiny model, one killed mid-job.

All six items must come back, each written once, bit-identical to the in-process run.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from indextts_core.jobs import DONE, JobStore, LocalWorker, TakeRequest
from indextts_core.options import Emotion, Sampling, SynthesisOptions
from tests.app_server import EMOTION_CLIP, FAST, SPEAKER

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow

LINES = ["One small line.", "Another line here.", "A third one.", "Four is next.", "Then five.", "Six, the last."]


def job_items() -> list[tuple[str, TakeRequest]]:
    base = SynthesisOptions(sampling=Sampling(do_sample=False, num_beams=1, max_mel_tokens=FAST["max_mel_tokens"]),
                            diffusion_steps=FAST["diffusion_steps"])
    items = [(f"line-{i}", TakeRequest(text, str(SPEAKER), base.replace(seed=100 + i)))
             for i, text in enumerate(LINES)]
    # One take with an emotion clip: that clip has to reach the workers too.
    name, req = items[2]
    items[2] = (name, req.with_options(emotion=Emotion.from_audio(str(EMOTION_CLIP), 0.5)))
    return items


@pytest.fixture(scope="module")
def cluster():
    import indextts_core

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"py_modules": [str(Path(indextts_core.__file__).parent)]})
    yield
    ray.shutdown()


def test_a_killed_worker_loses_nothing_and_changes_nothing(cluster, tts, tiny_model_dir: Path,
                                                           tmp_path: Path) -> None:
    from indextts_core.ray_worker import RayWorker

    local = JobStore(tmp_path / "local")
    local_id = local.create("batch", "reference", job_items())
    LocalWorker(tts).run(local, local_id)

    store = JobStore(tmp_path / "ray")
    job_id = store.create("batch", "on ray", job_items())
    worker = RayWorker(tiny_model_dir, workers=2, device="cpu", gpus_per_worker=0, download=False,
                       threads=torch.get_num_threads())
    killed = []

    def kill_one_mid_item(progress, item) -> None:
        if not killed:
            (busy,) = worker.busy_actors()
            ray.kill(busy, no_restart=True)
            killed.append(busy)

    try:
        progress = worker.run(store, job_id, on_progress=kill_one_mid_item)
    finally:
        worker.close()
    assert killed
    assert progress.counts[DONE] == 6 and progress.is_complete
    items = store.items(job_id)
    assert sorted(it.attempts for it in items) == [1, 1, 1, 1, 1, 2], "the killed worker's item ran once more"
    wavs = sorted(p.name for p in store.job_folder(job_id).iterdir())
    assert wavs == sorted(f"line-{i}.wav" for i in range(6)), "each take written once, nothing half-written"
    for ours, theirs in zip(items, local.items(local_id), strict=True):
        assert ours.output.read_bytes() == theirs.output.read_bytes(), f"{ours.name} differs from in-process"
        assert ours.result["seed"] == theirs.result["seed"] == 100 + ours.index
