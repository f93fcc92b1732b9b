"""Gateway errors: what a use case refuses, each with the HTTP status and title it is answered
with (``api.problems`` turns them into RFC 9457 problem+json responses)."""

from __future__ import annotations

from typing import Any


class GatewayError(Exception):
    """Base of every error the gateway answers with a problem document."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions


class Unauthorized(GatewayError):
    """No valid bearer token."""

    status, title = 401, "Unauthorized"


class Forbidden(GatewayError):
    """The token's role may not do this."""

    status, title = 403, "Forbidden"


class RunNotFound(GatewayError):
    """No run with this id for the caller's tenant (another tenant's run is not found too)."""

    status, title = 404, "Run not found"


class NotFound(GatewayError):
    """No such resource (a template, its version, a lineage edge, a webhook endpoint) for the
    caller's tenant; another tenant's is not found too."""

    status, title = 404, "Not found"


class RunAlreadyFinished(GatewayError):
    """The run completed or failed before it could be cancelled."""

    status, title = 409, "Run already finished"


class ArtifactNotFound(GatewayError):
    """No artifact with this id for the caller's tenant."""

    status, title = 404, "Artifact not found"


class PayloadTooLarge(GatewayError):
    """The upload is larger than the configured limit."""

    status, title = 413, "Payload too large"


class InvalidJob(GatewayError):
    """The job is well formed but not acceptable (unknown job type, files too large, ...)."""

    status, title = 422, "Invalid job"


class IdempotencyConflict(GatewayError):
    """The Idempotency-Key was already used with a different request body."""

    status, title = 409, "Idempotency key reused"


class InvalidRequest(GatewayError):
    """A query parameter or header that the schema accepts but the API cannot use."""

    status, title = 422, "Invalid request"


class TooManyRequests(GatewayError):
    """The tenant is over its request rate."""

    status, title = 429, "Too many requests"


class UpstreamUnavailable(GatewayError):
    """A service the gateway asked did not answer in time."""

    status, title = 503, "Service unavailable"
