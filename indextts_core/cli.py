"""Command line: ``python -m indextts_core <command> ...``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import IndexTTSError, InvalidOptionError


def _cmd_make_test_model(args: argparse.Namespace) -> int:
    from . import tiny

    dest = tiny.build_checkpoint(Path(args.dir))
    print(f"wrote a tiny random-weight test checkpoint to {dest} (it produces noise, not speech)")
    print(f"against the golden checkpoint: {tiny.build_report(dest).summary()}")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from .model_folder import model_status

    status = model_status(args.model_dir)
    print(status.table())
    return 0 if status.complete["core"] else 1


def _cmd_download(args: argparse.Namespace) -> int:
    from .download import DownloadProgress, ensure_model
    from .model_folder import format_bytes, model_status

    groups = ("core", "emotion_text") if args.with_emotion_text_model else ("core",)

    def show(p: DownloadProgress) -> None:
        # huggingface_hub draws the byte-level bar on stderr; we name each file as it starts.
        if p.status == "checking":
            print(f"[{p.index}/{p.count}] {p.local}  ({p.repo_id} : {p.filename})", flush=True)
        elif p.status == "copying":
            print(f"[{p.index}/{p.count}] {p.local}  (from the Hugging Face cache)", flush=True)
        elif p.status == "done" and p.total:
            print(f"      done, {format_bytes(p.total)}", flush=True)

    try:
        model_dir = ensure_model(args.model_dir, groups, progress=show,
                                 offline=True if args.offline else None)
    except KeyboardInterrupt:
        print("\ninterrupted: run the same command again to continue the download", file=sys.stderr)
        return 130
    status = model_status(model_dir)
    print(status.table())
    if not args.with_emotion_text_model and not status.complete["emotion_text"]:
        print("The emotion-from-text model (Qwen, ~1.2 GB) was not downloaded; add "
              "--with-emotion-text-model to fetch it.")
    return 0


def _cmd_text(args: argparse.Namespace) -> int:
    from .text import PronunciationDictionary, TextFrontend

    dictionary = PronunciationDictionary.load(args.dictionary) if args.dictionary else None
    from .model_folder import default_model_dir

    frontend = TextFrontend.from_model_dir(args.model_dir or default_model_dir(), dictionary=dictionary)
    text = sys.stdin.read() if args.text == "-" else args.text
    preview = frontend.preview(text, args.segment_tokens, args.quick_streaming_tokens)
    print(json.dumps(preview.to_dict(), ensure_ascii=False))
    return 0


def _emotion_from_args(args: argparse.Namespace):
    from .options import Emotion

    chosen = [name for name, value in (("--emotion-audio", args.emotion_audio),
                                       ("--emotion-vector", args.emotion_vector),
                                       ("--emotion-text", args.emotion_text)) if value is not None]
    if len(chosen) > 1:
        raise InvalidOptionError(f"choose one emotion source, not {' and '.join(chosen)}")
    if args.emotion_weight is not None and not chosen:
        raise InvalidOptionError("--emotion-weight needs --emotion-audio, --emotion-vector or --emotion-text")
    if args.emotion_text_max_tokens is not None and args.emotion_text is None:
        raise InvalidOptionError("--emotion-text-max-tokens needs --emotion-text")
    weight = 1.0 if args.emotion_weight is None else args.emotion_weight
    if args.emotion_audio is not None:
        return Emotion.from_audio(args.emotion_audio, weight)
    if args.emotion_vector is not None:
        try:
            values = [float(v) for v in args.emotion_vector.split(",")]
        except ValueError:
            raise InvalidOptionError("--emotion-vector takes 8 numbers separated by commas") from None
        return Emotion.from_vector(values, weight)
    if args.emotion_text is not None:
        return Emotion.from_text(args.emotion_text or None, weight, max_tokens=args.emotion_text_max_tokens)
    return None


def _duration_from_args(args: argparse.Namespace):
    from .options import Duration

    chosen = [(name, value) for name, value in (("--speed", args.speed), ("--duration-seconds", args.duration_seconds),
                                                ("--tokens", args.tokens)) if value is not None]
    if len(chosen) > 1:
        raise InvalidOptionError(f"choose one length control, not {' and '.join(n for n, _ in chosen)}")
    if not chosen:
        return None
    name, value = chosen[0]
    return {"--speed": Duration.speed, "--duration-seconds": Duration.seconds, "--tokens": Duration.tokens}[name](value)


def _sampling_from_args(args: argparse.Namespace):
    from .options import Sampling

    base = Sampling()
    overrides = {k: v for k, v in (("temperature", args.temperature), ("top_p", args.top_p), ("top_k", args.top_k),
                                   ("num_beams", args.beams)) if v is not None}
    if args.greedy and overrides:
        flags = ", ".join("--" + k.replace("_", "-").replace("num-beams", "beams") for k in overrides)
        raise InvalidOptionError(f"--greedy decodes without sampling and with one beam; drop {flags}")
    common = {"repetition_penalty": base.repetition_penalty if args.repetition_penalty is None
              else args.repetition_penalty,
              "max_mel_tokens": base.max_mel_tokens if args.max_mel_tokens is None else args.max_mel_tokens}
    if args.greedy:
        return Sampling.greedy(**common)
    return Sampling(**{**overrides, **common})


def _options_from_args(args: argparse.Namespace):
    """The flags as one :class:`SynthesisOptions`; flags left out keep its defaults."""
    from .options import SynthesisOptions

    given = {"emotion": _emotion_from_args(args), "duration": _duration_from_args(args),
             "sampling": _sampling_from_args(args), "seed": args.seed, "segment_tokens": args.segment_tokens,
             "quick_streaming_tokens": args.quick_streaming_tokens,
             "gap_ms": args.gap_ms, "diffusion_steps": args.diffusion_steps, "cfg_rate": args.guidance}
    return SynthesisOptions(**{k: v for k, v in given.items() if v is not None})


def _cmd_synth(args: argparse.Namespace) -> int:
    from .pipeline import IndexTTS2
    from .trace import GoldenRecorder

    if args.text is not None and args.text_file is not None:
        raise InvalidOptionError("give the text with --text or --text-file, not both")
    if args.text_file is not None:
        text = sys.stdin.read() if args.text_file == "-" else _read_text_file(Path(args.text_file))
    elif args.text is not None:
        text = args.text
    else:
        raise InvalidOptionError("give the text to speak with --text or --text-file")
    options = _options_from_args(args)
    # Checked before the models load and the take runs, so a typo costs nothing.
    out_dir = Path(args.out).expanduser().parent
    if not out_dir.is_dir():
        raise InvalidOptionError(f"the folder of --out does not exist: {out_dir}; create it first")
    tts = IndexTTS2.from_pretrained(args.model_dir, device=args.device, dtype=args.dtype,
                                    download=not args.offline)
    if tts.is_test_model:
        print("note: this is the tiny random-weight test model; it produces noise, not speech", file=sys.stderr)
    recorder = GoldenRecorder() if args.trace is not None else None
    result = tts.synthesize(text, args.voice, options, recorder=recorder)
    out = result.save_wav(args.out)
    if recorder is not None:
        import numpy as np

        np.savez_compressed(args.trace, **recorder.tensors)
    asked = f" (requested {result.requested_seconds:.3f} s)" if result.requested_seconds is not None else ""
    print(f"wrote {out}: {result.seconds:.3f} s{asked}, {len(result.segments)} segment(s), seed {result.seed}, "
          f"{result.timings['total']:.2f} s to generate (RTF {result.rtf:.3f})")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    for seg in result.segments if options.duration.mode == "free" else ():
        if not seg.stopped_naturally:
            print(f"note: segment {seg.index + 1} ended at the code limit ({seg.num_codes} codes), not by itself",
                  file=sys.stderr)
    return 0


def _read_text_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidOptionError(f"{path} is not UTF-8 text; save it as UTF-8 and try again") from None
    except OSError as e:
        raise InvalidOptionError(f"cannot read the text file {path}: {e.strerror or e}") from None


def _cmd_serve(args: argparse.Namespace) -> int:
    from .serve import run_from_args

    return run_from_args(args)


def _add_emotion_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("emotion (one source; default: the emotion of the voice clip)")
    g.add_argument("--emotion-audio", metavar="FILE", help="take the emotion from another clip")
    g.add_argument("--emotion-weight", metavar="A", type=float,
                   help="0..1: blend toward the emotion clip, or scale the vector/text emotion (default 1)")
    g.add_argument("--emotion-vector", metavar="V1,...,V8",
                   help="intensities of happy,angry,sad,afraid,disgusted,melancholic,surprised,calm (0..1.2)")
    g.add_argument("--emotion-text", metavar="TEXT", nargs="?", const="",
                   help="describe the emotion in words (without TEXT: read it from the line itself)")
    g.add_argument("--emotion-text-max-tokens", metavar="N", type=int, help="cap the emotion model's answer")


def _add_length_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("length (one; default: free)")
    g.add_argument("--speed", metavar="R", type=float, help="0.5..2.0; 2 is twice as fast")
    g.add_argument("--duration-seconds", metavar="S", type=float, help="exact length of the whole output")
    g.add_argument("--tokens", metavar="N", type=int, help="number of semantic codes (about 50 per second)")


def _add_decoding_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("decoding (defaults: the reference's 3-beam sampling)")
    g.add_argument("--greedy", action="store_true", help="no sampling, one beam (repetition penalty kept)")
    g.add_argument("--temperature", type=float)
    g.add_argument("--top-p", type=float)
    g.add_argument("--top-k", type=int)
    g.add_argument("--beams", type=int)
    g.add_argument("--repetition-penalty", type=float)
    g.add_argument("--max-mel-tokens", metavar="N", type=int, help="most codes per segment")
    g.add_argument("--seed", metavar="S", type=int, help="makes the take reproducible")
    g = p.add_argument_group("segments and sampler")
    g.add_argument("--segment-tokens", metavar="N", type=int, help="most text tokens per segment (120)")
    g.add_argument("--quick-streaming-tokens", metavar="N", type=int,
                   help="keep the first segments short until N text tokens are read: earlier first audio (0)")
    g.add_argument("--gap-ms", metavar="MS", type=float, help="silence between segments (200)")
    g.add_argument("--diffusion-steps", type=int, help="flow-matching steps (25)")
    g.add_argument("--guidance", type=float, help="classifier-free guidance rate (0.7)")


def _add_engine_args(p: argparse.ArgumentParser, model_dir_help: str) -> None:
    p.add_argument("--model-dir", type=Path, default=None, help=model_dir_help)
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", default="auto", help="GPT precision: auto, fp32, fp16 or bf16")
    p.add_argument("--offline", action="store_true", help="never download; fail if weights are missing")


def _export_options(args: argparse.Namespace):
    from .export import ExportOptions

    return ExportOptions(args.format, args.sample_rate, args.loudness)


def _saved_voices(args: argparse.Namespace) -> tuple[dict[str, str], dict]:
    """Saved voice name → clip path, and name → default emotion, from --voices-dir."""
    if args.voices_dir is None:
        return {}, {}
    from .voices import SavedVoices

    saved = SavedVoices(args.voices_dir).list()
    return {v.name: str(v.clip) for v in saved}, {v.name: v.emotion for v in saved if v.emotion is not None}


def _run_job(args: argparse.Namespace, store, job_id: int) -> bool:
    """Run what is left of a job, printing progress; False when some items failed."""
    from .jobs import FAILED, LocalWorker
    from .pipeline import IndexTTS2

    tts = IndexTTS2.from_pretrained(args.model_dir, device=args.device, dtype=args.dtype, download=not args.offline)
    if tts.is_test_model:
        print("note: this is the tiny random-weight test model; it produces noise, not speech", file=sys.stderr)

    def show(p, item) -> None:
        eta = "" if p.seconds_left is None else f", about {p.seconds_left:.0f} s left"
        what = item.state if item.error is None else f"failed: {item.error}"
        print(f"[{p.finished + p.counts[FAILED]}/{p.total}] {item.name}: {what}{eta}", file=sys.stderr)

    try:
        progress = LocalWorker(tts).run(store, job_id, on_progress=show)
    except KeyboardInterrupt:
        print(f"stopped; finished items are kept. Continue with --resume {job_id}", file=sys.stderr)
        raise
    if progress.counts[FAILED]:
        print(f"{progress.counts[FAILED]} item(s) failed; fix them and rerun with --resume {job_id} "
              "(failed items are retried)", file=sys.stderr)
    return progress.counts[FAILED] == 0


def _read_input(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise InvalidOptionError(f"cannot read {path}: {e.strerror or e}") from None


def _resume(store, args: argparse.Namespace, kind: str) -> int:
    job = store.job(args.resume)
    if job["kind"] != kind:
        raise InvalidOptionError(f"job {args.resume} is a {job['kind']} job; resume it with that command")
    store.retry_failed(args.resume)
    store.resume(args.resume)
    return args.resume


def _cmd_dub(args: argparse.Namespace) -> int:
    from . import subtitles
    from .jobs import JobStore

    export_options = _export_options(args)
    store = JobStore(args.out_dir)
    path = Path(args.subtitles)
    if args.resume is not None:
        job_id = _resume(store, args, "dub")
    else:
        cues = subtitles.parse(_read_input(path), path.name)
        voices, emotions = _saved_voices(args)
        plans = subtitles.plan(cues, voices, args.voice, _options_from_args(args), args.fit,
                               default_emotions=emotions)
        for p in plans:
            if p.uncomfortable:
                print(f"note: cue {p.cue.index} needs {p.speed_ratio:.2f}x the natural pace "
                      f"({p.cue.seconds:.2f} s for {p.cue.text!r}); consider editing the line", file=sys.stderr)
        job_id = subtitles.create_job(store, plans, path.stem, args.fit)
        print(f"job {job_id}: {len(plans)} cue(s) in {store.path}", file=sys.stderr)
    ok = _run_job(args, store, job_id)
    files = subtitles.write_results(store, job_id, args.out_dir, path.stem, export_options)
    for p in files.result.placements:
        if p.cut:
            print(f"note: cue {p.cue.index} ran {p.cut / subtitles.SAMPLE_RATE:.2f} s into the next cue and was cut",
                  file=sys.stderr)
    missing = f", cues {files.result.missing} missing" if files.result.missing else ""
    print(f"wrote {files.track}{missing}, {files.cues_zip.name} and {files.subtitles.name}")
    return 0 if ok else 1


def _cmd_batch(args: argparse.Namespace) -> int:
    from . import batch
    from .jobs import JobStore

    export_options = _export_options(args)
    store = JobStore(args.out_dir)
    path = Path(args.lines)
    voices, emotions = _saved_voices(args)
    if args.resume is not None:
        job_id = _resume(store, args, "batch")
    else:
        rows = batch.read_rows(_read_input(path), path.name)
        reqs = batch.requests(rows, voices, args.voice, path.name, _options_from_args(args), emotions)
        job_id = store.create("batch", path.stem, reqs)
        print(f"job {job_id}: {len(reqs)} line(s) in {store.path}", file=sys.stderr)
    ok = _run_job(args, store, job_id)
    out = Path(args.out_dir) / f"{path.stem}-batch.zip"
    out.write_bytes(batch.zip_job(store, job_id, voices, export_options))
    print(f"wrote {out}")
    return 0 if ok else 1


def _add_job_args(p: argparse.ArgumentParser) -> None:
    from .export import FORMATS, SAMPLE_RATES

    p.add_argument("--voice", help="speaker clip for items that name no saved voice")
    p.add_argument("--voices-dir", type=Path, help="saved voice library (names used by 'Name:' and the voice column)")
    p.add_argument("--out-dir", type=Path, required=True, help="where the job database and results go")
    p.add_argument("--resume", metavar="JOB", type=int, help="continue job JOB in --out-dir (failed items retried)")
    g = p.add_argument_group("export")
    g.add_argument("--format", choices=list(FORMATS), default="wav16")
    g.add_argument("--sample-rate", type=int, choices=SAMPLE_RATES, default=22050)
    g.add_argument("--loudness", metavar="LUFS", type=float, help="normalise to this loudness (true peak <= -1 dBTP)")


def build_parser() -> argparse.ArgumentParser:
    # No abbreviations: scripts depend on the exact option names, and "--emotion" must not guess.
    parser = argparse.ArgumentParser(prog="python -m indextts_core",
                                     description="IndexTTS-2 inference engine of IndexTTS Studio")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    def command(name: str, **kwargs) -> argparse.ArgumentParser:
        return sub.add_parser(name, allow_abbrev=False, **kwargs)

    p = command("make-test-model", help="write a tiny random-weight checkpoint folder")
    p.add_argument("dir", help="folder to create")
    p.set_defaults(func=_cmd_make_test_model)

    model_dir_help = ("model folder (default: $INDEXTTS_MODEL_DIR, else "
                      "<user cache>/indextts-studio/IndexTTS-2)")
    p = command("download", help="download the IndexTTS-2 weights (resumes an interrupted download)",
                       description="Download the missing IndexTTS-2 files from the Hugging Face Hub, or "
                                   "from the mirror set in HF_ENDPOINT (e.g. https://hf-mirror.com).")
    p.add_argument("--model-dir", type=Path, default=None, help=model_dir_help)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--with-emotion-text-model", action="store_true",
                       help="also fetch the emotion-from-text model (Qwen, ~1.2 GB)")
    which.add_argument("--core-only", dest="with_emotion_text_model", action="store_false",
                       help="only the files every synthesis needs (the default)")
    p.add_argument("--offline", action="store_true",
                   help="no network: only check the folder and local Hugging Face caches")
    p.set_defaults(func=_cmd_download)

    p = command("status", help="show which model files are present, partial or missing "
                                      "(exit status 1 when core files are missing)")
    p.add_argument("--model-dir", type=Path, default=None, help=model_dir_help)
    p.set_defaults(func=_cmd_status)

    p = command("synth", help="speak a text in the voice of a clip and write a WAV file")
    p.add_argument("--voice", required=True, help="speaker clip (wav, flac, ogg, mp3; the first 15 s are used)")
    p.add_argument("--text", help="the text to speak")
    p.add_argument("--text-file", help="read the text from a UTF-8 file ('-' for stdin)")
    p.add_argument("--out", required=True, type=Path, help="WAV file to write (22.05 kHz, 16-bit)")
    _add_engine_args(p, model_dir_help)
    _add_emotion_args(p)
    _add_length_args(p)
    _add_decoding_args(p)
    p.add_argument("--trace", metavar="FILE.npz", help="write the stage tensors (golden A_* names)")
    p.set_defaults(func=_cmd_synth)

    p = command("dub", help="speak a subtitle file (.srt/.vtt), every cue timed to the sample",
                description="Each cue becomes a take as long as the cue. 'Name: text' picks a saved voice.")
    p.add_argument("subtitles", help=".srt or .vtt file (UTF-8)")
    p.add_argument("--fit", choices=["exact", "natural"], default="exact",
                   help="exact: every take fills its cue; natural: keep the pace, shorten only overruns")
    _add_job_args(p)
    _add_engine_args(p, model_dir_help)
    _add_emotion_args(p)
    _add_decoding_args(p)
    # A cue's length is its duration; the length flags do not apply.
    p.set_defaults(func=_cmd_dub, speed=None, duration_seconds=None, tokens=None)

    p = command("batch", help="speak many lines (text lines, CSV or JSONL) into a ZIP with a manifest")
    p.add_argument("lines", help=".txt (one take a line), .csv or .jsonl with text, voice, emotion, seconds, "
                                 "speed, seed, filename")
    _add_job_args(p)
    _add_engine_args(p, model_dir_help)
    _add_emotion_args(p)
    _add_length_args(p)
    _add_decoding_args(p)
    p.set_defaults(func=_cmd_batch)

    p = command("text", help="show how a text is normalised, tokenised and segmented (JSON)")
    p.add_argument("text", help="the text ('-' reads it from stdin)")
    p.add_argument("--model-dir", type=Path, default=None, help=model_dir_help)
    p.add_argument("--segment-tokens", type=int, default=120, help="most BPE tokens per segment")
    p.add_argument("--quick-streaming-tokens", metavar="N", type=int, default=0,
                   help="the segments synth --quick-streaming-tokens N makes")
    p.add_argument("--dictionary", help="pronunciation dictionary (YAML, JSON or TSV)")
    p.set_defaults(func=_cmd_text)

    from .serve import add_serve_arguments

    p = command("serve", help="serve the HTTP API (OpenAI-compatible speech, saved voices, jobs) without the app",
                description="Docs at http://HOST:PORT/v1/docs once it runs.")
    add_serve_arguments(p)
    p.set_defaults(func=_cmd_serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except IndexTTSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except RuntimeError as e:  # torch.OutOfMemoryError is a RuntimeError
        if "out of memory" not in str(e).lower():
            raise
        print("error: the device ran out of memory. Try --dtype fp16, fewer tokens per segment "
              "(--segment-tokens 60), a shorter voice clip, or --device cpu.", file=sys.stderr)
        return 3
