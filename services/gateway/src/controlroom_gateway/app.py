"""The gateway's only wiring point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from controlroom_contracts.resources import RoutingView
from controlroom_contracts.schedules import TemplateJob, TemplateJobQuery
from controlroom_gateway import (
    artifacts,
    handlers,
    lineage,
    routing,
    run_events,
    schedules,
    schedules_service,
    sessions,
    templates,
    webhook_endpoints,
)
from controlroom_gateway.auth import TokenVerifier
from controlroom_gateway.body_limit import BodyLimitMiddleware
from controlroom_gateway.errors import install_problem_handlers
from controlroom_gateway.executors import ExecutorRegistry
from controlroom_gateway.rate_limit import TenantRateLimiter
from controlroom_gateway.routes import router
from controlroom_gateway.service import JobLimits
from controlroom_gateway.settings import GatewaySettings
from controlroom_gateway.store import metadata
from controlroom_gateway.submissions import SubmissionWriter
from controlroom_runtime.callback_policy import CallbackPolicy
from controlroom_runtime.objectstore import build_object_store
from controlroom_runtime.rpc import answer
from controlroom_runtime.service import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """Submit jobs, follow their runs, query lineage.

Every endpoint under `/api/v1` needs `Authorization: Bearer <JWT>` (HS256; claims `tenant_id`,
`sub`, `role`, `exp`). Errors are `application/problem+json` (RFC 9457)."""


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()  # the secret comes from the environment
    # Read now: a routing file that cannot be used stops the gateway before it starts.
    routing_view = RoutingView.of(settings.routing())
    executors = ExecutorRegistry()
    submissions = SubmissionWriter()
    policy = CallbackPolicy(settings.callback_allowlist)
    limits = JobLimits(
        settings.job_types,
        settings.max_code_file_bytes,
        settings.max_code_total_bytes,
        lanes=list(settings.lanes),
        max_timeout_seconds=settings.max_timeout_seconds,
    )

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="gateway", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        handlers.register_heartbeats(runtime, executors)

        async def template_job(query: TemplateJobQuery) -> TemplateJob:
            async with runtime.autocommit.connect() as connection:
                return await schedules_service.template_job(connection, query, limits, policy)

        # The scheduler asks at each schedule's tick; the API process answers, as it owns
        # templates (a separate projector process does not).
        answer(runtime, TemplateJobQuery, template_job, queue="gateway")
        if settings.read_model == "in_process":
            handlers.register_projection(runtime)
        submissions.bind(runtime.autocommit, runtime.outbox)
        runtime.background(submissions.run)
        return runtime

    def configure(app: FastAPI) -> None:
        app.state.settings = settings
        app.state.callback_policy = policy
        app.state.executors = executors
        app.state.submissions = submissions
        app.state.token_verifier = TokenVerifier(
            settings.jwt_secret.get_secret_value(), settings.jwt_jwks_url
        )
        app.state.rate_limiter = TenantRateLimiter(
            settings.rate_limit_per_second, settings.rate_limit_burst
        )
        app.state.limits = limits
        app.state.routing = routing_view
        app.description = DESCRIPTION
        app.version = "1.0.0"
        app.state.object_store = build_object_store(settings.object_store)
        app.add_middleware(
            BodyLimitMiddleware,
            max_bytes=settings.max_body_bytes,
            # multipart framing on top of the largest artifact
            per_path={artifacts.UPLOAD_PATH: settings.max_artifact_bytes + (1 << 20)},
        )
        install_problem_handlers(app)
        app.include_router(router)
        app.include_router(run_events.router)
        app.include_router(artifacts.router)
        app.include_router(templates.router)
        app.include_router(lineage.router)
        app.include_router(webhook_endpoints.router)
        app.include_router(sessions.router)
        app.include_router(schedules.router)
        app.include_router(routing.router)

    return service_app("gateway", settings, build, title="Control Room API", configure=configure)
