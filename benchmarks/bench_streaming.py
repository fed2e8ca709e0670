"""Time to first audio when streaming a long text, with and without a short first segment.

    python -m benchmarks.bench_streaming --model-dir DIR --codes 240 --quick 90 --threads 2

Loads the engine once, reads the voice once (a warm-up take, not timed), then streams the same
text twice with the same seed and length: packed as usual (``quick_streaming_tokens=0``) and with
``quick_streaming_tokens=N``, the reference's streaming option. For each it prints the segments'
text tokens and codes, the seconds until the first segment's audio was handed out, when the
second segment started (the first audio must come before it), and the whole take. ``--codes``
fixes the take's length (``Duration.tokens``), shared among the segments by their text: random
weights never stop by themselves.
"""

from __future__ import annotations

import argparse
import time

import torch

from benchmarks.bench_process import VOICE
from indextts_core import Duration, IndexTTS2, Sampling, SynthesisOptions, SynthesisProgress

TEXT = ("请在听到提示音之后留下您的姓名和电话号码。我们会在一个工作日之内给您回电。"
        "如果您的问题比较紧急，也可以直接拨打我们的服务热线。感谢您的耐心等待，祝您生活愉快。"
        "我们的营业时间是每天早上九点到晚上六点。节假日期间，服务时间可能会有所调整。")


def stream_once(tts: IndexTTS2, text: str, voice: str, options: SynthesisOptions) -> dict:
    second_started: list[float] = []
    start = time.perf_counter()

    def on_progress(p: SynthesisProgress) -> None:
        if p.segment == 1 and not second_started:
            second_started.append(time.perf_counter() - start)

    first = None
    stream = tts.stream(text, voice, options, progress=on_progress)
    for _ in stream:
        if first is None:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    result = stream.result
    return {"first_audio_s": first, "second_segment_started_s": second_started[0] if second_started else None,
            "total_s": total, "tokens": [s.num_tokens for s in result.segments],
            "codes": [s.num_codes for s in result.segments],
            "first_audio_len_s": result.segments[0].num_samples / result.sample_rate}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True)
    ap.add_argument("--voice", default=str(VOICE))
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--codes", type=int, default=240, help="codes of the whole take")
    # 90 for the default text: its first segment then has 58 text tokens instead of 103.
    ap.add_argument("--quick", type=int, default=90, help="quick_streaming_tokens of the second run")
    ap.add_argument("--threads", type=int, default=None)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    tts = IndexTTS2.from_pretrained(args.model_dir, device="cpu", download=False)
    base = SynthesisOptions(sampling=Sampling(do_sample=False, num_beams=1, max_mel_tokens=args.codes),
                            duration=Duration.tokens(args.codes), seed=0)
    tts.synthesize("你好。", args.voice, base.replace(duration=Duration.tokens(2)))  # voice features cached
    print(f"{'':<22}{'first audio':>12}{'2nd starts':>12}{'take':>9}   segments (text tokens / codes)")
    for quick in (0, args.quick):
        r = stream_once(tts, args.text, args.voice, base.replace(quick_streaming_tokens=quick))
        second = f"{r['second_segment_started_s']:>11.2f}s" if r["second_segment_started_s"] is not None \
            else f"{'-':>12}"
        print(f"{f'quick_streaming={quick}':<22}{r['first_audio_s']:>11.2f}s{second}{r['total_s']:>8.2f}s   "
              f"{r['tokens']} / {r['codes']} (first audio {r['first_audio_len_s']:.2f} s long)")


if __name__ == "__main__":
    main()
