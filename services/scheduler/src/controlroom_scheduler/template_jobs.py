"""The job a schedule submits, asked of the gateway (which owns templates) at each tick."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from faststream.nats import NatsBroker
from nats.errors import NoRespondersError
from pydantic import ValidationError

from controlroom_contracts.rpc import RpcError
from controlroom_contracts.schedules import TemplateJob, TemplateJobQuery

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Refused:
    """The gateway's answer that there is no job to submit (the template is gone, ...)."""

    reason: str


class TemplateJobs(Protocol):
    async def __call__(self, query: TemplateJobQuery) -> TemplateJob | Refused | None:
        """The job, a refusal, or None when no answer came (ask again at the next pass)."""
        ...


class AskTheGateway:
    """TemplateJobs over NATS request-reply, with a short timeout: a pass waits for no more."""

    def __init__(self, broker: NatsBroker, timeout: float) -> None:
        self._broker = broker
        self._timeout = timeout

    async def __call__(self, query: TemplateJobQuery) -> TemplateJob | Refused | None:
        try:
            response = await self._broker.request(
                query.model_dump_json(), query.subject, timeout=self._timeout
            )
        except (TimeoutError, NoRespondersError):
            log.warning("the gateway did not answer for a template", extra=_about(query))
            return None
        try:
            return TemplateJob.model_validate_json(response.body)
        except ValidationError:
            pass
        try:
            refusal = RpcError.model_validate_json(response.body)
        except ValidationError:
            log.warning("malformed template answer", extra=_about(query))
            return None
        if refusal.code == "unavailable":
            log.warning("the gateway could not answer for a template", extra=_about(query))
            return None
        return Refused(refusal.error)


def _about(query: TemplateJobQuery) -> dict[str, str]:
    return {"tenant_id": query.tenant_id, "template": query.name}
