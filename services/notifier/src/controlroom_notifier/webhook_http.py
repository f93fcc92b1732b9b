"""One webhook POST to the address the callback policy vetted, reading little of the answer.

The request goes to the vetted IP address itself, with the URL's host name in the ``Host``
header and as the TLS server name (SNI and certificate check), so no second DNS lookup can
send it elsewhere (DNS rebinding). Redirects are never followed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from http.cookiejar import CookieJar, DefaultCookiePolicy

import httpx

from controlroom_notifier.settings import NotifierSettings
from controlroom_runtime.callback_policy import Vetted


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    """The start of the answer's body (what was read of it before the cap or the deadline)."""


def webhook_client(
    settings: NotifierSettings, verify: ssl.SSLContext | bool = True
) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        timeout=httpx.Timeout(settings.webhook_timeout_seconds),
        follow_redirects=False,
        verify=verify,
        # A proxy from the environment would resolve the host name again itself.
        trust_env=False,
        # Connections are keyed by the IP address connected to: one kept alive for a host
        # could carry another host's request, under the first one's TLS name.
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=0),
        # A receiver's cookies would otherwise go to the next receiver at the same address.
        cookies=CookieJar(policy=DefaultCookiePolicy(allowed_domains=[])),
    )


async def post_pinned(
    http: httpx.AsyncClient,
    target: Vetted,
    body: str,
    headers: dict[str, str],
    *,
    max_response_bytes: int,
    deadline: float,
) -> Answer:
    """POST ``body`` to ``target``'s vetted addresses in turn (the next one only when no
    connection can be made) and return the answer once its status and headers are in.

    Raises TimeoutError when there is no answer by ``deadline`` (event-loop time). Of the
    body, at most about ``max_response_bytes`` are read, and only until ``deadline``: the
    status code is what matters, and a receiver trickling its body does not change it."""
    refused: httpx.ConnectError | None = None
    async with asyncio.timeout_at(deadline):
        for address in target.addresses:
            request = http.build_request("POST", target.url, content=body, headers=headers)
            # Host (set from the URL above) and the TLS name stay the URL's host name.
            server_name = request.url.raw_host.decode("ascii")
            request.url = request.url.copy_with(host=str(address))
            if request.url.scheme == "https":
                request.extensions["sni_hostname"] = server_name
            try:
                response = await http.send(request, stream=True)
                break
            except httpx.ConnectError as exc:
                refused = exc
        else:
            raise refused or httpx.ConnectError(f"{target.host}: no address to connect to")
    try:
        return Answer(
            response.status_code, await _read_capped(response, max_response_bytes, deadline)
        )
    finally:
        await response.aclose()


async def _read_capped(response: httpx.Response, limit: int, deadline: float) -> bytes:
    read = bytearray()
    with contextlib.suppress(TimeoutError, httpx.HTTPError):
        async with asyncio.timeout_at(deadline):
            # Raw: a compressed answer is never inflated.
            async for chunk in response.aiter_raw():
                read += chunk
                if len(read) >= limit:
                    break
    return bytes(read[:limit])
