"""/openapi.json says what the API answers, so that generated clients work."""

from __future__ import annotations

from typing import Any

import httpx

PROBLEM_SCHEMA = {"$ref": "#/components/schemas/Problem"}


def _operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{method.upper()} {path}", operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
    ]


def _anonymous(schema: dict[str, Any]) -> bool:
    """An inline object or dict: a client generator can only call it a map, or invent a name."""
    if "$ref" in schema:
        return False
    for union in ("oneOf", "anyOf", "allOf"):
        if union in schema:
            return any(_anonymous(member) for member in schema[union])
    if schema.get("type") == "array":
        return _anonymous(schema.get("items", {}))
    return schema.get("type") in ("object", None) and "format" not in schema


async def test_every_error_is_problem_json_and_every_json_answer_a_named_schema(
    client: httpx.AsyncClient,
) -> None:
    document = (await client.get("/openapi.json")).json()
    wrong = []
    for name, operation in _operations(document):
        for status, response in operation["responses"].items():
            content = response.get("content", {})
            if status == "default" or status[0] in "45":
                if content != {"application/problem+json": {"schema": PROBLEM_SCHEMA}}:
                    wrong.append(f"{name} {status}: {content}")
            for media, body in content.items():
                if media == "application/json" and _anonymous(body.get("schema", {})):
                    wrong.append(f"{name} {status}: anonymous {body.get('schema')}")
        for media, body in operation.get("requestBody", {}).get("content", {}).items():
            if media == "application/json" and _anonymous(body.get("schema", {})):
                wrong.append(f"{name} request: anonymous {body.get('schema')}")
        if operation.get("security"):
            assert {"401", "429"} <= operation["responses"].keys(), name
    assert wrong == [], "\n".join(wrong)

    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    problem = schemas["Problem"]
    assert set(problem["required"]) == {"title", "status"}
    assert problem["additionalProperties"] is True  # extension members, e.g. retry_after
    assert schemas["FieldError"]["required"] == ["field", "message", "type"]


async def test_errors_no_route_raises_are_problem_json_too(client: httpx.AsyncClient) -> None:
    """Documented as ``default``: what Starlette answers before any route runs."""
    missing = await client.get("/api/v1/nowhere")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    not_allowed = await client.delete("/api/v1/jobs/run")
    assert not_allowed.status_code == 405
    assert not_allowed.headers["content-type"] == "application/problem+json"
    assert not_allowed.headers["allow"] == "POST"  # the problem handler used to drop it
