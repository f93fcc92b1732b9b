"""``python -m controlroom_scheduler``: run the scheduler."""

from __future__ import annotations

from controlroom_runtime.serve import serve
from controlroom_scheduler.app import create_app
from controlroom_scheduler.settings import SchedulerSettings


def main() -> None:
    settings = SchedulerSettings()
    serve("scheduler", create_app(settings), settings)


if __name__ == "__main__":
    main()
