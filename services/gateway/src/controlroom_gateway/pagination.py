"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

from controlroom_contracts.management import Cursor
from controlroom_gateway.errors import InvalidRequest

T = TypeVar("T")


def _opaque(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _unwrap(cursor: str) -> str:
    padded = cursor + "=" * (-len(cursor) % 4)
    return base64.b64decode(padded, altchars=b"-_", validate=True).decode()


def _not_ours() -> InvalidRequest:
    return InvalidRequest(
        "cursor is not one this API returned",
        errors=[{"field": "query.cursor", "message": "invalid cursor", "type": "value_error"}],
    )


def encode_cursor(created_at: datetime, run_id: UUID) -> str:
    return _opaque(f"{created_at.isoformat()}|{run_id}")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        stamp, run_id = _unwrap(cursor).split("|")
        return datetime.fromisoformat(stamp), UUID(run_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _not_ours() from exc


def encode_name_cursor(name: str) -> str:
    """A cursor for lists ordered by a unique name (templates)."""
    return _opaque(name)


def decode_name_cursor(cursor: str) -> str:
    try:
        return _unwrap(cursor)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise _not_ours() from exc


class _Keyed(Protocol):
    @property
    def created_at(self) -> datetime: ...
    @property
    def id(self) -> UUID: ...


def keyset_after(cursor: str | None) -> Cursor | None:
    """Where the page after ``cursor`` starts, for lists answered by another service."""
    if cursor is None:
        return None
    created_at, item_id = decode_cursor(cursor)
    return Cursor(created_at=created_at, id=item_id)


def keyset_next(items: Sequence[_Keyed], more: bool) -> str | None:
    """The cursor of the next page: after the last item, if there is more."""
    return keyset_next_by(items, more, lambda item: (item.created_at, item.id))


def keyset_next_by(
    items: Sequence[T], more: bool, key: Callable[[T], tuple[datetime, UUID]]
) -> str | None:
    """``keyset_next`` for items whose (created_at, id) ``key`` reads under other names."""
    if not more or not items:
        return None
    return encode_cursor(*key(items[-1]))
