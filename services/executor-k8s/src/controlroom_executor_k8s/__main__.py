"""``python -m controlroom_executor_k8s``: run the Kubernetes executor."""

from __future__ import annotations

from controlroom_executor_k8s.app import create_app
from controlroom_executor_k8s.settings import ExecutorK8sSettings
from controlroom_runtime.serve import serve


def main() -> None:
    settings = ExecutorK8sSettings()
    serve("executor-k8s", create_app(settings), settings)


if __name__ == "__main__":
    main()
