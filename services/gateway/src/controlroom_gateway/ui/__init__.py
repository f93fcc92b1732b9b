"""The Runboard: the web UI, plain ES modules and CSS served as they are at ``/ui/``.

It is built on the public REST API and its event streams alone, with the same bearer token;
the gateway only serves its files. They are served with a content security policy that allows
nothing but this origin's scripts and styles: the UI shows what jobs wrote (logs, names,
artifact previews), and a job is hostile until proven otherwise.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC = Path(__file__).parent / "static"
PREFIX = "/ui"

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    # Revalidated on every load (ETag): a new gateway's UI is never mixed with an old one's.
    (b"cache-control", b"no-cache"),
]


class _WithSecurityHeaders:
    """Static files with the headers above on every answer."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *_HEADERS]
            await send(message)

        await self._app(scope, receive, send_with_headers)


def install(app: FastAPI) -> None:
    """Serve the UI at ``/ui/`` (``/ui`` redirects there)."""

    @app.get(PREFIX, include_in_schema=False)
    async def _ui_root() -> RedirectResponse:
        return RedirectResponse(f"{PREFIX}/")

    app.mount(PREFIX, _WithSecurityHeaders(StaticFiles(directory=STATIC, html=True)), name="ui")
