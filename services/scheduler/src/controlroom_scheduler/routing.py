"""Which executor kind runs which job type. Configuration, not code paths."""

from __future__ import annotations

from collections.abc import Mapping

from controlroom_contracts.api import KNOWN_JOB_TYPES

DOCKER = "docker"
K8S = "k8s"

# The constitution's table (seed 002, section 4). kb_catalog is an "n8n workflow" there; there
# is no n8n executor kind in Control Room, so it runs in a container like diagram_export.
PRODUCTION_ROUTES: Mapping[str, str] = {
    "spark_etl": K8S,
    "diagram_export": DOCKER,
    "schema_migration": K8S,
    "kb_catalog": DOCKER,
    "code_validation": K8S,
}

# The embedded default has no cluster: everything goes to executor-docker.
EMBEDDED_ROUTES: Mapping[str, str] = {job_type: DOCKER for job_type in KNOWN_JOB_TYPES}


def routing_table(profile: str, overrides: Mapping[str, str]) -> dict[str, str]:
    base = PRODUCTION_ROUTES if profile == "production" else EMBEDDED_ROUTES
    return {**base, **overrides}
