"""Answering request-reply over NATS: decode the request, run the handler, reply with JSON.

Every failure is a reply, never silence: a request that does not decode is ``invalid``, a
handler's ``RpcFailure`` carries its own code, anything else is ``unavailable`` (and logged).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from faststream.message import StreamMessage
from pydantic import BaseModel, ValidationError

from controlroom_contracts.rpc import RpcError
from controlroom_runtime.service import ServiceRuntime

log = logging.getLogger(__name__)

Q = TypeVar("Q", bound=BaseModel)


class RpcFailure(Exception):
    """A request the owner refuses, with the reason the requester will see."""

    def __init__(self, code: Literal["invalid", "not_found"], error: str) -> None:
        super().__init__(error)
        self.code: Literal["invalid", "not_found"] = code
        self.error = error


def answer(
    runtime: ServiceRuntime,
    request: type[Q],
    handler: Callable[[Q], Awaitable[BaseModel | bytes]],
    *,
    queue: str,
    concurrency: int = 1,
) -> None:
    """Answer ``request.subject`` with ``handler``; replicas share the work through ``queue``.
    The handler answers a model, or the JSON of one.

    ``concurrency`` > 1 answers that many requests of this subject at once (each with its own
    session): one slow answer then holds up no other, and a handler that waits on Postgres
    lets the next request in. It must stay below the database pool's size."""
    subject: str = getattr(request, "subject")  # noqa: B009 - ClassVar on each request model

    async def reply(body: bytes) -> bytes:
        try:
            query = request.model_validate_json(body)
        except ValidationError as exc:
            return _error(f"invalid request: {exc}", "invalid")
        try:
            result = await handler(query)
        except RpcFailure as exc:
            return _error(exc.error, exc.code)
        except Exception as exc:
            log.exception("request failed", extra={"subject": subject})
            return _error(type(exc).__name__, "unavailable")
        # A handler with a large answer may hand it over serialised already (its own JSON of
        # the answer model), and spare building thousands of models only to dump them.
        return result if isinstance(result, bytes) else result.model_dump_json().encode()

    reply.__name__ = f"answer_{request.__name__}"
    # The body as it came, to the handler as its only argument: asking for the message object
    # instead (a context field) costs a hop to a worker thread per request in FastStream.
    options: dict[str, Any] = {"queue": queue, "decoder": _raw_body}
    if concurrency > 1:
        options["max_workers"] = concurrency
    runtime.broker.subscriber(subject, **options)(reply)


async def _raw_body(msg: StreamMessage[Any]) -> bytes:
    body: bytes = msg.body
    return body


def _error(error: str, code: Literal["invalid", "not_found", "unavailable"]) -> bytes:
    return RpcError(error=error, code=code).model_dump_json().encode()
