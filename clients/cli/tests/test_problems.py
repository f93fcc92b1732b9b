"""An API error in one line that names the field(s)."""

from __future__ import annotations

import json

from controlroom_cli.problems import problem_line


def body(**fields: object) -> bytes:
    return json.dumps({"type": "about:blank", **fields}).encode()


def test_a_422_names_each_field() -> None:
    errors = [{"field": "body.spec.text", "message": "Field required", "type": "missing"}]
    answer = body(title="Invalid request", status=422, detail="body.spec.text: ...", errors=errors)
    assert problem_line(422, "Unprocessable Entity", answer) == (
        "422 Invalid request: body.spec.text: Field required"
    )


def test_many_fields_are_counted_past_five() -> None:
    errors = [{"field": f"body.f{n}", "message": "bad"} for n in range(8)]
    line = problem_line(422, "Unprocessable Entity", body(title="Invalid job", errors=errors))
    assert line.endswith("body.f4: bad (and 3 more)") and "body.f5" not in line


def test_the_detail_is_used_without_errors() -> None:
    answer = body(title="Run already finished", status=409, detail="run r already completed")
    assert (
        problem_line(409, "Conflict", answer) == "409 Run already finished: run r already completed"
    )


def test_fastapis_own_detail_list_names_its_fields() -> None:
    answer = json.dumps({"detail": [{"field": "query.limit", "message": "too big"}]})
    assert problem_line(422, "Unprocessable Entity", answer) == (
        "422 Unprocessable Entity: query.limit: too big"
    )


def test_anything_else_is_still_one_line() -> None:
    assert problem_line(503, "Service Unavailable", b"") == "503 Service Unavailable"
    assert problem_line(500, "Internal Server Error", b"oops\n  at line 3\n") == (
        "500 Internal Server Error: oops at line 3"
    )
    long = problem_line(502, "Bad Gateway", b"x" * 2000)
    assert len(long) == 400 and "\n" not in long
