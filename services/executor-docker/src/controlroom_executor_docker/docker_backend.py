"""The Docker Engine API backend: one locked-down container per attempt, on Docker or Podman.

Podman serves the same API (``podman system service``), with a few differences handled where
they matter: it reports no OOM kill (see :mod:`.docker_attempt`), fills unset ulimits with values
it may not be allowed to set (see :class:`.container_config.Rlimits`), and answers ``404 no such
image`` for an image it does not hold. Images are never pulled: an image that is not on the
engine fails the attempt with ``image_pull``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from uuid import UUID

import aiodocker
import aiohttp
from aiodocker.containers import DockerContainer

from controlroom_contracts.api import FailureReason
from controlroom_executor.backend import (
    LABEL_PREFIX,
    AttemptKey,
    AttemptSpec,
    LaunchFailed,
    RunningAttempt,
)
from controlroom_executor_docker.container_config import (
    Rlimits,
    confinement_of,
    container_config,
)
from controlroom_executor_docker.docker_attempt import DockerAttempt, Limits, Timing
from controlroom_executor_docker.workspace import hand_over

log = logging.getLogger(__name__)


class DockerBackend:
    """An :class:`~controlroom_executor.backend.ExecutionBackend` over the Docker Engine API.

    Building it connects nothing: the engine client is made on first use, inside the event loop
    (aiohttp wants one), and :meth:`close` closes it.
    """

    sandboxed = True
    shares_workspace = True

    def __init__(
        self,
        url: str,
        *,
        engine: str = "docker",
        kill_grace_seconds: float = 10.0,
        log_cap_bytes: int | None = 16 << 20,
        rlimits: Rlimits | None = None,
        watch_interval_seconds: float = 0.5,
        api_timeout_seconds: float = 60.0,
    ) -> None:
        """``url``: ``unix:///run/podman/podman.sock``, ``tcp://host:2375``...; ``engine``: what
        the banner calls it (``podman`` or ``docker``); ``log_cap_bytes``: the most the engine
        keeps of one attempt's output in its own log (None: the engine's default)."""
        self.name = engine
        self._url = url
        self._client: aiodocker.Docker | None = None
        self._log_cap = log_cap_bytes
        self._rlimits = rlimits or Rlimits()
        self._timing = Timing(kill_grace_seconds, watch_interval_seconds, api_timeout_seconds)
        self._attempts: dict[str, DockerAttempt] = {}

    @property
    def _docker(self) -> aiodocker.Docker:
        if self._client is None:
            self._client = aiodocker.Docker(
                url=self._url,
                timeout=aiohttp.ClientTimeout(total=None, connect=self._timing.api_timeout_seconds),
            )
        return self._client

    async def launch(self, spec: AttemptSpec) -> RunningAttempt:
        """Create the container, attach to its output, start it; the workspace is handed to the
        job's uid first. On any failure nothing is left on the engine."""
        try:
            await asyncio.to_thread(hand_over, spec.workspace)
        except OSError as exc:
            raise LaunchFailed(
                FailureReason.executor_error, f"cannot prepare the workspace: {exc}"
            ) from exc
        config = container_config(spec, log_cap_bytes=self._log_cap, rlimits=self._rlimits)
        try:
            async with asyncio.timeout(self._timing.api_timeout_seconds):
                container = await self._docker.containers.create(config, name=spec.key.name())
        except aiodocker.DockerError as exc:
            raise LaunchFailed(
                _refusal_reason(exc), f"{self.name} refused the container: {exc.message}"
            ) from exc
        except TimeoutError as exc:
            raise LaunchFailed(
                FailureReason.executor_error, f"{self.name} did not create the container in time"
            ) from exc
        try:
            attempt = await self._start(spec, container)
        except BaseException as exc:
            # Cancelled or refused between create and start: remove what was created.
            with contextlib.suppress(aiodocker.DockerError, TimeoutError):
                async with asyncio.timeout(self._timing.api_timeout_seconds):
                    await asyncio.shield(container.delete(force=True))
            if isinstance(exc, aiodocker.DockerError):
                raise LaunchFailed(
                    FailureReason.executor_error, f"{self.name} could not start: {exc.message}"
                ) from exc
            if isinstance(exc, TimeoutError):
                raise LaunchFailed(
                    FailureReason.executor_error, f"{self.name} did not start it in time"
                ) from exc
            raise
        self._attempts[attempt.handle] = attempt
        log.info(
            "attempt started",
            extra={
                "run_id": str(spec.key.run_id),
                "attempt": spec.key.attempt,
                "tenant_id": spec.tenant_id,
                "container": attempt.handle,
                "engine": self.name,
            },
        )
        return attempt

    async def _start(self, spec: AttemptSpec, container: DockerContainer) -> DockerAttempt:
        async with contextlib.AsyncExitStack() as on_failure:
            async with asyncio.timeout(self._timing.api_timeout_seconds):
                attach = container.attach(stdout=True, stderr=True, logs=False)
                on_failure.push_async_callback(attach.close)
                # Open the attach connection now (entering the stream connects it; aiodocker's
                # annotations keep it from AsyncExitStack), before start: no output is missed.
                await attach.__aenter__()
                await container.start()
            on_failure.pop_all()
        limits = Limits(spec.profile.memory_bytes, spec.profile.workspace_bytes)
        return DockerAttempt(
            self._docker,
            container,
            spec.key,
            workspace=spec.workspace,
            limits=limits,
            timing=self._timing,
            forget=self._forget,
            attach=attach,
        )

    def _forget(self, handle: str) -> None:
        self._attempts.pop(handle, None)

    async def adopt(self, executor_id: str) -> dict[AttemptKey, RunningAttempt]:
        """Every container labelled as this executor's, in any state, keyed by the attempt its
        labels name (containers with malformed labels are left alone)."""
        executor_label = f"{LABEL_PREFIX}.executor"
        async with asyncio.timeout(self._timing.api_timeout_seconds):
            listed = await self._docker.containers.list(
                all=True, filters={"label": [f"{executor_label}={executor_id}"]}
            )
        adopted: dict[AttemptKey, RunningAttempt] = {}
        for summary in listed:
            labels: dict[str, str] = summary["Labels"] or {}
            key = _key_from(labels)
            if key is None or labels.get(executor_label) != executor_id:
                continue
            known = self._attempts.get(summary.id)
            if known is not None:
                adopted[key] = known
                continue
            container = self._docker.containers.container(summary.id)
            try:
                async with asyncio.timeout(self._timing.api_timeout_seconds):
                    inspected = await container.show()
            except aiodocker.DockerError as exc:
                if exc.status == 404:  # removed since the listing
                    continue
                raise
            attempt = self._adopted(container, key, inspected)
            self._attempts[attempt.handle] = attempt
            adopted[key] = attempt
        return adopted

    def _adopted(
        self, container: DockerContainer, key: AttemptKey, inspected: dict[str, Any]
    ) -> DockerAttempt:
        confinement = confinement_of(inspected)
        state = inspected.get("State") or {}
        return DockerAttempt(
            self._docker,
            container,
            key,
            workspace=confinement.workspace,
            limits=Limits(confinement.memory_bytes, confinement.workspace_bytes),
            timing=self._timing,
            forget=self._forget,
            running=bool(state.get("Running")),
            started=state.get("Status") != "created",
        )

    async def close(self) -> None:
        """Let go of every attempt (their containers keep running, for the next executor to
        adopt) and of the engine connection."""
        attempts, self._attempts = list(self._attempts.values()), {}
        for attempt in attempts:
            await attempt.detach()
        client, self._client = self._client, None
        if client is not None:
            await client.close()


def _refusal_reason(exc: aiodocker.DockerError) -> FailureReason:
    """Docker and Podman answer 404 for an image they do not hold (the only thing a create
    body names that can be missing) and 400 for a malformed image reference."""
    message = exc.message.lower()
    if exc.status == 404 or (exc.status == 400 and "reference" in message):
        return FailureReason.image_pull
    return FailureReason.executor_error


def _key_from(labels: dict[str, str]) -> AttemptKey | None:
    try:
        run_id = UUID(labels[f"{LABEL_PREFIX}.run"])
        return AttemptKey(run_id, int(labels[f"{LABEL_PREFIX}.attempt"]))
    except (KeyError, ValueError):
        return None
