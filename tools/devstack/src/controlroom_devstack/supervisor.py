"""Keep ``make up``'s services running, as docker-compose's ``restart: always`` or a Kubernetes
pod would: a service whose process exits (any exit code, a crash, ``kill -9``) is started
again after a backoff, while the others keep running.

Restarts in a row wait 1 s, 2 s, 4 s ... up to 30 s; a process that stayed up for a minute
counts as healthy, so its next restart waits 1 s again. Once the stop event is set (Ctrl-C,
SIGTERM, ``make down``) nothing is restarted: exits from then on are the shutdown's.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from controlroom_devstack.stack import ServiceStack


@dataclass(frozen=True)
class Backoff:
    """How long to wait before restarting a service that exited (pure: no clock, no I/O)."""

    initial: float = 1.0
    factor: float = 2.0
    cap: float = 30.0
    reset_after: float = 60.0
    """A process that stayed up this long was healthy: its next restart is attempt 1 again."""

    def delay(self, attempt: int) -> float:
        """Seconds to wait before restart number ``attempt`` (1 for the first in a row)."""
        if attempt < 1:
            raise ValueError(f"attempts count from 1, not {attempt}")
        delay = self.initial
        # Multiplied step by step and stopped at the cap rather than ``factor ** attempt``: a
        # service that has crashed all night reaches attempts where that power overflows.
        for _ in range(attempt - 1):
            if delay >= self.cap:
                break
            delay *= self.factor
        return min(delay, self.cap)

    def next_attempt(self, previous: int, uptime: float) -> int:
        """The attempt number of the restart after a process that ran ``uptime`` seconds
        exited; ``previous`` is the attempt that started that process (0: the first start)."""
        return 1 if uptime >= self.reset_after else previous + 1


def describe_exit(returncode: int) -> str:
    """``code 1`` or ``signal SIGKILL`` (Popen reports death by a signal as ``-signum``)."""
    if returncode >= 0:
        return f"code {returncode}"
    try:
        return f"signal {signal.Signals(-returncode).name}"
    except ValueError:
        return f"signal {-returncode}"


def _say(text: str) -> None:
    print(text, flush=True)


@dataclass
class _Watch:
    started_at: float
    attempt: int = 0
    due: float | None = None
    """When the pending restart is to happen; None while the process runs."""


class Supervisor:
    """Restarts the services of a started ``ServiceStack`` when they exit, until ``stop``."""

    def __init__(
        self,
        stack: ServiceStack,
        stop: threading.Event,
        backoff: Backoff | None = None,
        *,
        poll_interval: float = 0.25,
        say: Callable[[str], None] = _say,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stack = stack
        self._stop = stop
        self._backoff = backoff or Backoff()
        self._poll_interval = poll_interval
        self._say = say
        self._clock = clock
        self._watches = {name: _Watch(clock()) for name in stack.processes}

    def run(self) -> None:
        """Supervise until ``stop`` is set; return at once then, even with a restart pending."""
        while not self._stop.is_set():
            self.tick()
            self._stop.wait(self._until_next())

    def tick(self) -> None:
        """Notice the processes that exited and restart those whose backoff has passed."""
        for name, process in list(self._stack.processes.items()):
            # A signal handler sets stop, and a terminal's Ctrl-C reaches the services too:
            # an exit seen from then on is the shutdown, not a crash.
            if self._stop.is_set():
                return
            watch = self._watches.setdefault(name, _Watch(self._clock()))
            if watch.due is None:
                if process.poll() is not None:
                    self._exited(name, watch, process)
            elif self._clock() >= watch.due:
                self._restart(name, watch)

    def _until_next(self) -> float:
        now = self._clock()
        waits = [w.due - now for w in self._watches.values() if w.due is not None]
        return max(0.0, min([self._poll_interval, *waits]))

    def _exited(self, name: str, watch: _Watch, process: subprocess.Popen[bytes]) -> None:
        uptime = self._clock() - watch.started_at
        returncode = process.returncode
        how = describe_exit(returncode)
        attempt, delay = self._schedule(watch, uptime)
        self._say(
            f"{name} exited with {how} after {uptime:.1f}s; "
            f"restarting in {delay:g}s (attempt {attempt})"
        )
        self._stack.log_event(
            name,
            "exited; restarting after backoff",
            level="warning",
            exit=how,
            returncode=returncode,
            attempt=attempt,
            delay_s=delay,
            uptime_s=round(uptime, 3),
        )

    def _restart(self, name: str, watch: _Watch) -> None:
        try:
            process = self._stack.restart(name)
        except OSError as exc:
            # Not even started (the interpreter or the log file went away): one more failed
            # attempt, retried after the next, longer delay.
            attempt, delay = self._schedule(watch, uptime=0.0)
            self._say(f"{name} could not be started ({exc}); retrying in {delay:g}s")
            self._stack.log_event(
                name,
                "restart failed; retrying after backoff",
                level="error",
                error=str(exc),
                attempt=attempt,
                delay_s=delay,
            )
            return
        watch.started_at, watch.due = self._clock(), None
        self._say(f"{name} restarted (pid {process.pid}, attempt {watch.attempt})")
        self._stack.log_event(name, "restarted", pid=process.pid, attempt=watch.attempt)

    def _schedule(self, watch: _Watch, uptime: float) -> tuple[int, float]:
        watch.attempt = self._backoff.next_attempt(watch.attempt, uptime)
        delay = self._backoff.delay(watch.attempt)
        watch.due = self._clock() + delay
        return watch.attempt, delay
