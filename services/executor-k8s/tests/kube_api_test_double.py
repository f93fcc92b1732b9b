"""A TEST DOUBLE of the Kubernetes API server: NOT a real one, and no cluster runs behind it.

It serves, over real HTTP on a loopback port, just the part of the API that the Kubernetes
backend uses through lightkube: Jobs, Pods, ConfigMaps, Secrets and NetworkPolicies (create,
get, list with ``labelSelector``/``fieldSelector``, merge patch, delete with
``propagationPolicy``, watch as newline-delimited JSON events from a ``resourceVersion``) and pod
logs (with ``follow``), behind a bearer token written into a generated kubeconfig.

Nothing runs on its own except a minimal Job controller (a resumed Job gets one pod; the pod's
end marks the Job Complete or Failed, as ``backoffLimit: 0`` would) and the garbage collector's
deletion cascade. A test plays the scheduler and the kubelet with the methods under "Driving
the cluster": :meth:`start_pod`, :meth:`write_log`, :meth:`finish_pod`, :meth:`oom_kill`,
:meth:`image_pull_backoff`, :meth:`unschedulable`, :meth:`exceed_deadline`, :meth:`evict`,
:meth:`preempt`; and the API server's own troubles with :meth:`interrupt_watches`,
:meth:`interrupt_logs` and :attr:`hold_garbage_collection`. :attr:`journal` and
:attr:`deletions` record what clients did, in order.

What it does not check: schemas (``test_manifests`` validates those), admission, quotas,
RBAC, and it keeps every object in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import socket
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import uvicorn
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from controlroom_devstack.waiting import eventually

Obj = dict[str, Any]

KINDS = {
    "jobs": ("batch/v1", "Job"),
    "pods": ("v1", "Pod"),
    "configmaps": ("v1", "ConfigMap"),
    "secrets": ("v1", "Secret"),
    "networkpolicies": ("networking.k8s.io/v1", "NetworkPolicy"),
}
MAIN = "job"


@dataclass(frozen=True)
class Deletion:
    plural: str
    name: str
    propagation_policy: str | None
    grace_period_seconds: str | None


class StreamInterrupted(Exception):
    """Raised inside a streaming response: the server drops the connection mid-stream."""


class ApiStatus(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def response(self) -> Response:
        body = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        return JSONResponse(body, status_code=self.code)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _merge(target: Obj, patch: Obj) -> Obj:
    """RFC 7386 JSON merge patch."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)
    return target


def _selector_matches(selector: str | None, labels: dict[str, str]) -> bool:
    for term in filter(None, (selector or "").split(",")):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


def _fields_match(selector: str | None, obj: Obj) -> bool:
    for term in filter(None, (selector or "").split(",")):
        field, value = term.split("=", 1)
        if field != "metadata.name":
            raise ApiStatus(400, "BadRequest", f"field selector {field} is not supported here")
        if obj["metadata"]["name"] != value:
            return False
    return True


class KubeApiDouble:
    """Test double of a Kubernetes API server (see the module docstring)."""

    def __init__(self, namespace: str = "controlroom-runs", token: str = "double-token") -> None:
        self.namespace = namespace
        self.token = token
        self.objects: dict[tuple[str, str], Obj] = {}
        """(plural, name) -> object, in :attr:`namespace` only."""
        self.events: list[tuple[int, str, str, Obj]] = []
        """(resourceVersion, plural, event type, object) for watches."""
        self.deletions: list[Deletion] = []
        self.journal: list[str] = []
        """What happened, in order: ``create jobs/x``, ``log-end pods/y``, ``delete jobs/x``..."""
        self.logs: dict[str, bytes] = {}
        self.kubeconfig: Path | None = None
        self.hold_garbage_collection = False
        """True: a Foreground deletion only marks the Job, as a busy garbage collector would,
        until :meth:`collect_garbage`."""
        self._held: list[str] = []
        self._version = 0
        self._closing = False
        self._watch_epoch = 0
        self._log_epoch = 0
        self._abort_watches = True
        self._oldest_version = 0
        self._changed = asyncio.Condition()
        self._suffixes = itertools.count(10000)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._socket: socket.socket | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    async def start(self, directory: Path) -> Path:
        """Serve on a free loopback port; returns the kubeconfig pointing at it."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = Starlette(routes=self._routes())
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[sock]))
        server = self._server

        async def listening() -> bool:
            return server.started

        await eventually(listening, timeout=10, what="the API double listening")
        self._socket = sock
        self.kubeconfig = directory / "kubeconfig"
        self.kubeconfig.write_text(yaml.safe_dump(self._kubeconfig(port)))
        return self.kubeconfig

    async def stop(self) -> None:
        self._closing = True
        await self._notify()
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if self._socket is not None:
            self._socket.close()

    def _kubeconfig(self, port: int) -> Obj:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "double", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
            "users": [{"name": "double", "user": {"token": self.token}}],
            "contexts": [
                {
                    "name": "double",
                    "context": {"cluster": "double", "user": "double", "namespace": self.namespace},
                }
            ],
            "current-context": "double",
        }

    # -- driving the cluster (the test plays scheduler and kubelet) -----------------------------

    def get(self, plural: str, name: str) -> Obj | None:
        return self.objects.get((plural, name))

    def names(self, plural: str) -> list[str]:
        return sorted(name for kind, name in self.objects if kind == plural)

    async def create(self, plural: str, obj: Obj) -> Obj:
        """What another API client creating an object does."""
        return await self._create(plural, obj)

    async def delete(self, plural: str, name: str, propagation: str | None = None) -> None:
        """What another API client deleting an object does (``kubectl delete``)."""
        await self._delete(plural, name, propagation)

    async def pod_of(self, job: str, timeout: float = 10.0) -> str:
        """The pod the Job controller created for ``job`` (waits for it)."""

        async def find() -> str | None:
            for (plural, name), obj in self.objects.items():
                owners = obj["metadata"].get("ownerReferences") or []
                if plural == "pods" and any(o["name"] == job for o in owners):
                    return name
            return None

        return await eventually(find, timeout=timeout, what=f"a pod for Job {job}")

    async def followed(self, pod: str, times: int = 1, timeout: float = 10.0) -> None:
        """Until the pod's log has been asked for ``times`` times (a client follows it)."""

        async def reading() -> bool:
            return self.journal.count(f"log-start pods/{pod}") >= times

        await eventually(reading, timeout=timeout, what=f"{times} reader(s) of the log of {pod}")

    async def interrupt_watches(self, *, abrupt: bool = True, compact: bool = False) -> None:
        """End every open watch, as an API server restart does: ``abrupt`` drops the
        connections mid-stream, otherwise they end cleanly (and lightkube resumes from the
        last resourceVersion); ``compact`` also forgets the history, so a watch resuming from
        before now gets 410 Gone."""
        self._abort_watches = abrupt
        if compact:
            self._oldest_version = self._version
        self._watch_epoch += 1
        await self._notify()

    async def interrupt_logs(self) -> None:
        """Drop every open log stream mid-way (the containers keep running)."""
        self._log_epoch += 1
        await self._notify()

    async def collect_garbage(self) -> None:
        """Finish the Foreground deletions held back by :attr:`hold_garbage_collection`."""
        held, self._held = self._held, []
        for job in held:
            await self._finish_foreground(job)

    async def watched(self, plural: str, times: int = 1, timeout: float = 10.0) -> None:
        """Until ``times`` watches of ``plural`` have been opened."""

        async def opened() -> bool:
            return self.journal.count(f"watch {plural}") >= times

        await eventually(opened, timeout=timeout, what=f"{times} watch(es) of {plural}")

    async def start_pod(self, pod: str) -> None:
        """Scheduled, code copied by the init container, job container running."""
        await self._update_pod(
            pod,
            phase="Running",
            conditions=[{"type": "PodScheduled", "status": "True"}],
            init={"terminated": {"exitCode": 0, "reason": "Completed"}},
            main={"running": {"startedAt": _now()}},
        )

    async def write_log(self, pod: str, text: str) -> None:
        self.logs[pod] = self.logs.get(pod, b"") + text.encode()
        await self._notify()

    async def finish_pod(self, pod: str, exit_code: int, reason: str | None = None) -> None:
        """The job container exits; the Job controller then completes or fails the Job."""
        await self._update_pod(
            pod,
            phase="Succeeded" if exit_code == 0 else "Failed",
            main=self._terminated(exit_code, reason),
        )

    async def oom_kill(self, pod: str) -> None:
        await self.finish_pod(pod, 137, "OOMKilled")

    async def image_pull_backoff(self, pod: str) -> None:
        """The kubelet cannot pull the image (the init container's, pulled first)."""
        image = self.objects[("pods", pod)]["spec"]["initContainers"][0]["image"]
        await self._update_pod(
            pod,
            conditions=[{"type": "PodScheduled", "status": "True"}],
            init={
                "waiting": {
                    "reason": "ImagePullBackOff",
                    "message": f'Back-off pulling image "{image}"',
                }
            },
        )

    async def unschedulable(self, pod: str) -> None:
        await self._update_pod(
            pod,
            conditions=[
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/3 nodes are available: 3 Insufficient memory.",
                }
            ],
        )

    async def evict(self, pod: str) -> None:
        """Node-pressure eviction by the kubelet."""
        await self._update_pod(
            pod,
            phase="Failed",
            reason="Evicted",
            message="The node was low on resource: memory.",
            main=self._terminated(137, "Error"),
        )

    async def preempt(self, pod: str) -> None:
        await self._update_pod(
            pod,
            phase="Failed",
            conditions=[
                {
                    "type": "DisruptionTarget",
                    "status": "True",
                    "reason": "PreemptionByScheduler",
                    "message": "default-scheduler: preempting to accommodate a higher priority pod",
                }
            ],
            main=self._terminated(137, "Error"),
        )

    async def exceed_deadline(self, job: str) -> None:
        """What the Job controller does past ``activeDeadlineSeconds`` (Kubernetes 1.31+):
        FailureTarget, its pods killed and deleted, then Failed."""
        message = "Job was active longer than specified deadline"
        await self._set_job_condition(job, "FailureTarget", "DeadlineExceeded", message)
        for pod in self._pods_of(job):
            await self._delete("pods", pod)
        await self._set_job_condition(job, "Failed", "DeadlineExceeded", message)

    # -- HTTP -----------------------------------------------------------------------------------

    def _routes(self) -> list[Route]:
        collection = ["GET", "POST"]
        item = ["GET", "DELETE", "PATCH"]
        return [
            Route("/api/v1/namespaces/{ns}/pods/{name}/log", self._log, methods=["GET"]),
            Route("/api/v1/namespaces/{ns}/{plural}", self._collection, methods=collection),
            Route("/api/v1/namespaces/{ns}/{plural}/{name}", self._item, methods=item),
            Route("/apis/{g}/{v}/namespaces/{ns}/{plural}", self._collection, methods=collection),
            Route("/apis/{g}/{v}/namespaces/{ns}/{plural}/{name}", self._item, methods=item),
        ]

    def _check(self, request: Request) -> str:
        if request.headers.get("authorization") != f"Bearer {self.token}":
            raise ApiStatus(401, "Unauthorized", "Unauthorized")
        if request.path_params["ns"] != self.namespace:
            raise ApiStatus(404, "NotFound", f'namespaces "{request.path_params["ns"]}" not found')
        plural = str(request.path_params["plural"])
        if plural not in KINDS:
            raise ApiStatus(404, "NotFound", f"the server could not find the resource {plural}")
        return plural

    async def _collection(self, request: Request) -> Response:
        try:
            plural = self._check(request)
            if request.method == "POST":
                return JSONResponse(await self._create(plural, await request.json()), 201)
            query = request.query_params
            if query.get("watch") in ("true", "1"):
                return StreamingResponse(
                    self._watch(
                        plural,
                        query.get("labelSelector"),
                        query.get("fieldSelector"),
                        query.get("resourceVersion"),
                        query.get("timeoutSeconds"),
                    ),
                    media_type="application/json",
                )
            items = [
                obj
                for (kind, _), obj in sorted(self.objects.items())
                if kind == plural
                and _selector_matches(
                    query.get("labelSelector"), obj["metadata"].get("labels") or {}
                )
                and _fields_match(query.get("fieldSelector"), obj)
            ]
            api_version, kind = KINDS[plural]
            return JSONResponse(
                {
                    "apiVersion": api_version,
                    "kind": f"{kind}List",
                    "metadata": {"resourceVersion": str(self._version)},
                    "items": items,
                }
            )
        except ApiStatus as status:
            return status.response()

    async def _item(self, request: Request) -> Response:
        try:
            plural = self._check(request)
            name = str(request.path_params["name"])
            if (plural, name) not in self.objects:
                raise ApiStatus(404, "NotFound", f'{plural} "{name}" not found')
            if request.method == "GET":
                return JSONResponse(self.objects[(plural, name)])
            if request.method == "PATCH":
                if request.headers.get("content-type") != "application/merge-patch+json":
                    raise ApiStatus(415, "UnsupportedMediaType", "only merge patches here")
                obj = _merge(copy.deepcopy(self.objects[(plural, name)]), await request.json())
                await self._store(plural, obj, "MODIFIED")
                return JSONResponse(obj)
            query = request.query_params
            self.deletions.append(
                Deletion(
                    plural, name, query.get("propagationPolicy"), query.get("gracePeriodSeconds")
                )
            )
            await self._delete(
                plural, name, query.get("propagationPolicy"), query.get("gracePeriodSeconds")
            )
            return JSONResponse({"kind": "Status", "apiVersion": "v1", "status": "Success"})
        except ApiStatus as status:
            return status.response()

    async def _log(self, request: Request) -> Response:
        try:
            if request.headers.get("authorization") != f"Bearer {self.token}":
                raise ApiStatus(401, "Unauthorized", "Unauthorized")
            name = str(request.path_params["name"])
            pod = self.objects.get(("pods", name))
            if pod is None:
                raise ApiStatus(404, "NotFound", f'pods "{name}" not found')
            container = request.query_params.get("container", MAIN)
            state = self._main_state(pod)
            if "running" not in state and "terminated" not in state:
                raise ApiStatus(
                    400,
                    "BadRequest",
                    f'container "{container}" in pod "{name}" is waiting to start: PodInitializing',
                )
            follow = request.query_params.get("follow") in ("true", "1")
            self.journal.append(f"log-start pods/{name}")
            stream = self._follow_log(name, follow, self._log_epoch)
            return StreamingResponse(stream, media_type="text/plain")
        except ApiStatus as status:
            return status.response()

    async def _follow_log(self, pod: str, follow: bool, epoch: int) -> AsyncIterator[bytes]:
        sent = 0

        def over() -> bool:
            obj = self.objects.get(("pods", pod))
            ended = obj is None or "terminated" in self._main_state(obj)
            return ended or self._closing or self._log_epoch != epoch

        try:
            while True:
                data = self.logs.get(pod, b"")
                if len(data) > sent:
                    yield data[sent:]
                    sent = len(data)
                if self._log_epoch != epoch:
                    raise StreamInterrupted("log")
                if not follow or over():
                    return
                await self._until(partial(self._log_grew_or_over, pod, sent, over))
        finally:
            self.journal.append(f"log-end pods/{pod}")

    async def _watch(
        self,
        plural: str,
        labels: str | None,
        fields: str | None,
        since: str | None,
        timeout: str | None,
    ) -> AsyncIterator[bytes]:
        def matches(obj: Obj) -> bool:
            return _selector_matches(labels, obj["metadata"].get("labels") or {}) and _fields_match(
                fields, obj
            )

        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(timeout) if timeout else None
        epoch = self._watch_epoch
        if since is not None and int(since) < self._oldest_version:
            # What the API server says once the history a watch resumes from is compacted.
            expired = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: {since} ({self._oldest_version})",
                "reason": "Expired",
                "code": 410,
            }
            self.journal.append(f"watch-expired {plural}")
            yield (json.dumps({"type": "ERROR", "object": expired}) + "\n").encode()
            return
        self.journal.append(f"watch {plural}")
        if since is None:
            sent = self._version
            for (kind, _), obj in sorted(self.objects.items()):
                if kind == plural and matches(obj):
                    yield (json.dumps({"type": "ADDED", "object": obj}) + "\n").encode()
        else:
            sent = int(since)
        while not self._closing:
            batch = [
                (version, event, obj)
                for version, kind, event, obj in self.events
                if version > sent and kind == plural and matches(obj)
            ]
            sent = self._version
            for _, event, obj in batch:
                yield (json.dumps({"type": event, "object": obj}) + "\n").encode()
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining), self._changed:
                    await self._changed.wait_for(partial(self._watch_wakes, sent, epoch))
            if self._watch_epoch != epoch:
                if self._abort_watches:
                    raise StreamInterrupted("watch")
                return

    # -- the store, the Job controller and the garbage collector --------------------------------

    async def _create(self, plural: str, obj: Obj) -> Obj:
        name = obj.get("metadata", {}).get("name")
        if not name:
            raise ApiStatus(422, "Invalid", "metadata.name: Required value")
        if (plural, name) in self.objects:
            raise ApiStatus(409, "AlreadyExists", f'{plural} "{name}" already exists')
        api_version, kind = KINDS[plural]
        obj = {**copy.deepcopy(obj), "apiVersion": api_version, "kind": kind}
        obj["metadata"].update(
            namespace=self.namespace, uid=str(uuid.uuid4()), creationTimestamp=_now()
        )
        if plural in ("jobs", "pods"):
            obj.setdefault("status", {})
        self.journal.append(f"create {plural}/{name}")
        await self._store(plural, obj, "ADDED")
        return obj

    async def _store(self, plural: str, obj: Obj, event: str) -> None:
        self._version += 1
        obj["metadata"]["resourceVersion"] = str(self._version)
        self.objects[(plural, obj["metadata"]["name"])] = obj
        self.events.append((self._version, plural, event, copy.deepcopy(obj)))
        await self._notify()
        await self._sync_jobs()

    def _log_grew_or_over(self, pod: str, sent: int, over: Callable[[], bool]) -> bool:
        return len(self.logs.get(pod, b"")) > sent or over()

    def _watch_wakes(self, version: int, epoch: int) -> bool:
        return self._version > version or self._closing or self._watch_epoch != epoch

    async def _until(self, condition: Callable[[], bool]) -> None:
        async with self._changed:
            await self._changed.wait_for(condition)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def _delete(
        self, plural: str, name: str, propagation: str | None = None, grace: str | None = None
    ) -> None:
        del grace  # nothing runs here: termination is immediate
        obj = self.objects.get((plural, name))
        if obj is None:
            return
        self.journal.append(f"delete {plural}/{name}")
        uid = obj["metadata"]["uid"]
        if plural == "jobs" and propagation == "Foreground":
            # The owner is marked first, its dependents go, and only then the owner.
            if obj["metadata"].get("deletionTimestamp"):
                return
            obj = copy.deepcopy(obj)
            obj["metadata"].update(deletionTimestamp=_now(), finalizers=["foregroundDeletion"])
            await self._store(plural, obj, "MODIFIED")
            if self.hold_garbage_collection:
                self._held.append(name)
                return
            await self._finish_foreground(name)
            return
        if plural == "pods" and "terminated" not in self._main_state(obj):
            await self._update_pod(name, phase="Failed", main=self._terminated(143, "Error"))
        await self._remove(plural, name)
        # batch/v1 Jobs orphan their pods unless told otherwise (kept for compatibility).
        if propagation == "Background":
            await self._delete_dependents(uid)

    async def _finish_foreground(self, job: str) -> None:
        obj = self.objects.get(("jobs", job))
        if obj is not None:
            await self._delete_dependents(obj["metadata"]["uid"])
            await self._remove("jobs", job)

    async def _delete_dependents(self, uid: str) -> None:
        for (kind, dependent), other in list(self.objects.items()):
            owners = other["metadata"].get("ownerReferences") or []
            if any(o.get("uid") == uid for o in owners):
                await self._delete(kind, dependent, "Background")

    async def _remove(self, plural: str, name: str) -> None:
        gone = self.objects.pop((plural, name))
        self._version += 1
        gone["metadata"]["resourceVersion"] = str(self._version)
        self.events.append((self._version, plural, "DELETED", copy.deepcopy(gone)))
        await self._notify()
        await self._sync_jobs()

    async def _sync_jobs(self) -> None:
        """The Job controller, reduced to one pod per Job and ``backoffLimit: 0``."""
        for (plural, name), job in list(self.objects.items()):
            if plural != "jobs" or job["metadata"].get("deletionTimestamp"):
                continue
            conditions = {c["type"] for c in job["status"].get("conditions", [])}
            if conditions & {"Complete", "Failed", "FailureTarget"}:
                continue
            pods = [self.objects[("pods", p)] for p in self._pods_of(name)]
            if not pods and not job["spec"].get("suspend") and not job["status"].get("startTime"):
                job = copy.deepcopy(job)
                job["status"].update(startTime=_now(), active=1)
                await self._store("jobs", job, "MODIFIED")
                await self._create("pods", self._pod_for(job))
                return
            phases = {pod["status"].get("phase") for pod in pods}
            if "Succeeded" in phases:
                await self._set_job_condition(name, "Complete", None, None)
                return
            if "Failed" in phases:
                await self._set_job_condition(
                    name,
                    "Failed",
                    "BackoffLimitExceeded",
                    "Job has reached the specified backoff limit",
                )
                return

    def _pod_for(self, job: Obj) -> Obj:
        name = job["metadata"]["name"]
        template = job["spec"]["template"]
        labels = {
            **template["metadata"].get("labels", {}),
            "batch.kubernetes.io/job-name": name,
            "batch.kubernetes.io/controller-uid": job["metadata"]["uid"],
        }
        owner = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "name": name,
            "uid": job["metadata"]["uid"],
            "controller": True,
            "blockOwnerDeletion": True,
        }
        return {
            "metadata": {
                "name": f"{name}-{next(self._suffixes)}",
                "labels": labels,
                "ownerReferences": [owner],
            },
            "spec": copy.deepcopy(template["spec"]),
            "status": {"phase": "Pending"},
        }

    def _pods_of(self, job: str) -> list[str]:
        return [
            name
            for (plural, name), obj in self.objects.items()
            if plural == "pods"
            and any(o["name"] == job for o in obj["metadata"].get("ownerReferences") or [])
        ]

    async def _set_job_condition(
        self, job: str, kind: str, reason: str | None, message: str | None
    ) -> None:
        obj = copy.deepcopy(self.objects[("jobs", job)])
        condition = {"type": kind, "status": "True", "lastTransitionTime": _now()}
        if reason:
            condition.update(reason=reason, message=message or "")
        obj["status"].setdefault("conditions", []).append(condition)
        obj["status"]["active"] = 0
        await self._store("jobs", obj, "MODIFIED")

    def _main_state(self, pod: Obj) -> Obj:
        for status in pod["status"].get("containerStatuses") or []:
            if status["name"] == MAIN:
                return dict(status.get("state") or {})
        return {}

    @staticmethod
    def _terminated(exit_code: int, reason: str | None) -> Obj:
        default = "Completed" if exit_code == 0 else "Error"
        return {"terminated": {"exitCode": exit_code, "reason": reason or default}}

    @staticmethod
    def _status(container: Obj, state: Obj) -> Obj:
        """A container status with the fields the kubelet always sets."""
        pulled = "waiting" not in state
        return {
            "name": container["name"],
            "image": container["image"],
            "imageID": f"docker.io/library/{container['image']}@sha256:{'0' * 64}"
            if pulled
            else "",
            "ready": "running" in state,
            "restartCount": 0,
            "started": "running" in state,
            "state": state,
        }

    async def _update_pod(
        self,
        pod: str,
        *,
        phase: str | None = None,
        reason: str | None = None,
        message: str | None = None,
        conditions: list[Obj] | None = None,
        init: Obj | None = None,
        main: Obj | None = None,
    ) -> None:
        obj = copy.deepcopy(self.objects[("pods", pod)])
        status = obj["status"]
        spec = obj["spec"]
        if phase:
            status["phase"] = phase
        if reason:
            status.update(reason=reason, message=message or "")
        if conditions:
            kept = [
                c
                for c in status.get("conditions", [])
                if c["type"] not in {new["type"] for new in conditions}
            ]
            status["conditions"] = kept + conditions
        if init is not None:
            status["initContainerStatuses"] = [self._status(spec["initContainers"][0], init)]
        if main is not None:
            status["containerStatuses"] = [self._status(spec["containers"][0], main)]
        await self._store("pods", obj, "MODIFIED")
