"""Command line: ``python -m indextts_core <command> ...``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .errors import IndexTTSError


def _cmd_make_test_model(args: argparse.Namespace) -> int:
    from . import tiny

    dest = tiny.build_checkpoint(Path(args.dir))
    print(f"wrote a tiny random-weight test checkpoint to {dest} (it produces noise, not speech)")
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    from .download import model_status

    status = model_status(args.model_dir)
    print(status.table())
    return 0 if status.complete["core"] else 1


def _cmd_download(args: argparse.Namespace) -> int:
    from .download import DownloadProgress, ensure_model, format_bytes, model_status

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
    from .download import default_model_dir

    frontend = TextFrontend.from_model_dir(args.model_dir or default_model_dir(), dictionary=dictionary)
    text = sys.stdin.read() if args.text == "-" else args.text
    print(json.dumps(frontend.preview(text, args.segment_tokens).to_dict(), ensure_ascii=False))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indextts_core",
                                     description="IndexTTS-2 inference engine of IndexTTS Studio")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-test-model", help="write a tiny random-weight checkpoint folder")
    p.add_argument("dir", help="folder to create")
    p.set_defaults(func=_cmd_make_test_model)

    model_dir_help = ("model folder (default: $INDEXTTS_MODEL_DIR, else "
                      "<user cache>/indextts-studio/IndexTTS-2)")
    p = sub.add_parser("download", help="download the IndexTTS-2 weights (resumes an interrupted download)",
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

    p = sub.add_parser("status", help="show which model files are present, partial or missing "
                                      "(exit status 1 when core files are missing)")
    p.add_argument("--model-dir", type=Path, default=None, help=model_dir_help)
    p.set_defaults(func=_cmd_status)

    p = sub.add_parser("text", help="show how a text is normalised, tokenised and segmented (JSON)")
    p.add_argument("text", help="the text ('-' reads it from stdin)")
    p.add_argument("--model-dir", type=Path, default=None, help=model_dir_help)
    p.add_argument("--segment-tokens", type=int, default=120, help="most BPE tokens per segment")
    p.add_argument("--dictionary", help="pronunciation dictionary (YAML, JSON or TSV)")
    p.set_defaults(func=_cmd_text)
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
