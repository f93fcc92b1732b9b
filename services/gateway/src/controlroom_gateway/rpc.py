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
        subject: str = getattr(query, "subject")  # noqa: B009 - ClassVar on each request model
        try:
            response = await self._broker.request(
                query.model_dump_json(), subject, timeout=timeout or self._timeout
            )
        except (TimeoutError, NoRespondersError) as exc:
            raise UpstreamUnavailable(f"the {service} service did not answer in time") from exc
        try:
            return answer.model_validate_json(response.body)
        except ValidationError:
            pass
        try:
            refusal = RpcError.model_validate_json(response.body)
        except ValidationError:
            raise UpstreamUnavailable(f"{service} sent a malformed reply") from None
        if refusal.code == "not_found":
            raise NotFound(refusal.error)
        if refusal.code == "invalid":
            raise InvalidRequest(refusal.error)
        raise UpstreamUnavailable(f"{service} could not answer: {refusal.error}")
