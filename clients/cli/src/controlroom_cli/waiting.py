"""Waiting for a run to end, for ``wait`` and ``submit --wait``: the outcome becomes the exit
code a CI step needs (0 completed, 1 failed, 2 cancelled, 3 still going at the deadline)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from controlroom_cli import render
from controlroom_cli.errors import ExitCode
from controlroom_cli.follow import TERMINAL_STATUSES, DeadlinePassed, Follower, RunEvent, log_lines

if TYPE_CHECKING:
    from controlroom_cli.client import Api

EXIT_BY_STATUS = {
    "completed": ExitCode.OK,
    "failed": ExitCode.FAILED,
    "cancelled": ExitCode.CANCELLED,
}


def exit_code(status: str, timed_out: bool = False) -> ExitCode:
    """The exit code of a wait that saw the run in ``status`` last."""
    if status in EXIT_BY_STATUS:
        return EXIT_BY_STATUS[status]
    return ExitCode.TIMEOUT if timed_out else ExitCode.API


@dataclass(frozen=True)
class Outcome:
    view: dict[str, Any]
    timed_out: bool

    @property
    def exit_code(self) -> ExitCode:
        return exit_code(str(self.view["status"]), self.timed_out)


def wait_for_end(
    api: Api,
    run_id: str,
    timeout: float | None,
    on_event: Callable[[RunEvent], None] | None = None,
) -> Outcome:
    """Follow the run's event stream (polling its history if the API refuses the stream) to
    its end, or to ``timeout`` seconds; returns the run's view at that moment."""
    view: dict[str, Any] = api.get(f"/runs/{run_id}")
    if view["status"] in TERMINAL_STATUSES and on_event is None:
        return Outcome(view, timed_out=False)
    follower = Follower(
        partial(api.event_stream, run_id),
        partial(api.events_page, run_id),
        partial(api.run_ended, run_id),
        deadline=None if timeout is None else time.monotonic() + timeout,
    )
    timed_out = False
    try:
        for event in follower.events():
            if on_event is not None:
                on_event(event)
    except DeadlinePassed:
        timed_out = True
    view = api.get(f"/runs/{run_id}")
    return Outcome(view, timed_out)


def print_log_lines(event: RunEvent) -> None:
    for _stream, line in log_lines(event):
        render.out(line)


def summary(view: dict[str, Any], timed_out: bool) -> str:
    """One line: how the run ended (or where it was at the deadline)."""
    status = str(view["status"])
    run = f"run {view['run_id']}"
    if timed_out and status not in TERMINAL_STATUSES:
        return f"{run} is still {status}: stopped waiting"
    if status == "completed":
        return f"{run} completed in {render.took(view.get('started_at'), view.get('completed_at'))}"
    if status == "failed":
        reason = view.get("failure_reason") or "failed"
        if view.get("exit_code") is not None:
            reason += f" {view['exit_code']}"
        error = (view.get("error") or "").strip().splitlines()
        return f"{run} failed: {reason}" + (f": {error[-1]}" if error else "")
    if status == "cancelled":
        return f"{run} cancelled"
    return f"{run} is {status}"
