"""Every NATS subject and JetStream stream name, written once.

Events travel on ``controlroom.events.<entity>.<what_happened>`` inside the EVENTS stream;
dispatch commands on ``controlroom.dispatch.<executor_kind>`` inside the DISPATCH work-queue
stream; rejected messages on ``controlroom.deadletter.<consumer>`` inside DEADLETTER.
"""

from __future__ import annotations

from typing import Final

EVENTS_STREAM: Final = "CONTROLROOM_EVENTS"
DISPATCH_STREAM: Final = "CONTROLROOM_DISPATCH"
DEADLETTER_STREAM: Final = "CONTROLROOM_DEADLETTER"

EVENTS_PREFIX: Final = "controlroom.events"
DISPATCH_PREFIX: Final = "controlroom.dispatch"
DEADLETTER_PREFIX: Final = "controlroom.deadletter"

ALL_EVENTS: Final = f"{EVENTS_PREFIX}.>"
ALL_DISPATCH: Final = f"{DISPATCH_PREFIX}.>"
ALL_DEADLETTER: Final = f"{DEADLETTER_PREFIX}.>"

JOB_SUBMITTED: Final = f"{EVENTS_PREFIX}.job.submitted"
RUN_QUEUED: Final = f"{EVENTS_PREFIX}.run.queued"
RUN_DISPATCHED: Final = f"{EVENTS_PREFIX}.run.dispatched"
RUN_STARTED: Final = f"{EVENTS_PREFIX}.run.started"
RUN_PROGRESS: Final = f"{EVENTS_PREFIX}.run.progress"
RUN_LOG: Final = f"{EVENTS_PREFIX}.run.log"
ARTIFACT_STORED: Final = f"{EVENTS_PREFIX}.run.artifact_stored"
ARTIFACT_REPORTED: Final = f"{EVENTS_PREFIX}.run.artifact_reported"
ARTIFACT_DELETED: Final = f"{EVENTS_PREFIX}.run.artifact_deleted"
RUN_COMPLETED: Final = f"{EVENTS_PREFIX}.run.completed"
RUN_FAILED: Final = f"{EVENTS_PREFIX}.run.failed"
RUN_CANCELLED: Final = f"{EVENTS_PREFIX}.run.cancelled"
RUN_RETRY_SCHEDULED: Final = f"{EVENTS_PREFIX}.run.retry_scheduled"
# Executors' reports on attempts; the Run* events above are the scheduler's decisions.
ATTEMPT_STARTED: Final = f"{EVENTS_PREFIX}.attempt.started"
ATTEMPT_COMPLETED: Final = f"{EVENTS_PREFIX}.attempt.completed"
ATTEMPT_FAILED: Final = f"{EVENTS_PREFIX}.attempt.failed"
ATTEMPT_CANCELLED: Final = f"{EVENTS_PREFIX}.attempt.cancelled"
CANCEL_REQUESTED: Final = f"{EVENTS_PREFIX}.run.cancel_requested"
CONTINUE_CALLBACK_RECEIVED: Final = f"{EVENTS_PREFIX}.run.continue_callback"
LINEAGE_RECORDED: Final = f"{EVENTS_PREFIX}.lineage.recorded"
WEBHOOK_DELIVERED: Final = f"{EVENTS_PREFIX}.webhook.delivered"
WEBHOOK_FAILED: Final = f"{EVENTS_PREFIX}.webhook.failed"
WEBHOOK_ENDPOINT_ADDED: Final = f"{EVENTS_PREFIX}.webhook.endpoint_added"
WEBHOOK_ENDPOINT_REMOVED: Final = f"{EVENTS_PREFIX}.webhook.endpoint_removed"
LINEAGE_EDGE_ADDED: Final = f"{EVENTS_PREFIX}.lineage.edge_added"
LINEAGE_EDGE_REMOVED: Final = f"{EVENTS_PREFIX}.lineage.edge_removed"
LINEAGE_EDGE_RESTORED: Final = f"{EVENTS_PREFIX}.lineage.edge_restored"

# Heartbeats are plain NATS messages, deliberately outside every stream: they are frequent,
# only the latest one matters, and persisting them would cost a write per run every 5 s.
RUN_HEARTBEAT: Final = "controlroom.heartbeat.run"
EXECUTOR_HEARTBEAT: Final = "controlroom.heartbeat.executor"
# Asks every executor to send its heartbeat now (a listener that just started would otherwise
# know of no executor for up to one heartbeat interval).
EXECUTOR_ROLL_CALL: Final = "controlroom.heartbeat.roll_call"

# Request-reply queries answered by the service that owns the data.
LINEAGE_GRAPH_QUERY: Final = "controlroom.rpc.lineage.graph"
ROUTE_QUERY: Final = "controlroom.rpc.scheduler.route"
QUEUE_QUERY: Final = "controlroom.rpc.scheduler.queue"
LIMITS_QUERY: Final = "controlroom.rpc.scheduler.limits"
# Tenant administration, answered by the service that owns the data.
LINEAGE_EDGE_ADD: Final = "controlroom.rpc.lineage.edge.add"
LINEAGE_EDGE_LIST: Final = "controlroom.rpc.lineage.edge.list"
LINEAGE_EDGE_DELETE: Final = "controlroom.rpc.lineage.edge.delete"
LINEAGE_EDGE_GET: Final = "controlroom.rpc.lineage.edge.get"
LINEAGE_EDGE_RESTORE: Final = "controlroom.rpc.lineage.edge.restore"
LINEAGE_EDGE_AUDIT: Final = "controlroom.rpc.lineage.edge.audit"
LINEAGE_OPENLINEAGE_RECORD: Final = "controlroom.rpc.lineage.openlineage"
LINEAGE_DATASET_LIST: Final = "controlroom.rpc.lineage.dataset.list"
LINEAGE_DATASET_GET: Final = "controlroom.rpc.lineage.dataset.get"
WEBHOOK_ENDPOINT_CREATE: Final = "controlroom.rpc.notifier.endpoint.create"
WEBHOOK_ENDPOINT_LIST: Final = "controlroom.rpc.notifier.endpoint.list"
WEBHOOK_ENDPOINT_GET: Final = "controlroom.rpc.notifier.endpoint.get"
WEBHOOK_ENDPOINT_DELETE: Final = "controlroom.rpc.notifier.endpoint.delete"
WEBHOOK_DELIVERY_LIST: Final = "controlroom.rpc.notifier.delivery.list"
WEBHOOK_DELIVERY_REDELIVER: Final = "controlroom.rpc.notifier.delivery.redeliver"
WEBHOOK_DELIVERY_REDELIVER_ALL: Final = "controlroom.rpc.notifier.delivery.redeliver_all"
SCHEDULE_CREATE: Final = "controlroom.rpc.scheduler.schedule.create"
SCHEDULE_LIST: Final = "controlroom.rpc.scheduler.schedule.list"
SCHEDULE_GET: Final = "controlroom.rpc.scheduler.schedule.get"
SCHEDULE_PAUSE: Final = "controlroom.rpc.scheduler.schedule.pause"
SCHEDULE_DELETE: Final = "controlroom.rpc.scheduler.schedule.delete"
# Asked by the scheduler at a schedule's tick: the job a template stands for (the gateway owns
# templates).
TEMPLATE_JOB_QUERY: Final = "controlroom.rpc.gateway.template.job"


def dispatch_subject(executor_kind: str) -> str:
    """The work-queue subject on which runs for one executor kind are dispatched."""
    return f"{DISPATCH_PREFIX}.{executor_kind}"


def deadletter_subject(consumer: str) -> str:
    """Where a consumer puts the messages it can never process, with the reason."""
    return f"{DEADLETTER_PREFIX}.{consumer}"
