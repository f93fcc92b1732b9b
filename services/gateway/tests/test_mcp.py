"""The MCP server at /mcp, driven by the real ``mcp`` client SDK over Streamable HTTP against a
live gateway: every tool, the viewer's narrower list, tenants, and errors as tool errors."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.types import CallToolResult, TextContent, TextResourceContents
from pydantic import AnyUrl

from controlroom_devstack.pytest_plugin import running
from controlroom_devstack.tap import EventTap
from controlroom_devstack.waiting import eventually
from controlroom_gateway.app import create_app
from controlroom_gateway.mcp import reading
from controlroom_gateway.mcp.server import build_server
from controlroom_gateway.mcp.tools import READ_TOOLS, WRITE_TOOLS
from controlroom_gateway.settings import GatewaySettings
from controlroom_lineage.app import create_app as lineage_app
from controlroom_lineage.settings import LineageSettings

from .live_server import serving
from .test_api import PROBLEM, job
from .test_live_streams import SLOW_POLL, complete

ALL_TOOLS = READ_TOOLS | WRITE_TOOLS


@pytest.fixture
def settings(settings: GatewaySettings) -> GatewaySettings:
    # Only a wake-up can end wait_for_run early: the safety poll never fires within a test.
    return settings.model_copy(update=SLOW_POLL)


@asynccontextmanager
async def live(
    settings: GatewaySettings, token: str
) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    """The gateway on a real port: its URL, and a REST client presenting ``token``."""
    app = create_app(settings)
    async with (
        running(app),
        serving(app) as base_url,
        httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        ) as api,
    ):
        yield base_url, api


@asynccontextmanager
async def mcp_session(base_url: str, token: str) -> AsyncIterator[ClientSession]:
    """An initialised MCP session over Streamable HTTP, presenting ``token``."""
    async with (
        httpx.AsyncClient(
            headers={"Authorization": f"Bearer {token}"}, timeout=httpx.Timeout(30, read=330)
        ) as http,
        streamable_http_client(f"{base_url}/mcp", http_client=http) as (read, write, _),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def text_of(result: CallToolResult) -> str:
    (content,) = result.content
    assert isinstance(content, TextContent), content
    return content.text


def answer(result: CallToolResult) -> Any:
    """A successful tool call's JSON answer."""
    assert not result.isError, text_of(result)
    return result.structuredContent if result.structuredContent else json.loads(text_of(result))


def problem(result: CallToolResult) -> dict[str, Any]:
    """A tool error's problem document (RFC 9457, as REST answers it)."""
    assert result.isError, text_of(result)
    document: dict[str, Any] = json.loads(text_of(result))
    return document


async def submitted(api: httpx.AsyncClient) -> str:
    response = await api.post("/api/v1/jobs/run", json=job())
    assert response.status_code == 202, response.text
    return str(response.json()["run_id"])


async def test_operator_sees_and_calls_every_tool(
    settings: GatewaySettings,
    token: Callable[..., str],
    event_tap: EventTap,
    nats_url: str,
    database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Log events read two at a time: the tails and ranges below span several pages.
    monkeypatch.setattr(reading, "EVENT_PAGE", 2)
    lineage = lineage_app(LineageSettings(nats_url=nats_url, database_url=database_url))
    async with running(lineage), live(settings, token(role="admin")) as (base_url, api):
        async with mcp_session(base_url, token()) as mcp:
            listed = {tool.name for tool in (await mcp.list_tools()).tools}
            assert listed == ALL_TOOLS

            report = answer(await mcp.call_tool("validate_job", {"job": job()}))
            assert report["errors"] == [], report

            run = answer(await mcp.call_tool("submit_job", {"job": job()}))
            run_id = run["run_id"]
            assert run["status"] == "queued"
            view = answer(await mcp.call_tool("get_run", {"run_id": run_id}))
            assert (view["run_id"], view["status"], view["job_type"]) == (
                run_id,
                "queued",
                "spark_etl",
            )

            # The run's logs: pushed as REST does, read back whole, as a tail, and as a range.
            for lines in (["one", "two"], ["three"], ["four", "five"]):
                pushed = await api.post(
                    f"/api/v1/runs/{run_id}/events",
                    json={"event_type": "log", "data": {"lines": lines}},
                )
                assert pushed.status_code == 202, pushed.text

            async def all_lines() -> dict[str, Any] | None:
                logs = answer(await mcp.call_tool("get_logs", {"run_id": run_id}))
                return logs if len(logs["lines"]) == 5 else None

            logs = await eventually(all_lines, what="the pushed log lines")
            assert [line["line"] for line in logs["lines"]] == [
                "one",
                "two",
                "three",
                "four",
                "five",
            ]
            assert not logs["truncated"]
            first_event = logs["lines"][0]["event_id"]
            tail = answer(await mcp.call_tool("get_logs", {"run_id": run_id, "tail": 2}))
            assert [line["line"] for line in tail["lines"]] == ["four", "five"]
            assert tail["truncated"]
            after_first = answer(
                await mcp.call_tool(
                    "get_logs",
                    {
                        "run_id": run_id,
                        "after_event_id": first_event,
                        "until_event_id": first_event + 1,
                    },
                )
            )
            assert [line["line"] for line in after_first["lines"]] == ["three"]

            # Artifacts: text inline, binary as its download URL.
            for path, body, kind in (
                ("out/report.txt", b"all good\n", "text/plain"),
                ("out/model.bin", b"\x00\xff" * 10, "application/octet-stream"),
            ):
                uploaded = await api.post(
                    "/api/v1/artifacts",
                    data={"run_id": run_id, "path": path},
                    files={"file": (path, body, kind)},
                )
                assert uploaded.status_code == 201, uploaded.text

            async def both_artifacts() -> list[dict[str, Any]] | None:
                found = answer(await mcp.call_tool("list_artifacts", {"run_id": run_id}))
                items: list[dict[str, Any]] = found["items"]
                return items if len(items) == 2 else None

            by_path = {a["path"]: a for a in await eventually(both_artifacts, what="artifacts")}
            report_txt = answer(
                await mcp.call_tool(
                    "get_artifact", {"artifact_id": by_path["out/report.txt"]["id"]}
                )
            )
            assert (report_txt["inline"], report_txt["text"]) == (True, "all good\n")
            model_bin = answer(
                await mcp.call_tool("get_artifact", {"artifact_id": by_path["out/model.bin"]["id"]})
            )
            assert model_bin["inline"] is False and model_bin["text"] is None
            assert (
                model_bin["download_url"] == f"/api/v1/artifacts/{by_path['out/model.bin']['id']}"
            )
            downloaded = await api.get(model_bin["download_url"])
            assert downloaded.content == b"\x00\xff" * 10

            # list_runs: filters and the cursor of the next page.
            other = answer(await mcp.call_tool("submit_job", {"job": job()}))["run_id"]
            first = answer(await mcp.call_tool("list_runs", {"job_type": "spark_etl", "limit": 1}))
            assert [r["run_id"] for r in first["items"]] == [other]
            second = answer(
                await mcp.call_tool(
                    "list_runs",
                    {"job_type": "spark_etl", "limit": 1, "cursor": first["next_cursor"]},
                )
            )
            assert [r["run_id"] for r in second["items"]] == [run_id]
            none = answer(await mcp.call_tool("list_runs", {"job_type": "nothing_like_it"}))
            assert none["items"] == []

            # wait_for_run: the current view at its deadline, the final one when the run ends.
            started = time.monotonic()
            waited = answer(
                await mcp.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 1})
            )
            assert waited["status"] == "queued"
            assert 1 <= time.monotonic() - started < 10
            waiting = asyncio.create_task(
                mcp.call_tool("wait_for_run", {"run_id": run_id, "timeout_seconds": 120})
            )
            await asyncio.sleep(0.5)  # the wait is under way before the run ends
            started = time.monotonic()
            await complete(event_tap, run_id)
            final = answer(await waiting)
            assert final["status"] == "completed"
            assert time.monotonic() - started < 30  # woken by the run's end, not the poll

            cancelled = answer(await mcp.call_tool("cancel_run", {"run_id": other}))
            assert (cancelled["run_id"], cancelled["cancel"]) == (other, "requested")
            finished = problem(await mcp.call_tool("cancel_run", {"run_id": run_id}))
            assert finished["status"] == 409

            edge = await api.post(
                "/api/v1/lineage/edges", json={"source": "raw.orders", "target": "gold.orders"}
            )
            assert edge.status_code in (200, 201), edge.text
            graph = answer(
                await mcp.call_tool(
                    "lineage_graph", {"entity": "gold.orders", "direction": "upstream"}
                )
            )
            assert [node["entity"] for node in graph["upstream"]] == ["raw.orders"]

            # Resources: the run and its logs.
            resource = await mcp.read_resource(AnyUrl(f"controlroom://runs/{run_id}"))
            (content,) = resource.contents
            assert isinstance(content, TextResourceContents) and run_id in content.text
            log_text = await mcp.read_resource(AnyUrl(f"controlroom://runs/{run_id}/logs"))
            (content,) = log_text.contents
            assert isinstance(content, TextResourceContents)
            assert content.text == "one\ntwo\nthree\nfour\nfive\n"


async def test_errors_are_tool_errors_with_the_problem(
    settings: GatewaySettings, token: Callable[..., str]
) -> None:
    async with live(settings, token()) as (base_url, api):
        run_id = await submitted(api)
        async with mcp_session(base_url, token()) as mcp:
            invalid = {"job_type": "spark_etl", "spec": {"text": "x"}, "code": {"files": []}}
            refused = problem(await mcp.call_tool("submit_job", {"job": invalid}))
            assert refused["status"] == 422
            assert any(e.get("field", "").startswith("body.code") for e in refused["errors"]), (
                refused
            )

            report = answer(await mcp.call_tool("validate_job", {"job": {"spec": {}}}))
            assert report["valid"] is False
            assert "body.job_type" in {e["field"] for e in report["errors"]}

            missing = problem(
                await mcp.call_tool("get_run", {"run_id": "00000000-0000-4000-8000-000000000000"})
            )
            assert (missing["status"], missing["title"]) == (404, "Run not found")

            too_long = await mcp.call_tool(
                "wait_for_run", {"run_id": run_id, "timeout_seconds": 301}
            )
            assert too_long.isError
            # Postgres text cannot hold a NUL: refused as REST refuses it, naming the field.
            for name in ("job_type", "created_by"):
                nul = problem(await mcp.call_tool("list_runs", {name: "spark\x00etl"}))
                assert nul["status"] == 422, nul
                assert [e["field"] for e in nul["errors"]] == [f"arguments.{name}"], nul
            not_a_uuid = await mcp.call_tool("get_run", {"run_id": "nope"})
            assert not_a_uuid.isError

        async with mcp_session(base_url, token(tenant="globex")) as other_tenant:
            for tool in ("get_run", "get_logs", "list_artifacts", "wait_for_run"):
                hidden = problem(await other_tenant.call_tool(tool, {"run_id": run_id}))
                assert hidden["status"] == 404, (tool, hidden)
            assert answer(await other_tenant.call_tool("list_runs", {}))["items"] == []
            cancel = problem(await other_tenant.call_tool("cancel_run", {"run_id": run_id}))
            assert cancel["status"] == 404


async def test_a_viewer_sees_and_calls_only_the_read_tools(
    settings: GatewaySettings, token: Callable[..., str]
) -> None:
    async with live(settings, token()) as (base_url, api):
        run_id = await submitted(api)
        async with mcp_session(base_url, token(role="viewer")) as viewer:
            listed = {tool.name for tool in (await viewer.list_tools()).tools}
            assert listed == READ_TOOLS
            assert answer(await viewer.call_tool("get_run", {"run_id": run_id}))["run_id"] == run_id
            refused = problem(await viewer.call_tool("submit_job", {"job": job()}))
            assert refused["status"] == 403
            refused = problem(await viewer.call_tool("cancel_run", {"run_id": run_id}))
            assert refused["status"] == 403
        runs = (await api.get("/api/v1/runs")).json()["items"]
        assert [r["run_id"] for r in runs] == [run_id]  # the viewer submitted nothing
        assert runs[0]["status"] == "queued"  # nor cancelled anything


async def test_no_or_a_bad_token_is_401_before_mcp(
    settings: GatewaySettings, token: Callable[..., str]
) -> None:
    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }
    accept = {"Accept": "application/json, text/event-stream"}
    async with live(settings, token()) as (base_url, _api), httpx.AsyncClient() as bare:
        for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic eA=="}):
            response = await bare.post(f"{base_url}/mcp", json=initialize, headers=accept | headers)
            assert response.status_code == 401, response.text
            assert response.headers["content-type"].startswith(PROBLEM)
            assert response.headers["www-authenticate"] == "Bearer"
        expired = token(ttl=-10)
        response = await bare.post(
            f"{base_url}/mcp",
            json=initialize,
            headers=accept | {"Authorization": f"Bearer {expired}"},
        )
        assert response.status_code == 401
        ok = await bare.post(
            f"{base_url}/mcp",
            json=initialize,
            headers=accept | {"Authorization": f"Bearer {token()}"},
        )
        assert ok.status_code == 200, ok.text
        assert ok.json()["result"]["serverInfo"]["name"] == "Control Room"


def test_wait_for_run_answers_before_a_60_s_request_timeout_by_default() -> None:
    # Continue's MCP client (the TypeScript SDK) gives up on a request after 60 s.
    (tool,) = [t for t in build_server()._tool_manager.list_tools() if t.name == "wait_for_run"]
    timeout = tool.parameters["properties"]["timeout_seconds"]
    assert timeout["default"] < 60
    assert "60" in timeout["description"] and "60" in tool.description


async def test_a_wait_whose_client_hangs_up_gives_back_its_stream_slot(
    settings: GatewaySettings, token: Callable[..., str]
) -> None:
    settings = settings.model_copy(update={"sse_max_streams_per_tenant": 1})
    async with live(settings, token()) as (base_url, api):
        run_id = await submitted(api)
        arguments = {"run_id": run_id, "timeout_seconds": 300}
        call = {"name": "wait_for_run", "arguments": arguments}
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": call})
        url = httpx.URL(base_url)
        assert url.host and url.port
        reader, writer = await asyncio.open_connection(url.host, url.port)
        writer.write(
            f"POST /mcp HTTP/1.1\r\nHost: {url.host}\r\nAuthorization: Bearer {token()}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body.encode()
        )
        await writer.drain()
        async with mcp_session(base_url, token()) as mcp:

            async def short_wait() -> int:
                result = await mcp.call_tool(
                    "wait_for_run", {"run_id": run_id, "timeout_seconds": 0.1}
                )
                return problem(result)["status"] if result.isError else 200

            async def slot_taken() -> bool:
                return await short_wait() == 429

            async def slot_free() -> bool:
                return await short_wait() == 200

            await eventually(slot_taken, what="the raw wait holding the tenant's only slot")
            writer.close()
            await writer.wait_closed()
            assert await reader.read() == b""  # no answer came: the wait was still going
            await eventually(slot_free, what="the slot given back after the hang-up")


async def test_get_artifact_opens_only_what_it_inlines(
    settings: GatewaySettings, token: Callable[..., str]
) -> None:
    async with live(settings, token()) as (base_url, api):
        run_id = await submitted(api)
        ids = {}
        for path, body, kind in (
            ("out/model.bin", b"\x00\xff" * 10, "application/octet-stream"),
            ("out/big.txt", b"x" * (reading.INLINE_BYTES + 1), "text/plain"),
            ("out/small.txt", b"small\n", "text/plain"),
        ):
            uploaded = await api.post(
                "/api/v1/artifacts",
                data={"run_id": run_id, "path": path},
                files={"file": (path, body, kind)},
            )
            assert uploaded.status_code == 201, uploaded.text
            ids[path] = uploaded.json()["id"]
        # Without their stored objects, only the artifact that would be inlined notices.
        for artifact_id in ids.values():
            (stored,) = settings.object_store.directory.rglob(artifact_id)
            stored.unlink()
        async with mcp_session(base_url, token()) as mcp:
            for path in ("out/model.bin", "out/big.txt"):
                found = answer(await mcp.call_tool("get_artifact", {"artifact_id": ids[path]}))
                assert (found["inline"], found["text"]) == (False, None), path
                assert found["download_url"] == f"/api/v1/artifacts/{ids[path]}"
            missing = problem(
                await mcp.call_tool("get_artifact", {"artifact_id": ids["out/small.txt"]})
            )
            assert missing["status"] == 404, missing
