"""Run a service's FastAPI app under uvicorn (used by every ``python -m controlroom_<svc>``)."""

from __future__ import annotations

import uvicorn
from fastapi import FastAPI

from controlroom_runtime.logs import configure_logging
from controlroom_runtime.settings import ServiceSettings


def serve(name: str, app: FastAPI, settings: ServiceSettings) -> None:
    configure_logging(name, settings.log_level)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # our JSON logging is configured in the app's lifespan
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=15,
        # Longer than common client and load-balancer idle timeouts (60 s), so the server is
        # never the side that closes a connection a client is about to reuse.
        timeout_keep_alive=65,
    )
