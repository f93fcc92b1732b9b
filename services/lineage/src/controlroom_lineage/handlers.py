"""Lineage subscribers: run events in; graph queries answered over request-reply."""

from __future__ import annotations

import logging

from faststream.nats.annotations import NatsMessage
from pydantic import ValidationError

from controlroom_contracts import subjects
from controlroom_contracts.base import Message
from controlroom_contracts.events import JobSubmitted, RunCompleted
from controlroom_contracts.rpc import LineageGraphQuery, RpcError
from controlroom_lineage import service
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


async def _on_event(uow: UnitOfWork, event: Message) -> None:
    if isinstance(event, JobSubmitted):
        await service.on_job_submitted(uow, event)
    elif isinstance(event, RunCompleted):
        await service.on_run_completed(uow, event)


def register(runtime: ServiceRuntime) -> None:
    models: dict[str, type[Message]] = {
        subjects.JOB_SUBMITTED: JobSubmitted,
        subjects.RUN_COMPLETED: RunCompleted,
    }
    runtime.consume(
        ConsumerSpec[Message](
            name="lineage",
            stream=subjects.EVENTS_STREAM,
            subjects=list(models),
            models=models,
            handler=_on_event,
        )
    )

    @runtime.broker.subscriber(subjects.LINEAGE_GRAPH_QUERY, queue="lineage")
    async def answer_graph_query(msg: NatsMessage) -> bytes:
        try:
            query = LineageGraphQuery.model_validate_json(msg.body)
        except ValidationError as exc:
            return RpcError(error=f"invalid query: {exc}").model_dump_json().encode()
        try:
            async with runtime.sessions() as session:
                graph = await service.graph(session, query)
        except Exception as exc:
            log.exception("lineage query failed")
            return RpcError(error=type(exc).__name__).model_dump_json().encode()
        return graph.model_dump_json().encode()
