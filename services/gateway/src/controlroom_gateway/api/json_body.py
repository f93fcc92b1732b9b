"""Request bodies parsed as interoperable JSON (RFC 8259 §8.2, §6), or refused as malformed.

Starlette parses with ``json.loads``, which accepts lone UTF-16 surrogates (``"\\ud800"``),
``NaN`` and ``Infinity``, and turns ``1e400`` into ``inf``. None of them can be stored in
Postgres or written back in an answer, so a body carrying one used to end in a 500 far from
where it came in. Here it is a 422 ``json_invalid`` like any other malformed body.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from typing import Any

import pydantic_core
from fastapi import Request, Response
from fastapi.routing import APIRoute


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(item) for item in value)
    return False


def parse_json(body: bytes) -> Any:
    """Parse ``body``; raise ``json.JSONDecodeError`` if it is not interoperable JSON."""
    try:
        # pydantic's parser refuses lone surrogates (and is faster than json.loads).
        value = pydantic_core.from_json(body, allow_inf_nan=False)
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), 0) from None
    if _has_non_finite(value):
        raise json.JSONDecodeError(
            "number out of range for a 64-bit float", body.decode("utf-8", "replace"), 0
        )
    return value


class InteroperableJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = parse_json(await self.body())
        return self._json


class InteroperableJsonRoute(APIRoute):
    """The route class of every gateway router: its JSON bodies go through ``parse_json``."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            return await handler(InteroperableJsonRequest(request.scope, request.receive))

        return handle
