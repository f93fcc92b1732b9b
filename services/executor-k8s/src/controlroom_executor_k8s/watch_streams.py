"""Feeds one attempt's Job and pod events into a queue, through the Kubernetes watch API.

Each stream starts with a LIST (the Job by name, or its pods by label) and then watches from
that listing's resourceVersion; when the stream breaks (the API restarted, 410 Gone for a
version too old) it starts again from a fresh LIST, with a backoff, and gives up after
:data:`API_RETRIES` failures in a row. Events are ``(kind, type, object)``: kind ``job`` or
``pods``; type a watch event, ``SYNC`` (a LIST result) or ``GONE`` (no Job); ``failed`` carries
the exception that ended a stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import httpx2
from lightkube import AsyncClient
from lightkube.core.client import FieldSelector, LabelSelector
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Pod

from controlroom_executor.backend import AttemptKey
from controlroom_executor_k8s import naming
from controlroom_executor_k8s.kube_errors import KubernetesUnavailable
from controlroom_executor_k8s.pod_status import Json

log = logging.getLogger(__name__)

API_RETRIES = 8
"""Consecutive failed calls (about 40 s with the backoff) before a stream gives up."""
Event = tuple[str, str, Any]


def backoff(failures: int) -> float:
    return float(min(10.0, 0.2 * 2**failures))


def selector(labels: Mapping[str, str]) -> LabelSelector:
    """lightkube's selector type for plain label equalities."""
    return {key: value for key, value in labels.items()}


class AttemptStreams:
    def __init__(self, client: AsyncClient, namespace: str, key: AttemptKey) -> None:
        self._client = client
        self._namespace = namespace
        self._key = key
        self._name = naming.job_name(key)

    async def pump(self, queue: asyncio.Queue[Event], kind: str) -> None:
        """Feeds ``kind`` (``job`` or ``pods``) events until cancelled or the Job is gone."""
        try:
            await self._follow(queue, kind)
        except Exception as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            await queue.put(("failed", "", exc))

    async def list_pods(self) -> tuple[list[Json], str]:
        """The attempt's pods and the resourceVersion of the listing."""
        listing = self._client.list(
            Pod, namespace=self._namespace, labels=selector(naming.attempt_selector(self._key))
        )
        pods: list[Json] = [pod.to_dict() async for pod in listing]
        return pods, listing.resourceVersion

    async def _follow(self, queue: asyncio.Queue[Event], kind: str) -> None:
        failures = 0
        while True:
            try:
                if kind == "job":
                    await self._follow_job(queue)
                    return
                await self._follow_pods(queue)
            except httpx2.HTTPError as exc:  # ApiError is one too
                failures += 1
                if failures > API_RETRIES:
                    raise KubernetesUnavailable(self._key, str(exc)) from exc
                log.warning(
                    "kubernetes watch interrupted",
                    extra={"run_id": str(self._key.run_id), "kind": kind, "error": str(exc)[:300]},
                )
                await asyncio.sleep(backoff(failures))

    async def _follow_job(self, queue: asyncio.Queue[Event]) -> None:
        """Until the Job is gone: a LIST of it by name, then a watch from that listing's
        resourceVersion (a GET would give the Job's own, possibly compacted away long ago)."""
        fields: FieldSelector = {"metadata.name": self._name}
        listing = self._client.list(Job, namespace=self._namespace, fields=fields)
        jobs = [job.to_dict() async for job in listing]
        if not jobs:
            await queue.put(("job", "GONE", {}))
            return
        await queue.put(("job", "SYNC", jobs[0]))
        stream = self._client.watch(
            Job, namespace=self._namespace, fields=fields, resource_version=listing.resourceVersion
        )
        async for event, changed in stream:
            await queue.put(("job", event, changed.to_dict()))
            if event == "DELETED":
                return

    async def _follow_pods(self, queue: asyncio.Queue[Event]) -> None:
        """A LIST, then a watch from its resourceVersion (never returns by itself)."""
        pods, version = await self.list_pods()
        await queue.put(("pods", "SYNC", pods))
        stream = self._client.watch(
            Pod,
            namespace=self._namespace,
            labels=selector(naming.attempt_selector(self._key)),
            resource_version=version,
        )
        async for event, pod in stream:
            await queue.put(("pods", event, pod.to_dict()))
