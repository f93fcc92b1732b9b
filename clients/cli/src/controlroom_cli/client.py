"""The REST API over httpx: one line for every error, openers for the run's event stream.

Imported by commands only when they talk to the API (httpx takes a while to import)."""

from __future__ import annotations

import re
import ssl
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any, Self

from controlroom_cli import __version__
from controlroom_cli.config import Settings
from controlroom_cli.errors import ApiProblem, Unreachable
from controlroom_cli.follow import TERMINAL_STATUSES, RunEvent, StreamDropped, StreamRefused
from controlroom_cli.lean_httpx import httpx
from controlroom_cli.problems import problem_line

API = "/api/v1"
CONNECT_SECONDS = 10.0
READ_SECONDS = 30.0
STREAM_SILENCE_SECONDS = 60.0
REFUSED_STREAM = frozenset({429, 502, 503, 504})
"""A stream refused with one of these is replaced by polling; other errors are errors."""


def reason(exc: BaseException) -> str:
    """``[Errno 111] Connection refused`` -> ``connection refused``."""
    text = str(exc) or type(exc).__name__
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text.splitlines()[0] if text else text)
    # h11 quotes the offending header ("illegal header value b'Bearer ...'"): that is the token.
    text = re.sub(r"(header (?:value|name))\b.*", r"\1 (not shown)", text, flags=re.IGNORECASE)
    return text[:1].lower() + text[1:]


def describe(exc: httpx.TransportError, url: str) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return f"cannot reach {url}: no answer within {CONNECT_SECONDS:.0f}s"
    if isinstance(exc, httpx.TimeoutException):
        return f"{url} did not answer in time"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot reach {url}: {reason(exc)}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"{url} closed the connection: {reason(exc)}"
    return f"cannot reach {url}: {reason(exc)}"


def _tls(url: str) -> ssl.SSLContext | bool:
    """Certificate checks as usual for an https:// API. For an http:// one, which never does
    TLS (redirects are not followed), a context that trusts nothing: loading the CA bundle
    costs a fifth of ``controlroom status``'s start-up, for nothing."""
    if url.startswith("https://"):
        return True
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class Api:
    """A client of one Control Room's REST API."""

    def __init__(self, settings: Settings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        headers = {"User-Agent": f"controlroom-cli/{__version__}", "Accept": "application/json"}
        if settings.token:
            headers["Authorization"] = f"Bearer {settings.token}"
        self._http = httpx.Client(
            base_url=settings.url,
            headers=headers,
            timeout=httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS),
            transport=transport,
            verify=_tls(settings.url),
        )

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self._http.close()

    def problem(self, response: httpx.Response) -> ApiProblem:
        """The error an answer of 400 or above stands for, as one line."""
        line = problem_line(response.status_code, response.reason_phrase, response.content)
        if response.status_code == 401 and not self.settings.token:
            line += " (no token configured: set CONTROLROOM_TOKEN or a profile's token)"
        try:
            body = response.json()
        except ValueError:
            body = None
        return ApiProblem(line, response.status_code, body)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json: Any = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(
                method, API + path, params=query, json=json, headers=headers
            )
        except httpx.TransportError as exc:
            raise Unreachable(describe(exc, self.settings.url)) from None
        if response.status_code >= 300:  # redirects are not followed: the token stays here
            raise self.problem(response)
        return response

    def _json(self, response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError:
            raise ApiProblem(
                f"{response.status_code} {response.reason_phrase}: the answer is not JSON "
                f"(is {self.settings.url} a Control Room API?)",
                response.status_code,
            ) from None

    def get(self, path: str, **params: Any) -> Any:
        return self._json(self.request("GET", path, params=params))

    def post(self, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        return self._json(self.request("POST", path, json=body, headers=headers))

    def get_text(self, path: str, **params: Any) -> str:
        return self.request("GET", path, params=params).text

    # -- a run's events ------------------------------------------------------------------

    def run_ended(self, run_id: str) -> bool:
        return str(self.get(f"/runs/{run_id}")["status"]) in TERMINAL_STATUSES

    def events_page(self, run_id: str, cursor: str | None) -> tuple[list[RunEvent], str | None]:
        page = self.get(f"/runs/{run_id}/events", cursor=cursor, limit=500)
        return list(page["items"]), page.get("next_cursor")

    @contextmanager
    def event_stream(
        self, run_id: str, last_event_id: str | None, read_timeout: float | None
    ) -> Iterator[Iterable[str]]:
        """The run's live event stream as text chunks, after ``last_event_id``."""
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        # The server pings every 15 s: a stream silent for longer than STREAM_SILENCE_SECONDS
        # is dead (a connection lost without a FIN) and is opened again. A caller with a
        # deadline gives what is left of it, if that is less.
        silence = STREAM_SILENCE_SECONDS
        if read_timeout is not None:
            silence = min(silence, read_timeout)
        timeout = httpx.Timeout(READ_SECONDS, connect=CONNECT_SECONDS, read=silence)
        url = f"{API}/runs/{run_id}/events/stream"
        try:
            with self._http.stream("GET", url, headers=headers, timeout=timeout) as response:
                if response.status_code >= 400:
                    response.read()
                    if response.status_code in REFUSED_STREAM:
                        raise StreamRefused(self.problem(response).message)
                    raise self.problem(response)
                yield self._chunks(response)
        except httpx.TransportError as exc:
            raise StreamDropped(describe(exc, self.settings.url)) from None

    def _chunks(self, response: httpx.Response) -> Iterator[str]:
        try:
            yield from response.iter_text()
        except httpx.TransportError as exc:
            raise StreamDropped(describe(exc, self.settings.url)) from None

    # -- artifacts -----------------------------------------------------------------------

    def download(self, artifact_id: str) -> Iterator[bytes]:
        """An artifact's bytes as they arrive, through the gateway (``redirect=false``: no
        presigned URL on another host, and the same token)."""
        url = f"{API}/artifacts/{artifact_id}"
        try:
            with self._http.stream("GET", url, params={"redirect": "false"}) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self.problem(response)
                yield from response.iter_bytes()
        except httpx.TransportError as exc:
            raise Unreachable(describe(exc, self.settings.url)) from None
