"""Executor use cases: claim a dispatched attempt, run it, report how it ended."""

from __future__ import annotations

import logging
import shutil
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_contracts.api import FailureReason
from controlroom_contracts.base import utc_now
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import (
    ArtifactStored,
    AttemptCancelled,
    AttemptCompleted,
    AttemptFailed,
    AttemptStarted,
    CancelRequested,
)
from controlroom_contracts.executors import HeldAttempt
from controlroom_executor_docker import outputs, store
from controlroom_executor_docker.backend import ExecutionBackend, RunOutcome, RunSpec
from controlroom_runtime.objectstore import ObjectStore
from controlroom_runtime.outbox import Outbox
from controlroom_runtime.unit_of_work import UnitOfWork, unit_of_work

log = logging.getLogger(__name__)

EXECUTOR_KIND = "docker"


class Executor:
    def __init__(
        self,
        backend: ExecutionBackend,
        executor_id: str,
        sessions: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        objects: ObjectStore,
        max_artifact_bytes: int,
    ) -> None:
        self._objects = objects
        self._max_artifact_bytes = max_artifact_bytes
        self._backend = backend
        self._executor_id = executor_id
        self._sessions = sessions
        self._outbox = outbox
        self.held: dict[tuple[UUID, int], HeldAttempt] = {}
        """Attempts claimed and not yet reported finished: what heartbeats list. An attempt
        stays here until its final report is committed, so the scheduler never takes it for
        lost while its outcome is on its way."""

    async def handle_dispatch(self, uow: UnitOfWork, command: DispatchRun) -> None:
        """Claim the attempt and report it started; it runs once that is committed.

        The dispatch message stays unacknowledged (kept in progress) until the run ends, so the
        executor's capacity is what JetStream hands it, and nothing is acked before it is done.
        """
        claimed = await store.claim_attempt(
            uow.session,
            run_id=command.run_id,
            attempt=command.attempt,
            tenant_id=command.tenant_id,
            executor_id=self._executor_id,
        )
        if claimed and await store.is_cancelled(uow.session, command.run_id):
            # Cancelled while it waited in the queue: report it, never start it.
            await store.finish_attempt(
                uow.session, command.run_id, command.attempt, "cancelled", None
            )
            await uow.emit(
                AttemptCancelled(
                    tenant_id=command.tenant_id,
                    run_id=command.run_id,
                    attempt=command.attempt,
                    reason="cancelled before it started",
                    finished_at=utc_now(),
                )
            )
            return
        if not claimed:
            log.info(
                "attempt already claimed; dispatch ignored", extra={"attempt": command.attempt}
            )
            return
        await uow.emit(
            AttemptStarted(
                tenant_id=command.tenant_id,
                run_id=command.run_id,
                attempt=command.attempt,
                executor_kind=EXECUTOR_KIND,
                executor_id=self._executor_id,
                sandboxed=self._backend.sandboxed,
            )
        )

        async def run_after_commit() -> None:
            await self._run(command)

        uow.on_commit(run_after_commit)

    async def _run(self, command: DispatchRun) -> None:
        spec = RunSpec(
            run_id=command.run_id,
            attempt=command.attempt,
            tenant_id=command.tenant_id,
            job_type=command.job.job_type,
            code=command.job.code,
            inputs=dict(command.job.spec.inputs),
            timeout_seconds=command.timeout_seconds,
        )
        log.info(
            "run started", extra={"attempt": spec.attempt, "sandboxed": self._backend.sandboxed}
        )
        key = (spec.run_id, spec.attempt)
        self.held[key] = HeldAttempt(
            tenant_id=command.tenant_id, run_id=spec.run_id, attempt=spec.attempt
        )
        try:
            try:
                outcome = await self._backend.run(spec)
            except Exception as exc:  # a backend fault must still end the run, never hang it
                log.exception("backend failed")
                outcome = RunOutcome(None, FailureReason.executor_error, f"executor error: {exc!r}")
            await self.report(command.tenant_id, spec, outcome)
        finally:
            self.held.pop(key, None)

    async def handle_cancel(self, uow: UnitOfWork, event: CancelRequested) -> None:
        """Remember the cancellation (for queued dispatches); stop the run if it is ours."""
        await store.note_cancellation(uow.session, event.run_id, event.tenant_id)
        if self._backend.cancel(event.run_id):
            log.info("run cancellation signalled", extra={"requested_by": event.requested_by})

    async def report(self, tenant_id: str, spec: RunSpec, outcome: RunOutcome) -> None:
        stored: list[ArtifactStored] = []
        if outcome.files_dir is not None:
            try:
                stored = (
                    await outputs.collect(
                        self._objects, spec, outcome.files_dir, self._max_artifact_bytes
                    )
                ).events
            except Exception:  # artifacts are worth a retry later, not a lost run
                log.exception("storing the run's files failed")
            finally:
                shutil.rmtree(outcome.files_dir / "output", ignore_errors=True)
        async with unit_of_work(self._sessions, self._outbox) as uow:
            for artifact in stored:
                await uow.emit(artifact)
            status = (
                "cancelled" if outcome.cancelled else "completed" if outcome.succeeded else "failed"
            )
            if not await store.finish_attempt(
                uow.session, spec.run_id, spec.attempt, status, outcome.exit_code
            ):
                return
            if outcome.cancelled:
                await uow.emit(
                    AttemptCancelled(
                        tenant_id=tenant_id,
                        run_id=spec.run_id,
                        attempt=spec.attempt,
                        reason=outcome.error or "cancelled",
                        finished_at=utc_now(),
                    )
                )
            elif outcome.succeeded:
                await uow.emit(
                    AttemptCompleted(
                        tenant_id=tenant_id,
                        run_id=spec.run_id,
                        attempt=spec.attempt,
                        exit_code=0,
                        summary=_summary(outcome),
                        finished_at=utc_now(),
                    )
                )
            else:
                assert outcome.failure_reason is not None
                await uow.emit(
                    AttemptFailed(
                        tenant_id=tenant_id,
                        run_id=spec.run_id,
                        attempt=spec.attempt,
                        failure_reason=outcome.failure_reason,
                        exit_code=outcome.exit_code,
                        error=outcome.error or outcome.failure_reason.value,
                        finished_at=utc_now(),
                    )
                )
        log.info(
            "run finished",
            extra={"status": status, "exit_code": outcome.exit_code, "attempt": spec.attempt},
        )

    async def fail_orphaned_attempts(self) -> int:
        """At start: attempts this executor was running when it stopped are lost."""
        async with unit_of_work(self._sessions, self._outbox) as uow:
            orphans = await store.running_attempts(uow.session, self._executor_id)
            for run_id, attempt, tenant_id in orphans:
                await store.finish_attempt(uow.session, run_id, attempt, "failed", None)
                await uow.emit(
                    AttemptFailed(
                        tenant_id=tenant_id,
                        run_id=run_id,
                        attempt=attempt,
                        failure_reason=FailureReason.lost,
                        error="the executor stopped while the run was in progress",
                        finished_at=utc_now(),
                    )
                )
        if orphans:
            log.warning("orphaned attempts failed as lost", extra={"count": len(orphans)})
        return len(orphans)


def _summary(outcome: RunOutcome) -> str:
    last_line = next((ln for ln in reversed(outcome.stdout_tail.splitlines()) if ln.strip()), "")
    return last_line[:500] if last_line else "completed with exit code 0"
