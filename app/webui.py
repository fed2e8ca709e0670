"""IndexTTS Studio web UI entry point: ``python -m app.webui`` (started by ``start_app.sh``).

Gradio reads its folders from the environment when it is imported, so this module sets
them first and imports Gradio (through :mod:`app.layout`) only inside the functions.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Any

from .paths import AppDirs, default_cache_dir, default_output_dir

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

log = logging.getLogger("app")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="start_app.sh", description="IndexTTS Studio: a local web app for IndexTTS-2.")
    p.add_argument("--model-dir", type=Path, default=None,
                   help="IndexTTS-2 model folder (default: the engine's standard folder)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: only this computer; 0.0.0.0 exposes the app "
                        "to your network)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps (default auto)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="compute precision of the GPT and conditioners (default auto: fp16 on GPU, fp32 on CPU)")
    p.add_argument("--test-model", action="store_true",
                   help="use the tiny random-weight test checkpoint (noise, not speech; built once in the cache)")
    p.add_argument("--output-dir", type=Path, default=None,
                   help="where takes, history and recent voices are saved (default: outputs/ beside the app)")
    p.add_argument("--cache-dir", type=Path, default=None,
                   help="cache for uploads and the test model (default: the user cache folder)")
    p.add_argument("--no-download", action="store_true", help="never download weights (offline use)")
    p.add_argument("--no-streaming", action="store_true",
                   help="play segments one by one instead of streaming (streaming needs ffmpeg)")
    p.add_argument("--api-key", default=None,
                   help="key for the HTTP API at /v1 (clients send 'Authorization: Bearer KEY'; default: "
                        "$INDEXTTS_API_KEY); required for the API when --host is not this computer")
    p.add_argument("--api-only", action="store_true", help="serve the HTTP API at /v1 without the web page")
    p.add_argument("--verbose", action="store_true", help="log details to the terminal")
    return p.parse_args(argv)


def app_dirs(args: argparse.Namespace) -> AppDirs:
    out = (args.output_dir or default_output_dir()).expanduser().resolve()
    cache = (args.cache_dir or default_cache_dir()).expanduser().resolve()
    return AppDirs(output_dir=out, cache_dir=cache).create()


def configure_gradio_env(dirs: AppDirs) -> None:
    """Keep Gradio's uploads and caches inside the app's cache folder; no analytics."""
    os.environ["GRADIO_TEMP_DIR"] = str(dirs.uploads_dir)
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(dirs.examples_dir)
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
    os.environ.setdefault("GRADIO_RUN_HISTORY", "False")
    os.environ.setdefault("GRADIO_MCP_SERVER", "False")
    if "gradio" in sys.modules:
        log.debug("gradio was imported before its folders were set; uploads may go to the default temp folder")


def resolve_model_dir(args: argparse.Namespace, dirs: AppDirs) -> Path:
    from . import models

    if args.test_model:
        folder = (args.model_dir or dirs.test_model_dir).expanduser().resolve()
        return models.ensure_test_model(folder)
    return (args.model_dir or models.default_model_dir()).expanduser().resolve()


def create_app(args: argparse.Namespace, *, factory: Any = None, start: bool = True) -> tuple[Any, Any, Any]:
    """Build (demo, ui, context). ``factory`` replaces ``IndexTTS2.from_pretrained`` (tests)."""
    dirs = app_dirs(args)
    configure_gradio_env(dirs)
    from . import controller as ctl
    from .handlers import AppContext
    from .layout import build_demo
    from .text_tools import TextTools

    model_dir = resolve_model_dir(args, dirs)
    text = TextTools(model_dir)  # one text front end for the page's previews and the engine
    controller = ctl.EngineController(model_dir, device=args.device, precision=args.precision, factory=factory,
                                      allow_download=not args.no_download, text_frontend=text.frontend)
    streaming = not args.no_streaming and shutil.which("ffmpeg") is not None
    ctx = AppContext.create(dirs, controller, text=text, streaming=streaming)
    demo, ui = build_demo(ctx)
    demo.queue(default_concurrency_limit=4)
    if start:
        controller.start()
        ui.jobs.dubbing.runner.resume_interrupted()  # a job cut off by a crash or restart goes on
    return demo, ui, ctx


def launch_kwargs(args: argparse.Namespace, ui: Any, ctx: Any, demo: Any) -> dict[str, Any]:
    """Server settings: local by default, and requests from other web sites or for the page's
    own handlers are refused (:mod:`app.security`). No folder is served by path: Gradio hands
    out a copy of each file it shows under an unguessable name in its upload folder."""
    from starlette.middleware import Middleware

    from indextts_core.hosts import allowed_hosts

    from .layout import CSS, head_html
    from .security import LocalOnlyMiddleware, new_page_key, public_api

    guard = Middleware(LocalOnlyMiddleware, hosts=allowed_hosts(args.host), api=lambda: public_api(demo),
                       cookie=f"indextts_page_{args.port}", key=new_page_key())
    return {
        "server_name": args.host,
        "server_port": args.port,
        "share": False,
        "allowed_paths": [],
        # The model folder never needs serving, even if the cache is placed inside it.
        "blocked_paths": [str(ctx.controller.model_dir)],
        "footer_links": ["api", "settings"],
        "run_history": False,
        "enable_monitoring": False,
        "mcp_server": False,
        "ssr_mode": False,
        "show_error": False,
        "max_file_size": "200mb",
        "css": CSS,
        "head": head_html(ui),
        "inbrowser": False,
        "app_kwargs": {"middleware": [guard]},
    }


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    demo, ui, ctx = create_app(args)
    print(f"IndexTTS Studio — model folder: {ctx.controller.model_dir}", flush=True)
    print(f"Takes are saved in: {ctx.dirs.output_dir}", flush=True)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"WARNING: listening on {args.host}: other computers on your network can use this app.", flush=True)
    from . import api_routes

    api = api_routes.api_context(args, ctx, ui)
    if args.api_only:
        api_routes.serve_alone(api, args)
        return
    kwargs = launch_kwargs(args, ui, ctx, demo)
    if api is not None:
        print(f"HTTP API: http://{args.host}:{args.port}/v1 (documentation at /v1/docs)", flush=True)
        kwargs["app_kwargs"] = {**kwargs.get("app_kwargs", {}), "routes": api_routes.routes(api)}
    demo.launch(**kwargs)


if __name__ == "__main__":
    main()
