"""Lineage subscribers: run events in; graph queries and admin requests over request-reply."""

from __future__ import annotations

from controlroom_contracts import subjects
from controlroom_contracts.base import Message
from controlroom_contracts.events import JobSubmitted, RunCompleted
from controlroom_contracts.management import AddLineageEdge, DeleteLineageEdge, ListLineageEdges
from controlroom_contracts.rpc import LineageGraph, LineageGraphQuery
from controlroom_lineage import service
from controlroom_lineage.management import LineageAdmin
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.rpc import answer
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import UnitOfWork


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

    async def graph(query: LineageGraphQuery) -> LineageGraph:
        async with runtime.sessions() as session:
            return await service.graph(session, query)

    admin = LineageAdmin(runtime)
    answer(runtime, LineageGraphQuery, graph, queue="lineage")
    answer(runtime, AddLineageEdge, admin.add, queue="lineage")
    answer(runtime, ListLineageEdges, admin.list, queue="lineage")
    answer(runtime, DeleteLineageEdge, admin.delete, queue="lineage")
