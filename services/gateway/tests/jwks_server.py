"""A real HTTP server publishing a JWKS that a test can change, and RSA keys to sign with."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from controlroom_devstack.waiting import until


class SigningKey:
    """An RSA key pair with a kid; ``sign`` makes RS256 tokens the gateway may accept."""

    def __init__(self, kid: str) -> None:
        self.kid = kid
        self.private = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    @property
    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(
            jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key())
        )
        return public | {"kid": self.kid, "use": "sig", "alg": "RS256"}

    def sign(self, kid: str | None = None, **claims: Any) -> str:
        body = {
            "tenant_id": "acme",
            "sub": "sso-user",
            "role": "viewer",
            "exp": int(time.time()) + 600,
        } | claims
        return jwt.encode(body, self.private, algorithm="RS256", headers={"kid": kid or self.kid})


class JwksServer:
    """Serves ``/jwks.json`` (the key set the gateway trusts) and ``/other.json`` (a key set an
    attacker controls); counts the fetches of the first, and can be told to fail or hold them."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.other_keys: list[dict[str, Any]] = []
        self.failing = False
        self.fetches = 0
        self.failed_fetches = 0
        self.before_answer: Callable[[], Awaitable[None]] | None = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/jwks.json"

    @property
    def other_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/other.json"

    def publish(self, *keys: SigningKey) -> None:
        self.keys = [key.jwk for key in keys]

    async def _jwks(self, _request: Request) -> Response:
        self.fetches += 1
        if self.before_answer is not None:
            await self.before_answer()
        if self.failing:
            self.failed_fetches += 1
            return Response("down for maintenance", status_code=500)
        return JSONResponse({"keys": self.keys})

    async def _other(self, _request: Request) -> Response:
        return JSONResponse({"keys": self.other_keys})

    async def start(self) -> None:
        app = Starlette(routes=[Route("/jwks.json", self._jwks), Route("/other.json", self._other)])
        config = uvicorn.Config(
            app, host="127.0.0.1", port=0, log_config=None, access_log=False, lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        server = self._server
        await until(lambda: server.started, what="the JWKS server listening")
        self.port = self._server.servers[0].sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            with contextlib.suppress(Exception):
                await self._task


@contextlib.asynccontextmanager
async def serving() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
