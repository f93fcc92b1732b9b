"""One attempt's Job: its log, its end, stopping it and removing it.

- **stdout and stderr are one stream**: the pod log API merges them, so :meth:`output` yields
  everything as ``"stdout"``. It reads text lines (lightkube's log API): every chunk ends with
  a newline, a carriage return ends a line too, and bytes that are not UTF-8 arrive replaced.
  The kubelet rotates container logs (10 MiB by default), so a replay after adoption starts at
  the oldest line still kept. The log goes with the pod: :meth:`remove` waits for the readers.
- **outputs are not collected**: once the pod has ended nothing can copy files out of it (no
  exec into a finished container, and the kubelet tears its emptyDir down), so :meth:`collect`
  copies nothing and says so in the log. Doing it needs an agent (a sidecar uploading
  ``/workspace/output`` to the object store) or a shared volume.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable
from pathlib import Path
from typing import Any, cast

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod
from lightkube.types import CascadeType

from controlroom_executor.backend import AttemptKey, Exit, Stream
from controlroom_executor_k8s import manifests, naming
from controlroom_executor_k8s.attempt_watch import AttemptWatch
from controlroom_executor_k8s.kube_errors import AttemptStillRunning
from controlroom_executor_k8s.settings import ExecutorK8sSettings
from controlroom_executor_k8s.watch_streams import backoff, selector

log = logging.getLogger(__name__)

LOG_RECONNECTS = 5
"""Times output() follows the log again when the stream breaks while the container runs."""
_LOG_END_SECONDS = 5.0
_GONE_POLL_SECONDS = 0.2


class KubernetesAttempt:
    """One attempt's Job; ``handle`` is the Job's name."""

    def __init__(
        self,
        client: AsyncClient,
        settings: ExecutorK8sSettings,
        key: AttemptKey,
        *,
        adopted: bool,
    ) -> None:
        self.key = key
        self.handle = naming.job_name(key)
        self._client = client
        self._settings = settings
        self._namespace = settings.k8s_namespace
        self._stopping = False
        self._readers: list[tuple[weakref.ref[object], asyncio.Event]] = []
        self._watch = AttemptWatch(
            client,
            self._namespace,
            key,
            unschedulable_after=settings.k8s_unschedulable_after_seconds,
            adopted=adopted,
            stopping=lambda: self._stopping,
        )

    def output(self) -> AsyncIterator[tuple[Stream, bytes]]:
        """The pod's log (stdout and stderr merged, all as ``"stdout"``), from the beginning."""
        # Registered now, not on the first iteration, so a remove() that comes before the
        # reader has connected still waits for it: the logs go with the pod.
        # Held weakly: a reader dropped without ever being iterated is not waited for.
        finished = asyncio.Event()
        reader = self._read_log(finished)
        self._readers.append((weakref.ref(reader), finished))
        return reader

    async def _read_log(self, finished: asyncio.Event) -> AsyncGenerator[tuple[Stream, bytes]]:
        try:
            pod = await self._watch.started_pod()
            if pod is None:
                return
            yielded = 0
            for attempt in range(LOG_RECONNECTS + 1):
                seen = 0
                try:
                    # lightkube types it AsyncIterable, but it is an async generator.
                    lines = cast(
                        "AsyncGenerator[str, None]",
                        self._client.log(
                            pod,
                            namespace=self._namespace,
                            container=manifests.MAIN_CONTAINER,
                            follow=True,
                        ),
                    )
                    async with contextlib.aclosing(lines):
                        async for line in lines:
                            seen += 1
                            if seen > yielded:  # a reconnection reads from the beginning
                                yielded = seen
                                yield "stdout", line.encode()
                except httpx2.HTTPError as exc:  # ApiError is one too
                    if isinstance(exc, ApiError) and exc.status.code in (400, 404):
                        return  # the pod (and its log) is gone
                    # A broken stream ends no attempt: follow it again (it may still run).
                    log.warning(
                        "kubernetes log interrupted",
                        extra={"run_id": str(self.key.run_id), "error": str(exc)[:300]},
                    )
                    await asyncio.sleep(backoff(attempt))
                    continue
                # A clean end: the container has ended, or the API server closed the stream
                # (then the container still runs, and the log is followed again).
                if await self._watch.container_done(pod, _LOG_END_SECONDS):
                    return
            log.warning(
                "kubernetes log given up",
                extra={"run_id": str(self.key.run_id), "pod": pod, "lines": yielded},
            )
        finally:
            finished.set()

    async def wait(self) -> Exit:
        return (await self._watch.decided()).exit

    async def stop(self, grace_seconds: float) -> None:
        """Deletes the Job (Foreground: its pod goes first) and the pod with ``grace_seconds``
        (a Job's deletion does not pass a grace period on), then waits until both are gone."""
        self._stopping = True
        grace = max(0, math.ceil(grace_seconds))
        await self._delete_job(CascadeType.FOREGROUND)
        pods = self._client.list(
            Pod, namespace=self._namespace, labels=selector(naming.attempt_selector(self.key))
        )
        async for pod in pods:
            if pod.metadata is not None and pod.metadata.name is not None:
                await self._ignore_missing(
                    self._client.delete(
                        Pod, pod.metadata.name, namespace=self._namespace, grace_period=grace
                    )
                )
        deadline = grace + self._settings.k8s_stop_timeout_seconds
        try:
            async with asyncio.timeout(deadline):
                while not await self._gone():
                    await asyncio.sleep(_GONE_POLL_SECONDS)
        except TimeoutError:
            raise AttemptStillRunning(
                self.key, f"its Job is still there {deadline:g}s after being deleted"
            ) from None

    async def collect(self, into: Path) -> None:
        """Copies nothing: files cannot be copied out of a pod that has ended (see the module)."""
        del into
        log.info(
            "outputs not collected",
            extra={
                "run_id": str(self.key.run_id),
                "attempt": self.key.attempt,
                "reason": "executor-k8s cannot copy files out of a finished pod",
            },
        )

    async def remove(self) -> None:
        """Deletes the Job and what it owns, once every output() reader has finished."""
        pending = [
            finished.wait()
            for reader, finished in self._readers
            if reader() is not None and not finished.is_set()
        ]
        if pending:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._settings.k8s_output_drain_seconds):
                    await asyncio.gather(*pending)
        await self._watch.close()
        await self._delete_job(CascadeType.BACKGROUND)

    async def close(self) -> None:
        await self._watch.close()

    async def _delete_job(self, cascade: CascadeType) -> None:
        await self._ignore_missing(
            self._client.delete(Job, self.handle, namespace=self._namespace, cascade=cascade)
        )

    async def _gone(self) -> bool:
        try:
            await self._client.get(Job, self.handle, namespace=self._namespace)
        except ApiError as exc:
            if exc.status.code == 404:
                return True
            raise
        return False

    @staticmethod
    async def _ignore_missing(call: Awaitable[Any]) -> None:
        try:
            await call
        except ApiError as exc:
            if exc.status.code != 404:
                raise
