"""Weight pages given back between a take's phases (indextts_core.memory)."""

from __future__ import annotations

import mmap
import sys

import numpy as np
import pytest
import torch

from indextts_core import Duration, IndexTTS2, Sampling, SynthesisOptions
from indextts_core.checkpoint import fold_weight_norm
from indextts_core.memory import release_pages, release_weight_pages, resident_file_pages

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="page release is Linux-only")

VOICE = "tests/fixtures/golden/audio/spk_librivox_0890_22k.wav"
QUICK = SynthesisOptions(sampling=Sampling(do_sample=False, num_beams=1, max_mel_tokens=30),
                         duration=Duration.tokens(12), diffusion_steps=3, seed=3)


PAGE = mmap.PAGESIZE


def mapped(tmp_path, name: str, **tensors: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.save(tensors, tmp_path / name)
    return torch.load(tmp_path / name, mmap=True, weights_only=True)


def test_file_backed_pages_are_dropped_and_read_back_unchanged(tmp_path):
    w = mapped(tmp_path, "w.pth", w=torch.randn(64 * PAGE // 4))["w"]  # 64 pages
    expected = w.clone()
    float(w.sum())  # read every page
    assert resident_file_pages([w]) >= 60 * PAGE
    assert release_pages([w]) >= 60 * PAGE
    assert resident_file_pages([w]) == 0
    assert torch.equal(w, expected)  # read again from the file
    assert resident_file_pages([w]) > 0


def test_a_weight_written_after_mapping_keeps_its_pages(tmp_path):
    w = mapped(tmp_path, "w.pth", w=torch.zeros(16 * PAGE // 4))["w"]
    float(w.sum())
    w[5 * PAGE // 4] = 7.0  # copy-on-write: this page now differs from the file
    assert release_pages([w]) == 0
    assert float(w[5 * PAGE // 4]) == 7.0 and float(w.sum()) == 7.0


def test_weight_norm_pairs_are_given_back_once_folded(tmp_path):
    sd = mapped(tmp_path, "wn.pth", **{"conv.weight_v": torch.randn(64, 16, PAGE // 16),
                                       "conv.weight_g": torch.rand(64, 1, 1), "conv.bias": torch.randn(64)})
    folded = fold_weight_norm(sd)
    assert set(folded) == {"conv.weight", "conv.bias"}
    assert resident_file_pages([sd["conv.weight_v"]]) == 0  # read for the fold, then given back
    expected = torch._weight_norm(sd["conv.weight_v"].clone(), sd["conv.weight_g"].clone(), 0)
    assert torch.equal(folded["conv.weight"], expected)


def test_anonymous_memory_is_never_touched():
    w = torch.randn(256 * 1024)
    expected = w.clone()
    assert release_pages([w]) == 0
    assert torch.equal(w, expected)
    assert resident_file_pages([w]) == 0


def test_a_take_gives_back_the_voice_networks_and_sounds_the_same(tiny_model_dir):
    text = "今天天气很好。"
    keep = IndexTTS2.from_pretrained(tiny_model_dir, device="cpu", download=False, release_idle_weights=False)
    kept = keep.synthesize(text, VOICE, QUICK)
    encoders = [t for m in keep.models.voice_modules() for t in (*m.parameters(), *m.buffers())]
    resident = resident_file_pages(encoders)
    assert resident > 1 << 20  # what the default gives back
    keep.close()

    tts = IndexTTS2.from_pretrained(tiny_model_dir, device="cpu", download=False)
    first = tts.synthesize(text, VOICE, QUICK)
    encoders = [t for m in tts.models.voice_modules() for t in (*m.parameters(), *m.buffers())]
    # The kernel maps a faulting page's neighbours too (fault-around, 64 KiB): a weight next to
    # one the segments read may have a few pages back.
    assert resident_file_pages(encoders) < resident / 50
    assert np.array_equal(first.audio, kept.audio)

    # A new voice gives back the segment networks' pages while it is read; all come back unchanged.
    other = tts.synthesize(text, "tests/fixtures/golden/audio/emo_librivox_0920_22k.wav", QUICK)
    again = tts.synthesize(text, VOICE, QUICK)
    assert np.array_equal(again.audio, kept.audio)
    assert other.audio.size > 0
    assert release_weight_pages(tts.models.segment_modules()) > 0
