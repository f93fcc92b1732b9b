"""Commands (imperative): what one service asks another to do."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from controlroom_contracts import subjects
from controlroom_contracts.api import JobRequest
from controlroom_contracts.base import Command, RunMessage
from controlroom_contracts.routing import ExecutionProfile


class DispatchRun(RunMessage, Command):
    """Run one attempt of a run. Sent on the work-queue subject of one executor kind."""

    subject: ClassVar[str] = subjects.dispatch_subject("{executor_kind}")
    command_type: Literal["run.dispatch"] = "run.dispatch"
    attempt: int = Field(ge=1)
    executor_kind: str
    job: JobRequest
    timeout_seconds: int = Field(default=600, ge=1, le=24 * 3600)
    execution: ExecutionProfile | None = Field(
        default=None,
        description="Image, command and limits from the routing matrix; when absent, the "
        "executor reads its own copy of the matrix",
    )

    def dispatch_subject(self) -> str:
        return subjects.dispatch_subject(self.executor_kind)


ALL_COMMANDS: tuple[type[Command], ...] = (DispatchRun,)
