"""The filters of a runs query, read from its query string: shared by the runs list and the
counts per status, so the two always select the same runs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import Depends, Query

from controlroom_contracts.api import LANE_PATTERN, NoNulStr
from controlroom_gateway.read_model.store import RunFilter


def _run_filters(
    job_type: Annotated[NoNulStr | None, Query(max_length=64)] = None,
    created_by: Annotated[NoNulStr | None, Query(max_length=256)] = None,
    since: Annotated[datetime | None, Query(description="created at or after (ISO 8601)")] = None,
    session_id: UUID | None = None,
    lane: Annotated[str | None, Query(pattern=LANE_PATTERN)] = None,
    schedule_id: UUID | None = None,
) -> RunFilter:
    return RunFilter(
        job_type=job_type,
        created_by=created_by,
        since=since,
        session_id=session_id,
        lane=lane,
        schedule_id=schedule_id,
    )


RunFilters = Annotated[RunFilter, Depends(_run_filters)]
"""Every filter but ``status`` (the counts are per status; the runs list adds it)."""
