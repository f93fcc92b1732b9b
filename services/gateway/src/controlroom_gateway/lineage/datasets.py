"""The dataset catalogue: every entity a run, an OpenLineage event or an admin named, with the
latest run that produced it and the latest that consumed it; the lineage service answers."""

from __future__ import annotations

from controlroom_contracts.management import (
    DatasetList,
    DatasetPage,
    DatasetView,
    GetDataset,
    ListDatasets,
)
from controlroom_gateway.auth import Principal
from controlroom_gateway.gateway import Gateway
from controlroom_gateway.lineage.graph import SERVICE, entity_param
from controlroom_gateway.pagination import decode_name_cursor, encode_name_cursor


async def list_datasets(
    gateway: Gateway, principal: Principal, *, prefix: str | None, limit: int, cursor: str | None
) -> DatasetPage:
    """The tenant's datasets in name order, optionally those whose name starts with ``prefix``."""
    request = ListDatasets(
        tenant_id=principal.tenant_id,
        prefix=prefix,
        limit=limit,
        after=decode_name_cursor(cursor) if cursor else None,
    )
    found = await gateway.ask(request, DatasetList, service=SERVICE)
    last = found.items[-1].entity if found.items and found.more else None
    return DatasetPage(items=found.items, next_cursor=encode_name_cursor(last) if last else None)


async def get_dataset(gateway: Gateway, principal: Principal, entity: str) -> DatasetView:
    """One dataset, named in any accepted form, with its live edges in and out counted."""
    request = GetDataset(tenant_id=principal.tenant_id, entity=entity_param(entity, "path.entity"))
    return await gateway.ask(request, DatasetView, service=SERVICE)
