"""The supervisor's backoff policy, and the supervisor restarting real processes of a real
``ServiceStack`` (two stand-in services that only answer ``/readyz``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from controlroom_devstack.stack import ServiceDef, ServiceStack, StackConfig
from controlroom_devstack.supervisor import Backoff, Supervisor, describe_exit
from controlroom_devstack.waiting import eventually

# ---- the policy -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("backoff", "attempt", "delay"),
    [
        (Backoff(), 1, 1.0),
        (Backoff(), 2, 2.0),
        (Backoff(), 3, 4.0),
        (Backoff(), 5, 16.0),
        (Backoff(), 6, 30.0),
        (Backoff(), 7, 30.0),
        # a service crashing all night: far past where 2.0 ** attempt overflows a float
        (Backoff(), 10_000, 30.0),
        (Backoff(initial=0.5, factor=3.0, cap=10.0), 1, 0.5),
        (Backoff(initial=0.5, factor=3.0, cap=10.0), 3, 4.5),
        (Backoff(initial=0.5, factor=3.0, cap=10.0), 4, 10.0),
    ],
)
def test_delay_doubles_per_attempt_up_to_the_cap(
    backoff: Backoff, attempt: int, delay: float
) -> None:
    assert backoff.delay(attempt) == delay


def test_attempts_count_from_one() -> None:
    with pytest.raises(ValueError):
        Backoff().delay(0)


@pytest.mark.parametrize(
    ("previous", "uptime", "attempt"),
    [
        (0, 0.1, 1),  # the first exit after the first start
        (1, 5.0, 2),
        (5, 59.9, 6),
        (5, 60.0, 1),  # stayed up for reset_after: healthy, so backoff starts over
        (9, 3600.0, 1),
    ],
)
def test_next_attempt_counts_exits_in_a_row_and_resets_after_a_healthy_run(
    previous: int, uptime: float, attempt: int
) -> None:
    assert Backoff().next_attempt(previous, uptime) == attempt


@pytest.mark.parametrize(
    ("returncode", "said"),
    [
        (0, "code 0"),
        (1, "code 1"),
        (-9, "signal SIGKILL"),
        (-15, "signal SIGTERM"),
        (-200, "signal 200"),
    ],
)
def test_describe_exit_names_the_code_or_the_signal(returncode: int, said: str) -> None:
    assert describe_exit(returncode) == said


# ---- real processes ---------------------------------------------------------------------

# A stand-in service: answers /readyz on the port ServiceStack gives it, says when it starts.
STAND_IN = """
import http.server, os, sys

class Ready(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass

port = int(os.environ[sys.argv[1]])
print("stand-in listening on", port, flush=True)
http.server.HTTPServer(("127.0.0.1", port), Ready).serve_forever()
"""

FAST = Backoff(initial=0.05, factor=2.0, cap=1.0)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[ServiceStack]:
    (tmp_path / "devstack_stand_in.py").write_text(STAND_IN)
    services = tuple(
        ServiceDef(name, "devstack_stand_in", name.upper(), (f"CONTROLROOM_{name.upper()}_PORT",))
        for name in ("alpha", "beta")
    )
    stack = ServiceStack(
        StackConfig(
            nats_url="nats://127.0.0.1:1",
            database_url="postgresql://unused",
            jwt_secret="unused",
            logs_dir=tmp_path / "logs",
            workdir=tmp_path / "work",
            extra_env={"PYTHONPATH": str(tmp_path)},
        ),
        services,
    )
    try:
        stack.start(timeout=10)
        yield stack
    finally:
        stack.stop(grace=5)


class Running:
    """A supervisor on its own thread, as ``make up`` runs it on its main one."""

    def __init__(self, stack: ServiceStack, backoff: Backoff) -> None:
        self.stop = threading.Event()
        self.said: list[str] = []
        self.supervisor = Supervisor(
            stack, self.stop, backoff, poll_interval=0.01, say=self.said.append
        )
        self.thread = threading.Thread(target=self.supervisor.run, daemon=True)

    def __enter__(self) -> Running:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


async def _replaced(stack: ServiceStack, name: str, old: subprocess.Popen[bytes]) -> int:
    async def check() -> int | None:
        process = stack.processes[name]
        return process.pid if process is not old else None

    return await eventually(check, timeout=5, what=f"{name} restarted")


async def _ready(url: str) -> None:
    async def check() -> bool:
        async with httpx.AsyncClient(timeout=1) as client:
            try:
                return (await client.get(f"{url}/readyz")).status_code == 200
            except httpx.HTTPError:
                return False

    await eventually(check, timeout=5, what=f"{url} ready")


async def test_a_killed_service_is_restarted_on_its_port_while_the_other_keeps_running(
    stack: ServiceStack,
) -> None:
    alpha, beta = stack.processes["alpha"], stack.processes["beta"]
    url = stack.url("alpha")
    with Running(stack, FAST) as running:
        os.kill(alpha.pid, signal.SIGKILL)
        new_pid = await _replaced(stack, "alpha", alpha)
        await _ready(url)

    assert new_pid != alpha.pid and stack.processes["alpha"].poll() is None
    assert stack.url("alpha") == url
    assert stack.processes["beta"] is beta and beta.poll() is None
    assert running.said[0].startswith("alpha exited with signal SIGKILL after ")
    assert running.said[0].endswith("; restarting in 0.05s (attempt 1)")
    assert running.said[1] == f"alpha restarted (pid {new_pid}, attempt 1)"

    # The restarted process appended to the same log, beside the supervisor's JSON lines (the
    # new process and the supervisor write at about the same time, so their order is open).
    lines = stack.log_path("alpha").read_text().splitlines()
    own = [line for line in lines if not line.startswith("{")]
    assert own == [f"stand-in listening on {url.rsplit(':', 1)[1]}"] * 2
    exited, restarted = (json.loads(line) for line in lines if line.startswith("{"))
    assert exited["service"] == "alpha" and exited["level"] == "warning"
    assert (exited["exit"], exited["returncode"]) == ("signal SIGKILL", -9)
    assert (exited["attempt"], exited["delay_s"]) == (1, 0.05)
    assert (restarted["event"], restarted["pid"]) == ("restarted", new_pid)


async def test_exits_in_a_row_wait_longer_each_time(stack: ServiceStack) -> None:
    with Running(stack, FAST) as running:
        first = stack.processes["alpha"]
        first.send_signal(signal.SIGTERM)
        await _replaced(stack, "alpha", first)
        second = stack.processes["alpha"]
        second.kill()
        await _replaced(stack, "alpha", second)

    exits = [line for line in running.said if " exited with " in line]
    assert "signal SIGTERM" in exits[0] and exits[0].endswith("in 0.05s (attempt 1)")
    assert "signal SIGKILL" in exits[1] and exits[1].endswith("in 0.1s (attempt 2)")


async def test_a_restart_that_cannot_start_is_retried_with_the_next_delay(
    stack: ServiceStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_restart = stack.restart
    calls: list[str] = []

    def fails_once(name: str) -> subprocess.Popen[bytes]:
        calls.append(name)
        if len(calls) == 1:
            raise FileNotFoundError("nice")
        return real_restart(name)

    monkeypatch.setattr(stack, "restart", fails_once)
    alpha = stack.processes["alpha"]
    with Running(stack, FAST) as running:
        alpha.kill()
        await _replaced(stack, "alpha", alpha)

    assert calls == ["alpha", "alpha"]
    assert running.said[1] == "alpha could not be started (nice); retrying in 0.1s"
    assert running.said[2].endswith("attempt 2)")


async def test_nothing_is_restarted_once_stop_is_set(stack: ServiceStack) -> None:
    alpha = stack.processes["alpha"]
    running = Running(stack, Backoff(initial=30.0))
    with running:
        alpha.kill()

        async def scheduled() -> bool:
            return any(line.startswith("alpha exited") for line in running.said)

        await eventually(scheduled, timeout=5, what="alpha's restart scheduled")
    # Leaving the block set stop and joined the thread: run() returned without waiting 30 s.
    assert not running.thread.is_alive()
    assert stack.processes["alpha"] is alpha and alpha.poll() is not None
    assert len(running.said) == 1
