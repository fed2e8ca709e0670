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


def _cmd_text(args: argparse.Namespace) -> int:
    from .text import PronunciationDictionary, TextFrontend

    dictionary = PronunciationDictionary.load(args.dictionary) if args.dictionary else None
    frontend = TextFrontend.from_model_dir(args.model_dir, dictionary=dictionary)
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

    p = sub.add_parser("text", help="show how a text is normalised, tokenised and segmented (JSON)")
    p.add_argument("text", help="the text ('-' reads it from stdin)")
    p.add_argument("--model-dir", required=True, help="model folder (its bpe.model and glossary.yaml)")
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
