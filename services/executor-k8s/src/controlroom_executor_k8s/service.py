"""executor-k8s use cases. Without a cluster, a routed run fails at once with a clear reason."""

from __future__ import annotations

import logging

from controlroom_contracts.api import FailureReason
from controlroom_contracts.base import utc_now
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import AttemptFailed
from controlroom_runtime.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

EXECUTOR_KIND = "k8s"
NO_CLUSTER = (
    "no Kubernetes cluster configured: set KUBECONFIG (or run executor-k8s inside a cluster), "
    "or route this job type to another executor kind"
)
NOT_YET = "Kubernetes Job execution is not available in this version of executor-k8s"


class K8sExecutor:
    def __init__(self, cluster_configured: bool) -> None:
        self._cluster = cluster_configured

    async def handle_dispatch(self, uow: UnitOfWork, command: DispatchRun) -> None:
        reason = NOT_YET if self._cluster else NO_CLUSTER
        log.warning("run refused", extra={"reason": reason})
        await uow.emit(
            AttemptFailed(
                tenant_id=command.tenant_id,
                run_id=command.run_id,
                attempt=command.attempt,
                failure_reason=FailureReason.executor_error,
                error=reason,
                finished_at=utc_now(),
            )
        )
