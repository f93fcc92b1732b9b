"""Request-reply queries to the service that owns the data."""

from __future__ import annotations

from typing import TypeVar

from faststream.nats import NatsBroker
from nats.errors import NoRespondersError
from pydantic import BaseModel, ValidationError

from controlroom_contracts.rpc import RpcError
from controlroom_gateway.errors import UpstreamUnavailable

A = TypeVar("A", bound=BaseModel)


async def ask(
    broker: NatsBroker,
    query: BaseModel,
    subject: str,
    answer: type[A],
    *,
    service: str,
    timeout: float,
) -> A:
    """Send ``query`` and decode the answer; any failure is UpstreamUnavailable (503)."""
    try:
        response = await broker.request(query.model_dump_json(), subject, timeout=timeout)
    except (TimeoutError, NoRespondersError) as exc:
        raise UpstreamUnavailable(f"the {service} service did not answer in time") from exc
    try:
        return answer.model_validate_json(response.body)
    except ValidationError:
        try:
            reason = RpcError.model_validate_json(response.body).error
        except ValidationError:
            reason = "malformed reply"
        raise UpstreamUnavailable(f"{service} query failed: {reason}") from None
