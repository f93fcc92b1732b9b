"""Request-reply to the service that owns the data, its refusals mapped to problem responses."""

from __future__ import annotations

from typing import TypeVar

from faststream.nats import NatsBroker
from nats.errors import NoRespondersError
from pydantic import BaseModel, ValidationError

from controlroom_contracts.rpc import RpcError
from controlroom_gateway.errors import InvalidRequest, NotFound, UpstreamUnavailable

A = TypeVar("A", bound=BaseModel)


class Asker:
    """Sends a request model on its own subject and decodes the owner's answer."""

    def __init__(self, broker: NatsBroker, timeout: float) -> None:
        self._broker = broker
        self._timeout = timeout

    async def __call__(
        self, query: BaseModel, answer: type[A], *, service: str, timeout: float | None = None
    ) -> A:
        """The answer; a refusal is NotFound (404) or InvalidRequest (422), any other
        failure UpstreamUnavailable (503)."""
        body = await self._request(query, service, timeout)
        try:
            return answer.model_validate_json(body)
        except ValidationError:
            pass
        raise _refusal(body, service)

    async def json(self, query: BaseModel, *, service: str, timeout: float | None = None) -> bytes:
        """The answer's JSON as the owner sent it, for passing straight on to the client: a
        large answer (a lineage graph of thousands of edges) is not decoded into models only
        to be encoded again. Refusals raise as with a call."""
        body = await self._request(query, service, timeout)
        if body.startswith(b'{"error":'):  # how every RpcError begins (its first field)
            raise _refusal(body, service)
        return body

    async def _request(self, query: BaseModel, service: str, timeout: float | None) -> bytes:
        subject: str = getattr(query, "subject")  # noqa: B009 - ClassVar on each request model
        try:
            response = await self._broker.request(
                query.model_dump_json(), subject, timeout=timeout or self._timeout
            )
        except (TimeoutError, NoRespondersError) as exc:
            raise UpstreamUnavailable(f"the {service} service did not answer in time") from exc
        body: bytes = response.body
        return body


def _refusal(body: bytes, service: str) -> Exception:
    try:
        refusal = RpcError.model_validate_json(body)
    except ValidationError:
        return UpstreamUnavailable(f"{service} sent a malformed reply")
    if refusal.code == "not_found":
        return NotFound(refusal.error)
    if refusal.code == "invalid":
        return InvalidRequest(refusal.error)
    return UpstreamUnavailable(f"{service} could not answer: {refusal.error}")
