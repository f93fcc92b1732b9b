"""Names, labels and annotations of the Kubernetes objects one attempt is made of.

Kubernetes restricts label values (63 characters at most, letters, digits, ``-_.``, starting
and ending with a letter or digit). Run ids and attempt numbers always fit; an executor id
(``k8s@host``) or a tenant id may not, so :func:`label_value` maps those to a valid value that
stays distinct (a hash of the exact value is appended), and the exact values are kept in
annotations, which take any string.
"""

from __future__ import annotations

import hashlib
import re
from uuid import UUID

from controlroom_executor.backend import LABEL_PREFIX, AttemptKey, AttemptSpec

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "controlroom"
EXECUTOR_LABEL = f"{LABEL_PREFIX}.executor"
TENANT_LABEL = f"{LABEL_PREFIX}.tenant"
RUN_LABEL = f"{LABEL_PREFIX}.run"
ATTEMPT_LABEL = f"{LABEL_PREFIX}.attempt"

EXECUTOR_ANNOTATION = f"{LABEL_PREFIX}.executor"
"""The exact executor id (its label may be sanitised)."""
TENANT_ANNOTATION = f"{LABEL_PREFIX}.tenant"
JOB_TYPE_ANNOTATION = f"{LABEL_PREFIX}.job-type"
LAUNCHED_ANNOTATION = f"{LABEL_PREFIX}.launched"
"""Set on a Job when everything it needs exists and it is resumed: a Job without it was left
half-launched by an executor that stopped (see ``manifests.launched_patch``)."""

_LABEL_VALUE = re.compile(r"^(?:[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
_NOT_LABEL_CHAR = re.compile(r"[^-A-Za-z0-9_.]+")
_EDGES = re.compile(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$")


def label_value(raw: str) -> str:
    """``raw`` itself when it is a valid label value, otherwise a valid one derived from it.

    Distinct inputs give distinct outputs (up to a 40-bit hash): ``k8s@a`` and ``k8s-a`` do not
    collide, because anything rewritten carries the hash of the exact value."""
    if _LABEL_VALUE.match(raw):
        return raw
    digest = hashlib.sha256(raw.encode()).hexdigest()[:10]
    body = _EDGES.sub("", _NOT_LABEL_CHAR.sub("-", raw)[: 63 - len(digest) - 1])
    return f"{body}-{digest}" if body else digest


def job_name(key: AttemptKey) -> str:
    return key.name()


def config_map_name(key: AttemptKey) -> str:
    return f"{key.name()}-code"


def secret_name(key: AttemptKey) -> str:
    return f"{key.name()}-env"


def network_policy_name(key: AttemptKey) -> str:
    return f"{key.name()}-net"


def attempt_selector(key: AttemptKey) -> dict[str, str]:
    """Selects the objects (and the pod) of one attempt."""
    return {
        MANAGED_BY_LABEL: MANAGED_BY,
        RUN_LABEL: str(key.run_id),
        ATTEMPT_LABEL: str(key.attempt),
    }


def executor_selector(executor_id: str) -> dict[str, str]:
    """Selects every Job one executor started (check :data:`EXECUTOR_ANNOTATION` too)."""
    return {MANAGED_BY_LABEL: MANAGED_BY, EXECUTOR_LABEL: label_value(executor_id)}


def attempt_labels(spec: AttemptSpec) -> dict[str, str]:
    """``spec.labels()`` made valid for Kubernetes, plus who manages the object."""
    labels = {key: label_value(value) for key, value in spec.labels().items()}
    return {MANAGED_BY_LABEL: MANAGED_BY, **labels}


def attempt_annotations(spec: AttemptSpec) -> dict[str, str]:
    return {
        EXECUTOR_ANNOTATION: spec.executor_id,
        TENANT_ANNOTATION: spec.tenant_id,
        JOB_TYPE_ANNOTATION: spec.job_type,
    }


def key_from_labels(labels: dict[str, str]) -> AttemptKey | None:
    """The attempt a Job belongs to, or None when its labels are not ours."""
    try:
        return AttemptKey(UUID(labels[RUN_LABEL]), int(labels[ATTEMPT_LABEL]))
    except (KeyError, ValueError):
        return None
