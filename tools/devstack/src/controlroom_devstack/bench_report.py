"""What every ``make bench`` scenario shares: its result rows, percentiles, and the CPU time
processes spent (read from ``/proc``: psutil is not a dependency)."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from controlroom_devstack.infra import Postgres
from controlroom_devstack.stack import ServiceStack

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Row:
    scenario: str
    metric: str
    target: str
    measured: str


def pct(values: list[float], q: float) -> float:
    """The q-th percentile by the nearest-rank method (p99 of 50 values is the largest)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def print_table(rows: list[Row], notes: Iterable[str]) -> None:
    headers = ("scenario", "metric", "target", "measured")
    widths = [max(len(h), *(len(getattr(r, h)) for r in rows)) for h in headers]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))
    print(line)
    print("-" * len(line))
    for r in rows:
        values = (r.scenario, r.metric, r.target, r.measured)
        print("  ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)))
    for note in notes:
        print(note)


def cpu_seconds(pid: int, *, own: bool = True, children: bool = True) -> float:
    """User + system CPU of a process (``own``) and of the children it has waited for
    (``children``); 0 once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    # The command name (field 2) is in parentheses and may hold spaces: split after it.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime, cutime, cstime = (int(f) for f in fields[11:15])
    return ((utime + stime) * own + (cutime + cstime) * children) / _TICKS


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def nats_server_pids(port: int) -> list[int]:
    """The nats-server listening on ``port`` (other sessions on the machine run their own)."""
    wanted = f"\0-p\0{port}\0".encode()
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and _comm(int(entry)) == "nats-server":
            try:
                if wanted in Path(f"/proc/{entry}/cmdline").read_bytes():
                    found.append(int(entry))
            except OSError:
                continue
    return found


def postgres_pids(data_dir: Path) -> list[int]:
    """The postmaster of ``data_dir`` and its backends (a backend's CPU is its own until it
    exits, then its parent's)."""
    try:
        postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return []
    return [postmaster, *children_of(postmaster)]


def machine_busy_seconds() -> float:
    """CPU seconds every core has spent on anything but idling and waiting for I/O."""
    fields = [int(f) for f in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields
    return (user + nice + system + irq + softirq + steal) / _TICKS


def children_of(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        if int(stat[stat.rindex(")") + 2 :].split()[1]) == pid:
            found.append(int(entry))
    return found


class CpuMeter:
    """CPU seconds each named group of processes spends between ``start`` and ``stop``.

    A group is a function giving its pids at the time of reading, so processes that start
    meanwhile (a Postgres backend) are counted from when they are first seen."""

    def __init__(
        self,
        groups: Mapping[str, Callable[[], list[int]]],
        children_of: Mapping[str, str] | None = None,
    ) -> None:
        """``children_of``: groups counted as the CPU of the processes another group started
        and waited for (an executor's jobs), which that group's own figure then leaves out."""
        self._groups = dict(groups)
        self._children_of = dict(children_of or {})
        self._parents = set(self._children_of.values())
        self._before: dict[str, dict[int, float]] = {}
        self._machine = 0.0
        self.spent: dict[str, float] = {}

    def _read(self) -> dict[str, dict[int, float]]:
        return {
            name: {
                pid: cpu_seconds(
                    pid,
                    own=name not in self._children_of,
                    children=name in self._children_of or name not in self._parents,
                )
                for pid in pids()
            }
            for name, pids in self._groups.items()
        }

    def start(self) -> None:
        self._machine = machine_busy_seconds()
        self._before = self._read()

    def stop(self) -> dict[str, float]:
        after = self._read()
        self.spent = {
            name: sum(
                max(0.0, cpu - self._before.get(name, {}).get(pid, 0.0))
                for pid, cpu in after[name].items()
            )
            for name in self._groups
        }
        busy = machine_busy_seconds() - self._machine
        # Other sessions share this machine: what they took is part of the picture.
        self.spent["everything else"] = max(0.0, busy - sum(self.spent.values()))
        return self.spent

    def system(self) -> float:
        """CPU seconds of the system under test: every group but the bench client and what
        else shares the machine."""
        return sum(
            cpu
            for name, cpu in self.spent.items()
            if name not in ("bench client", "everything else")
        )

    def describe(self, wall: float) -> str:
        """``scheduler 3.1 s (62% of a core), postgres ...`` over ``wall`` seconds."""
        return ", ".join(
            f"{name} {cpu:.2f} s ({cpu / wall:.0%} of a core)"
            for name, cpu in sorted(self.spent.items(), key=lambda item: -item[1])
        )

    def describe_per(self, n: int, what: str) -> str:
        """``scheduler 3.1 ms, postgres ...`` of CPU per one of ``n`` things."""
        return (
            ", ".join(
                f"{name} {ms(cpu / n)}"
                for name, cpu in sorted(self.spent.items(), key=lambda item: -item[1])
                if cpu / n >= 0.00005
            )
            + f" of CPU per {what}"
        )


def _just(pid: int) -> Callable[[], list[int]]:
    return lambda: [pid]


def stack_meter(stack: ServiceStack, postgres: Postgres) -> CpuMeter:
    """The CPU of this stack's processes: its services, nats-server, Postgres, the client."""
    port = int(stack.config.nats_url.rsplit(":", 1)[1])
    groups: dict[str, Callable[[], list[int]]] = {
        name: _just(process.pid) for name, process in stack.processes.items()
    }
    groups["postgres"] = lambda: postgres_pids(postgres.data_dir)
    groups["nats-server"] = lambda: nats_server_pids(port)
    groups["bench client"] = lambda: [os.getpid()]
    jobs = "jobs (what executor-docker ran)"
    if "executor-docker" in stack.processes:
        groups[jobs] = groups["executor-docker"]
    return CpuMeter(groups, {jobs: "executor-docker"} if jobs in groups else {})
