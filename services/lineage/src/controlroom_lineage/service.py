"""Lineage use cases: our runs' declared datasets become edges when the run completes, and
are announced to an OpenLineage endpoint as the run starts and ends."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import model_validator

from controlroom_contracts.base import utc_now
from controlroom_contracts.entities import declared_entities, declared_entity_problems
from controlroom_contracts.events import (
    JobSubmitted,
    LineageRecorded,
    RunCancelled,
    RunCompleted,
    RunFailed,
    RunStarted,
)
from controlroom_lineage import declarations
from controlroom_lineage.openlineage_out import OpenLineageOut
from controlroom_lineage.recording import RunRecord, record_runs
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)


class DeclaredJob(JobSubmitted):
    """A submission as lineage reads it: its declared datasets must be entity names.

    The gateway refuses a malformed name at submit; an event published straight to the stream
    with one fails to decode here, so it is dead-lettered with the reason instead of being
    retried: no retry can make the name valid."""

    @model_validator(mode="after")
    def _entities_parse(self) -> DeclaredJob:
        problems = declared_entity_problems(self.job.spec.inputs)
        if problems:
            raise ValueError("; ".join(f"spec.inputs.{key}: {why}" for key, why in problems))
        return self


def job_name(event: JobSubmitted) -> str:
    """The edge's job: the request's name (a template's for template and scheduled runs),
    else its job type."""
    return event.job.name or event.job.job_type


class RunLineage:
    def __init__(self, openlineage: OpenLineageOut) -> None:
        self._openlineage = openlineage

    async def on_job_submitted(self, uow: UnitOfWork, event: JobSubmitted) -> None:
        sources, targets = declared_entities(event.job.spec.inputs)
        completed = await declarations.note_declared(
            uow.session,
            run_id=event.run_id,
            tenant_id=event.tenant_id,
            job_type=event.job.job_type,
            job_name=job_name(event),
            sources=sources,
            targets=targets,
        )
        if completed:  # the usual order is submitted, then completed
            await self._record_if_ready(uow, event.run_id, utc_now())

    async def on_run_started(self, uow: UnitOfWork, event: RunStarted) -> None:
        if event.attempt == 1:  # a run starts once, however many attempts it takes
            await self._announce(uow, event.run_id, "START", event.occurred_at)

    async def on_run_completed(self, uow: UnitOfWork, event: RunCompleted) -> None:
        await declarations.note_completed(
            uow.session, run_id=event.run_id, tenant_id=event.tenant_id
        )
        await self._record_if_ready(uow, event.run_id, event.finished_at)

    async def on_run_ended(self, uow: UnitOfWork, event: RunFailed | RunCancelled) -> None:
        kind: Literal["FAIL", "ABORT"] = "FAIL" if isinstance(event, RunFailed) else "ABORT"
        await self._announce(uow, event.run_id, kind, event.finished_at)

    async def _announce(
        self,
        uow: UnitOfWork,
        run_id: UUID,
        event_type: Literal["START", "COMPLETE", "FAIL", "ABORT"],
        at: datetime,
        declared: declarations.Declared | None = None,
    ) -> None:
        if not self._openlineage.enabled:
            return
        declared = declared or await declarations.declared(uow.session, run_id)
        if declared is None:
            log.warning(
                "run event before its submission: not announced",
                extra={"run_id": str(run_id), "event_type": event_type},
            )
            return
        await self._openlineage.stage(
            uow.session,
            event_type=event_type,
            run_id=run_id,
            tenant_id=declared.tenant_id,
            job_name=declared.job_name,
            event_time=at,
            inputs=declared.sources,
            outputs=declared.targets,
        )

    async def _record_if_ready(self, uow: UnitOfWork, run_id: UUID, at: datetime) -> None:
        """Events may arrive in either order; the run is recorded once both are known."""
        ready = await declarations.claim_recording(uow.session, run_id)
        if ready is None:
            return
        await self._announce(uow, run_id, "COMPLETE", at, ready)
        if not (ready.sources and ready.targets):
            return  # an edge needs both ends
        record = RunRecord(
            tenant_id=ready.tenant_id,
            job=ready.job_name,
            origin="run",
            run_id=run_id,
            at=at,
            actor=f"run:{run_id}",
            sources=ready.sources,
            targets=ready.targets,
        )
        (recorded,) = await record_runs(uow.session, [record])
        await uow.emit(
            LineageRecorded(
                tenant_id=ready.tenant_id,
                run_id=run_id,
                job=ready.job_name,
                sources=ready.sources,
                targets=ready.targets,
                edges=recorded.edges,
                new_edges=recorded.new_edges,
            )
        )
        log.info(
            "lineage recorded",
            extra={"run_id": str(run_id), "edges": recorded.edges, "new": recorded.new_edges},
        )
