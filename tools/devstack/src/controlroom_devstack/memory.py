"""Resident memory of a set of processes, sampled over time, and how it grew."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1 << 20


def rss_bytes(pid: int) -> int | None:
    """The process's resident set (VmRSS), or None if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of ``(x, y)`` points (0 with fewer than two distinct x)."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var


@dataclass
class Growth:
    """One process's memory over a sampling: MiB, and MiB per minute."""

    name: str
    first_minute: float
    last_minute: float
    peak: float
    slope_all: float
    slope_second_half: float
    growth_second_half: float
    """What the fitted line over the second half gains over that half (MiB)."""


@dataclass
class MemorySampler:
    """Samples each named process's RSS every ``interval`` seconds while ``run`` runs.

    ``pids`` is asked on every sample, so a restarted process is followed by name."""

    pids: Callable[[], Mapping[str, int]]
    interval: float = 5.0
    samples: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    _t0: float = field(default_factory=time.monotonic)

    def sample(self) -> None:
        now = time.monotonic() - self._t0
        for name, pid in self.pids().items():
            rss = rss_bytes(pid)
            if rss is not None:
                self.samples.setdefault(name, []).append((now, rss))

    async def run(self, stopping: asyncio.Event) -> None:
        self._t0 = time.monotonic()
        while not stopping.is_set():
            self.sample()
            try:
                await asyncio.wait_for(stopping.wait(), self.interval)
            except TimeoutError:
                pass
        self.sample()

    def growth(self) -> list[Growth]:
        found = []
        for name, series in sorted(self.samples.items()):
            if not series:
                continue
            points = [(t / 60, rss / MIB) for t, rss in series]
            end = points[-1][0]
            half = [(t, m) for t, m in points if t >= end / 2]
            first = [m for t, m in points if t <= 1.0] or [points[0][1]]
            last = [m for t, m in points if t >= end - 1.0] or [points[-1][1]]
            half_slope = slope(half)
            found.append(
                Growth(
                    name=name,
                    first_minute=sum(first) / len(first),
                    last_minute=sum(last) / len(last),
                    peak=max(m for _, m in points),
                    slope_all=slope(points),
                    slope_second_half=half_slope,
                    growth_second_half=half_slope * (end - half[0][0]) if half else 0.0,
                )
            )
        return found


def pids_by_cmdline(fragment: str) -> list[int]:
    """Processes whose command line contains ``fragment`` (a data directory, say)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
        except OSError:
            continue
        if fragment.encode() in cmdline:
            found.append(int(entry.name))
    return found


def postmaster_pid(data_dir: Path) -> int | None:
    """The Postgres server's pid, from its data directory (None when it is not running)."""
    try:
        return int((data_dir / "postmaster.pid").read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return None
