"""OpenLineage RunEvents (spec 2-x) as the graph reads them, in and out.

Only what lineage keeps is modelled: the event type and time, the run id, the job's namespace
and name, and the datasets' namespaces and names. Facets and any other field are accepted and
ignored, so events from every producer (Airflow, Spark, dbt, ...) parse.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

OPENLINEAGE_SCHEMA_URL: Final = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
MAX_DATASETS: Final = 1_000
"""Per side of one event."""
MAX_EDGES_PER_EVENT: Final = 10_000
"""inputs x outputs: an event is one run's lineage, not a bulk load."""

EventType = Literal["START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER"]


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True, populate_by_name=True)


class OpenLineageRun(_Lenient):
    run_id: UUID = Field(alias="runId")


class OpenLineageJob(_Lenient):
    namespace: str = Field(min_length=1, max_length=1_024)
    name: str = Field(min_length=1, max_length=1_024)


class OpenLineageDataset(_Lenient):
    namespace: str = Field(min_length=1, max_length=1_024)
    name: str = Field(min_length=1, max_length=1_024)


class OpenLineageRunEvent(_Lenient):
    """The body of ``POST /api/v1/lineage`` (Marquez-compatible)."""

    event_type: EventType | None = Field(
        default=None,
        alias="eventType",
        description="Only COMPLETE records edges; the others are accepted and kept out",
    )
    event_time: datetime = Field(alias="eventTime")
    run: OpenLineageRun
    job: OpenLineageJob
    inputs: list[OpenLineageDataset] = Field(default_factory=list, max_length=MAX_DATASETS)
    outputs: list[OpenLineageDataset] = Field(default_factory=list, max_length=MAX_DATASETS)
    producer: str = Field(min_length=1, max_length=1_000)
    schema_url: str = Field(alias="schemaURL", min_length=1, max_length=1_000)

    def job_name(self) -> str:
        """The edge's job: ``<namespace>/<name>``."""
        return f"{self.job.namespace}/{self.job.name}"

    def to_wire(self) -> dict[str, object]:
        """The event as OpenLineage spells it (camelCase, only the fields modelled here)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)
