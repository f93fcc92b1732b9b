"""Notifier against a real nats-server, Postgres and a real local HTTP receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from uuid import UUID, uuid4

import pytest
from standardwebhooks.webhooks import Webhook

from controlroom_contracts import subjects
from controlroom_contracts.api import (
    Callbacks,
    CodeBundle,
    CodeFile,
    FailureReason,
    JobRequest,
    JobSpec,
)
from controlroom_contracts.base import utc_now
from controlroom_contracts.events import JobSubmitted, RunCompleted, RunFailed
from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.receiver import CallbackReceiver
from controlroom_devstack.tap import EventTap
from controlroom_notifier.app import create_app
from controlroom_notifier.settings import DEVELOPMENT_SECRET, NotifierSettings


@pytest.fixture
async def receiver() -> AsyncIterator[CallbackReceiver]:
    server = CallbackReceiver(fail_first=0)
    await server.start()
    yield server
    await server.stop()


def _settings(nats_url: str, database_url: str) -> NotifierSettings:
    return NotifierSettings(
        callback_allowlist=["127.0.0.0/8"],
        nats_url=nats_url,
        database_url=database_url,
        delivery_poll_interval_seconds=0.2,
    )


def _submitted(receiver: CallbackReceiver) -> JobSubmitted:
    return JobSubmitted(
        tenant_id="t1",
        run_id=uuid4(),
        job=JobRequest(
            job_type="diagram_export",
            spec=JobSpec(text="x"),
            code=CodeBundle(files=[CodeFile(path="a.py", content="")]),
            created_by="test",
            callbacks=Callbacks(on_complete=receiver.url("done"), on_fail=receiver.url("fail")),
        ),
    )


async def test_completion_posts_signed_on_complete_once(
    nats_url: str, database_url: str, event_tap: EventTap, receiver: CallbackReceiver
) -> None:
    async with running(create_app(_settings(nats_url, database_url))):
        submitted = _submitted(receiver)
        done = RunCompleted(
            tenant_id="t1",
            run_id=submitted.run_id,
            attempt=1,
            summary="1000 rows",
            finished_at=utc_now(),
        )
        await event_tap.publish(submitted.subject, submitted.model_dump_json().encode())
        await event_tap.publish(done.subject, done.model_dump_json().encode())
        # The same completion again under another message id: still one callback.
        await event_tap.publish(
            done.subject, done.model_dump_json().encode(), {"Nats-Msg-Id": "dup"}
        )
        got = await receiver.wait_for(lambda r: r.path == "/done")
        body = got.json()
        assert body["run_id"] == str(submitted.run_id)
        assert body["status"] == "completed" and body["summary"] == "1000 rows"
        Webhook(DEVELOPMENT_SECRET).verify(
            got.body, got.headers
        )  # raises if the signature is wrong
        await event_tap.wait_for(
            subjects.WEBHOOK_DELIVERED, lambda d: d["run_id"] == str(submitted.run_id)
        )
        assert len(receiver.matching(lambda r: r.path == "/done")) == 1


async def test_failure_posts_on_fail_even_when_it_arrives_before_the_submission(
    nats_url: str, database_url: str, event_tap: EventTap, receiver: CallbackReceiver
) -> None:
    async with running(create_app(_settings(nats_url, database_url))):
        submitted = _submitted(receiver)
        failed = RunFailed(
            tenant_id="t1",
            run_id=submitted.run_id,
            attempt=1,
            failure_reason=FailureReason.exit_code,
            exit_code=3,
            error="boom",
            finished_at=utc_now(),
        )
        await event_tap.publish(failed.subject, failed.model_dump_json().encode())
        await event_tap.publish(submitted.subject, submitted.model_dump_json().encode())
        got = await receiver.wait_for(lambda r: r.path == "/fail")
        assert got.json()["status"] == "failed" and got.json()["exit_code"] == 3


async def test_receiver_errors_are_retried_until_delivered(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    flaky = CallbackReceiver(fail_first=2)
    await flaky.start()
    try:
        async with running(create_app(_settings(nats_url, database_url))):
            submitted = _submitted(flaky)
            done = RunCompleted(
                tenant_id="t1",
                run_id=submitted.run_id,
                attempt=1,
                summary="ok",
                finished_at=utc_now(),
            )
            await event_tap.publish(submitted.subject, submitted.model_dump_json().encode())
            await event_tap.publish(done.subject, done.model_dump_json().encode())
            delivered = await event_tap.wait_for(
                subjects.WEBHOOK_DELIVERED,
                lambda d: d["run_id"] == str(submitted.run_id),
                timeout=30,
            )
            assert delivered.data["attempts"] == 3
            ids = {r.headers["webhook-id"] for r in flaky.received}
            assert len(flaky.received) == 3 and len(ids) == 1  # one delivery id across retries
    finally:
        await flaky.stop()


async def test_malformed_event_is_dead_lettered(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(_settings(nats_url, database_url))):
        await event_tap.publish(
            subjects.RUN_COMPLETED,
            b'{"tenant_id": "t1", "run_id": "%s"}' % str(UUID(int=1)).encode(),
        )
        dead = await event_tap.wait_for(subjects.deadletter_subject("notifier"))
        assert "summary" in dead.data["reason"]


async def test_callback_to_a_refused_address_fails_for_good_without_a_request(
    nats_url: str, database_url: str, event_tap: EventTap
) -> None:
    async with running(create_app(_settings(nats_url, database_url))):
        # Published straight to NATS (not through the gateway's checks): the notifier still refuses.
        submitted = JobSubmitted(
            tenant_id="t1",
            run_id=uuid4(),
            job=JobRequest(
                job_type="diagram_export",
                spec=JobSpec(text="x"),
                code=CodeBundle(files=[CodeFile(path="a.py", content="")]),
                created_by="internal",
                callbacks=Callbacks.model_validate(
                    {"on_complete": "http://169.254.169.254/latest/meta-data"}
                ),
            ),
        )
        done = RunCompleted(
            tenant_id="t1", run_id=submitted.run_id, attempt=1, summary="ok", finished_at=utc_now()
        )
        await event_tap.publish(submitted.subject, submitted.model_dump_json().encode())
        await event_tap.publish(done.subject, done.model_dump_json().encode())
        failed = await event_tap.wait_for(
            subjects.WEBHOOK_FAILED, lambda d: d["run_id"] == str(submitted.run_id)
        )
        assert failed.data["attempts"] == 1 and "refused" in failed.data["error"]
