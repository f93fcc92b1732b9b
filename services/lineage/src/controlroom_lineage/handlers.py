"""Lineage subscribers: run events in; the graph, admin requests, OpenLineage events and the
dataset catalogue over request-reply."""

from __future__ import annotations

from datetime import timedelta

from controlroom_contracts import subjects
from controlroom_contracts.base import Message
from controlroom_contracts.events import (
    JobSubmitted,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
)
from controlroom_contracts.management import (
    AddLineageEdge,
    DeleteLineageEdge,
    GetDataset,
    GetLineageEdge,
    GetLineageEdgeAudit,
    ListDatasets,
    ListLineageEdges,
    RecordOpenLineage,
    RestoreLineageEdge,
)
from controlroom_contracts.rpc import LineageGraphQuery
from controlroom_lineage import store
from controlroom_lineage.management import LineageRequests
from controlroom_lineage.openlineage_out import OpenLineageOut, retention_rule
from controlroom_lineage.service import DeclaredJob, RunLineage
from controlroom_lineage.settings import LineageSettings
from controlroom_runtime.consumer import ConsumerSpec
from controlroom_runtime.retention import RetentionRule
from controlroom_runtime.rpc import answer
from controlroom_runtime.service import ServiceRuntime
from controlroom_runtime.unit_of_work import UnitOfWork


def register(runtime: ServiceRuntime, settings: LineageSettings) -> None:
    openlineage = OpenLineageOut(settings, runtime.sessions)
    runs = RunLineage(openlineage)

    async def on_event(uow: UnitOfWork, event: Message) -> None:
        if isinstance(event, JobSubmitted):
            await runs.on_job_submitted(uow, event)
        elif isinstance(event, RunStarted):
            await runs.on_run_started(uow, event)
        elif isinstance(event, RunCompleted):
            await runs.on_run_completed(uow, event)
        elif isinstance(event, RunFailed | RunCancelled):
            await runs.on_run_ended(uow, event)

    models: dict[str, type[Message]] = {
        subjects.JOB_SUBMITTED: DeclaredJob,
        subjects.RUN_STARTED: RunStarted,
        subjects.RUN_COMPLETED: RunCompleted,
        subjects.RUN_FAILED: RunFailed,
        subjects.RUN_CANCELLED: RunCancelled,
    }
    runtime.consume(
        ConsumerSpec[Message](
            name="lineage",
            stream=subjects.EVENTS_STREAM,
            subjects=list(models),
            models=models,
            handler=on_event,
        )
    )
    if openlineage.enabled:
        runtime.background(openlineage.deliver_forever)
    runtime.retain(retention_rule(settings))
    # What a run declared is working state, not lineage: once the run is as old as the
    # gateway keeps runs, its lineage (if any) is in the edges already.
    runtime.retain(
        RetentionRule(
            name="declared_io",
            table=store.declared_io,
            aged_by="noted_at",
            horizon=timedelta(days=settings.run_retention_days),
        )
    )

    requests = LineageRequests(runtime)
    # The two requests that come in volume: graph queries, and OpenLineage events pushed by
    # whole estates' schedulers at once.
    busy = max(1, settings.db_pool_size // 2)
    answer(runtime, LineageGraphQuery, requests.graph, queue="lineage", concurrency=busy)
    # Many at once, as they are written in batches (one connection for a batch, not each).
    answer(
        runtime,
        RecordOpenLineage,
        requests.record_openlineage,
        queue="lineage",
        concurrency=64,
    )
    answer(runtime, AddLineageEdge, requests.add, queue="lineage")
    answer(runtime, ListLineageEdges, requests.list_edges, queue="lineage")
    answer(runtime, GetLineageEdge, requests.get, queue="lineage")
    answer(runtime, DeleteLineageEdge, requests.delete, queue="lineage")
    answer(runtime, RestoreLineageEdge, requests.restore, queue="lineage")
    answer(runtime, GetLineageEdgeAudit, requests.audit, queue="lineage")
    answer(runtime, ListDatasets, requests.datasets, queue="lineage")
    answer(runtime, GetDataset, requests.dataset, queue="lineage")
