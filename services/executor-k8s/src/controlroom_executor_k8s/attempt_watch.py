"""Keeps one attempt's latest Job and pods and decides how the attempt ended.

One :class:`AttemptWatch` per attempt serves both ``wait()`` and ``output()``: a background task
applies the events :class:`~controlroom_executor_k8s.watch_streams.AttemptStreams` feeds it and
turns the state into a :class:`~controlroom_executor_k8s.pod_status.Verdict` with
:mod:`pod_status`. The only clock it keeps is for a pod that no node takes, measured from when
this watch first saw it unplaced (an adopted attempt starts that clock again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import httpx2
from lightkube import ApiError, AsyncClient
from lightkube.resources.batch_v1 import Job
from lightkube.types import CascadeType

from controlroom_contracts.api import FailureReason
from controlroom_executor.backend import AttemptKey, Exit
from controlroom_executor_k8s import naming, pod_status
from controlroom_executor_k8s.kube_errors import KubernetesUnavailable
from controlroom_executor_k8s.manifests import MAIN_CONTAINER
from controlroom_executor_k8s.pod_status import Json, Verdict
from controlroom_executor_k8s.watch_streams import AttemptStreams, Event

log = logging.getLogger(__name__)


class AttemptWatch:
    """The attempt as last seen; its verdict once it has ended."""

    def __init__(
        self,
        client: AsyncClient,
        namespace: str,
        key: AttemptKey,
        *,
        unschedulable_after: float,
        adopted: bool,
        stopping: Callable[[], bool],
    ) -> None:
        self._client = client
        self._namespace = namespace
        self._key = key
        self._name = naming.job_name(key)
        self._unschedulable_after = unschedulable_after
        self._adopted = adopted
        self._stopping = stopping
        self.job: Json | None = None
        self.job_gone = False
        self.pods: dict[str, Json] = {}
        self.deleted_pods: set[str] = set()
        self.verdict: Verdict | None = None
        self._unplaced_since: float | None = None
        self._changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None
        self._streams = AttemptStreams(client, namespace, key)

    async def decided(self) -> Verdict:
        """Until the attempt has ended; raises :class:`KubernetesUnavailable` when the API
        stayed unreachable (a later call starts watching again)."""
        await self._until(lambda: self.verdict is not None)
        assert self.verdict is not None
        return self.verdict

    async def started_pod(self) -> str | None:
        """The pod whose job container has started, or None when the attempt ended without."""
        await self._until(lambda: self._started() is not None or self.verdict is not None)
        return self._started()

    async def container_done(self, pod: str, timeout: float) -> bool:
        """Whether the pod's job container has ended (waiting up to ``timeout`` to see it)."""

        def done() -> bool:
            return (
                self.verdict is not None
                or pod in self.deleted_pods
                or pod_status.container_done(self.pods.get(pod), MAIN_CONTAINER)
            )

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await self._until(done)
        return done()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def _started(self) -> str | None:
        for name, pod in sorted(self.pods.items()):
            if pod_status.container_started(pod, MAIN_CONTAINER):
                return name
        return None

    async def _until(self, condition: Callable[[], bool]) -> None:
        if self._task is None or (self._task.done() and self.verdict is None):
            self._task = asyncio.create_task(self._run(), name=f"watch {self._name}")
        task = self._task
        async with self._changed:
            await self._changed.wait_for(lambda: condition() or task.done())
        if not condition() and task.done():
            if task.cancelled():
                raise KubernetesUnavailable(self._key, "the backend was closed")
            error = task.exception()
            if error is not None:
                raise error
            raise KubernetesUnavailable(self._key, "the watch ended without a verdict")

    async def _run(self) -> None:
        queue: asyncio.Queue[Event] = asyncio.Queue()
        pumps = [
            asyncio.create_task(self._streams.pump(queue, "job")),
            asyncio.create_task(self._streams.pump(queue, "pods")),
        ]
        try:
            while self.verdict is None:
                timeout = self._unplaced_remaining()
                try:
                    async with asyncio.timeout(timeout):
                        kind, event, obj = await queue.get()
                except TimeoutError:
                    pass
                else:
                    if kind == "failed":
                        raise obj
                    self._apply(kind, event, obj)
                verdict = self._evaluate()
                if verdict is not None and self._pod_unsettled():
                    # The Job and pod watches are not ordered with each other, but the Job
                    # controller ends a Job only after it saw its pod end: list the pods again
                    # to decide from that last state.
                    await self._refresh_pods()
                    verdict = self._evaluate()
                if verdict is not None and verdict.stop_job:
                    await self._delete_job()
                async with self._changed:
                    self.verdict = verdict
                    self._changed.notify_all()
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            async with self._changed:
                self._changed.notify_all()

    def _pod_unsettled(self) -> bool:
        pod = pod_status.newest(self.pods)
        if pod is None:
            return True
        name = pod["metadata"]["name"]
        return name not in self.deleted_pods and not pod_status.container_done(pod, MAIN_CONTAINER)

    async def _refresh_pods(self) -> None:
        try:
            pods, _ = await self._streams.list_pods()
        except httpx2.HTTPError as exc:
            log.warning(
                "kubernetes pods not listed",
                extra={"run_id": str(self._key.run_id), "error": str(exc)[:300]},
            )
            return
        self._apply("pods", "SYNC", pods)

    def _apply(self, kind: str, event: str, obj: Any) -> None:
        if kind == "job":
            if event in ("GONE", "DELETED"):
                self.job_gone = True
            if obj:
                self.job = obj
        elif event == "SYNC":
            listed = {pod["metadata"]["name"]: pod for pod in obj}
            self.deleted_pods |= set(self.pods) - set(listed)
            self.pods.update(listed)
        else:
            name = obj["metadata"]["name"]
            self.pods[name] = obj  # a DELETED event carries the pod's last state: keep it
            if event == "DELETED":
                self.deleted_pods.add(name)

    def _evaluate(self) -> Verdict | None:
        pod = pod_status.newest(self.pods)
        if self.job_gone:
            return self._gone(pod)
        if self.job is None:
            return None
        launched = naming.LAUNCHED_ANNOTATION in (self.job["metadata"].get("annotations") or {})
        if self._adopted and not launched:
            return Verdict(
                Exit(
                    None,
                    FailureReason.executor_error,
                    "the executor stopped while launching this attempt, which never ran",
                ),
                stop_job=True,
            )
        verdict = pod_status.finished(self.job, pod, MAIN_CONTAINER)
        if verdict is None and pod is not None:
            verdict = pod_status.stuck(pod)
        if verdict is not None:
            return verdict
        return self._placement(pod if launched else None, launched)

    def _placement(self, pod: Json | None, launched: bool) -> Verdict | None:
        reason = pod_status.unplaced(pod) if launched else None
        now = asyncio.get_running_loop().time()
        if reason is None:
            self._unplaced_since = None
            return None
        if self._unplaced_since is None:
            self._unplaced_since = now
        if now - self._unplaced_since < self._unschedulable_after:
            return None
        error = f"{reason}; gave up after {self._unschedulable_after:g}s"
        return Verdict(Exit(None, FailureReason.unschedulable, error), stop_job=True)

    def _unplaced_remaining(self) -> float | None:
        if self._unplaced_since is None:
            return None
        elapsed = asyncio.get_running_loop().time() - self._unplaced_since
        return max(0.0, self._unschedulable_after - elapsed)

    def _gone(self, pod: Json | None) -> Verdict:
        last = self.job
        if last is not None:
            verdict = pod_status.finished(last, pod, MAIN_CONTAINER)
            if verdict is not None:
                return verdict
        if self._stopping():
            failure = pod_status.pod_failure(pod, MAIN_CONTAINER) if pod is not None else None
            code = failure.exit_code if failure is not None else None
            return Verdict(Exit(code, None, "stopped by the executor before it finished"))
        return Verdict(
            Exit(
                None,
                FailureReason.lost,
                "the Job was deleted before it finished, not by this executor",
            )
        )

    async def _delete_job(self) -> None:
        try:
            await self._client.delete(
                Job, self._name, namespace=self._namespace, cascade=CascadeType.FOREGROUND
            )
        except ApiError as exc:
            if exc.status.code != 404:
                self._not_deleted(exc.status.message or str(exc))
        except httpx2.HTTPError as exc:
            # The verdict stands; remove() deletes the Job again.
            self._not_deleted(str(exc))

    def _not_deleted(self, error: str) -> None:
        log.warning(
            "kubernetes job not deleted",
            extra={"run_id": str(self._key.run_id), "error": error[:300]},
        )
