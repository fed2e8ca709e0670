"""The optional faster modes against the default (exact) one, with a quality proxy for each.

    python -m benchmarks.bench_fast_modes --model-dir DIR --codes 120 --threads 2

Every mode makes the same greedy take (same voice, text, seed and length: ``Duration.tokens``).
For each mode it prints the GPT decode, s2mel and whole-take seconds (warm: models loaded, voice
features cached) and, against the float32 default, the share of codes that agree, the first
code that differs, and the log-mel distance of the output (mean |Δ| of the natural-log mel of
the audio, in nats). The default runs twice: its second take, against the first, must agree
fully (the engine is deterministic). Modes:

* ``fp32``: the default, the official outputs;
* ``gpt bf16`` (``dtype="bf16"``): the GPT and its conditioners in bfloat16: half the weight
  bytes the decode reads per code;
* ``steps N`` (``diffusion_steps=N``): fewer flow-matching steps in s2mel;
* both together.

With random full-size weights the codes are noise, so a code that differs early changes every
later one: read the agreement as a lower bound.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from benchmarks.bench_process import TEXT, VOICE
from indextts_core import Duration, IndexTTS2, Sampling, SynthesisOptions
from indextts_core.audio import mel_spectrogram
from indextts_core.trace import Recorder, SegmentStages


class CodeRecorder(Recorder):
    def __init__(self) -> None:
        self.codes: list[int] = []

    def segment(self, stages: SegmentStages) -> None:
        self.codes.extend(stages.codes[0].tolist())


def log_mel(audio: np.ndarray) -> torch.Tensor:
    return mel_spectrogram(torch.from_numpy(audio)[None])[0]


def take(tts: IndexTTS2, args: argparse.Namespace, steps: int) -> tuple[dict, list[int], np.ndarray]:
    options = SynthesisOptions(sampling=Sampling(do_sample=False, num_beams=1, max_mel_tokens=args.codes),
                               duration=Duration.tokens(args.codes), seed=0, diffusion_steps=steps)
    recorder = CodeRecorder()
    result = tts.synthesize(args.text, args.voice, options, recorder=recorder)
    return result.timings, recorder.codes, result.audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--voice", default=str(VOICE))
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--codes", type=int, default=120)
    ap.add_argument("--steps", type=int, default=10, help="diffusion steps of the fewer-steps modes")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rows = []
    reference = None
    for dtype in ("fp32", "bf16"):
        tts = IndexTTS2.from_pretrained(args.model_dir, device="cpu", dtype=dtype, download=False)
        take(tts, args, 1)  # warm-up: voice features cached, pages read
        for steps in ((25, 25) if dtype == "fp32" else (25,)) + (args.steps,):
            timings, codes, audio = take(tts, args, steps)
            if reference is None:
                reference = codes, log_mel(audio)
            ref_codes, ref_mel = reference
            same = [a == b for a, b in zip(codes, ref_codes, strict=True)]
            first_diff = same.index(False) if False in same else None
            mel = log_mel(audio)
            frames = min(mel.shape[-1], ref_mel.shape[-1])
            distance = float((mel[..., :frames] - ref_mel[..., :frames]).abs().mean())
            name = ("fp32" if dtype == "fp32" else "gpt bf16") + ("" if steps == 25 else f" + steps {steps}")
            if name == "fp32" and len(rows) == 1:
                name = "fp32 (again)"
            rows.append((name, timings["gpt_generate"], timings["s2mel"], timings["total"],
                         sum(same) / len(same), first_diff, distance))
        tts.close()
        del tts

    base = rows[0]
    print(f"{'mode':<22}{'decode':>9}{'s2mel':>9}{'take':>9}{'speed-up':>10}{'codes same':>12}"
          f"{'1st diff':>10}{'log-mel Δ':>11}")
    for name, dec, s2m, total, agree, first_diff, dist in rows:
        print(f"{name:<22}{dec:>8.2f}s{s2m:>8.2f}s{total:>8.2f}s{base[3] / total:>9.2f}x{agree:>11.0%}"
              f"{'-' if first_diff is None else first_diff:>10}{dist:>11.3f}")
    print(f"({args.codes} greedy codes, {torch.get_num_threads()} threads; warm takes)")


if __name__ == "__main__":
    main()
