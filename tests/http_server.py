"""The HTTP API served for real (uvicorn on a free port, in a thread of the test process).

Tests talk to it over a socket with the official ``openai`` client or plain HTTP, exactly as
another program would; the engine behind it is the fake engine (fast) or the tiny model.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from indextts_core.server import ApiContext, mount
from tests.app_server import free_port


@dataclass
class ServedApi:
    url: str
    ctx: ApiContext
    server: Any
    thread: threading.Thread

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def serve_api(ctx: ApiContext) -> ServedApi:
    import uvicorn
    from starlette.applications import Starlette

    port = free_port()
    config = uvicorn.Config(Starlette(routes=[mount(ctx)]), host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="api-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API server did not start")
        time.sleep(0.05)
    return ServedApi(f"http://127.0.0.1:{port}", ctx, server, thread)


def private_roots(*folders: Path) -> dict[str, str]:
    return {str(f): "<folder>" for f in folders}
