"""Model download and status, against a fake hub on 127.0.0.1 (tests/fake_hub.py)."""

from __future__ import annotations

import hashlib
import random
import shutil
import socket
import time
from pathlib import Path

import pytest
from filelock import FileLock
from huggingface_hub import constants as hf_constants

from indextts_core import cli, layout
from indextts_core.download import DownloadProgress, ensure_model
from indextts_core.download_job import DownloadJob
from indextts_core.errors import ModelNotFoundError
from indextts_core.model_folder import PARTIAL_DIR, _default_model_dir, default_model_dir, model_status

from .fake_hub import FakeHub

MAIN = layout.MAIN_REPO
EXTRA = (MAIN, f"{layout.QWEN_DIR}/added_tokens.json")  # on the hub, not in our required list


def _bytes(seed: str, n: int) -> bytes:
    return random.Random(seed).randbytes(n)


def _repo_files() -> dict[tuple[str, str], bytes]:
    """Every layout file with a few KB of arbitrary content (some below the LFS size, some above)."""
    files = {}
    for i, f in enumerate(layout.FILES):
        files[(f.repo_id, f.filename)] = _bytes(f.filename, 300 + 700 * (i % 5))
    files[EXTRA] = b'{"<extra>": 151669}'
    return files


def _local_bytes(files: dict, f: layout.RemoteFile) -> bytes:
    return files[(f.repo_id, f.filename)]


def _fill(model_dir: Path, files: dict, skip: tuple[str, ...] = ()) -> None:
    """Write the layout files straight to disk (no network)."""
    for f in layout.FILES:
        if f.local not in skip:
            path = model_dir / f.local
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_local_bytes(files, f))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN", "HF_ENDPOINT", "INDEXTTS_MODEL_DIR"):
        monkeypatch.delenv(name, raising=False)
    # huggingface_hub fixes its offline flag at import; a test run must not inherit one.
    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf-hub-cache"))  # empty, hermetic
    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "3")


@pytest.fixture
def hub(clean_env: None, monkeypatch: pytest.MonkeyPatch):
    fake = FakeHub(_repo_files()).start()
    monkeypatch.setenv("HF_ENDPOINT", fake.endpoint)
    yield fake
    fake.stop()


def test_default_model_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("INDEXTTS_MODEL_DIR", str(tmp_path / "mine"))
    assert default_model_dir() == tmp_path / "mine"
    monkeypatch.setenv("INDEXTTS_MODEL_DIR", "~/w")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_model_dir() == tmp_path / "w"
    monkeypatch.delenv("INDEXTTS_MODEL_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_model_dir() == tmp_path / "xdg" / "indextts-studio" / "IndexTTS-2"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_model_dir() == tmp_path / ".cache" / "indextts-studio" / "IndexTTS-2"
    win = _default_model_dir({"LOCALAPPDATA": "C:/Users/a/AppData/Local"}, "win32")
    assert win.as_posix() == "C:/Users/a/AppData/Local/indextts-studio/IndexTTS-2"


def test_first_download(hub: FakeHub, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_test_token")
    model = tmp_path / "model"
    assert not model_status(model).all_complete
    events: list[DownloadProgress] = []

    assert ensure_model(model, ("core", "emotion_text"), progress=events.append) == model

    for f in layout.FILES:
        assert (model / f.local).read_bytes() == _local_bytes(hub.files, f), f.local
    assert (model / "hf_cache/semantic_codec_model.safetensors").is_file()  # renamed from a subfolder
    assert (model / EXTRA[1]).read_bytes() == hub.files[EXTRA]  # whole-folder fetch brings extras
    status = model_status(model)
    assert status.complete == {"core": True, "emotion_text": True} and not status.is_test_model
    assert not list((model / PARTIAL_DIR).rglob("*.incomplete"))

    done = {e.local: e for e in events if e.status == "done"}
    assert set(done) == {f.local for f in layout.FILES} | {EXTRA[1]}
    assert all(e.done == e.total == (model / e.local).stat().st_size for e in done.values())
    assert any(e.status == "downloading" and e.done > 0 for e in events)
    assert {e.count for e in events} == {len(layout.FILES) + 1}

    # The token goes to the hub, never to the storage host it redirects to.
    heads = hub.seen("hub", "HEAD")
    assert heads and all(r.headers.get("authorization") == "Bearer hf_test_token" for r in heads)
    assert hub.seen("cdn") and all("authorization" not in r.headers for r in hub.seen("cdn"))
    listing = [r for r in hub.seen("hub", "GET") if "/tree/" in r.path]
    assert len(listing) == 3  # the folder listing was paginated (10 entries, 4 a page)

    hub.clear()
    assert ensure_model(model, ("core", "emotion_text")) == model
    assert hub.requests == []  # complete folder: no network at all


def test_resume_after_interrupted_transfer(hub: FakeHub, tmp_path: Path) -> None:
    # huggingface_hub hands the body over in chunks of DOWNLOAD_CHUNK_SIZE (10 MiB) and drops an
    # unfinished chunk on error, so the file must be larger than one chunk to leave bytes behind.
    chunk = hf_constants.DOWNLOAD_CHUNK_SIZE
    gpt = (MAIN, layout.GPT)
    hub.files[gpt] = _bytes("gpt", chunk + 400_000)
    hub.cut_once[gpt] = chunk + 200_000
    model = tmp_path / "model"

    with pytest.raises(ModelNotFoundError) as info:
        ensure_model(model)
    assert "gpt.pth" in str(info.value) and "503" in str(info.value)
    assert not (model / layout.GPT).exists()  # nothing half-written at the final path
    before = {fs.local: fs for fs in model_status(model, ("core",)).files}
    assert before["config.yaml"].state == "present"
    assert before["gpt.pth"].state == "partial"
    partial = before["gpt.pth"].size
    assert 0 < partial < len(hub.files[gpt])

    hub.outage = False
    hub.clear()
    ensure_model(model)

    assert (model / layout.GPT).read_bytes() == hub.files[gpt]
    assert model_status(model, ("core",)).complete["core"]
    ranges = [r.headers.get("range") for r in hub.seen("cdn", "GET")
              if r.path.endswith(hashlib.sha256(hub.files[gpt]).hexdigest())]
    assert ranges == [f"bytes={partial}-"]
    # Files finished in the first run are not asked for again.
    asked = {r.path for r in hub.requests}
    assert not any(p.endswith(("/config.yaml", "/bpe.model", "/feat1.pt")) for p in asked)


def test_offline_uses_local_files_without_network(hub: FakeHub, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "model"
    _fill(model, hub.files)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert ensure_model(model, ("core", "emotion_text")) == model
    (model / layout.S2MEL).unlink()
    with pytest.raises(ModelNotFoundError) as info:
        ensure_model(model)
    monkeypatch.delenv("HF_HUB_OFFLINE")
    with pytest.raises(ModelNotFoundError):
        ensure_model(model, offline=True)
    assert hub.requests == []
    message = str(info.value)
    assert "s2mel.pth" in message and str(model / layout.S2MEL) in message and "offline" in message
    assert "gpt.pth" not in message


def test_unreachable_hub_gives_clear_message(clean_env: None, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")  # nothing listens there
    model = tmp_path / "model"
    t0 = time.monotonic()
    with pytest.raises(ModelNotFoundError) as info:
        ensure_model(model)
    assert time.monotonic() - t0 < 30  # bounded: no long retry loop against a dead host
    message = str(info.value)
    for f in layout.files_of(("core",)):
        assert f.local in message and str(model / f.local) in message
    assert "IndexTeam/IndexTTS-2 : gpt.pth" in message
    assert "amphion/MaskGCT : semantic_codec/model.safetensors" in message
    assert "HF_ENDPOINT=https://hf-mirror.com" in message and "--model-dir" in message
    assert "could not reach" in message


def test_complete_local_folder_is_used_as_is(hub: FakeHub, tiny_model_dir: Path, capsys) -> None:
    status = model_status(tiny_model_dir)
    assert status.is_test_model and status.all_complete
    assert ensure_model(tiny_model_dir, ("core", "emotion_text")) == tiny_model_dir
    assert cli.main(["status", "--model-dir", str(tiny_model_dir)]) == 0
    assert "test model" in capsys.readouterr().out
    assert hub.requests == []


def test_checksum_mismatch_never_lands(hub: FakeHub, tmp_path: Path) -> None:
    gpt = (MAIN, layout.GPT)
    hub.files[gpt] = _bytes("gpt", 5000)
    assert hub.is_lfs(gpt)  # an LFS file: its ETag is the SHA-256 of its content
    hub.corrupt.add(gpt)
    model = tmp_path / "model"
    with pytest.raises(ModelNotFoundError, match="SHA-256"):
        ensure_model(model)
    assert not (model / layout.GPT).exists()
    assert model_status(model, ("core",)).files[5].state == "missing"  # the bad bytes were deleted


def test_known_files_are_fetched_when_the_tree_api_is_missing(hub: FakeHub, tmp_path: Path) -> None:
    hub.tree_api = False
    model = tmp_path / "model"
    _fill(model, hub.files, skip=tuple(f.local for f in layout.files_of(("emotion_text",))))
    ensure_model(model, ("emotion_text",))
    assert model_status(model).all_complete
    assert not (model / EXTRA[1]).exists()


def test_files_in_a_hugging_face_cache_are_reused_offline(clean_env: None, tmp_path: Path) -> None:
    files = _repo_files()
    model = tmp_path / "model"
    target = next(f for f in layout.FILES if f.local.endswith("w2v-bert-2.0/config.json"))
    _fill(model, files, skip=(target.local,))
    snapshot = tmp_path / "hf-hub-cache" / "models--facebook--w2v-bert-2.0" / "snapshots" / "abc123"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_bytes(_local_bytes(files, target))
    (snapshot.parent.parent / "refs").mkdir()
    (snapshot.parent.parent / "refs" / "main").write_text("abc123")
    assert ensure_model(model, offline=True) == model
    assert (model / target.local).read_bytes() == _local_bytes(files, target)


def test_lfs_pointer_counts_as_missing(tmp_path: Path) -> None:
    model = tmp_path / "model"
    _fill(model, _repo_files())
    (model / layout.GPT).write_text("version https://git-lfs.github.com/spec/v1\noid sha256:ab\nsize 3\n")
    status = model_status(model)
    assert [f.local for f in status.missing()] == [layout.GPT]
    assert status.missing()[0].state == "lfs-pointer" and not status.complete["core"]


def test_a_second_downloader_is_refused(hub: FakeHub, tmp_path: Path) -> None:
    model = tmp_path / "model"
    (model / PARTIAL_DIR).mkdir(parents=True)
    with FileLock(str(model / PARTIAL_DIR / "lock")), pytest.raises(ModelNotFoundError, match="another"):
        ensure_model(model)


def test_cli_download_and_status(hub: FakeHub, tmp_path: Path, capsys) -> None:
    model = tmp_path / "model"
    assert cli.main(["status", "--model-dir", str(model)]) == 1
    assert "missing" in capsys.readouterr().out

    assert cli.main(["download", "--model-dir", str(model), "--core-only"]) == 0
    out = capsys.readouterr().out
    assert f"[1/{len(layout.files_of(('core',)))}] config.yaml" in out
    assert "core: complete" in out and "--with-emotion-text-model" in out

    assert cli.main(["status", "--model-dir", str(model)]) == 0
    assert cli.main(["download", "--model-dir", str(tmp_path / "other"), "--offline"]) == 2
    err = capsys.readouterr().err
    assert "error:" in err and "offline" in err and str(tmp_path / "other" / "gpt.pth") in err


def test_download_job_runs_in_background(hub: FakeHub, tmp_path: Path) -> None:
    model = tmp_path / "model"
    job = DownloadJob(model, ("core",)).start()
    assert job.wait(timeout=30) and job.state == "done" and job.error is None
    snap = job.snapshot()
    expected = sum(len(_local_bytes(hub.files, f)) for f in layout.files_of(("core",)))
    assert snap.bytes_done == snap.bytes_total == expected and snap.fraction == 1.0
    assert all(f.state == "done" for f in snap.files)


def test_download_job_cancel_keeps_finished_files(hub: FakeHub, tmp_path: Path) -> None:
    import threading

    gpt = (MAIN, layout.GPT)
    hub.hold[gpt] = threading.Event()
    model = tmp_path / "model"
    job = DownloadJob(model, ("core",)).start()
    for _ in range(500):  # until the job reaches gpt.pth (bounded: 10 s)
        if job.snapshot().current == layout.GPT:
            break
        time.sleep(0.02)
    assert job.snapshot().state == "running" and job.snapshot().current == layout.GPT
    job.cancel()
    hub.hold[gpt].set()
    assert job.wait(timeout=30) and job.state == "cancelled"
    assert (model / "config.yaml").is_file() and not (model / layout.GPT).exists()

    hub.clear()
    ensure_model(model)  # a later run finishes the job
    assert (model / layout.GPT).read_bytes() == hub.files[gpt]


def test_failed_job_reports_the_error(clean_env: None, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_free_port()}")
    job = DownloadJob(tmp_path / "model").start()
    assert job.wait(timeout=30) and job.state == "failed"
    assert isinstance(job.error, ModelNotFoundError) and "gpt.pth" in job.snapshot().error


def test_partial_folder_keeps_present_files(hub: FakeHub, tmp_path: Path) -> None:
    model = tmp_path / "model"
    _fill(model, hub.files, skip=(layout.CAMPPLUS,))
    shutil.rmtree(model / layout.QWEN_DIR)
    ensure_model(model)  # core only: the Qwen folder stays absent
    asked = {r.path.split("/resolve/main/")[-1] for r in hub.seen("hub")}
    assert asked == {"campplus_cn_common.bin"}
    assert model_status(model).complete == {"core": True, "emotion_text": False}


def test_required_file_missing_on_the_hub_is_reported(hub: FakeHub, tmp_path: Path) -> None:
    del hub.files[(MAIN, f"{layout.QWEN_DIR}/chat_template.jinja")]
    model = tmp_path / "model"
    _fill(model, hub.files, skip=tuple(f.local for f in layout.files_of(("emotion_text",))))
    with pytest.raises(ModelNotFoundError, match="absent from the repository listing") as info:
        ensure_model(model, ("emotion_text",))
    assert "chat_template.jinja" in str(info.value)
    assert (model / layout.QWEN_DIR / "model.safetensors").is_file()  # the rest was fetched
