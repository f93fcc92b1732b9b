"""OpenTelemetry tracing; the trace context travels in NATS headers so one run is one trace."""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator, Mapping

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def configure_tracing(service: str) -> None:
    """Install a tracer provider; export over OTLP only when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    Without an exporter spans are still created, so trace ids appear in logs and headers.
    """
    if isinstance(trace.get_tracer_provider(), TracerProvider):
        return  # already configured in this process (several services in one test process)
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    if os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)


def inject_headers(headers: dict[str, str]) -> dict[str, str]:
    """Write the current trace context (W3C traceparent) into message headers."""
    propagate.inject(headers)
    return headers


def extract_context(headers: Mapping[str, str] | None) -> Context:
    return propagate.extract(dict(headers or {}))


@functools.cache
def tracer(name: str) -> trace.Tracer:
    """One tracer per name: ``get_tracer`` builds a new one on every call, which showed up in
    the consumers' profile (a span per message). Before a provider is installed this is a
    proxy that follows the provider installed later, so caching it early is safe."""
    return trace.get_tracer(name)


def current_traceparent() -> str | None:
    """The current trace context as a W3C ``traceparent`` (to keep with a stored thing)."""
    return inject_headers({}).get("traceparent")


@contextlib.contextmanager
def continuing(traceparent: str | None) -> Iterator[None]:
    """Within the block, messages carry the trace ``traceparent`` names (one run is one trace
    even when the scheduler acts on it later, from a loop of its own)."""
    if traceparent is None:
        yield
        return
    token = otel_context.attach(extract_context({"traceparent": traceparent}))
    try:
        yield
    finally:
        otel_context.detach(token)
