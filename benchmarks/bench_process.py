"""Whole-process figures on a real checkpoint folder: load time, one greedy take per stage, peak RSS.

    python -m benchmarks.bench_process --model-dir /path/to/IndexTTS-2 --codes 120
    python -m benchmarks.bench_process --model-dir DIR --codes 0        # load time and memory only
    python -m benchmarks.bench_process --model-dir DIR --warm 1         # plus one warm take (voice cached)

Run it in a fresh process each time (peak RSS is the process's high-water mark). Any
checkpoint in the released layout works, including the full-size random-weight folders
that ``refbench/make_checkpoints.py --preset full`` builds; ``bench_vs_official`` runs this
script beside the official code on the same case.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

from indextts_core import Duration, IndexTTS2, Sampling, SynthesisOptions

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
    ap.add_argument("--warm", type=int, default=0, help="further takes after the first (models loaded, voice cached)")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    tts = IndexTTS2.from_pretrained(args.model_dir, device="cpu", download=False)
    report: dict = {"load_s": time.perf_counter() - start, "load_peak_rss_gib": peak_rss_gib(), "warm": []}
    print(f"{'load':<14}{report['load_s']:>10.2f} s   peak RSS after load {report['load_peak_rss_gib']:.2f} GiB")
    if args.codes:
        sampling = Sampling(do_sample=False, num_beams=1, max_mel_tokens=args.codes)
        options = SynthesisOptions(sampling=sampling, duration=Duration.tokens(args.codes), seed=0)
        for take in range(1 + args.warm):
            timings = tts.synthesize(args.text, args.voice, options).timings
            if take == 0:
                report["stages"] = timings
                report["process_s"] = time.perf_counter() - start
                report["peak_rss_gib"] = peak_rss_gib()
            else:
                report["warm"].append(timings)
            print(f"-- take {take} ({'first' if take == 0 else 'warm'})")
            for stage, seconds in timings.items():
                print(f"{stage:<14}{seconds:>10.2f} s")
    report.setdefault("process_s", time.perf_counter() - start)
    report.setdefault("peak_rss_gib", peak_rss_gib())
    print(f"{'process':<14}{report['process_s']:>10.2f} s   peak RSS {report['peak_rss_gib']:.2f} GiB")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
