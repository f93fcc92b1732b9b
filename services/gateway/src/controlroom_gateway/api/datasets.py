"""The dataset catalogue: every entity a run, an OpenLineage event or an admin named, with the
latest run that produced it and the latest that consumed it; the lineage service answers."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from controlroom_contracts.api import NoNulStr
from controlroom_contracts.entities import MAX_ENTITY_LENGTH
from controlroom_contracts.management import DatasetPage, DatasetView
from controlroom_gateway.api.deps import CurrentPrincipal, GatewayDep
from controlroom_gateway.api.json_body import InteroperableJsonRoute
from controlroom_gateway.api.problems import PROBLEM
from controlroom_gateway.lineage import datasets

router = APIRouter(prefix="/api/v1/datasets", tags=["lineage"], route_class=InteroperableJsonRoute)


@router.get(
    "",
    response_model=DatasetPage,
    summary="The tenant's datasets in name order, optionally those whose name starts with a prefix",
    responses={401: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def list_datasets(
    principal: CurrentPrincipal,
    gateway: GatewayDep,
    prefix: Annotated[
        NoNulStr | None,
        Query(max_length=MAX_ENTITY_LENGTH, description="Canonical name prefix, e.g. `s3://`"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2_000)] = None,
) -> DatasetPage:
    return await datasets.list_datasets(
        gateway, principal, prefix=prefix, limit=limit, cursor=cursor
    )


@router.get(
    "/{entity:path}",
    response_model=DatasetView,
    summary="One dataset, with how many live edges lead into and out of it",
    description="The entity in any accepted form (`supabase://raw.orders` is `raw.orders`); "
    "a URI's slashes need no escaping: `/api/v1/datasets/s3://bucket/curated/out`.",
    responses={401: PROBLEM, 404: PROBLEM, 422: PROBLEM, 503: PROBLEM},
)
async def get_dataset(
    entity: Annotated[NoNulStr, Path(min_length=1, max_length=MAX_ENTITY_LENGTH)],
    principal: CurrentPrincipal,
    gateway: GatewayDep,
) -> DatasetView:
    return await datasets.get_dataset(gateway, principal, entity)
