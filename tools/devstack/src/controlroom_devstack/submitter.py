"""Submit runs through the gateway as a client that must not lose one would: each job with an
``Idempotency-Key``, sent again under the same key after a refusal or a broken connection
until the gateway accepts it (a crash between commit and answer then returns the original
run instead of a second one). Every refusal is kept, to be judged by the test."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx


@dataclass
class Submission:
    tenant: str
    body: dict[str, Any]
    key: str = field(default_factory=lambda: uuid.uuid4().hex)
    run_id: str | None = None
    accepted_at: datetime | None = None
    refusals: list[str] = field(default_factory=list)
    """Each answer that was not an acceptance: ``503 application/problem+json`` or the
    exception's name."""


class Submitter:
    """Sends submissions with at most ``in_flight`` outstanding, ``interval`` seconds apart."""

    def __init__(
        self,
        base_url: str,
        tokens: Mapping[str, str],
        *,
        in_flight: int = 16,
        interval: float = 0.0,
        request_timeout: float = 10.0,
        retry_every: float = 0.2,
    ) -> None:
        self._base_url = base_url
        self._tokens = tokens
        self._slots = asyncio.Semaphore(in_flight)
        self._interval = interval
        self._timeout = request_timeout
        self._retry_every = retry_every
        self.submissions: list[Submission] = []
        self.accepted = 0

    async def run(self, jobs: Sequence[tuple[str, dict[str, Any]]], deadline: float) -> None:
        """Submit every ``(tenant, body)``; return once all are accepted. Raises TimeoutError
        if some are still refused ``deadline`` seconds from now."""
        limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
        async with httpx.AsyncClient(
            base_url=self._base_url, timeout=self._timeout, limits=limits
        ) as client:
            async with asyncio.timeout(deadline):
                async with asyncio.TaskGroup() as group:
                    for tenant, body in jobs:
                        submission = Submission(tenant, body)
                        self.submissions.append(submission)
                        await self._slots.acquire()
                        group.create_task(self._until_accepted(client, submission))
                        if self._interval:
                            await asyncio.sleep(self._interval)

    async def _until_accepted(self, client: httpx.AsyncClient, submission: Submission) -> None:
        headers = {
            "Authorization": f"Bearer {self._tokens[submission.tenant]}",
            "Idempotency-Key": submission.key,
        }
        try:
            while True:
                try:
                    response = await client.post(
                        "/api/v1/jobs/run", json=submission.body, headers=headers
                    )
                except httpx.HTTPError as exc:
                    submission.refusals.append(type(exc).__name__)
                else:
                    if response.status_code in (200, 202):
                        submission.run_id = str(response.json()["run_id"])
                        submission.accepted_at = datetime.now(UTC)
                        self.accepted += 1
                        return
                    kind = response.headers.get("content-type", "").split(";")[0]
                    submission.refusals.append(f"{response.status_code} {kind}")
                    if response.status_code < 500 and response.status_code != 429:
                        raise AssertionError(
                            f"submission refused for good: {response.status_code} "
                            f"{response.text[:500]}"
                        )
                # A retry under the same key, not a new job.
                await asyncio.sleep(self._retry_every)
        finally:
            self._slots.release()

    def accepted_runs(self) -> list[Submission]:
        return [s for s in self.submissions if s.run_id is not None]

    def refusals(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for submission in self.submissions:
            for refusal in submission.refusals:
                counts[refusal] = counts.get(refusal, 0) + 1
        return counts
