"""Everything wrong with a job request, found at once.

A schema error used to end the checking: a body with a ``../`` path and a callback to the
metadata address heard only about the path, fixed it, and then heard about the callback. Here
the parts of an invalid body that are valid on their own (each callback URL; in pre-flight also
each code file and input) are still checked, and a valid job gets all of its limit and callback
problems, not the first. ``/jobs/run`` answers them in one 422; ``/jobs/validate`` in its report.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from controlroom_contracts.api import Callbacks, CodeFile, JobRequest, ValidationIssue
from controlroom_contracts.entities import declared_entity_problems
from controlroom_gateway.errors import InvalidJob, InvalidRequest
from controlroom_gateway.jobs.limits import JobLimits, url_problem
from controlroom_runtime.callback_policy import CallbackPolicy

CALLBACK_KINDS = ("on_complete", "on_fail", "on_progress")


@dataclass(frozen=True)
class JobProblem:
    """One problem, located by ``field`` (a 422's errors) and ``file`` (a pre-flight report)."""

    type: str
    message: str
    field: str | None = None
    file: str | None = None
    family: str | None = None
    """Prefixes the report's code (``schema.missing``, ``limits.too_large``)."""
    summary: str | None = None
    """A sentence for the report when it says more than ``message``."""

    @property
    def code(self) -> str:
        return f"{self.family}.{self.type}" if self.family else self.type

    def issue(self) -> ValidationIssue:
        return ValidationIssue(
            code=self.code, message=self.summary or self.message, field=self.field, file=self.file
        )

    def error(self) -> dict[str, str]:
        """As in every 422 of the API: ``{field, message, type}``."""
        return {"field": self.field or "body", "message": self.message, "type": self.type}


async def examine(
    body: Any, limits: JobLimits, policy: CallbackPolicy
) -> tuple[JobRequest | None, list[JobProblem]]:
    """The job (None if the body is not one) and every problem found in it."""
    try:
        job = JobRequest.model_validate(body)
    except ValidationError as exc:
        problems = schema_problems(exc, body)
        return None, problems + await _callback_problems(valid_callbacks(body), policy)
    return job, await job_problems(job, limits, policy)


async def acceptable_job(body: Any, limits: JobLimits, policy: CallbackPolicy) -> JobRequest:
    """The job, if nothing is wrong with it; otherwise a 422 naming every problem."""
    job, problems = await examine(body, limits, policy)
    refuse(problems)
    assert job is not None  # a body that is not a job has schema problems
    return job


async def job_problems(
    job: JobRequest, limits: JobLimits, policy: CallbackPolicy
) -> list[JobProblem]:
    """What a valid job must still pass before it is queued: limits and callback policy."""
    callbacks = job.callbacks or Callbacks()
    urls = {kind: str(url) for kind in CALLBACK_KINDS if (url := getattr(callbacks, kind))}
    problems = _limit_problems(job, limits) + entity_problems(job.spec.inputs)
    return problems + await _callback_problems(urls, policy)


def entity_problems(inputs: dict[str, str]) -> list[JobProblem]:
    """Declared datasets (``source``, ``sources``, ``target``, ``targets``) that are not entity
    names: refused before anything runs, as lineage could not record them."""
    return [
        JobProblem(
            type="entity",
            message=reason,
            field=f"body.spec.inputs.{key}",
            family="input",
            summary=f"input {key!r}: {reason}",
        )
        for key, reason in declared_entity_problems(inputs)
    ]


def refuse(problems: list[JobProblem]) -> None:
    """Raise one 422 naming every problem; schema problems make it an invalid request."""
    if not problems:
        return
    errors = [p.error() for p in problems]
    detail = "; ".join(f"{p.field or 'body'}: {p.summary or p.message}" for p in problems[:5])
    if any(p.family == "schema" for p in problems):
        raise InvalidRequest(detail, errors=errors)
    raise InvalidJob(detail, errors=errors)


def schema_problems(exc: ValidationError, body: Any) -> list[JobProblem]:
    problems = []
    for error in exc.errors():
        location = [str(part) for part in error["loc"]]
        problems.append(
            JobProblem(
                type=error["type"],
                message=error["msg"],
                field=".".join(["body", *location]),
                file=_file_of(body, location),
                family="schema",
            )
        )
    return problems


def _limit_problems(job: JobRequest, limits: JobLimits) -> list[JobProblem]:
    return [
        JobProblem(
            type=error["type"],
            message=error["message"],
            field=error["field"],
            family="limits",
            summary=summary,
        )
        for summary, error in limits.problems(job)
    ]


async def _callback_problems(urls: dict[str, str], policy: CallbackPolicy) -> list[JobProblem]:
    problems = []
    for kind, url in urls.items():
        if found := await url_problem(policy, url, f"body.callbacks.{kind}"):
            problems.append(
                JobProblem(type=found["type"], message=found["message"], field=found["field"])
            )
    return problems


def valid_callbacks(body: Any) -> dict[str, str]:
    """The callback URLs of a body that are valid on their own, by kind."""
    callbacks = _member(body, "callbacks")
    urls = {}
    for kind in CALLBACK_KINDS:
        value = _member(callbacks, kind)
        if value is None:
            continue
        try:
            url = getattr(Callbacks.model_validate({kind: value}), kind)
        except ValidationError:
            continue  # the schema problem is reported already
        urls[kind] = str(url)
    return urls


def valid_files(body: Any) -> list[CodeFile]:
    """The code files of a body that are valid on their own."""
    files = _member(_member(body, "code"), "files")
    valid = []
    for item in files if isinstance(files, list) else []:
        try:
            valid.append(CodeFile.model_validate(item))
        except ValidationError:
            continue  # the schema problem is reported already
    return valid


def valid_inputs(body: Any) -> dict[str, str]:
    """The declared inputs of a body whose name and value are strings."""
    inputs = _member(_member(body, "spec"), "inputs")
    if not isinstance(inputs, dict):
        return {}
    return {k: v for k, v in inputs.items() if isinstance(k, str) and isinstance(v, str)}


def _member(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else None


def _file_of(body: Any, location: list[str]) -> str | None:
    """The code file a schema error is about, when it is about one."""
    if location[:2] != ["code", "files"] or len(location) < 3 or not location[2].isdigit():
        return None
    try:
        path = body["code"]["files"][int(location[2])]["path"]
    except (KeyError, IndexError, TypeError):
        return None
    return path if isinstance(path, str) else None
