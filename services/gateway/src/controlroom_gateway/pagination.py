"""Opaque cursors for keyset pagination."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from uuid import UUID

from controlroom_gateway.errors import InvalidRequest


def encode_cursor(created_at: datetime, run_id: UUID) -> str:
    raw = f"{created_at.isoformat()}|{run_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, run_id = raw.split("|")
        return datetime.fromisoformat(stamp), UUID(run_id)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise InvalidRequest(
            "cursor is not one this API returned",
            errors=[{"field": "query.cursor", "message": "invalid cursor", "type": "value_error"}],
        ) from exc
