"""A schedule's clock: when its ticks fall, read with croniter (cron) or by arithmetic (interval).

Every time here is aware; answers are in UTC, as stored. A cron expression is read in the
schedule's time zone, so ``0 9 * * *`` in Europe/Paris is 09:00 there, summer and winter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

_JUST_AFTER = timedelta(microseconds=1)


class ClockError(ValueError):
    """croniter refuses the expression, or finds no tick of it (``0 0 31 2 *``)."""


@dataclass(frozen=True)
class Clock:
    cron: str | None
    interval_seconds: int | None
    timezone: str = "UTC"

    def first_after(self, now: datetime) -> datetime:
        """The first tick after ``now``: when a schedule is created or resumed. ClockError
        with croniter's message when there is none (the expression is refused, or never
        matches a date).

        An interval's ticks count from here (to the second): the first is one interval later."""
        if self.interval_seconds is not None:
            return now.replace(microsecond=0) + timedelta(seconds=self.interval_seconds)
        return self._cron(now, forward=True)

    def latest_due(self, next_fire_at: datetime, now: datetime) -> datetime:
        """The latest tick at or before ``now``, given the earliest one not fired yet.

        Ticks missed while no scheduler ran (or the ticker could not keep up) are not fired
        one by one: they collapse into this one."""
        if self.interval_seconds is not None:
            step = timedelta(seconds=self.interval_seconds)
            return next_fire_at + ((now - next_fire_at) // step) * step
        # Backwards croniter answers ticks strictly before its start: from just after now, a
        # tick at now itself counts.
        return max(next_fire_at, self._cron(now + _JUST_AFTER, forward=False))

    def next_after(self, fired: datetime, now: datetime) -> datetime:
        """The tick after ``fired`` (the latest due at ``now``): the next one to wait for."""
        if self.interval_seconds is not None:
            return fired + timedelta(seconds=self.interval_seconds)
        return self.first_after(now)

    def _cron(self, start: datetime, *, forward: bool) -> datetime:
        assert self.cron is not None, "a schedule has a cron expression or an interval"
        try:
            ticks = croniter(self.cron, start.astimezone(ZoneInfo(self.timezone)), datetime)
            tick = ticks.get_next() if forward else ticks.get_prev()
        except (ValueError, TypeError) as exc:  # every croniter error derives from these
            raise ClockError(str(exc)) from None
        return tick.astimezone(UTC)
