"""``python -m controlroom_executor_docker``: run the executor."""

from __future__ import annotations

from controlroom_executor_docker.app import create_app
from controlroom_executor_docker.settings import ExecutorDockerSettings
from controlroom_runtime.serve import serve


def main() -> None:
    settings = ExecutorDockerSettings()
    serve("executor-docker", create_app(settings), settings)


if __name__ == "__main__":
    main()
