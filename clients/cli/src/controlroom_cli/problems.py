"""One line for an API error: ``<status> <title>: <field>: <message>; ...``.

The gateway answers errors as RFC 9457 problem+json; a 422 carries ``errors``, a list of
``{field, message, type}`` naming each bad field. Anything else (an HTML page from a proxy,
an empty body) still becomes one line.
"""

from __future__ import annotations

import json
from typing import Any

MOST_FIELDS = 5
"""Fields named in the line; the rest are counted."""
MOST_CHARACTERS = 400


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MOST_CHARACTERS else line[: MOST_CHARACTERS - 1] + "…"


def field_errors(errors: list[Any]) -> str:
    """``field: message; field: message (and 3 more)``."""
    named = []
    for error in errors[:MOST_FIELDS]:
        if isinstance(error, dict):
            field, message = error.get("field"), error.get("message")
            named.append(f"{field}: {message}" if field else str(message))
        else:
            named.append(str(error))
    more = len(errors) - MOST_FIELDS
    return "; ".join(named) + (f" (and {more} more)" if more > 0 else "")


def problem_line(status: int, reason: str, body: bytes | str) -> str:
    """What an error answer says, in one line (without the ``error:`` prefix)."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        problem = json.loads(text) if text.strip() else None
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        said = " ".join(text.split())
        return _one_line(f"{status} {reason}" + (f": {said}" if said else ""))
    title = problem.get("title") or reason
    errors = problem.get("errors")
    if isinstance(errors, list) and errors:
        said = field_errors(errors)
    elif isinstance(problem.get("detail"), str):
        said = problem["detail"]
    elif "detail" in problem:  # FastAPI's own {"detail": [...]} shape
        detail = problem["detail"]
        said = field_errors(detail) if isinstance(detail, list) else str(detail)
    else:
        said = ""
    line = f"{status} {title}" + (f": {said}" if said else "")
    return _one_line(line)
