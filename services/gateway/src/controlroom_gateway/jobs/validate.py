"""Validating a job before it is submitted: the pre-flight report, with the scheduler's route."""

from __future__ import annotations

from typing import Any

from controlroom_contracts.api import ValidationReport
from controlroom_contracts.rpc import RouteAnswer, RouteQuery
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.jobs import validation


async def validate_job(gateway: Gateway, body: Any) -> ValidationReport:
    """Every problem of ``body`` (JSON, a job or not): schema, limits, callbacks, syntax of
    each code file, inputs, routing and live executors. Runs nothing."""

    async def route(job_type: str) -> RouteAnswer:
        return await gateway.ask(RouteQuery(job_type=job_type), RouteAnswer, service="scheduler")

    return await validation.validate_job(
        body,
        limits=gateway.limits,
        policy=gateway.callback_policy,
        syntax=gateway.syntax_checker,
        route=route,
        live_kinds=gateway.executors.live_kinds,
    )
