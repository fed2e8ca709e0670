"""Per-stage speed of the engine at the released model size, with random weights.

    python -m benchmarks.bench_engine                      # CPU, float32
    python -m benchmarks.bench_engine --device cuda --dtype fp16 --codes 500

The networks are built from the released configuration (``benchmarks/full_size``) and filled
with random values, so no download is needed; the GPT then never chooses to stop, so each
segment is held to exactly ``--codes`` codes (50 codes are about one second of speech).
Prints a table of seconds per stage, codes per second and the real-time factor.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch

from indextts_core import Duration, IndexTTS2, Sampling, SynthesisOptions
from indextts_core.config import load_config
from indextts_core.device import resolve_device, resolve_dtype
from indextts_core.models.bigvgan import BigVGAN, BigVGANConfig
from indextts_core.models.campplus import CAMPPlus
from indextts_core.models.codec import SemanticCodec
from indextts_core.models.gpt import UnifiedVoice
from indextts_core.models.s2mel import S2Mel
from indextts_core.models.w2vbert import W2VBert, W2VBertConfig
from indextts_core.pipeline import Models
from indextts_core.text import TextFrontend
from indextts_core.tiny import SMALL_FILES_DIR

ROOT = Path(__file__).resolve().parent
FULL = ROOT / "full_size"
VOICE = ROOT.parent / "tests" / "fixtures" / "golden" / "audio" / "spk_librivox_0890_22k.wav"
TEXT = "今天的天气非常好，我们一起去公园散步，然后在湖边吃午饭，聊聊最近读过的书和看过的电影。"


def randomize(module: torch.nn.Module, generator: torch.Generator) -> torch.nn.Module:
    """Fill every parameter with fan-in-scaled noise (norm weights around 1) — fast at 1e9 values."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.dim() == 1:
                p.normal_(1.0 if name.endswith("weight") else 0.0, 0.02, generator=generator)
            else:
                p.normal_(0.0, 1.0 / math.sqrt(p[0].numel()), generator=generator)
    return module.eval()


def build_engine(device: torch.device, dtype: torch.dtype) -> IndexTTS2:
    cfg = load_config(FULL / "config.yaml")
    g = torch.Generator().manual_seed(0)
    w2v = randomize(W2VBert(W2VBertConfig.from_json(FULL / "hf_cache/w2v-bert-2.0/config.json")), g)
    w2v.set_stats(torch.zeros(1024), torch.ones(1024))
    models = Models(
        w2vbert=w2v.to(device),
        codec=randomize(SemanticCodec(cfg.semantic_codec), g).to(device),
        campplus=randomize(CAMPPlus(), g).to(device),
        gpt=randomize(UnifiedVoice(cfg.gpt), g).to(device=device, dtype=dtype),
        s2mel=randomize(S2Mel(cfg.s2mel), g).to(device),
        vocoder=randomize(BigVGAN(BigVGANConfig.from_json(FULL / "hf_cache/bigvgan/config.json")), g).to(device),
        spk_matrix=torch.randn(sum(cfg.emo_num), 192, generator=g).to(device),
        emo_matrix=torch.randn(sum(cfg.emo_num), cfg.gpt.model_dim, generator=g).to(device))
    text = TextFrontend(SMALL_FILES_DIR / "bpe.model")
    return IndexTTS2(cfg, models, text, device=device, dtype=dtype)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", default="fp32", help="GPT precision: fp32, fp16 or bf16")
    ap.add_argument("--codes", type=int, default=100, help="codes per segment (about 50 a second)")
    ap.add_argument("--beams", type=int, default=3, help="beam sampling as the reference (1: plain sampling)")
    ap.add_argument("--diffusion-steps", type=int, default=25)
    ap.add_argument("--repeat", type=int, default=2, help="timed runs after one warm-up")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    dtype = resolve_dtype(args.dtype, device)

    t0 = time.perf_counter()
    tts = build_engine(device, dtype)
    print(f"built the full-size engine with random weights on {device} ({dtype}) in {time.perf_counter() - t0:.1f} s")
    sampling = Sampling(num_beams=args.beams, max_mel_tokens=args.codes)
    options = SynthesisOptions(sampling=sampling, duration=Duration.tokens(args.codes),
                               diffusion_steps=args.diffusion_steps, segment_tokens=200)

    # Warm-up also fills the voice cache; "voice" is then timed separately, uncached.
    tts.synthesize(TEXT, VOICE, options.replace(seed=0))
    t0 = time.perf_counter()
    tts._voice(VOICE, fresh=True)
    voice_s = time.perf_counter() - t0
    runs = [tts.synthesize(TEXT, VOICE, options.replace(seed=i + 1)) for i in range(args.repeat)]

    stages = ["text", "emotion", "gpt_generate", "gpt_latent", "s2mel", "vocoder", "total"]
    print(f"\n{'stage':<14}{'seconds':>10}")
    print(f"{'voice (once)':<14}{voice_s:>10.3f}")
    for s in stages:
        print(f"{s:<14}{statistics.median(r.timings.get(s, 0.0) for r in runs):>10.3f}")
    audio_s = runs[0].seconds
    gen = statistics.median(r.timings["gpt_generate"] for r in runs)
    total = statistics.median(r.timings["total"] for r in runs)
    print(f"\naudio {audio_s:.2f} s, {args.codes} codes x {args.beams} beams: {args.codes / gen:.1f} codes/s, "
          f"RTF {total / audio_s:.3f} (voice features cached)")


if __name__ == "__main__":
    main()
