"""``controlroom mcp``: the gateway's MCP server (``/mcp``) on stdio, for agents that start
their MCP servers as subprocesses.

A bridge, not a second server: every JSON-RPC message read on stdin is POSTed to the gateway's
``/mcp`` (stateless, plain JSON answers) with the configured token, and the answer is written
back on stdout, so the tools, their shapes, the viewer's narrower list and the tool errors are
the gateway's own. An HTTP refusal in the middle of a session (a 429, a token that expired, a
503) answers that one request and the session goes on: a ``tools/call`` gets a tool error
(``isError``), any other request a JSON-RPC error, a notification nothing. httpx and anyio are
imported only when the command runs: the CLI's start-up does not pay for them.
"""

from __future__ import annotations

import io
import json
import sys
from typing import TYPE_CHECKING, Any

from controlroom_cli.config import resolve
from controlroom_cli.errors import ApiProblem, CliError, ConfigProblem, Unreachable
from controlroom_cli.options import Profile

if TYPE_CHECKING:
    import httpx

MAX_WAIT_SECONDS = 300.0
"""The longest a tool waits upstream (``wait_for_run``): the HTTP read timeout is above it."""
TRIES = 3
"""How many times a message refused with 429 or 503 is sent before the refusal is the answer."""
MAX_RETRY_AFTER_SECONDS = 10.0
"""The longest ``Retry-After`` honoured before a retry (a longer one is cut to this)."""
RETRIED = frozenset({429, 503})
SERVER_ERROR = -32000
"""The JSON-RPC code of an HTTP refusal (the implementation-defined server-error range)."""
PARSE_ERROR = -32700
# The headers the mcp SDK's streamable-http client sends (mcp/client/streamable_http.py).
ACCEPT = "application/json, text/event-stream"
PROTOCOL_VERSION = "mcp-protocol-version"
SESSION_ID = "mcp-session-id"


def mcp(profile: Profile = None) -> None:
    """Serve the gateway's MCP tools on stdio (for Continue's `type: stdio` and other agents).

    Stdout carries only MCP messages; errors go to stderr.
    """
    settings = resolve(profile)
    if not settings.token:
        raise ConfigProblem("no token: set CONTROLROOM_TOKEN or a profile's token")
    import anyio

    try:
        anyio.run(bridge, settings.url, settings.token)
    except CliError:
        raise
    except BaseException as exc:  # an ExceptionGroup from the task group, too
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        raise Unreachable(f"MCP at {settings.url}/mcp: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    """The innermost cause worth one line (task groups wrap failures in exception groups)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    lines = str(exc).splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


async def bridge(url: str, token: str) -> None:
    """Forward stdin's MCP messages to the gateway's ``/mcp`` until stdin closes.

    The gateway is asked once first (a ``ping``): an unreachable gateway or a refused token
    ends the command at once (exit 5), before an agent starts a session that cannot work.
    """
    import anyio

    from controlroom_cli.lean_httpx import httpx

    endpoint = f"{url.rstrip('/')}/mcp"
    async with httpx.AsyncClient(
        headers={"Authorization": f"Bearer {token}"},
        timeout=httpx.Timeout(30.0, read=MAX_WAIT_SECONDS + 30.0),
        follow_redirects=True,
    ) as http:
        upstream = Upstream(http, endpoint)
        await upstream.probe()
        stdout = anyio.wrap_file(sys.stdout)
        lock = anyio.Lock()

        async def write(replies: list[Any]) -> None:
            async with lock:
                for reply in replies:
                    await stdout.write(json.dumps(reply, separators=(",", ":")) + "\n")
                await stdout.flush()

        async def answer(message: Any) -> None:
            await write(await upstream.forward(message))

        async with anyio.create_task_group() as tasks:
            async for line in anyio.wrap_file(io.TextIOWrapper(sys.stdin.buffer, "utf-8")):
                if not line.strip():
                    continue
                try:
                    message = json.loads(line)
                except ValueError as exc:
                    error = {"code": PARSE_ERROR, "message": f"not JSON: {exc}"}
                    tasks.start_soon(write, [{"jsonrpc": "2.0", "id": None, "error": error}])
                    continue
                # Concurrently: a long wait_for_run does not hold up a ping behind it.
                tasks.start_soon(answer, message)


class Upstream:
    """The gateway's ``/mcp``, one POST per JSON-RPC message, with the SDK's protocol headers."""

    def __init__(self, http: httpx.AsyncClient, endpoint: str) -> None:
        self.http = http
        self.endpoint = endpoint
        self.protocol_version: str | None = None
        self.session_id: str | None = None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": ACCEPT, "Content-Type": "application/json"}
        if self.session_id:
            headers[SESSION_ID] = self.session_id
        if self.protocol_version:
            headers[PROTOCOL_VERSION] = self.protocol_version
        return headers

    async def probe(self) -> None:
        """Raise (exit 5, one line) unless the gateway answers a ``ping`` with this token."""
        from controlroom_cli.client import describe
        from controlroom_cli.lean_httpx import httpx

        ping = {"jsonrpc": "2.0", "id": "controlroom-cli-probe", "method": "ping"}
        try:
            response = await self._post(ping)
        except httpx.TransportError as exc:
            raise Unreachable(f"MCP at {self.endpoint}: {describe(exc, 'the gateway')}") from None
        if not response.is_success:
            status = response.status_code
            raise ApiProblem(f"MCP at {self.endpoint}: {_problem_text(response)}", status)

    async def _post(self, message: Any) -> httpx.Response:
        """POST once, again after ``Retry-After`` while refused with 429 or 503 (bounded)."""
        import anyio

        for attempt in range(1, TRIES + 1):
            response = await self.http.post(self.endpoint, json=message, headers=self._headers())
            if response.status_code not in RETRIED or attempt == TRIES:
                return response
            await anyio.sleep(_retry_after(response.headers.get("retry-after")))
        raise AssertionError("unreachable")  # pragma: no cover - the loop always returns

    async def forward(self, message: Any) -> list[Any]:
        """The messages to write back for ``message`` (none for a notification)."""
        from controlroom_cli.client import describe
        from controlroom_cli.lean_httpx import httpx

        request_id, method = _request(message)
        try:
            response = await self._post(message)
        except httpx.TransportError as exc:
            return _refusal(request_id, method, describe(exc, "the gateway"), None)
        if not response.is_success:
            return _refusal(request_id, method, _problem_text(response), response)
        if request_id is None:
            return []  # a notification (or an answer to the server): 202, nothing to say
        replies = _messages(response)
        if method == "initialize":
            self._remember(response, replies)
        return replies or _refusal(request_id, method, "the gateway answered nothing", None)

    def _remember(self, response: httpx.Response, replies: list[Any]) -> None:
        """The negotiated protocol version (and a session id, if any), for the next POSTs."""
        self.session_id = response.headers.get(SESSION_ID) or self.session_id
        for reply in replies:
            result = reply.get("result") if isinstance(reply, dict) else None
            if isinstance(result, dict) and isinstance(result.get("protocolVersion"), str):
                self.protocol_version = result["protocolVersion"]


def _request(message: Any) -> tuple[Any, str | None]:
    """A request's id and method; ``(None, ...)`` for a notification or a response."""
    if not isinstance(message, dict) or "method" not in message:
        return None, None
    return message.get("id"), str(message["method"])


def _retry_after(value: str | None) -> float:
    try:
        wait = float(value) if value is not None else 1.0
    except ValueError:
        wait = 1.0  # an HTTP date: not worth parsing for a wait of at most ten seconds
    return min(max(wait, 0.0), MAX_RETRY_AFTER_SECONDS)


def _messages(response: httpx.Response) -> list[Any]:
    """The JSON-RPC messages of a JSON answer, or of an SSE stream's ``data:`` lines."""
    if response.headers.get("content-type", "").lower().startswith("text/event-stream"):
        found: list[Any] = []
        for event in response.text.replace("\r\n", "\n").split("\n\n"):
            data = "\n".join(
                line[5:].removeprefix(" ") for line in event.split("\n") if line.startswith("data:")
            )
            if data.strip():
                found.append(json.loads(data))
        return found
    if not response.content.strip():
        return []
    document = response.json()
    return document if isinstance(document, list) else [document]


def _problem_text(response: httpx.Response) -> str:
    """``401 Unauthorized: the token expired``: from problem+json, a JSON-RPC error, or text."""
    head = f"{response.status_code} {response.reason_phrase}".strip()
    try:
        body = response.json()
    except ValueError:
        first = response.text.strip().splitlines()
        return f"{head}: {first[0][:200]}" if first else head
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return f"{head}: {error['message']}"
        detail = body.get("detail") or body.get("title")
        if detail:
            return f"{head}: {detail}"
    return head


def _refusal(
    request_id: Any, method: str | None, text: str, response: httpx.Response | None
) -> list[Any]:
    """What the agent reads for a request the gateway refused (nothing, for a notification)."""
    if request_id is None:
        sys.stderr.write(f"error: MCP notification {method or 'message'} refused: {text}\n")
        sys.stderr.flush()
        return []
    if method == "tools/call":
        result = {"content": [{"type": "text", "text": text}], "isError": True}
        return [{"jsonrpc": "2.0", "id": request_id, "result": result}]
    error: dict[str, Any] = {"code": SERVER_ERROR, "message": text}
    if response is not None:
        error["data"] = {"status": response.status_code}
    return [{"jsonrpc": "2.0", "id": request_id, "error": error}]
