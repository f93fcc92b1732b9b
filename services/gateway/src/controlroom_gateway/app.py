"""The gateway's only wiring point."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI

from controlroom_contracts.resources import RoutingView
from controlroom_contracts.schedules import TemplateJob, TemplateJobQuery
from controlroom_gateway import handlers, ui
from controlroom_gateway.api import (
    artifacts,
    datasets,
    jobs,
    lineage,
    openapi_doc,
    routing,
    run_events,
    runs,
    runs_board,
    schedules,
    sessions,
    templates,
    webhook_deliveries,
    webhook_endpoints,
)
from controlroom_gateway.api.body_limit import BodyLimitMiddleware
from controlroom_gateway.api.problems import install_problem_handlers
from controlroom_gateway.api.rate_limit import ClientRateLimiter, TenantRateLimiter
from controlroom_gateway.auth import TokenVerifier
from controlroom_gateway.executors import ExecutorRegistry
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.jobs.limits import JobLimits
from controlroom_gateway.jobs.submissions import SubmissionWriter
from controlroom_gateway.jobs.syntax_checker import SyntaxChecker
from controlroom_gateway.mcp.auth import BearerAuth
from controlroom_gateway.mcp.endpoint import PATH as MCP_PATH
from controlroom_gateway.mcp.endpoint import McpEndpoint
from controlroom_gateway.read_model import retention
from controlroom_gateway.read_model.store import metadata
from controlroom_gateway.rpc import Asker
from controlroom_gateway.runs.live_streams import LiveStreams
from controlroom_gateway.settings import GatewaySettings
from controlroom_gateway.templates import schedules as template_schedules
from controlroom_runtime.callback_policy import CallbackPolicy
from controlroom_runtime.objectstore import build_object_store
from controlroom_runtime.rpc import answer
from controlroom_runtime.service import ServiceRuntime, service_app

MIGRATIONS = Path(__file__).parent / "migrations"

DESCRIPTION = """Submit jobs, follow their runs, query lineage.

Every endpoint under `/api/v1` needs `Authorization: Bearer <JWT>` (HS256, or RS256 signed by a
key at the configured JWKS URL; claims `tenant_id`, `sub`, `role`, `exp`, and `iss` / `aud` when
configured). Errors are `application/problem+json` (RFC 9457)."""


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()  # the secret comes from the environment
    # Read now: a routing file that cannot be used stops the gateway before it starts.
    routing_view = RoutingView.of(settings.routing())
    executors = ExecutorRegistry()
    submissions = SubmissionWriter()
    syntax_checker = SyntaxChecker(
        parse_workers=settings.syntax_parse_workers,
        shell_processes=settings.syntax_shell_processes,
    )
    live_streams = LiveStreams.of(settings)
    objects = build_object_store(settings.object_store)
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
        # The application services the use cases take, whoever calls them (REST, UI, MCP).
        gateway = Gateway(
            settings=settings,
            runtime=runtime,
            ask=Asker(runtime.broker, settings.rpc_timeout_seconds),
            limits=limits,
            callback_policy=policy,
            submissions=submissions,
            syntax_checker=syntax_checker,
            executors=executors,
            live_streams=live_streams,
            objects=objects,
            routing=routing_view,
        )
        app.state.gateway = gateway
        handlers.register_heartbeats(runtime, executors)

        async def template_job(query: TemplateJobQuery) -> TemplateJob:
            return await template_schedules.template_job(gateway, query)

        # The scheduler asks at each schedule's tick; the API process answers, as it owns
        # templates (a separate projector process does not).
        answer(runtime, TemplateJobQuery, template_job, queue="gateway")
        if settings.read_model == "in_process":
            handlers.register_projection(runtime)
        submissions.bind(runtime.autocommit, runtime.outbox)
        runtime.background(submissions.run)
        runtime.on_stop(syntax_checker.close)
        # One LISTEN connection wakes every live event stream of this process.
        runtime.background(live_streams.wakeups.run)
        # Here and not in a separate projector: the purge deletes stored objects too.
        retention.install(runtime, settings, objects)
        runtime.background(app.state.mcp.serve)
        return runtime

    def configure(app: FastAPI) -> None:
        app.state.token_verifier = TokenVerifier(
            settings.jwt_secret.get_secret_value(),
            settings.jwt_jwks_url,
            jwks_ttl_seconds=settings.jwt_jwks_ttl_seconds,
            jwks_cooldown_seconds=settings.jwt_jwks_cooldown_seconds,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
        )
        app.state.rate_limiter = TenantRateLimiter(
            settings.rate_limit_per_second, settings.rate_limit_burst
        )
        app.state.client_rate_limiter = ClientRateLimiter(
            settings.rate_limit_unauthenticated_per_second,
            settings.rate_limit_unauthenticated_burst,
        )
        app.description = DESCRIPTION
        app.version = "1.0.0"
        app.add_middleware(
            BodyLimitMiddleware,
            max_bytes=settings.max_body_bytes,
            # multipart framing on top of the largest artifact
            per_path={artifacts.UPLOAD_PATH: settings.max_artifact_bytes + (1 << 20)},
        )
        install_problem_handlers(app)
        openapi_doc.install(app)
        # Before ``runs``: its /runs/{run_id} would take /runs/counts and /runs/stream.
        app.include_router(runs_board.router)
        app.include_router(jobs.router)
        app.include_router(runs.router)
        app.include_router(run_events.router)
        app.include_router(artifacts.router)
        app.include_router(templates.router)
        app.include_router(lineage.router)
        app.include_router(datasets.router)
        app.include_router(webhook_endpoints.router)
        app.include_router(webhook_deliveries.router)
        app.include_router(sessions.router)
        app.include_router(schedules.router)
        app.include_router(routing.router)
        ui.install(app)
        # MCP for coding agents, behind the same bearer tokens and rate limits as REST.
        app.state.mcp = McpEndpoint(
            BearerAuth(
                app.state.token_verifier, app.state.rate_limiter, app.state.client_rate_limiter
            ),
            lambda: app.state.gateway,  # built at start-up, after this
        )
        app.add_route(MCP_PATH, app.state.mcp, include_in_schema=False)

    # ``build`` runs at start-up, in the app's lifespan: after this has made the app.
    app = service_app("gateway", settings, build, title="Control Room API", configure=configure)
    return app
