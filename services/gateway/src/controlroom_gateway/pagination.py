"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from controlroom_gateway.errors import InvalidRequest


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
