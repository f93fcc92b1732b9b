"""The read-model projector as a process of its own (``python -m controlroom_gateway projector``).

Projecting run events is steady background work: a few statements for every event of every
run. Inside the API process it shares one event loop with the requests, and every batch it
handles delays the requests waiting behind it. Run here, with the API's
``CONTROLROOM_READ_MODEL=separate``, the operating system schedules it apart from the API, and
a deployment can give it a lower priority or other cores. It owns nothing new: same schema,
same migrations, same durable consumer as the in-process projection.
"""

from __future__ import annotations

from fastapi import FastAPI

from controlroom_gateway import handlers
from controlroom_gateway.app import MIGRATIONS
from controlroom_gateway.read_model.store import metadata
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.service import ServiceRuntime, service_app


def create_projector_app(settings: GatewaySettings) -> FastAPI:
    """Health, readiness and metrics endpoints; the projection runs in the lifespan."""

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="gateway", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        handlers.register_projection(runtime)
        return runtime

    return service_app("gateway-projector", settings, build, title="Control Room projector")
