"""Pre-flight validation of a job: everything short of running it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from controlroom_contracts.api import JobRequest, ValidationIssue, ValidationReport
from controlroom_contracts.entities import SOURCE_KEYS, TARGET_KEYS
from controlroom_contracts.rpc import RouteAnswer
from controlroom_gateway.jobs import job_checks
from controlroom_gateway.jobs.limits import JobLimits
from controlroom_gateway.jobs.syntax_checker import SyntaxChecker
from controlroom_runtime.callback_policy import CallbackPolicy

RUNNABLE_BY_KIND = {"docker": {".py", ".sh"}}
DECLARED_KEYS = frozenset(SOURCE_KEYS + TARGET_KEYS)
_URI = re.compile(r"^[a-z][a-z0-9+.\-]*://[^\s]+$")
_ENTITY = re.compile(r"^[A-Za-z_][\w$-]*(\.[A-Za-z_][\w$-]*)+$")

RouteLookup = Callable[[str], Awaitable[RouteAnswer]]


async def validate_job(
    body: Any,
    *,
    limits: JobLimits,
    policy: CallbackPolicy,
    syntax: SyntaxChecker,
    route: RouteLookup,
    live_kinds: Callable[[], set[str]],
) -> ValidationReport:
    """Every problem of the body: schema, limits, callbacks, the syntax of each code file,
    inputs, routing. What is valid of an invalid body is still checked."""
    job, problems = await job_checks.examine(body, limits, policy)
    errors = [problem.issue() for problem in problems]
    warnings: list[ValidationIssue] = []
    errors += await syntax.check(job.code.files if job else job_checks.valid_files(body))
    inputs = job.spec.inputs if job else job_checks.valid_inputs(body)
    errors += _input_problems(inputs)
    if job is None:  # a valid job's entity problems are among its job problems already
        errors += [problem.issue() for problem in job_checks.entity_problems(inputs)]

    routed = None
    if job is not None and job.job_type in limits.job_types:
        routed = await _check_route(job, route, live_kinds, errors, warnings)
    return ValidationReport(
        valid=not errors,
        errors=errors,
        warnings=warnings,
        executor_kind=None if routed is None else routed.executor_kind,
        image=None if routed is None else routed.image,
    )


def _input_problems(inputs: dict[str, str]) -> list[ValidationIssue]:
    return [
        ValidationIssue(
            code="input.uri",
            message=f"input {name!r} is neither a URI (scheme://...) nor schema.table",
            field=f"body.spec.inputs.{name}",
        )
        for name, value in inputs.items()
        # Declared datasets get the stricter entity check (job_checks.entity_problems).
        if name not in DECLARED_KEYS and not (_URI.match(value) or _ENTITY.match(value))
    ]


async def _check_route(
    job: JobRequest,
    route: RouteLookup,
    live_kinds: Callable[[], set[str]],
    errors: list[ValidationIssue],
    warnings: list[ValidationIssue],
) -> RouteAnswer | None:
    """The scheduler's route for the job type (None: it did not answer); what is wrong with
    it goes into ``errors``."""
    try:
        answer = await route(job.job_type)
    except Exception:  # the scheduler did not answer: say so, do not guess
        warnings.append(
            ValidationIssue(code="route.unverified", message="the scheduler did not answer")
        )
        return None
    kind = answer.executor_kind
    if kind is None:
        errors.append(
            ValidationIssue(
                code="route.none",
                message=f"no executor kind is routed for job type {job.job_type!r}",
                field="body.job_type",
            )
        )
        return answer
    if kind not in live_kinds():
        errors.append(
            ValidationIssue(
                code="route.no_executor",
                message=f"job type {job.job_type!r} runs on {kind!r}, and no ready {kind!r} "
                "executor has reported in within 30 s",
                field="body.job_type",
            )
        )
    runnable = RUNNABLE_BY_KIND.get(kind)
    entry = job.code.entrypoint_path()
    if runnable is not None and not any(entry.endswith(s) for s in runnable):
        errors.append(
            ValidationIssue(
                code="entrypoint.unsupported",
                message=f"{kind!r} executors run {sorted(runnable)} entrypoints, not {entry!r}",
                file=entry,
            )
        )
    return answer
