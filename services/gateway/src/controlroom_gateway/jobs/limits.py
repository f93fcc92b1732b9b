"""What a job must pass beyond its schema before it is queued or saved as a template: the
deployment's limits (job types, lanes, timeout, code size) and the callback policy."""

from __future__ import annotations

from collections.abc import Sequence

from controlroom_contracts.api import JobRequest
from controlroom_gateway.errors import InvalidJob
from controlroom_runtime.callback_policy import CallbackPolicy


class JobLimits:
    def __init__(
        self,
        job_types: Sequence[str],
        max_file_bytes: int,
        max_total_bytes: int,
        *,
        lanes: Sequence[str],
        max_timeout_seconds: int,
    ):
        self.job_types = frozenset(job_types)
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.lanes = tuple(lanes)
        self.max_timeout_seconds = max_timeout_seconds

    def check(self, job: JobRequest) -> None:
        """Refuse what the schema alone cannot: unknown job types and lanes, a timeout over
        the deployment's maximum, oversized code; every such problem at once."""
        found = self.problems(job)
        if found:
            raise InvalidJob(
                "; ".join(summary for summary, _error in found),
                errors=[error for _summary, error in found],
            )

    def problems(self, job: JobRequest) -> list[tuple[str, dict[str, str]]]:
        """Each problem: a sentence for the detail, and its ``errors`` entry."""
        found: list[tuple[str, dict[str, str]]] = []

        def problem(summary: str, field: str, message: str, type_: str) -> None:
            found.append((summary, {"field": field, "message": message, "type": type_}))

        if job.lane is not None and job.lane not in self.lanes:
            problem(
                f"unknown lane {job.lane!r}",
                "body.lane",
                f"must be one of {list(self.lanes)}",
                "unknown_lane",
            )
        if job.timeout_seconds is not None and job.timeout_seconds > self.max_timeout_seconds:
            problem(
                f"timeout_seconds {job.timeout_seconds} is over the maximum "
                f"{self.max_timeout_seconds}",
                "body.timeout_seconds",
                f"must be at most {self.max_timeout_seconds}",
                "too_large",
            )
        if job.job_type not in self.job_types:
            problem(
                f"unknown job_type {job.job_type!r}",
                "body.job_type",
                f"must be one of {sorted(self.job_types)}",
                "unknown_job_type",
            )
        total = 0
        for index, file in enumerate(job.code.files):
            size = len(file.content.encode())
            total += size
            if size > self.max_file_bytes:
                problem(
                    f"code file {file.path!r} is {size} bytes; the limit is {self.max_file_bytes}",
                    f"body.code.files.{index}.content",
                    f"larger than {self.max_file_bytes} bytes",
                    "too_large",
                )
        if total > self.max_total_bytes:
            problem(
                f"code files total {total} bytes; the limit is {self.max_total_bytes}",
                "body.code.files",
                "too large",
                "too_large",
            )
        return found


async def url_problem(policy: CallbackPolicy, url: str, field: str) -> dict[str, str] | None:
    """``{field, message, type}`` when the policy refuses a URL we would call; else None."""
    if problem := await policy.problem(url):
        return {"field": field, "message": problem[1], "type": problem[0]}
    return None


async def callback_problems(job: JobRequest, policy: CallbackPolicy) -> list[dict[str, str]]:
    """``{field, message, type}`` for each callback URL the policy refuses."""
    if job.callbacks is None:
        return []
    errors = []
    for kind in ("on_complete", "on_fail", "on_progress"):
        url = getattr(job.callbacks, kind)
        if url is not None and (
            error := await url_problem(policy, str(url), f"body.callbacks.{kind}")
        ):
            errors.append(error)
    return errors


async def check_callbacks(job: JobRequest, policy: CallbackPolicy) -> None:
    """Refuse callbacks to private, loopback (unless allow-listed), link-local or metadata hosts."""
    if errors := await callback_problems(job, policy):
        raise InvalidJob("; ".join(e["message"] for e in errors), errors=errors)


async def check_job(job: JobRequest, limits: JobLimits, policy: CallbackPolicy) -> None:
    """What a job must pass beyond its schema before it may be queued (or saved as a template)."""
    limits.check(job)
    await check_callbacks(job, policy)
