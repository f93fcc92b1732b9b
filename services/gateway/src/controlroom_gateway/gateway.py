"""The application services one API process shares, in one object the use cases take.

Built once in ``app`` when the service starts (kept as ``app.state.gateway``), so the REST
routers, the UI's endpoints and the MCP server all act through the same writer, streams,
limits and clients; a use case takes it with the caller's ``Principal``.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlroom_contracts.resources import RoutingView
from controlroom_gateway.executors import ExecutorRegistry
from controlroom_gateway.jobs.limits import JobLimits
from controlroom_gateway.jobs.submissions import SubmissionWriter
from controlroom_gateway.jobs.syntax_checker import SyntaxChecker
from controlroom_gateway.rpc import Asker
from controlroom_gateway.runs.live_streams import LiveStreams
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.callback_policy import CallbackPolicy
from controlroom_runtime.objectstore import ObjectStore
from controlroom_runtime.service import ServiceRuntime


@dataclass(frozen=True)
class Gateway:
    settings: GatewaySettings
    runtime: ServiceRuntime
    """Database sessions and engines, the outbox, the broker."""
    ask: Asker
    """Request-reply to the services that own schedules, lineage, webhooks and the queue."""
    limits: JobLimits
    callback_policy: CallbackPolicy
    submissions: SubmissionWriter
    syntax_checker: SyntaxChecker
    executors: ExecutorRegistry
    live_streams: LiveStreams
    objects: ObjectStore
    routing: RoutingView
