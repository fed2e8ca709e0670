"""The HTTP API (:mod:`indextts_core.server`) on the app's own server, over the app's engine.

The routes are mounted at ``/v1`` on Gradio's FastAPI application, so the page, the API and
jobs share one process and one engine: every API take goes through
:meth:`EngineController.session`, one at a time with the page's. Saved voices and jobs live
in the app's output folder.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
from collections.abc import Iterator
from typing import Any

from indextts_core.serve import api_key_from_env, private_roots

from . import controller as ctl

log = logging.getLogger(__name__)


class ControllerEngine:
    """The app's :class:`EngineController` as the API's engine source."""

    def __init__(self, controller: ctl.EngineController) -> None:
        self.controller = controller

    @contextlib.contextmanager
    def session(self) -> Iterator[Any]:
        from indextts_core.server import EngineUnavailableError

        try:
            with self.controller.session() as engine:
                yield engine
        except ctl.EngineBusyError as e:  # raised on entry only: there is no engine to hand out
            detail = {ctl.MISSING: "the model weights are missing (see the app's Model tab)",
                      ctl.DOWNLOADING: "the model is still downloading",
                      ctl.NO_ENGINE: "this installation has no synthesis engine"}.get(e.state, f"engine {e.state}")
            raise EngineUnavailableError(f"no engine to speak with: {detail}; try again later") from None


def api_context(args: argparse.Namespace, ctx: Any, ui: Any) -> Any | None:
    """The API's context for the app: its engine, and the Voices and Dub tabs' library, jobs and
    runner. ``None`` (with a warning) when it must stay off: listening beyond this computer
    without an API key."""
    from indextts_core.errors import InvalidOptionError
    from indextts_core.server import ApiContext, ApiSettings

    try:
        settings = ApiSettings(api_key=api_key_from_env(args.api_key), bind_host=args.host)
    except InvalidOptionError as e:
        if args.api_only:
            raise SystemExit(f"error: {e}") from None
        log.warning("the HTTP API is off: %s", e)
        return None
    dub = ui.jobs.dubbing
    return ApiContext(engine=ControllerEngine(ctx.controller), voices=dub.library, settings=settings, jobs=dub.store,
                      runner=dub.runner, is_test_model=ctx.controller.is_test_model,
                      private_roots=private_roots(ctx.dirs.output_dir, ctx.controller.model_dir,
                                                  cache=ctx.dirs.cache_dir))


def routes(api_ctx: Any) -> list[Any]:
    """What to add to Gradio's route list: the API under ``/v1``."""
    from indextts_core.server import mount

    return [mount(api_ctx)]


def serve_alone(api_ctx: Any, args: argparse.Namespace) -> None:
    """``--api-only``: the API on the app's engine and folders, without the page."""
    import uvicorn

    from indextts_core.serve import standalone_app

    uvicorn.run(standalone_app(api_ctx), host=args.host, port=args.port, log_level="warning")
