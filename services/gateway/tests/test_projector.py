"""The read model kept by a separate projector process (``CONTROLROOM_READ_MODEL=separate``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

import httpx

from controlroom_contracts.base import utc_now
from controlroom_contracts.events import RunCompleted
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_gateway.app import create_app
from controlroom_gateway.projector import create_projector_app
from controlroom_gateway.settings import GatewaySettings

from .test_api import job


async def test_with_a_separate_read_model_only_the_projector_applies_run_events(
    settings: GatewaySettings, token: Callable[..., str], event_tap: EventTap
) -> None:
    """The API process writes submitted runs but does not consume run events; the projector,
    sharing its schema and durable consumer, applies them."""
    separate = settings.model_copy(update={"read_model": "separate"})
    api_app = create_app(separate)
    async with (
        running(api_app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=api_app),
            base_url="http://gateway",
            headers={"Authorization": f"Bearer {token()}"},
        ) as api,
    ):
        run_id = UUID((await api.post("/api/v1/jobs/run", json=job())).json()["run_id"])
        assert api_app.state.runtime.consumer_names == []
        done = RunCompleted(
            tenant_id="acme", run_id=run_id, attempt=1, summary="ok", finished_at=utc_now()
        )
        await event_tap.publish(done.subject, done.model_dump_json().encode())

        async def status() -> str:
            view: dict[str, Any] = (await api.get(f"/api/v1/runs/{run_id}")).json()
            return str(view["status"])

        assert await status() == "queued"
        projector = create_projector_app(separate)
        async with running(projector):
            assert projector.state.runtime.consumer_names == ["gateway-read-model"]

            async def completed() -> bool:
                return await status() == "completed"

            await eventually(completed, what="the projector to apply RunCompleted")
