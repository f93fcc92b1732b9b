"""An OpenLineage RunEvent checked and reduced to what the graph keeps: every problem of it
in one 422, and nothing sent to the lineage service unless all is well."""

from __future__ import annotations

from controlroom_contracts.entities import EntityNameError, openlineage_entity
from controlroom_contracts.management import RecordOpenLineage
from controlroom_contracts.openlineage import (
    MAX_EDGES_PER_EVENT,
    OpenLineageDataset,
    OpenLineageRunEvent,
)
from controlroom_gateway.errors import InvalidRequest

MAX_JOB_NAME = 1_024


def _entities(
    datasets: list[OpenLineageDataset], side: str, problems: list[dict[str, str]]
) -> list[str]:
    names: list[str] = []
    for index, dataset in enumerate(datasets):
        try:
            entity = openlineage_entity(dataset.namespace, dataset.name)
        except EntityNameError as exc:
            field = f"body.{side}.{index}"
            problems.append({"field": field, "message": str(exc), "type": "entity"})
            continue
        if entity not in names:
            names.append(entity)
    return names


def openlineage_request(
    event: OpenLineageRunEvent, tenant_id: str, recorded_by: str
) -> RecordOpenLineage:
    """The request for the lineage service; InvalidRequest (422) naming every bad field."""
    problems: list[dict[str, str]] = []
    inputs = _entities(event.inputs, "inputs", problems)
    outputs = _entities(event.outputs, "outputs", problems)
    job = event.job_name()
    if len(job) > MAX_JOB_NAME or any(ord(c) < 32 or ord(c) == 127 for c in job):
        problems.append(
            {
                "field": "body.job",
                "message": f"namespace/name must be at most {MAX_JOB_NAME} characters "
                "without control characters",
                "type": "job_name",
            }
        )
    if len(inputs) * len(outputs) > MAX_EDGES_PER_EVENT:
        problems.append(
            {
                "field": "body.outputs",
                "message": f"{len(inputs)} inputs x {len(outputs)} outputs make more than "
                f"{MAX_EDGES_PER_EVENT} edges for one event",
                "type": "too_many_edges",
            }
        )
    if problems:
        detail = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        raise InvalidRequest(detail, errors=problems)
    return RecordOpenLineage(
        tenant_id=tenant_id,
        event_type=event.event_type or "OTHER",
        event_time=event.event_time,
        run_id=event.run.run_id,
        job=job,
        producer=event.producer,
        recorded_by=recorded_by,
        inputs=inputs,
        outputs=outputs,
    )
