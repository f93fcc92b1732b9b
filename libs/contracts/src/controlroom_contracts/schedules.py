"""Schedules: a template's job submitted on a clock (a cron expression or a fixed interval).

The scheduler owns them. The gateway takes the REST bodies and asks the scheduler over
request-reply, as for the other administration (``management``); at each tick the scheduler
asks the gateway, which owns templates, for the job to submit (``TemplateJobQuery``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from controlroom_contracts import subjects
from controlroom_contracts.api import ApiModel, JobRequest
from controlroom_contracts.management import Cursor, Page, Request
from controlroom_contracts.resources import TemplateName

CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
MAX_INTERVAL_SECONDS = 366 * 24 * 3600
MAX_VERSION = 2**31 - 1


def cron_shape(value: str) -> str:
    """Five fields or an alias, whitespace collapsed; what the fields say is the cron
    library's to judge (each service that reads one parses it with croniter)."""
    expression = " ".join(value.split())
    if expression.startswith("@"):
        if expression not in CRON_ALIASES:
            raise ValueError(f"unknown alias {expression!r}; one of {', '.join(CRON_ALIASES)}")
    elif len(expression.split(" ")) != 5:
        # croniter would also take a 6th (seconds) and 7th (year) field; interval_seconds
        # is the way to tick faster than a minute, so one spelling of cron is enough.
        raise ValueError(
            "a cron expression has 5 fields: minute hour day-of-month month day-of-week"
        )
    return expression


def known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as Europe/Paris"
        ) from None
    return value


CronExpression = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(cron_shape)]
# Bounded: a schedule travels in request-reply messages, and keeps its inputs for every tick.
Inputs = Annotated[
    dict[
        Annotated[str, Field(min_length=1, max_length=256)],
        Annotated[str, Field(max_length=4_096)],
    ],
    Field(max_length=100),
]


# -- REST ------------------------------------------------------------------------------------


class ScheduleIn(ApiModel):
    """The body of ``POST /api/v1/schedules``: give exactly one of ``cron`` and
    ``interval_seconds``."""

    template: TemplateName
    version: int | None = Field(
        default=None, ge=1, le=MAX_VERSION, description="Default: the latest version at each tick"
    )
    cron: CronExpression | None = Field(
        default=None,
        description="Five fields (minute hour day-of-month month day-of-week) or an alias "
        "such as @daily, read in `timezone`",
        examples=["0 2 * * *"],
    )
    interval_seconds: int | None = Field(
        default=None,
        ge=1,
        le=MAX_INTERVAL_SECONDS,
        # Validated when omitted too: the check that exactly one clock is given lives there.
        validate_default=True,
        description="A tick every this many seconds, the first one interval after creation",
    )
    timezone: Annotated[str, Field(min_length=1, max_length=64), AfterValidator(known_timezone)] = (
        Field(default="UTC", description="IANA time zone the cron expression is read in")
    )
    inputs: Inputs = Field(
        default_factory=dict, description="Merged over the template's declared inputs"
    )
    paused: bool = Field(default=False, description="Created paused: no tick fires until resumed")

    @field_validator("interval_seconds")
    @classmethod
    def _exactly_one_clock(cls, value: int | None, info: ValidationInfo) -> int | None:
        if "cron" not in info.data:
            return value  # the cron expression is wrong, and its own error says so
        if (info.data["cron"] is None) == (value is None):
            raise ValueError("give exactly one of cron and interval_seconds")
        return value


class ScheduleView(ApiModel):
    schedule_id: UUID
    template: str
    version: int | None = Field(description="null: the template's latest version at each tick")
    cron: str | None
    interval_seconds: int | None
    timezone: str
    inputs: dict[str, str]
    paused: bool
    next_fire_at: datetime | None = Field(description="The next tick; null while paused")
    last_fired_at: datetime | None = Field(description="The latest tick that submitted a run")
    last_run_id: UUID | None = Field(default=None, description="The run that tick submitted")
    last_error: str | None = Field(
        default=None,
        description="Why the latest tick submitted nothing (its template is gone, ...); "
        "null once a tick submits again",
    )
    created_by: str
    created_at: datetime


class SchedulePage(Page):
    """One page of ``GET /api/v1/schedules``, newest first."""

    items: list[ScheduleView]


# -- request-reply: the gateway asks the scheduler -------------------------------------------


class CreateSchedule(Request):
    subject: ClassVar[str] = subjects.SCHEDULE_CREATE
    schedule: ScheduleIn
    created_by: str = Field(min_length=1, max_length=256)


class ListSchedules(Request):
    subject: ClassVar[str] = subjects.SCHEDULE_LIST
    limit: int = Field(default=50, ge=1, le=200)
    after: Cursor | None = Field(default=None, description="Newest first: the page after this")


class ScheduleList(BaseModel):
    model_config = ConfigDict(frozen=True)

    items: list[ScheduleView]
    more: bool


class GetSchedule(Request):
    subject: ClassVar[str] = subjects.SCHEDULE_GET
    schedule_id: UUID


class SetSchedulePaused(Request):
    """Pause (``paused``) or resume a schedule; the answer is the schedule as it now is."""

    subject: ClassVar[str] = subjects.SCHEDULE_PAUSE
    schedule_id: UUID
    paused: bool
    changed_by: str = Field(min_length=1, max_length=256)


class DeleteSchedule(Request):
    subject: ClassVar[str] = subjects.SCHEDULE_DELETE
    schedule_id: UUID
    deleted_by: str = Field(min_length=1, max_length=256)


# -- request-reply: the scheduler asks the gateway -------------------------------------------


class TemplateJobQuery(Request):
    """The job a template stands for, with ``inputs`` merged over its own (answered by the
    gateway; ``not_found`` when the template or the version is gone, ``invalid`` when its job
    would no longer be accepted)."""

    subject: ClassVar[str] = subjects.TEMPLATE_JOB_QUERY
    name: TemplateName
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    inputs: Inputs = Field(default_factory=dict)


class TemplateJob(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    version: int = Field(ge=1)
    job: JobRequest
