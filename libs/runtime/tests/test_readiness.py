"""``/readyz`` of a service whose outbox cannot publish: a stall is reported, then clears."""

from __future__ import annotations

from uuid import uuid4

import nats
from nats.js.api import StreamConfig

from controlroom_devstack.waiting import eventually
from controlroom_runtime.outbox import OutgoingMessage
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.settings import ServiceSettings

from .test_consumer import MIGRATIONS, metadata


async def test_a_stalled_outbox_makes_the_service_not_ready_until_it_drains(
    nats_url: str, database_url: str
) -> None:
    runtime = ServiceRuntime(
        name="readiness-test",
        settings=ServiceSettings(
            nats_url=nats_url,
            database_url=database_url,
            outbox_stall_seconds=0.5,
            outbox_relay_interval_seconds=0.2,
        ),
        metadata=metadata,
        migrations_dir=MIGRATIONS,
    )
    await runtime.start()
    try:
        assert (await runtime.readiness())["outbox"] == "ok"
        # No stream takes this subject yet: the message waits in the outbox.
        stuck = OutgoingMessage(uuid4(), "stalled.one", b"{}", {"Nats-Msg-Id": str(uuid4())})
        async with runtime.sessions.begin() as session:
            await runtime.outbox.stage(session, stuck)

        async def outbox_check() -> str:
            return (await runtime.readiness())["outbox"]

        async def stalled() -> bool:
            return (await outbox_check()).startswith("stalled")

        await eventually(stalled, what="the stall reported")

        client = await nats.connect(nats_url)
        try:
            await client.jetstream().add_stream(StreamConfig(name="STALL", subjects=["stalled.>"]))
        finally:
            await client.close()

        async def ready() -> bool:
            return await outbox_check() == "ok"

        await eventually(ready, timeout=30, what="the outbox drained by the relay")
    finally:
        await runtime.stop()
