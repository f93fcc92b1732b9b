"""JSON Schema of every model and an AsyncAPI 3 document of the event API."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from controlroom_contracts import api, management, rpc, schedules
from controlroom_contracts.commands import ALL_COMMANDS
from controlroom_contracts.deadletter import DeadLetter
from controlroom_contracts.events import ALL_EVENTS
from controlroom_contracts.executors import ExecutorHeartbeat

REST_MODELS: tuple[type[BaseModel], ...] = (api.JobRequest, api.SubmitResponse, api.RunView)
RPC_PAIRS: tuple[tuple[type[BaseModel], type[BaseModel]], ...] = (
    # (request, reply); any request may instead be answered by rpc.RpcError
    (rpc.LineageGraphQuery, rpc.LineageGraph),
    (rpc.RouteQuery, rpc.RouteAnswer),
    (management.AddLineageEdge, management.LineageEdgeAddResult),
    (management.ListLineageEdges, management.LineageEdgeList),
    (management.DeleteLineageEdge, management.Done),
    (management.CreateWebhookEndpoint, management.WebhookEndpointWithSecret),
    (management.ListWebhookEndpoints, management.WebhookEndpointList),
    (management.GetWebhookEndpoint, management.WebhookEndpointView),
    (management.DeleteWebhookEndpoint, management.Done),
    (management.ListWebhookDeliveries, management.WebhookDeliveryList),
    (management.RedeliverWebhookDelivery, management.WebhookDeliveryView),
    (management.RedeliverWebhookDeliveries, management.RedeliveryCount),
    (schedules.CreateSchedule, schedules.ScheduleView),
    (schedules.ListSchedules, schedules.ScheduleList),
    (schedules.GetSchedule, schedules.ScheduleView),
    (schedules.SetSchedulePaused, schedules.ScheduleView),
    (schedules.DeleteSchedule, management.Done),
    (schedules.TemplateJobQuery, schedules.TemplateJob),
)
RPC_MODELS: tuple[type[BaseModel], ...] = (
    *dict.fromkeys(m for pair in RPC_PAIRS for m in pair),
    rpc.RpcError,
)
MESSAGE_MODELS: tuple[type[BaseModel], ...] = (
    *ALL_EVENTS,
    *ALL_COMMANDS,
    ExecutorHeartbeat,
    DeadLetter,
)


def all_models() -> tuple[type[BaseModel], ...]:
    return (*REST_MODELS, *RPC_MODELS, *MESSAGE_MODELS)


def json_schemas() -> dict[str, dict[str, Any]]:
    """One standalone JSON Schema per model, keyed by model name."""
    return {m.__name__: m.model_json_schema() for m in all_models()}


def _channel_id(address: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", address).strip("_")


def asyncapi_document() -> dict[str, Any]:
    """An AsyncAPI 3.0 document: one channel per subject, one message per model."""
    models = [*MESSAGE_MODELS, *RPC_MODELS]
    _, defs = models_json_schema(
        [(m, "validation") for m in models], ref_template="#/components/schemas/{model}"
    )
    schemas: dict[str, Any] = defs.get("$defs", {})
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for model in MESSAGE_MODELS:
        name = model.__name__
        address: str = getattr(model, "subject")  # noqa: B009 - ClassVar on each message model
        messages[name] = {
            "name": name,
            "title": name,
            "summary": (model.__doc__ or name).strip().splitlines()[0],
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{name}"},
        }
        channel_id = _channel_id(address)
        channel: dict[str, Any] = {
            "address": address,
            "messages": {name: {"$ref": f"#/components/messages/{name}"}},
        }
        params = re.findall(r"\{(\w+)\}", address)
        if params:
            channel["parameters"] = {p: {"description": f"The {p} of the message"} for p in params}
        channels[channel_id] = channel
        operations[f"publish{name}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{name}"}],
        }
    for model in RPC_MODELS:
        messages[model.__name__] = {
            "name": model.__name__,
            "contentType": "application/json",
            "payload": {"$ref": f"#/components/schemas/{model.__name__}"},
        }
    for query, reply in RPC_PAIRS:
        address = getattr(query, "subject")  # noqa: B009 - ClassVar on each request model
        request_channel, reply_channel = _channel_id(address), f"{_channel_id(address)}_reply"
        channels[request_channel] = {
            "address": address,
            "messages": {query.__name__: {"$ref": f"#/components/messages/{query.__name__}"}},
        }
        channels[reply_channel] = {
            "address": None,
            "messages": {
                name: {"$ref": f"#/components/messages/{name}"}
                for name in (reply.__name__, rpc.RpcError.__name__)
            },
        }
        operations[f"request{query.__name__}"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{request_channel}"},
            "reply": {"channel": {"$ref": f"#/channels/{reply_channel}"}},
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Control Room event API",
            "version": "1.0.0",
            "description": "Events and commands exchanged by Control Room services over NATS "
            "JetStream. Every message carries event_id (used as Nats-Msg-Id), occurred_at, "
            "tenant_id and schema_version.",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }


def export(directory: Path) -> list[Path]:
    """Write ``schemas/<Model>.json`` and ``asyncapi.json`` under ``directory``."""
    written: list[Path] = []
    schema_dir = directory / "schemas"
    schema_dir.mkdir(parents=True, exist_ok=True)
    for name, schema in json_schemas().items():
        path = schema_dir / f"{name}.json"
        path.write_text(json.dumps(schema, indent=2, sort_keys=True) + "\n")
        written.append(path)
    asyncapi = directory / "asyncapi.json"
    asyncapi.write_text(json.dumps(asyncapi_document(), indent=2) + "\n")
    written.append(asyncapi)
    return written
