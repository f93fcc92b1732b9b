"""One attempt from its claim to its committed report.

prepare the workspace -> launch on the backend -> report started -> follow its output, wait
for it under its timeout and any cancellation -> collect its files -> store them and report
how it ended (retried until that commits) -> remove what is left on the engine and on disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from controlroom_contracts.api import FailureReason
from controlroom_contracts.base import utc_now
from controlroom_contracts.commands import DispatchRun
from controlroom_contracts.events import AttemptStarted
from controlroom_contracts.routing import ExecutionProfile
from controlroom_executor import outputs
from controlroom_executor.backend import (
    AttemptKey,
    AttemptSpec,
    ExecutionBackend,
    Exit,
    LaunchFailed,
    RunningAttempt,
    Stream,
)
from controlroom_executor.capture import OutputCapture, Publish
from controlroom_executor.outcome import Outcome, judge
from controlroom_executor.redaction import Redactor
from controlroom_executor.settings import ExecutorSettings
from controlroom_executor.store import AttemptStore
from controlroom_executor.workspace import (
    AttemptDirs,
    NoCommand,
    PrepareWorkspace,
    job_command,
    job_environment,
    lay_code_files,
)
from controlroom_runtime.backoff import exponential_backoff
from controlroom_runtime.objectstore import ObjectStore
from controlroom_runtime.outbox import Outbox
from controlroom_runtime.unit_of_work import unit_of_work

log = logging.getLogger(__name__)

STOP_BOUND_SECONDS = 30.0
"""Past the kill grace, how long a stop may take before the attempt is called stuck."""
OUTPUT_DRAIN_SECONDS = 5.0
"""After the job exits, how long its last output may take to arrive."""
REPORT_RETRY_MAX_SECONDS = 30.0


@dataclass(frozen=True)
class ExecutorParts:
    """What the supervision of every attempt shares."""

    kind: str
    executor_id: str
    backend: ExecutionBackend
    sessions: async_sessionmaker[AsyncSession]
    outbox: Outbox
    publish: Publish
    objects: ObjectStore
    store: AttemptStore
    settings: ExecutorSettings
    profile_for: Callable[[str], ExecutionProfile | None]
    prepare_workspace: PrepareWorkspace
    stopping: asyncio.Event


async def supervise(
    parts: ExecutorParts,
    command: DispatchRun,
    cancel: asyncio.Event,
    adopted: RunningAttempt | None = None,
    launched_at: datetime | None = None,
) -> None:
    """Run (or, ``adopted``, resume) one attempt until its report is committed."""
    key = AttemptKey(command.run_id, command.attempt)
    dirs = AttemptDirs.of(parts.settings.executor_workdir, key)
    secrets = parts.settings.secrets_for(command.tenant_id)
    redactor = Redactor(secrets.values())
    running = adopted
    try:
        if running is None:
            launched = await _launch(parts, command, dirs, secrets, cancel)
            if isinstance(launched, Outcome):
                await _finish(parts, command, dirs, launched, redactor)
                return
            running = launched
            launched_at = utc_now()
        started = (launched_at or utc_now()).timestamp()
        deadline = started + command.timeout_seconds
        capture = OutputCapture(
            key,
            command.tenant_id,
            dirs.logs,
            cap_bytes=parts.settings.log_cap_bytes,
            redactor=redactor,
            publish=parts.publish,
        )
        exit, timed_out, cancelled = await _follow(parts, running, capture, deadline, cancel)
        ended = utc_now()
        await running.collect(dirs.base / "output")
        outcome = judge(
            exit,
            timed_out=timed_out,
            cancelled=cancelled,
            timeout_seconds=command.timeout_seconds,
            stdout_tail=capture.tail("stdout"),
            stderr_tail=capture.tail("stderr"),
            finished_at=ended,
        )
        await _finish(parts, command, dirs, outcome, redactor)
        with contextlib.suppress(Exception):
            await running.remove()
    except asyncio.CancelledError:
        # The executor is stopping: a container carries on and is re-adopted at restart.
        raise
    except Exception as exc:
        log.exception("supervision failed", extra={"attempt": key.attempt})
        if running is not None:
            with contextlib.suppress(Exception):
                await running.stop(parts.settings.kill_grace_seconds)
                await running.remove()
        await _finish(
            parts,
            command,
            dirs,
            Outcome.failed(FailureReason.executor_error, f"executor error: {exc!r}"),
            redactor,
        )
    finally:
        if not parts.settings.keep_workdirs and not parts.stopping.is_set():
            await asyncio.to_thread(dirs.remove)


async def _launch(
    parts: ExecutorParts,
    command: DispatchRun,
    dirs: AttemptDirs,
    secrets: dict[str, str],
    cancel: asyncio.Event,
) -> RunningAttempt | Outcome:
    """Start the attempt and report it started; an Outcome when it cannot start."""
    key = AttemptKey(command.run_id, command.attempt)
    profile = command.execution or parts.profile_for(command.job.job_type)
    if profile is None:
        return Outcome.failed(
            FailureReason.no_route,
            f"job type {command.job.job_type!r} is not in this executor's routing matrix",
        )
    try:
        argv = job_command(command, profile)
        await asyncio.to_thread(dirs.fresh_workspace)
        # A checkout may take its whole time limit: a cancellation ends it.
        if not await _unless_cancelled(parts.prepare_workspace(command, dirs), cancel):
            return Outcome.cancelled("cancelled before it started")
        await asyncio.to_thread(lay_code_files, command, dirs.workspace)
    except NoCommand as exc:
        return Outcome.failed(FailureReason.executor_error, str(exc))
    except LaunchFailed as exc:  # a repository that cannot be checked out, say
        return Outcome.failed(exc.reason, str(exc))
    if cancel.is_set():
        return Outcome.cancelled("cancelled before it started")
    spec = AttemptSpec(
        key=key,
        tenant_id=command.tenant_id,
        job_type=command.job.job_type,
        executor_id=parts.executor_id,
        code=command.job.code,
        workspace=dirs.workspace,
        command=argv,
        env=job_environment(command, secrets),
        profile=profile,
        timeout_seconds=command.timeout_seconds,
        secrets=frozenset(secrets.values()),
    )
    try:
        running = await parts.backend.launch(spec)
    except LaunchFailed as exc:
        return Outcome.failed(exc.reason, str(exc))
    async with unit_of_work(parts.sessions, parts.outbox) as uow:
        await parts.store.launched(uow.session, key, running.handle)
        await uow.emit(
            AttemptStarted(
                tenant_id=command.tenant_id,
                run_id=command.run_id,
                attempt=command.attempt,
                executor_kind=parts.kind,
                executor_id=parts.executor_id,
                sandboxed=parts.backend.sandboxed,
                image=profile.image if parts.backend.sandboxed else None,
            )
        )
    log.info(
        "attempt started",
        extra={"attempt": key.attempt, "handle": running.handle, "backend": parts.backend.name},
    )
    return running


async def _unless_cancelled(work: Awaitable[None], cancel: asyncio.Event) -> bool:
    """Run ``work`` to its end (True) unless ``cancel`` is set first (False, work cancelled)."""
    task = asyncio.ensure_future(work)
    cancelled = asyncio.ensure_future(cancel.wait())
    try:
        await asyncio.wait((task, cancelled), return_when=asyncio.FIRST_COMPLETED)
    finally:
        cancelled.cancel()
    if task.done():
        task.result()  # raises what the work raised
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


async def _follow(
    parts: ExecutorParts,
    running: RunningAttempt,
    capture: OutputCapture,
    deadline: float,
    cancel: asyncio.Event,
) -> tuple[Exit, bool, bool]:
    """Until the attempt exits, is cancelled or times out; (exit, timed out, cancelled)."""
    shipping = asyncio.create_task(capture.ship())
    pumping = asyncio.create_task(_pump(running.output(), capture))
    exited = asyncio.ensure_future(running.wait())
    cancelled = asyncio.ensure_future(cancel.wait())
    timed_out = False
    try:
        remaining = max(deadline - utc_now().timestamp(), 0.0)
        done, _ = await asyncio.wait(
            (exited, cancelled), timeout=remaining, return_when=asyncio.FIRST_COMPLETED
        )
        was_cancelled = cancelled in done and exited not in done
        if exited not in done:
            timed_out = not was_cancelled
            grace = parts.settings.kill_grace_seconds
            try:
                await asyncio.wait_for(running.stop(grace), timeout=grace + STOP_BOUND_SECONDS)
                exit = await asyncio.wait_for(exited, timeout=STOP_BOUND_SECONDS)
            except TimeoutError:
                exit = Exit(None, FailureReason.executor_error, "the attempt could not be stopped")
        else:
            exit = exited.result()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(pumping), timeout=OUTPUT_DRAIN_SECONDS)
        return exit, timed_out, was_cancelled
    finally:
        for task in (pumping, exited, cancelled):
            task.cancel()
        await capture.close()
        shipping.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await shipping


async def _pump(chunks: AsyncIterator[tuple[Stream, bytes]], capture: OutputCapture) -> None:
    async for stream, chunk in chunks:
        capture.feed(stream, chunk)


async def _finish(
    parts: ExecutorParts,
    command: DispatchRun,
    dirs: AttemptDirs,
    outcome: Outcome,
    redactor: Redactor,
) -> None:
    """Store the attempt's files and commit its report, retrying until both have happened.

    A database or object-store outage at the end of a run must not lose its outcome or its
    artifacts: both are idempotent (artifacts by derived ids, the report by the attempt row),
    so the whole step is simply tried again, with backoff, until it goes through."""
    key = AttemptKey(command.run_id, command.attempt)
    tries = 0
    while True:
        tries += 1
        try:
            stored = await outputs.collect(
                parts.objects,
                key,
                command.tenant_id,
                dirs.base,
                parts.settings.max_artifact_bytes,
                redactor,
            )
            async with unit_of_work(parts.sessions, parts.outbox) as uow:
                if not await parts.store.finish(
                    uow.session, key, outcome.status, outcome.exit_code
                ):
                    return  # already reported (a second supervisor of the same attempt)
                for artifact in stored.events:
                    await uow.emit(artifact)
                await uow.emit(outcome.report(key, command.tenant_id))
            break
        except Exception:
            delay = exponential_backoff(tries, base=0.25, cap=REPORT_RETRY_MAX_SECONDS)
            log.warning(
                "attempt report not committed; retrying",
                exc_info=True,
                extra={"attempt": key.attempt, "retry_in": delay},
            )
            await asyncio.sleep(delay)
    log.info(
        "attempt finished",
        extra={
            "attempt": key.attempt,
            "status": outcome.status,
            "exit_code": outcome.exit_code,
            "failure_reason": outcome.failure_reason,
        },
    )
