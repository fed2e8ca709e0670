"""Whole-process figures on a real checkpoint folder: load time, one greedy take per stage, peak RSS.

    python -m benchmarks.bench_process --model-dir /path/to/IndexTTS-2 --codes 120
    python -m benchmarks.bench_process --model-dir DIR --codes 0        # load time and memory only

Run it in a fresh process each time (peak RSS is the process's high-water mark). Any
checkpoint in the released layout works, including the full-size random-weight folders
that ``refbench/make_checkpoints.py --preset full`` builds; the official code's figures for
the same case come from refbench's ``speed_vs_official.sh`` (kept outside this project).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

import torch

from indextts_core import Duration, IndexTTS2, Sampling

ROOT = Path(__file__).resolve().parent
VOICE = ROOT.parent / "tests" / "fixtures" / "golden" / "audio" / "spk_librivox_0890_22k.wav"
TEXT = "今天的天气非常好，我们一起去公园散步。"


def peak_rss_gib() -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    scale = 1 if sys.platform == "darwin" else 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale / 2**30


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--codes", type=int, default=120, help="greedy codes of the take (0: load only)")
    ap.add_argument("--voice", default=str(VOICE))
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    tts = IndexTTS2.from_pretrained(args.model_dir, device="cpu", download=False)
    load_s = time.perf_counter() - start
    print(f"{'load':<14}{load_s:>10.2f} s   peak RSS after load {peak_rss_gib():.2f} GiB")
    if args.codes:
        sampling = Sampling(do_sample=False, num_beams=1, max_mel_tokens=args.codes)
        result = tts.synthesize(args.text, args.voice, seed=0, sampling=sampling,
                                duration=Duration.tokens(args.codes))
        for stage, seconds in result.timings.items():
            print(f"{stage:<14}{seconds:>10.2f} s")
    print(f"{'process':<14}{time.perf_counter() - start:>10.2f} s   peak RSS {peak_rss_gib():.2f} GiB")


if __name__ == "__main__":
    main()
