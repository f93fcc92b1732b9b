"""Executor heartbeats and the roll call, against a real nats-server."""

from __future__ import annotations

import asyncio

import nats
from faststream.nats import NatsBroker
from nats.aio.msg import Msg

from controlroom_contracts import subjects
from controlroom_contracts.base import utc_now
from controlroom_contracts.executors import ExecutorHeartbeat
from controlroom_devstack.waiting import eventually
from controlroom_runtime.heartbeat import announce, call_the_roll

PROBE_SUBJECT = "controlroom.test.heartbeat_probe"


async def test_a_roll_call_gets_a_heartbeat_long_before_the_interval(nats_url: str) -> None:
    broker = NatsBroker(nats_url)
    await broker.start()
    listener = await nats.connect(nats_url)
    heard: list[ExecutorHeartbeat] = []

    async def on_beat(msg: Msg) -> None:
        heard.append(ExecutorHeartbeat.model_validate_json(msg.data))

    await listener.subscribe(subjects.EXECUTOR_HEARTBEAT, cb=on_beat)
    probes: list[Msg] = []

    async def on_probe(msg: Msg) -> None:
        probes.append(msg)

    await listener.subscribe(PROBE_SUBJECT, cb=on_probe)
    await listener.flush()

    async def path_open() -> bool:
        # About one run in ten, and only after another test, the first message between these
        # two fresh connections was not delivered (cause not found; heartbeats tolerate a lost
        # one, the next comes an interval later). So the test starts once the path from
        # publisher to listener is seen to carry messages.
        await broker.connection.publish(PROBE_SUBJECT, b"")
        return bool(probes)

    await eventually(path_open, timeout=10, what="the listener hearing the publisher")
    stopping = asyncio.Event()

    def beat() -> ExecutorHeartbeat:
        return ExecutorHeartbeat(
            executor_id="x-1",
            kind="docker",
            capacity=2,
            running=0,
            ready=True,
            started_at=utc_now(),
        )

    # An interval no test would wait out: only the roll call can bring the second beat.
    announcing = asyncio.create_task(announce(broker, beat, 3600.0, stopping))
    try:
        await eventually(lambda: _count(heard, 1), timeout=10, what="the first heartbeat")
        await call_the_roll(broker)
        await eventually(lambda: _count(heard, 2), timeout=10, what="a beat after the roll call")
        assert {b.executor_id for b in heard} == {"x-1"}
    finally:
        stopping.set()
        await asyncio.wait_for(announcing, timeout=5)
        await listener.close()
        await broker.stop()


async def _count(heard: list[ExecutorHeartbeat], at_least: int) -> bool:
    return len(heard) >= at_least
