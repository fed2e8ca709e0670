"""IndexTTS Studio web UI entry point: ``python -m app.webui`` (started by ``start_app.sh``)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="start_app.sh", description="IndexTTS Studio")
    p.add_argument("--model-dir", type=Path, default=None, help="IndexTTS-2 model folder")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"])
    p.add_argument("--test-model", action="store_true", help="use the tiny random-weight test checkpoint")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    import gradio as gr

    args = parse_args(argv)
    with gr.Blocks(title="IndexTTS Studio") as demo:
        gr.Markdown("# IndexTTS Studio\nThe synthesis engine is being assembled; this page will grow.")
    demo.launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()
