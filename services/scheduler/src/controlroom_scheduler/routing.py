"""The routing matrix as the scheduler uses it: a job type's executor kind, the execution
profile each of its dispatches carries, and its default timeout and retry policy.

The matrix is configuration (``controlroom_runtime.routing_file``), read once at start."""

from __future__ import annotations

from controlroom_contracts.routing import ExecutionProfile, Route, RoutingMatrix


class Routes:
    def __init__(self, matrix: RoutingMatrix) -> None:
        self._routes = dict(matrix.job_types)
        # Built once: a pass dispatches up to a thousand runs, each carrying its profile.
        self._profiles = {name: route.profile() for name, route in self._routes.items()}

    def route(self, job_type: str) -> Route | None:
        return self._routes.get(job_type)

    def kind(self, job_type: str) -> str | None:
        """The executor kind that runs the job type; None: not routed (``no_route``)."""
        route = self._routes.get(job_type)
        return None if route is None else route.executor

    def profile(self, job_type: str) -> ExecutionProfile | None:
        return self._profiles.get(job_type)
