"""Entity names in query parameters: canonical, or a 422 naming the parameter."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from controlroom_contracts.api import NoNulStr
from controlroom_contracts.entities import MAX_ENTITY_LENGTH, EntityNameError, canonical_entity
from controlroom_gateway.errors import InvalidRequest

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


def entity_param(value: str, field: str) -> str:
    """The canonical form of ``value``; a 422 naming ``field`` when it is no entity name."""
    try:
        return canonical_entity(value)
    except EntityNameError as exc:
        raise InvalidRequest(
            f"{field}: {exc}", errors=[{"field": field, "message": str(exc), "type": "entity"}]
        ) from None
