"""Command line: ``python -m indextts_core <command> ...``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .errors import IndexTTSError


def _cmd_make_test_model(args: argparse.Namespace) -> int:
    from . import tiny

    dest = tiny.build_checkpoint(Path(args.dir))
    print(f"wrote a tiny random-weight test checkpoint to {dest} (it produces noise, not speech)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m indextts_core",
                                     description="IndexTTS-2 inference engine of IndexTTS Studio")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("make-test-model", help="write a tiny random-weight checkpoint folder")
    p.add_argument("dir", help="folder to create")
    p.set_defaults(func=_cmd_make_test_model)
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
