"""Running the HTTP API: ``python -m indextts_core serve``, and the context the app builds too.

Kept apart from :mod:`indextts_core.server` so the command line only imports FastAPI when
the server really starts.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .server import ApiContext

log = logging.getLogger(__name__)

MAX_TEXT_CHARS = 4096  # OpenAI's own limit for one speech request
API_KEY_ENV = "INDEXTTS_API_KEY"


# -- running it alone: ``python -m indextts_core serve`` --------------------------------------------

def add_serve_arguments(p: Any) -> None:
    """The ``serve`` command's flags (also read by :func:`run_from_args`)."""
    p.add_argument("--model-dir", type=Path, default=None, help="model folder (default: the engine's standard one)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this computer only; any other needs an API key)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--api-key", default=None,
                   help=f"the key clients send as 'Authorization: Bearer KEY' (default: ${API_KEY_ENV})")
    p.add_argument("--output-dir", type=Path, default=Path("outputs"),
                   help="where saved voices (saved-voices/) and jobs (jobs/) are kept (default: ./outputs)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    p.add_argument("--dtype", default="auto", help="GPT precision: auto, fp32, fp16 or bf16")
    p.add_argument("--offline", action="store_true", help="never download; fail if weights are missing")
    p.add_argument("--max-text-chars", type=int, default=MAX_TEXT_CHARS,
                   help=f"longest input of one speech request (default {MAX_TEXT_CHARS})")
    p.add_argument("--ray", metavar="ADDRESS", default=None,
                   help="run jobs on a Ray cluster ('auto' or host:port of its head; needs requirements-ray.txt)")


def api_key_from_env(given: str | None) -> str | None:
    import os

    return given or os.environ.get(API_KEY_ENV) or None


def output_folders(output_dir: Path) -> tuple[Path, Path]:
    """Where an output folder keeps saved voices and jobs: the web app's own layout, so ``serve``
    and the app can share one folder (its Voices and Dub tabs list what the API made)."""
    return output_dir / "voices" / "saved", output_dir / "takes" / "jobs"


def private_roots(output_dir: Path, model_dir: Path | None, **more: Path) -> dict[str, str]:
    """Folders never named to a client, with the words said instead."""
    roots = {str(output_dir): "<output folder>", str(output_dir.resolve()): "<output folder>"}
    if model_dir is not None:
        roots[str(model_dir)] = "<model folder>"
    for word, folder in more.items():
        roots[str(folder)] = f"<{word} folder>"
    return roots


def build_context(engine: Any, output_dir: Path, settings: Any, *, model_dir: Path | None = None,
                  is_test_model: bool = False, ray: Any = None) -> ApiContext:
    """The API's context over an output folder; jobs run locally, or on Ray when ``ray`` is a worker."""
    from .api_jobs import local_runner
    from .jobs import JobRunner, JobStore
    from .server import ApiContext
    from .voices import SavedVoices

    voices_dir, jobs_dir = output_folders(output_dir)
    store = JobStore(jobs_dir)
    runner = local_runner(store, engine) if ray is None else JobRunner(store, ray)
    ctx = ApiContext(engine=engine, voices=SavedVoices(voices_dir), settings=settings, jobs=store, runner=runner,
                     private_roots=private_roots(output_dir, model_dir), is_test_model=is_test_model)
    runner.resume_interrupted()  # what a previous run left unfinished
    return ctx


def standalone_app(ctx: Any) -> Any:
    """The API alone: ``/v1/...``, and ``/`` sends a browser to the documentation."""
    from starlette.applications import Starlette
    from starlette.responses import RedirectResponse
    from starlette.routing import Route

    from .server import API_PREFIX, mount

    async def home(request: Any) -> RedirectResponse:
        return RedirectResponse(API_PREFIX + "/docs")

    return Starlette(routes=[mount(ctx), Route("/", home)])


def run_from_args(args: Any) -> int:
    import uvicorn

    from .pipeline import IndexTTS2
    from .server import API_PREFIX, ApiSettings, LoadedEngine

    settings = ApiSettings(api_key=api_key_from_env(args.api_key), bind_host=args.host,
                           max_text_chars=args.max_text_chars)
    tts = IndexTTS2.from_pretrained(args.model_dir, device=args.device, dtype=args.dtype, download=not args.offline)
    ray = None
    if args.ray is not None:
        from .ray_worker import RayWorker

        ray = RayWorker.connect(args.ray, tts.model_dir)
    ctx = build_context(LoadedEngine(tts), args.output_dir, settings, model_dir=tts.model_dir,
                        is_test_model=tts.is_test_model, ray=ray)
    log.info("serving the API on http://%s:%d%s (docs at %s/docs)", args.host, args.port, API_PREFIX, API_PREFIX)
    try:
        uvicorn.run(standalone_app(ctx), host=args.host, port=args.port, log_level="warning")
    finally:
        ctx.runner.close()
    return 0
