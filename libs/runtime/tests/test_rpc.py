"""Request-reply is answered from the moment a service has started, against a real nats-server.

nats-py's ``Client.flush()`` writes its PING ahead of the SUBs still queued for its flusher
task, so its PONG used to come back, now and then, before the server had the subscriptions: a
request sent right after start found no one listening (about one start in ten).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import nats
import sqlalchemy as sa
from nats.aio.msg import Msg
from pydantic import BaseModel

from controlroom_runtime.messaging_tables import inbox_table, outbox_table
from controlroom_runtime.rpc import answer
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.settings import ServiceSettings
from controlroom_runtime.subscriptions import settle

MIGRATIONS = Path(__file__).parent / "consumer_migrations"
STARTS = 60
ROUNDS = 2000


class Echo(BaseModel):
    subject: ClassVar[str] = "controlroom.test.rpc.echo"
    text: str


# The service answers others too, subscribed before the one asked (as the lineage service
# does): that one is the furthest behind an early PING.
ANSWERED: list[type[Echo]] = [
    *(type(f"Other{i}", (Echo,), {"subject": f"controlroom.test.rpc.other{i}"}) for i in range(3)),
    Echo,
]


def _metadata() -> sa.MetaData:
    metadata = sa.MetaData(schema="consumer_test")
    outbox_table(metadata)
    inbox_table(metadata)
    return metadata


async def test_a_service_answers_a_request_sent_the_moment_it_has_started(
    nats_url: str, database_url: str
) -> None:
    # A plain connection (no wildcard subscription of its own): a request that finds no
    # subscriber fails at once with NoRespondersError instead of waiting out a timeout.
    requester = await nats.connect(nats_url)
    settings = ServiceSettings(nats_url=nats_url, database_url=database_url)

    async def echo(request: Echo) -> BaseModel:
        return request

    try:
        for start in range(STARTS):
            runtime = ServiceRuntime(
                name="rpc-test", settings=settings, metadata=_metadata(), migrations_dir=MIGRATIONS
            )
            for model in ANSWERED:
                answer(runtime, model, echo, queue="rpc-test")
            await runtime.start()
            try:
                reply = await requester.request(
                    Echo.subject, Echo(text=f"start {start}").model_dump_json().encode(), timeout=5
                )
                assert Echo.model_validate_json(reply.data).text == f"start {start}"
            finally:
                await runtime.stop()
    finally:
        await requester.close()


async def test_settle_leaves_the_subscriptions_made_before_it_live_on_the_server(
    nats_url: str,
) -> None:
    requester = await nats.connect(nats_url)
    try:
        for round_ in range(ROUNDS):
            responder = await nats.connect(nats_url)
            try:

                async def reply(msg: Msg) -> None:
                    await msg.respond(msg.data)

                # Subjects of this round only: the last round's connection, just closed, may
                # still be known to the server for a moment, and must not take the request.
                probes = [f"controlroom.test.rpc.probe.{round_}.{i}" for i in range(4)]
                for subject in probes:
                    await responder.subscribe(subject, queue="probe", cb=reply)
                await settle(responder)
                # Raises NoRespondersError if the server does not know the subscription yet.
                answered = await requester.request(probes[-1], b"ping", timeout=5)
                assert answered.data == b"ping"
            finally:
                await responder.close()
    finally:
        await requester.close()
