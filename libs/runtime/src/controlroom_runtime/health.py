"""``/healthz`` (the process answers), ``/readyz`` (its dependencies answer), ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from controlroom_contracts.responses import Health, Readiness
from controlroom_runtime.problems import problem

if TYPE_CHECKING:
    from controlroom_runtime.service import ServiceRuntime


def _runtime(request: Request) -> ServiceRuntime | None:
    return getattr(request.app.state, "runtime", None)


def health_router() -> APIRouter:
    router = APIRouter(tags=["health"])

    @router.get("/healthz", summary="Liveness: the process is up", response_model=Health)
    async def healthz(request: Request) -> Health:
        runtime = _runtime(request)
        return Health(status="ok", service=runtime.name if runtime else None)

    @router.get(
        "/readyz",
        summary="Readiness: NATS and Postgres reachable, migrations applied, outbox moving",
        responses={
            200: {"model": Readiness, "description": "Every dependency is ready"},
            503: {"description": "Not ready (problem+json with each check)"},
        },
    )
    async def readyz(request: Request) -> Response:
        runtime = _runtime(request)
        if runtime is None:
            return problem(503, "Not ready", "service is starting")
        checks = await runtime.readiness()
        if all(value == "ok" for value in checks.values()):
            return JSONResponse({"status": "ready", "service": runtime.name, "checks": checks})
        return problem(503, "Not ready", "a dependency is not ready", checks=checks)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        runtime = _runtime(request)
        body = generate_latest(runtime.metrics.registry) if runtime else b""
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
