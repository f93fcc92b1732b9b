"""Entity names in query parameters (``lineage.graph.entity_param`` makes them canonical, or
a 422 naming the parameter)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from controlroom_contracts.api import NoNulStr
from controlroom_contracts.entities import MAX_ENTITY_LENGTH

EntityParam = Annotated[
    NoNulStr,
    Query(
        min_length=1,
        max_length=MAX_ENTITY_LENGTH,
        description="`schema.table`, `supabase://schema.table`, "
        "`postgres://host:port/db.schema.table`, `s3://bucket/prefix` or another URI",
        examples=["raw.orders"],
    ),
]
