"""The Kubernetes execution backend: one batch/v1 Job per attempt, through lightkube's AsyncClient.

See :mod:`manifests` for what an attempt is made of, :mod:`kube_attempt` for following one, and
:mod:`pod_status` for how its end is read. What it cannot do, plainly:

- stdout and stderr arrive merged, all as ``"stdout"`` (the pod log API merges them);
- outputs under ``/workspace/output`` are not collected (nothing can copy files out of a pod
  that has ended without an agent);
- the process limit (``profile.pids``) is not enforced: a pod spec has no pids limit; the
  kubelet's ``podPidsLimit`` applies cluster-wide;
- network "none" is a NetworkPolicy, enforced only when the cluster's network plugin
  implements NetworkPolicy;
- a job's environment is ``spec.env`` plus what Kubernetes always adds (``HOSTNAME``,
  ``KUBERNETES_SERVICE_HOST``/``_PORT``; ``enableServiceLinks: false`` removes the rest) and the
  image's own ``ENV``;
- an image that does not exist is only known once the kubelet tries it: ``launch()`` succeeds
  and ``wait()`` says ``image_pull``.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from typing import TypeVar, cast

import httpx2
from lightkube import ApiError, AsyncClient, KubeConfig
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Secret
from lightkube.resources.networking_v1 import NetworkPolicy
from lightkube.types import CascadeType, PatchType

from controlroom_contracts.api import FailureReason
from controlroom_executor.backend import AttemptKey, AttemptSpec, LaunchFailed, RunningAttempt
from controlroom_executor_k8s import manifests, naming
from controlroom_executor_k8s.kube_attempt import KubernetesAttempt
from controlroom_executor_k8s.settings import ExecutorK8sSettings
from controlroom_executor_k8s.watch_streams import selector

log = logging.getLogger(__name__)

FIELD_MANAGER = "controlroom-executor-k8s"
R = TypeVar("R")


def _resource(kind: type[R], manifest: manifests.Manifest) -> R:
    return cast(R, kind.from_dict(manifest))  # type: ignore[attr-defined]


def kube_client(settings: ExecutorK8sSettings) -> AsyncClient:
    """A client for the configured kubeconfig, else in-cluster or ``~/.kube/config``."""
    config = (
        KubeConfig.from_file(settings.kubeconfig) if settings.kubeconfig else KubeConfig.from_env()
    )
    return AsyncClient(config, namespace=settings.k8s_namespace, field_manager=FIELD_MANAGER)


class KubernetesBackend:
    """Runs each attempt as a Job in ``settings.k8s_namespace``; owns (and closes) ``client``."""

    name = "kubernetes"
    sandboxed = True
    shares_workspace = False
    collects_outputs = False
    """Not part of the interface (yet): outputs written by a job are not copied back."""

    def __init__(self, client: AsyncClient, settings: ExecutorK8sSettings) -> None:
        self._client = client
        self._settings = settings
        # Weak: an attempt the runtime has let go of needs no closing here.
        self._attempts: weakref.WeakValueDictionary[AttemptKey, KubernetesAttempt] = (
            weakref.WeakValueDictionary()
        )

    @classmethod
    def from_settings(cls, settings: ExecutorK8sSettings) -> KubernetesBackend:
        return cls(kube_client(settings), settings)

    async def launch(self, spec: AttemptSpec) -> RunningAttempt:
        """Creates the Job suspended, then what it owns (code, network policy, secret env) with
        an ownerReference to it, then resumes it: no pod exists before its code does."""
        settings = self._settings
        name = naming.job_name(spec.key)
        job = _resource(Job, manifests.job_manifest(spec, settings))  # raises LaunchFailed
        try:
            created = await self._client.create(job)
        except ApiError as exc:
            raise LaunchFailed(
                FailureReason.executor_error, f"Kubernetes refused Job {name}: {exc.status.message}"
            ) from exc
        except httpx2.HTTPError as exc:
            raise LaunchFailed(
                FailureReason.executor_error, f"the Kubernetes API cannot be reached: {exc}"
            ) from exc
        uid = created.metadata.uid if created.metadata is not None else None
        try:
            if uid is None:
                raise LaunchFailed(
                    FailureReason.executor_error, f"Job {name} came back without a uid"
                )
            owner = manifests.Owner(name, uid)
            secret = manifests.env_secret(spec, settings, owner)
            if secret is not None:
                await self._client.create(_resource(Secret, secret))
            await self._client.create(
                _resource(NetworkPolicy, manifests.network_policy(spec, settings, owner))
            )
            await self._client.create(
                _resource(ConfigMap, manifests.code_config_map(spec, settings, owner))
            )
            await self._client.patch(
                Job,
                name,
                manifests.launched_patch(),
                namespace=settings.k8s_namespace,
                patch_type=PatchType.MERGE,
            )
        except (ApiError, httpx2.HTTPError, LaunchFailed) as exc:
            with contextlib.suppress(httpx2.HTTPError):
                await self._client.delete(
                    Job, name, namespace=settings.k8s_namespace, cascade=CascadeType.BACKGROUND
                )
            if isinstance(exc, LaunchFailed):
                raise
            message = exc.status.message if isinstance(exc, ApiError) else str(exc)
            raise LaunchFailed(
                FailureReason.executor_error, f"launching Job {name} failed: {message}"
            ) from exc
        log.info(
            "kubernetes job launched",
            extra={"run_id": str(spec.key.run_id), "attempt": spec.key.attempt, "job": name},
        )
        return self._track(spec.key, adopted=False)

    async def adopt(self, executor_id: str) -> dict[AttemptKey, RunningAttempt]:
        """The Jobs in the namespace carrying this executor's labels (and exact annotation)."""
        found: dict[AttemptKey, RunningAttempt] = {}
        jobs = self._client.list(
            Job,
            namespace=self._settings.k8s_namespace,
            labels=selector(naming.executor_selector(executor_id)),
        )
        async for job in jobs:
            metadata = job.metadata
            if metadata is None:
                continue
            annotations = metadata.annotations or {}
            if annotations.get(naming.EXECUTOR_ANNOTATION) != executor_id:
                continue  # a label value shared through the sanitising hash: not ours
            key = naming.key_from_labels(metadata.labels or {})
            if key is not None:
                found[key] = self._attempts.get(key) or self._track(key, adopted=True)
        return found

    async def close(self) -> None:
        for attempt in list(self._attempts.values()):
            await attempt.close()
        self._attempts.clear()
        await self._client.close()

    def _track(self, key: AttemptKey, *, adopted: bool) -> KubernetesAttempt:
        attempt = KubernetesAttempt(self._client, self._settings, key, adopted=adopted)
        self._attempts[key] = attempt
        return attempt
