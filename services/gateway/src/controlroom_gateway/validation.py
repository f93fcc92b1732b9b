"""Pre-flight validation of a job: everything short of running it."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import ValidationError

from controlroom_contracts.api import JobRequest, ValidationIssue, ValidationReport
from controlroom_contracts.rpc import RouteAnswer
from controlroom_gateway.errors import InvalidJob
from controlroom_gateway.service import JobLimits, callback_problems
from controlroom_gateway.syntax import check_file
from controlroom_runtime.callback_policy import CallbackPolicy

RUNNABLE_BY_KIND = {"docker": {".py", ".sh"}}
_URI = re.compile(r"^[a-z][a-z0-9+.\-]*://[^\s]+$")
_ENTITY = re.compile(r"^[A-Za-z_][\w$-]*(\.[A-Za-z_][\w$-]*)+$")

RouteLookup = Callable[[str], Awaitable[RouteAnswer]]


async def validate_job(
    body: Any,
    *,
    limits: JobLimits,
    policy: CallbackPolicy,
    route: RouteLookup,
    live_kinds: Callable[[], set[str]],
) -> ValidationReport:
    errors: list[ValidationIssue] = []
    warnings: list[ValidationIssue] = []
    try:
        job = JobRequest.model_validate(body)
    except ValidationError as exc:
        for error in exc.errors():
            location = [str(part) for part in error["loc"]]
            errors.append(
                ValidationIssue(
                    code=f"schema.{error['type']}",
                    message=error["msg"],
                    field=".".join(["body", *location]),
                    file=_file_of(body, location),
                )
            )
        return ValidationReport(valid=False, errors=errors)

    try:
        limits.check(job)
    except InvalidJob as exc:
        for error in exc.extensions.get("errors", []):
            errors.append(
                ValidationIssue(
                    code=f"limits.{error['type']}", message=exc.detail, field=error["field"]
                )
            )

    for file in job.code.files:
        errors.extend(await check_file(file))

    for name, value in job.spec.inputs.items():
        if not (_URI.match(value) or _ENTITY.match(value)):
            errors.append(
                ValidationIssue(
                    code="input.uri",
                    message=f"input {name!r} is neither a URI (scheme://...) nor schema.table",
                    field=f"body.spec.inputs.{name}",
                )
            )

    for problem in await callback_problems(job, policy):
        errors.append(
            ValidationIssue(
                code=problem["type"], message=problem["message"], field=problem["field"]
            )
        )

    routed = None
    if job.job_type in limits.job_types:
        routed = await _check_route(job, route, live_kinds, errors, warnings)
    return ValidationReport(
        valid=not errors,
        errors=errors,
        warnings=warnings,
        executor_kind=None if routed is None else routed.executor_kind,
        image=None if routed is None else routed.image,
    )


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


def _file_of(body: Any, location: list[str]) -> str | None:
    """The code file a schema error is about, when it is about one."""
    if location[:2] != ["code", "files"] or len(location) < 3 or not location[2].isdigit():
        return None
    try:
        path = body["code"]["files"][int(location[2])]["path"]
    except (KeyError, IndexError, TypeError):
        return None
    return path if isinstance(path, str) else None
