"""The OpenAPI document says what the API answers, error responses included.

FastAPI documents a 422 as its own ``application/json`` ``HTTPValidationError``, and the
problem+json errors the routes declare get no schema; the gateway answers neither way. Rather
than trusting every route to say it right, the generated document is finished here, once:

- every 4xx, 5xx and ``default`` response is ``application/problem+json`` with the ``Problem``
  schema (the format of every error, see ``problems``);
- an operation that takes a token also documents 401 and 429, one with a body 413, and every
  operation a ``default`` problem for what is not listed (a 500, or a 503 when a service it
  asks does not answer);
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from controlroom_contracts.api import JobRequest
from controlroom_contracts.responses import FieldError, Problem
from controlroom_runtime.problems import PROBLEM_JSON

REF = "#/components/schemas/{model}"
SCHEMAS: tuple[tuple[type[BaseModel], JsonSchemaMode], ...] = (
    (Problem, "serialization"),
    (FieldError, "serialization"),
    (JobRequest, "validation"),
)
"""Named schemas the document refers to, whether or not a route's signature names them."""

ADDED_ERRORS = {
    "401": "Missing or invalid token",
    "429": "The tenant is over its request rate; `Retry-After` says when to try again",
}
FASTAPI_422 = "Validation Error"


def ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": REF.format(model=model.__name__)}


def json_body(model: type[BaseModel], description: str) -> dict[str, Any]:
    """``openapi_extra`` for a route that reads its JSON body itself: document it as ``model``."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": ref(model)}},
        }
    }


def install(app: FastAPI) -> None:
    """Serve the finished document at /openapi.json (and in /docs)."""
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            finish(generate())  # FastAPI keeps what it generated; finished in place, once
        assert app.openapi_schema is not None
        return app.openapi_schema

    # FastAPI's documented way to customise the document is to replace this method.
    app.openapi = openapi  # type: ignore[method-assign]


def finish(document: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = document.setdefault("components", {}).setdefault("schemas", {})
    _, named = models_json_schema(SCHEMAS, ref_template=REF)
    for name, schema in named.get("$defs", {}).items():
        schemas.setdefault(name, schema)
    paths: dict[str, dict[str, Any]] = document.get("paths", {})
    for item in paths.values():
        for operation in item.values():
            _body(operation)
            _errors(operation)
    for unused in ("HTTPValidationError", "ValidationError"):
        if json.dumps(document).count(REF.format(model=unused)) == 0:
            schemas.pop(unused, None)
    return document


def _body(operation: dict[str, Any]) -> None:
    """A body documented with ``json_body``: FastAPI leaves its own title beside the $ref."""
    for media in operation.get("requestBody", {}).get("content", {}).values():
        schema = media.get("schema", {})
        if "$ref" in schema:
            media["schema"] = {"$ref": schema["$ref"]}


def _errors(operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if operation.get("security"):
        for status, description in ADDED_ERRORS.items():
            responses.setdefault(status, {"description": description})
    if "requestBody" in operation:
        responses.setdefault("413", {"description": "Body too large"})
    responses.setdefault(
        "default", {"description": "Any other error, e.g. 503 when a service it asks is away"}
    )
    for status, response in responses.items():
        if status == "default" or status.startswith(("4", "5")):
            response["content"] = {PROBLEM_JSON: {"schema": ref(Problem)}}
            if response.get("description") == FASTAPI_422:
                response["description"] = "Invalid request; `errors` names each invalid part"
    # Statuses in order, default last, as a reader looks for them.
    operation["responses"] = dict(
        sorted(responses.items(), key=lambda item: (item[0] == "default", item[0]))
    )
