"""The Kubernetes objects of one attempt, as plain dicts (pure functions, no API calls).

One attempt is a ``batch/v1`` Job (one pod, never retried by Kubernetes: ``backoffLimit: 0``,
the scheduler owns retries) plus three objects the Job owns, so that deleting the Job (or its
``ttlSecondsAfterFinished``) removes them too:

- a ConfigMap holding the code files. ConfigMap keys cannot contain '/', so each file gets a
  safe key and ``items[].path`` puts it back at its relative path. An init container copies
  them from the read-only ConfigMap volume into ``/workspace``, a size-limited emptyDir, because
  a job must be able to write under ``/workspace`` (its ``output/``) and should see plain files:
  a ConfigMap mounted directly would be read-only and made of symlinks into ``..data``.
- a NetworkPolicy selecting the attempt's pod: ingress is always denied (a job serves nothing);
  egress is denied too when the profile's network is ``none``. Kubernetes has no "no network"
  switch for a pod, so this is the closest equivalent, and it is only enforced when the
  cluster's network plugin implements NetworkPolicy (Calico, Cilium...; flannel alone does
  not).
- a Secret, only when some environment values are secrets: a Job's spec is readable by anyone
  allowed to read Jobs, so secret values go in a Secret and the pod refers to them.

The Job is created suspended, the owned objects are created with an ownerReference to its uid,
and only then is the Job resumed (:func:`launched_patch`). So no pod exists before its code and
its network policy do, and a suspended Job's ``activeDeadlineSeconds`` clock does not run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from controlroom_contracts.api import CodeFile, FailureReason
from controlroom_executor.backend import AttemptSpec, LaunchFailed
from controlroom_executor_k8s import naming
from controlroom_executor_k8s.settings import ExecutorK8sSettings

Manifest = dict[str, Any]

MAIN_CONTAINER = "job"
INIT_CONTAINER = "copy-code"
WORKSPACE = "/workspace"
CODE_MOUNT = "/code"
NOBODY = 65534
CONFIG_MAP_MAX_BYTES = 1 << 20
"""Kubernetes refuses a ConfigMap whose keys and values add up to more than 1 MiB."""
_KEY_MAX = 253
_NAME_MAX = 255


@dataclass(frozen=True)
class Owner:
    """The created Job that owns the other objects (its uid is only known once created)."""

    name: str
    uid: str


def config_map_items(files: list[CodeFile]) -> list[tuple[str, str]]:
    """(ConfigMap key, relative path) for each file: keys are unique and valid
    (``[-._a-zA-Z0-9]``, at most 253 characters), e.g. ``003-main.py``."""
    items = []
    for index, file in enumerate(files):
        basename = PurePosixPath(file.path).name
        items.append((f"{index:03d}-{basename}"[:_KEY_MAX], file.path))
    return items


def job_manifest(spec: AttemptSpec, settings: ExecutorK8sSettings) -> Manifest:
    """The attempt's Job, created suspended (see the module's docstring); raises
    :class:`LaunchFailed` when the code files cannot be shipped."""
    _code_data(spec)  # refuse before anything is created
    labels = naming.attempt_labels(spec)
    pod_spec = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": settings.k8s_termination_grace_seconds,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": NOBODY,
            "runAsGroup": NOBODY,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "initContainers": [_init_container(spec, settings)],
        "containers": [_main_container(spec, settings)],
        "volumes": [
            {
                "name": "code",
                "configMap": {
                    "name": naming.config_map_name(spec.key),
                    "items": [
                        {"key": key, "path": path} for key, path in config_map_items(_files(spec))
                    ],
                    "defaultMode": 0o444,
                },
            },
            {"name": "workspace", "emptyDir": {"sizeLimit": str(spec.profile.workspace_bytes)}},
            {
                "name": "tmp",
                "emptyDir": {"medium": "Memory", "sizeLimit": str(spec.profile.tmp_bytes)},
            },
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": naming.job_name(spec.key),
            "namespace": settings.k8s_namespace,
            "labels": labels,
            "annotations": naming.attempt_annotations(spec),
        },
        "spec": {
            "suspend": True,
            "backoffLimit": 0,
            "completions": 1,
            "parallelism": 1,
            # Counted from when the Job is resumed, so it includes pulling the image.
            "activeDeadlineSeconds": spec.timeout_seconds,
            "ttlSecondsAfterFinished": settings.k8s_ttl_seconds_after_finished,
            "template": {"metadata": {"labels": labels}, "spec": pod_spec},
        },
    }


def launched_patch() -> Manifest:
    """The merge patch that resumes a Job once everything it owns exists."""
    return {
        "metadata": {"annotations": {naming.LAUNCHED_ANNOTATION: "true"}},
        "spec": {"suspend": False},
    }


def code_config_map(spec: AttemptSpec, settings: ExecutorK8sSettings, owner: Owner) -> Manifest:
    """The code files, one key each; raises :class:`LaunchFailed` when they cannot fit."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _owned_metadata(spec, settings, owner, naming.config_map_name(spec.key)),
        "immutable": True,
        "data": _code_data(spec),
    }


def env_secret(spec: AttemptSpec, settings: ExecutorK8sSettings, owner: Owner) -> Manifest | None:
    """The Secret holding the environment values that are secrets, or None when none is."""
    secret_keys = _secret_env_keys(spec)
    if not secret_keys:
        return None
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _owned_metadata(spec, settings, owner, naming.secret_name(spec.key)),
        "type": "Opaque",
        "immutable": True,
        "stringData": {key: spec.env[name] for name, key in secret_keys.items()},
    }


def network_policy(spec: AttemptSpec, settings: ExecutorK8sSettings, owner: Owner) -> Manifest:
    """Denies all ingress to the attempt's pod, and all egress when its network is ``none``."""
    policy: Manifest = {
        "podSelector": {"matchLabels": naming.attempt_selector(spec.key)},
        "policyTypes": ["Ingress", "Egress"],
        "ingress": [],
    }
    # An empty rule allows everything; no rule at all denies everything (DNS included).
    policy["egress"] = [{}] if spec.profile.network == "egress" else []
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _owned_metadata(spec, settings, owner, naming.network_policy_name(spec.key)),
        "spec": policy,
    }


def _code_data(spec: AttemptSpec) -> dict[str, str]:
    files = _files(spec)
    keys = [key for key, _ in config_map_items(files)]
    data = {key: file.content for key, file in zip(keys, files, strict=True)}
    size = sum(len(key) + len(value.encode()) for key, value in data.items())
    if size > CONFIG_MAP_MAX_BYTES:
        raise LaunchFailed(
            FailureReason.executor_error,
            f"the code files take {size} bytes; a Kubernetes ConfigMap holds at most "
            f"{CONFIG_MAP_MAX_BYTES} (1 MiB), so this job cannot run on executor-k8s",
        )
    return data


def _files(spec: AttemptSpec) -> list[CodeFile]:
    files = list(spec.code.files)
    paths = {file.path for file in files}
    for file in files:
        if any(len(part.encode()) > _NAME_MAX for part in PurePosixPath(file.path).parts):
            raise LaunchFailed(
                FailureReason.executor_error,
                f"code file {file.path!r} has a name longer than {_NAME_MAX} bytes, "
                "which no volume can hold",
            )
        for parent in PurePosixPath(file.path).parents:
            if str(parent) in paths:
                raise LaunchFailed(
                    FailureReason.executor_error,
                    f"code file {file.path!r} is inside {str(parent)!r}, which is also a file",
                )
    return files


def _secret_env_keys(spec: AttemptSpec) -> dict[str, str]:
    """Environment variable -> its key in the Secret, for the values holding a secret."""
    secrets = [value for value in spec.secrets if value]
    names = [name for name, value in spec.env.items() if any(s in value for s in secrets)]
    return {name: f"env-{index:03d}" for index, name in enumerate(sorted(names))}


def _env(spec: AttemptSpec) -> list[Manifest]:
    secret_keys = _secret_env_keys(spec)
    env: list[Manifest] = []
    for name, value in spec.env.items():
        if name in secret_keys:
            ref = {"name": naming.secret_name(spec.key), "key": secret_keys[name]}
            env.append({"name": name, "valueFrom": {"secretKeyRef": ref}})
        else:
            env.append({"name": name, "value": value})
    return env


def _resources(spec: AttemptSpec) -> Manifest:
    # Requests equal to limits: the pod is in the Guaranteed QoS class, the last to be evicted.
    amounts = {
        "cpu": f"{max(1, math.ceil(spec.profile.cpus * 1000))}m",
        "memory": str(spec.profile.memory_bytes),
    }
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _container_security() -> Manifest:
    return {
        "runAsNonRoot": True,
        "runAsUser": NOBODY,
        "runAsGroup": NOBODY,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "privileged": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def _main_container(spec: AttemptSpec, settings: ExecutorK8sSettings) -> Manifest:
    return {
        "name": MAIN_CONTAINER,
        "image": spec.profile.image,
        "imagePullPolicy": settings.k8s_image_pull_policy,
        "command": list(spec.command),
        "workingDir": WORKSPACE,
        "env": _env(spec),
        "resources": _resources(spec),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "workspace", "mountPath": WORKSPACE},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }


def _init_container(spec: AttemptSpec, settings: ExecutorK8sSettings) -> Manifest:
    # Only the top-level entries are copied: the ConfigMap volume also holds its own hidden
    # ``..data`` bookkeeping, and its entries are symlinks into it (hence -L).
    tops = sorted({PurePosixPath(file.path).parts[0] for file in _files(spec)})
    return {
        "name": INIT_CONTAINER,
        "image": settings.k8s_init_image or spec.profile.image,
        "imagePullPolicy": settings.k8s_image_pull_policy,
        "command": ["cp", "-R", "-L", *[f"{CODE_MOUNT}/{top}" for top in tops], f"{WORKSPACE}/"],
        "resources": _resources(spec),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "code", "mountPath": CODE_MOUNT, "readOnly": True},
            {"name": "workspace", "mountPath": WORKSPACE},
        ],
    }


def _owned_metadata(
    spec: AttemptSpec, settings: ExecutorK8sSettings, owner: Owner, name: str
) -> Manifest:
    return {
        "name": name,
        "namespace": settings.k8s_namespace,
        "labels": naming.attempt_labels(spec),
        "annotations": naming.attempt_annotations(spec),
        "ownerReferences": [
            {"apiVersion": "batch/v1", "kind": "Job", "name": owner.name, "uid": owner.uid}
        ],
    }
