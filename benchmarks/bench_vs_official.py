"""The same greedy take through the official IndexTTS-2 and through this engine, back to back.

    python -m benchmarks.bench_vs_official --model-dir /tmp/full-ckpt --refbench ../shared/refbench \\
        --voice ../shared/refbench/ref_5s_22k.wav --codes 120 --threads 2

``--refbench`` is a folder with ``run_reference.py`` (kept outside this project) and
``--ref-root`` (default ``$INDEXTTS_REF_ROOT`` or ``~/.cache/indextts-ref``) the one whose
``venv`` runs the official code. Without them only our figures are printed. Each side runs
in a fresh process: the official first, then ``benchmarks.bench_process``. Prints each stage's
seconds, the take, the whole process (start to exit, load included) and its peak RSS for
both, with official/ours ratios. The machine should be quiet: compare only figures from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.bench_process import ROOT, TEXT, VOICE

# Our stage names -> the official run's stage labels (refbench/run_reference.py) they cover.
STAGES = {
    "features": (["voice", "emotion"],
                 ["audio load (librosa)", "audio resample (torchaudio)", "w2v feature extractor", "w2v-bert forward",
                  "semantic codec quantize", "ref mel (22.05k)", "campplus fbank", "campplus",
                  "gpt emo conditioning", "gpt spk conditioning"]),
    "gpt decode": (["gpt_generate"], ["gpt generate (AR)"]),
    "gpt latent": (["gpt_latent"], ["gpt forward (latent)"]),
    "s2mel": (["s2mel"], ["length regulator", "s2mel gpt_layer", "s2mel vq2emb", "s2mel cfm (DiT x steps)"]),
    "vocoder": (["vocoder"], ["bigvgan"]),
}


def run_measured(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None) -> tuple[float, float]:
    """Run ``cmd`` to the end; its wall seconds and peak RSS (GiB), from the kernel's own accounting."""
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"{cmd[0]} … failed ({proc.returncode}); last lines of {log}:\n"
                         + "\n".join(log.read_text().splitlines()[-5:]))
    return time.perf_counter() - start, usage.ru_maxrss / 2**20


def official(args: argparse.Namespace, env: dict[str, str], work: Path) -> dict | None:
    if not args.refbench:
        return None
    python = Path(args.ref_root).expanduser() / "venv" / "bin" / "python"
    script = Path(args.refbench) / "run_reference.py"
    if not (python.exists() and script.exists()):
        print(f"no reference environment ({python}, {script}): our figures only", file=sys.stderr)
        return None
    cmd = [str(python), str(script), "--model-dir", args.model_dir, "--text", args.text, "--ref-wav", args.voice,
           "--max-mel-tokens", str(args.codes), "--threads", str(args.threads), "--no-qwen",
           "--out", str(work / "ref.npz")]
    wall, rss = run_measured(cmd, env, work / "ref.log")
    meta = json.loads((work / "ref.json").read_text())
    run = meta["runs"][-1]
    stages = {name: sum(run["stages"].get(k, 0.0) for k in theirs) for name, (_, theirs) in STAGES.items()}
    return {"load": meta["model_load_s"], **stages, "take": run["total_s"], "process": wall, "peak_rss": rss}


def ours(args: argparse.Namespace, env: dict[str, str], work: Path) -> dict:
    cmd = [sys.executable, "-m", "benchmarks.bench_process", "--model-dir", args.model_dir,
           "--codes", str(args.codes), "--voice", args.voice, "--text", args.text, "--threads", str(args.threads),
           "--json", str(work / "ours.json")]
    wall, rss = run_measured(cmd, env, work / "ours.log", cwd=ROOT.parent)
    report = json.loads((work / "ours.json").read_text())
    timings = report["stages"]
    stages = {name: sum(timings.get(k, 0.0) for k in mine) for name, (mine, _) in STAGES.items()}
    return {"load": report["load_s"], **stages, "take": timings["total"], "process": wall, "peak_rss": rss}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model-dir", required=True, help="a checkpoint folder in the released layout")
    ap.add_argument("--refbench", default=None, help="folder holding the official runner run_reference.py")
    ap.add_argument("--ref-root", default=os.environ.get("INDEXTTS_REF_ROOT", "~/.cache/indextts-ref"))
    ap.add_argument("--codes", type=int, default=120)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--voice", default=str(VOICE))
    ap.add_argument("--text", default=TEXT)
    args = ap.parse_args()
    args.model_dir = str(Path(args.model_dir).resolve())
    args.voice = str(Path(args.voice).resolve())
    # The official runner finds its work tree through INDEXTTS_REF_ROOT, as --ref-root names it.
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads),
           "INDEXTTS_REF_ROOT": str(Path(args.ref_root).expanduser())}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        theirs = official(args, env, work)
        mine = ours(args, env, work)
    unit = {"peak_rss": "GiB"}
    print(f"{'':<12}{'official':>10}{'ours':>10}{'ratio':>8}   ({args.codes} greedy codes, {args.threads} threads)")
    for key, value in mine.items():
        ref = theirs[key] if theirs else None
        cells = f"{ref:>10.2f}" if ref is not None else f"{'-':>10}"
        ratio = f"{ref / value:>7.2f}x" if ref is not None and value > 0 else f"{'-':>8}"
        print(f"{key:<12}{cells}{value:>10.2f}{ratio}   {unit.get(key, 's')}")


if __name__ == "__main__":
    main()
