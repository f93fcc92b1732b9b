"""Prometheus metrics of one service, on its own registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class Metrics:
    def __init__(self, service: str) -> None:
        self.registry = CollectorRegistry()
        labels = {"service": service}
        self.consumed = Counter(
            "controlroom_messages_consumed_total",
            "Messages handled by a consumer, by outcome",
            ["consumer", "outcome"],
            registry=self.registry,
        ).labels
        self.published = Counter(
            "controlroom_outbox_published_total",
            "Events published from the outbox",
            registry=self.registry,
        )
        self.quarantined = Counter(
            "controlroom_outbox_quarantined_total",
            "Outbox messages set aside because the broker can never store them",
            registry=self.registry,
        )
        self.ignored_transitions = Counter(
            "controlroom_ignored_transitions_total",
            "Run events ignored because they would be an invalid state transition",
            ["event_type"],
            registry=self.registry,
        ).labels
        self.handle_seconds = Histogram(
            "controlroom_message_handle_seconds",
            "Time to handle one message, commit included",
            ["consumer"],
            registry=self.registry,
        ).labels
        self.batch_messages = Histogram(
            "controlroom_consumer_batch_messages",
            "Messages handled together in one transaction by an in-order consumer",
            ["consumer"],
            buckets=(1, 2, 4, 8, 16, 32, 64, 128),
            registry=self.registry,
        ).labels
        self.service = labels["service"]
