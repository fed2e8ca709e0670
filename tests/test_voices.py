"""Saved voices: stored once per content, renamed, deleted, exported and imported."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from indextts_core.errors import AudioError
from indextts_core.options import SAMPLE_RATE, Emotion
from indextts_core.voices import SavedVoices, VoiceLibraryError


@pytest.fixture
def clip(tmp_path):
    path = tmp_path / "me.wav"
    sf.write(path, (0.1 * np.sin(np.arange(SAMPLE_RATE) / 9)).astype(np.float32), SAMPLE_RATE)
    return path


def test_save_list_and_share_one_file_per_content(tmp_path, clip):
    lib = SavedVoices(tmp_path / "lib")
    a = lib.save("Anna", clip, Emotion.from_label("happy", 0.5))
    b = lib.save("Ben", clip)
    assert a.clip == b.clip and a.clip.read_bytes() == clip.read_bytes()
    assert [v.name for v in lib.list()] == ["Anna", "Ben"]
    assert lib.get("Anna").emotion == Emotion.from_label("happy", 0.5) and lib.get("Ben").emotion is None
    assert lib.paths() == {"Anna": str(a.clip), "Ben": str(b.clip)}
    assert len(list((tmp_path / "lib").glob("*.wav"))) == 1


def test_rename_set_emotion_and_delete_keep_shared_clips(tmp_path, clip):
    lib = SavedVoices(tmp_path / "lib")
    lib.save("Anna", clip)
    lib.save("Ben", clip)
    assert lib.rename("Anna", "Cleo").name == "Cleo"
    assert lib.set_emotion("Cleo", Emotion.from_label("sad")).emotion == Emotion.from_label("sad")
    lib.delete("Ben")
    assert lib.get("Cleo").clip.exists()
    lib.delete("Cleo")
    assert lib.list() == [] and not list((tmp_path / "lib").glob("*.wav")) and clip.exists()


def test_export_then_import_into_another_library(tmp_path, clip):
    src = SavedVoices(tmp_path / "a")
    src.save("Anna", clip, Emotion.from_vector([0.2] * 8, weight=0.7))
    data = src.export("Anna")
    dst = SavedVoices(tmp_path / "b")
    v = dst.import_(data)
    assert v.name == "Anna" and v.digest == src.get("Anna").digest and v.emotion == src.get("Anna").emotion
    assert dst.import_(data, name="Anna 2").clip == v.clip
    assert not list((tmp_path / "b").glob("import-*"))


def test_bad_names_files_and_duplicates_are_refused_clearly(tmp_path, clip):
    lib = SavedVoices(tmp_path)
    lib.save("Anna", clip)
    for bad in ("", "   ", "Anna: x", "a/b", "x" * 41):
        with pytest.raises(VoiceLibraryError, match="a voice name is 1 to 40 characters"):
            lib.save(bad, clip)
    with pytest.raises(VoiceLibraryError, match="'Anna' is already saved"):
        lib.save("Anna", clip)
    with pytest.raises(VoiceLibraryError, match=r"no saved voice named 'Bob' \(saved: Anna\)"):
        lib.get("Bob")
    with pytest.raises(VoiceLibraryError, match="not a voice file"):
        lib.import_(b"not a zip")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"nope")
    with pytest.raises(AudioError):
        lib.save("Junk", junk)
    (tmp_path / "voices.json").write_text("{broken", encoding="utf-8")
    with pytest.raises(VoiceLibraryError, match="unreadable"):
        lib.list()
