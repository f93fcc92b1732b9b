"""The scheduler's only wiring point."""

from __future__ import annotations

import functools
from datetime import timedelta
from pathlib import Path

from fastapi import FastAPI

from controlroom_runtime.service import ServiceRuntime, service_app
from controlroom_runtime.unit_of_work import unit_of_work
from controlroom_scheduler import handlers, retention
from controlroom_scheduler.dispatcher import Dispatcher
from controlroom_scheduler.liveness import ExecutorBoard
from controlroom_scheduler.routing import Routes
from controlroom_scheduler.schedules import ScheduleAdmin
from controlroom_scheduler.service import Scheduler
from controlroom_scheduler.settings import SchedulerSettings
from controlroom_scheduler.store import metadata
from controlroom_scheduler.sweeper import Sweeper
from controlroom_scheduler.template_jobs import AskTheGateway
from controlroom_scheduler.ticker import Ticker

MIGRATIONS = Path(__file__).parent / "migrations"


def create_app(settings: SchedulerSettings | None = None) -> FastAPI:
    settings = settings or SchedulerSettings()
    # Read now: a routing file that cannot be used stops the service before it starts.
    routes = Routes(settings.routing())

    def build() -> ServiceRuntime:
        runtime = ServiceRuntime(
            name="scheduler", settings=settings, metadata=metadata, migrations_dir=MIGRATIONS
        )
        scheduler = Scheduler(settings, routes, runtime.metrics)
        board = ExecutorBoard(timedelta(seconds=settings.executor_silence_seconds))
        handlers.register(runtime, scheduler, board)

        uow = functools.partial(unit_of_work, runtime.sessions, runtime.outbox)
        # Admission passes do not wait for their messages' acks: the next pass overlaps them.
        dispatcher = Dispatcher(scheduler, board, functools.partial(uow, await_publish=False))
        sweeper = Sweeper(scheduler, board, uow)
        runtime.background(dispatcher.run)
        runtime.background(sweeper.run)

        handlers.register_schedules(runtime, ScheduleAdmin(runtime.sessions, runtime.autocommit))
        ticker = Ticker(
            uow,
            runtime.autocommit,
            AskTheGateway(runtime.broker, settings.template_timeout_seconds),
            interval=settings.schedule_tick_seconds,
            batch=settings.schedule_batch,
        )
        runtime.background(ticker.run)
        retention.install(runtime, settings)
        return runtime

    return service_app("scheduler", settings, build)
