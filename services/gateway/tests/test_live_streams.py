"""Live event streams are woken by the commits of their runs' events, not by polling, and the
streams a tenant may hold open at once are capped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
import pytest
from fastapi import FastAPI

from controlroom_contracts.base import utc_now
from controlroom_contracts.events import RunCompleted
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_gateway.app import create_app
from controlroom_gateway.read_model import history_store, projection
from controlroom_gateway.settings import GatewaySettings
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import unit_of_work

from .live_server import following, serving
from .test_api import PROBLEM, job

SLOW_POLL = {"sse_poll_interval_seconds": 3600.0}
"""The safety poll, set so that it never fires within a test: only a wake-up can help."""


@pytest.fixture
def settings(settings: GatewaySettings) -> GatewaySettings:
    return settings.model_copy(update=SLOW_POLL)


@asynccontextmanager
async def live_gateway(settings: GatewaySettings, token: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        running(app),
        serving(app) as base_url,
        httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api,
    ):
        yield api


async def submit(api: httpx.AsyncClient, headers: dict[str, str] | None = None) -> str:
    response = await api.post("/api/v1/jobs/run", json=job(), headers=headers)
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


def stream_path(run_id: str) -> str:
    return f"/api/v1/runs/{run_id}/events/stream"


async def complete(event_tap: EventTap, run_id: str, tenant: str = "acme") -> None:
    done = RunCompleted(
        tenant_id=tenant, run_id=UUID(run_id), attempt=1, summary="ok", finished_at=utc_now()
    )
    await event_tap.publish(done.subject, done.model_dump_json().encode())


async def test_an_event_committed_after_a_stream_opened_wakes_it_without_polling(
    settings: GatewaySettings, token: Callable[..., str], event_tap: EventTap
) -> None:
    async with live_gateway(settings, token()) as api:
        run_id = await submit(api)
        async with following(api, stream_path(run_id)) as stream:
            assert stream.status_code == 200
            progress = {"event_type": "progress", "data": {"percent": 10}}
            pushed = await api.post(f"/api/v1/runs/{run_id}/events", json=progress)
            assert pushed.status_code == 202

            async def delivered() -> bool:
                return stream.types == ["progress"]

            await eventually(delivered, what="the stream to be woken by the projected event")
            await complete(event_tap, run_id)

            async def ended() -> bool:
                return stream.ended

            await eventually(ended, what="the stream to close when the run ends")
            assert stream.types == ["progress", "completed"]


async def test_a_run_that_ends_between_two_reads_of_its_stream_still_sends_its_last_event(
    gateway: FastAPI, client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream reads the run's history, then whether the run has ended; the run's last
    event and its end commit together, and may do so between the two reads."""
    runtime: ServiceRuntime = gateway.state.runtime
    run_id = UUID((await client.post("/api/v1/jobs/run", json=job())).json()["run_id"])
    read = history_store.list_run_events
    reads = 0

    async def read_then_end_the_run(*args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        items = await read(*args, **kwargs)
        reads += 1
        if reads == 1:  # right after the stream's first read found nothing
            done = RunCompleted(
                tenant_id="acme", run_id=run_id, attempt=1, summary="ok", finished_at=utc_now()
            )
            async with unit_of_work(runtime.sessions, runtime.outbox) as uow:
                await projection.project(uow, [done])
        return items

    monkeypatch.setattr(history_store, "list_run_events", read_then_end_the_run)
    stream = await client.get(stream_path(str(run_id)), timeout=30)
    assert stream.status_code == 200
    assert [line for line in stream.text.splitlines() if line.startswith("event: ")] == [
        "event: completed"
    ]


async def test_open_streams_are_capped_per_tenant_and_a_closed_stream_frees_its_slot(
    settings: GatewaySettings, token: Callable[..., str], event_tap: EventTap
) -> None:
    capped = settings.model_copy(update={"sse_max_streams_per_tenant": 2})
    globex = {"Authorization": f"Bearer {token(tenant='globex')}"}
    async with live_gateway(capped, token()) as api:
        runs = [await submit(api) for _ in range(3)]
        theirs = await submit(api, headers=globex)
        async with following(api, stream_path(runs[0])) as first:
            async with following(api, stream_path(runs[1])) as second:
                assert (first.status_code, second.status_code) == (200, 200)
                async with following(api, stream_path(runs[2])) as refused:
                    assert refused.status_code == 429
                    assert refused.response.headers["content-type"] == PROBLEM
                    assert int(refused.response.headers["retry-after"]) >= 1
                    assert refused.response.json()["status"] == 429
                async with following(api, stream_path(theirs), headers=globex) as other:
                    assert other.status_code == 200  # another tenant has slots of its own

                # A stream that ends with its run gives its slot back before it closes.
                await complete(event_tap, runs[1])

                async def second_ended() -> bool:
                    return second.ended

                await eventually(second_ended, what="the stream of the completed run to close")
            async with following(api, stream_path(runs[2])) as third:
                assert third.status_code == 200
        # The client hung up on the first stream: its slot is free again once the server sees
        # the disconnect.

        async def accepted() -> bool:
            async with following(api, stream_path(runs[0])) as again:
                return again.status_code == 200

        await eventually(accepted, what="a disconnected stream to free its slot")
