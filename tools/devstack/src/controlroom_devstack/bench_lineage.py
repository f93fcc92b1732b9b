"""``make bench``, lineage at estate scale: a synthetic lakehouse (``lineage_estate``) of 10 k,
100 k and 1 M edges loaded through ``POST /api/v1/lineage`` (OpenLineage RunEvents, several
clients at once), then upstream and downstream graph queries at depth 1, 3 and 5 through the
gateway, one at a time, timed by the client.

Each size is a tenant of its own in one database, loaded smallest first, and every size is
queried only once all are loaded: the three sizes are then queried against the same tables and
indexes, so how the query time grows is down to the size of the tenant's graph.

Driven by aiohttp, as the gateway scenarios are: httpx's CPU per request would come out of the
two cores the system under test shares with the client.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg

from controlroom_devstack.bench_report import CpuMeter, Row, median, ms, pct, stack_meter
from controlroom_devstack.infra import Postgres
from controlroom_devstack.lineage_estate import HUBS, LAYERS, Estate, SampledEntity
from controlroom_devstack.stack import ServiceStack

SIZES = (10_000, 100_000, 1_000_000)
DEPTHS = (1, 3, 5)
DIRECTIONS = ("upstream", "downstream")
HEADLINE_DEPTH = 3
LIMIT = 500
"""The graph endpoint's default node limit, as a viewer's first request has it."""
SEED = 0
WARM_UP = 20
MAX_ERRORS = 20
"""Refused events after which a size's load stops (and its queries are skipped)."""
RETRIES = 5

INGEST_TARGET = ">= 5,000 edges/s (issue)"
QUERY_TARGET = "< 50 ms (issue; PRD < 1 s at 1 k)"
EDGES_PER_SECOND = 5_000
QUERY_P99 = 0.050


def label(edges: int) -> str:
    """``1 M``, ``100 k``, ``2,500``."""
    if edges % 1_000_000 == 0:
        return f"{edges // 1_000_000} M"
    if edges % 1_000 == 0:
        return f"{edges // 1_000} k"
    return f"{edges:,}"


def tenant(edges: int) -> str:
    """``lineage-10k``, ``lineage-1m``: a tenant per size."""
    return "lineage-" + label(edges).replace(" ", "").replace(",", "").lower()


def parse_sizes(value: str) -> list[int]:
    """``10000,100000,1000000`` (``10k,100k,1m`` and ``1_000_000`` too), smallest first."""
    sizes = []
    for item in value.split(","):
        text = item.strip().lower().replace("_", "")
        if not text:
            continue
        scale = {"k": 1_000, "m": 1_000_000}.get(text[-1], 1)
        number = int(text[:-1] if scale > 1 else text) * scale
        if number < 1_000:
            raise ValueError(f"{item.strip()}: an estate has at least 1,000 edges")
        sizes.append(number)
    if not sizes:
        raise ValueError("no size given")
    return sorted(set(sizes))


def _progress(message: str) -> None:
    """A line on stderr while the long loads run (the table comes at the end)."""
    print(f"[lineage] {message}", file=sys.stderr, flush=True)


# -- loading ---------------------------------------------------------------------------------


@dataclass
class Loaded:
    edges: int
    estate: Estate
    events: int = 0
    answered_edges: int = 0
    new_edges: int = 0
    retried: int = 0
    errors: list[str] = field(default_factory=list)
    refused: int = 0
    seconds: float = 0.0
    meter: CpuMeter | None = None

    @property
    def complete(self) -> bool:
        """Every event taken (a retried one may answer 0 edges: its first try recorded them)."""
        return self.refused == 0 and self.estate.finished and self.events == self.estate.event_count


def _shown(event: dict[str, Any], status: int, text: str) -> str:
    request = json.dumps(event)
    if len(request) > 600:
        request = request[:600] + "..."
    return f"POST /api/v1/lineage {request} -> {status} {text[:600]}"


async def _load(
    api: aiohttp.ClientSession,
    stack: ServiceStack,
    postgres: Postgres,
    edges: int,
    clients: int,
) -> Loaded:
    loaded = Loaded(edges=edges, estate=Estate(edges, SEED))
    events: Iterator[dict[str, Any]] = loaded.estate.events()

    async def post(event: dict[str, Any]) -> None:
        body = json.dumps(event)
        for attempt in range(RETRIES + 1):
            async with api.post("/api/v1/lineage", data=body) as response:
                if response.status == 201:
                    answer = await response.json()
                    loaded.events += 1
                    loaded.answered_edges += int(answer["edges"])
                    loaded.new_edges += int(answer["new_edges"])
                    return
                text = await response.text()
                # Rate limited, or the lineage service did not answer in time: the same run
                # again records nothing twice (an OpenLineage run is idempotent).
                if response.status in (429, 503) and attempt < RETRIES:
                    loaded.retried += 1
                    retry_after = response.headers.get("Retry-After", "")
                    wait = float(retry_after) if retry_after.isdigit() else 0.2 * 2**attempt
                    await asyncio.sleep(min(wait, 5.0))
                    continue
                loaded.refused += 1
                if len(loaded.errors) < 3:
                    loaded.errors.append(_shown(event, response.status, text))
                return

    async def client() -> None:
        # One shared iterator: each client takes the next event when its last one is answered.
        for event in events:
            if loaded.refused >= MAX_ERRORS:
                return
            await post(event)

    loaded.meter = stack_meter(stack, postgres)
    loaded.meter.start()
    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    loaded.seconds = time.perf_counter() - t0
    loaded.meter.stop()
    return loaded


# -- querying --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    seconds: float
    layer: str
    nodes: int
    edges: int
    truncated: bool

    def describe(self) -> str:
        cut = ", truncated" if self.truncated else ""
        return f"{ms(self.seconds)} ({self.layer}, {self.nodes} nodes, {self.edges} edges{cut})"


@dataclass
class Measured:
    answers: list[Answer] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def latencies(self) -> list[float]:
        return [a.seconds for a in self.answers]

    def describe(self) -> str:
        count = len(self.answers)
        parts = [
            f"p50 {ms(median(self.latencies))}",
            f"{sum(a.nodes for a in self.answers) / count:.0f} nodes",
            f"{sum(a.edges for a in self.answers) / count:.0f} edges",
            f"{sum(a.truncated for a in self.answers) / count:.0%} truncated",
        ]
        hubs = [a.seconds for a in self.answers if a.layer == "hub"]
        if hubs:
            parts.append(f"hubs x{len(hubs)}: p50 {ms(median(hubs))}, max {ms(max(hubs))}")
        return ", ".join(parts)

    def why_slow(self, over: float) -> str:
        """The slowest answers, and which layers those over ``over`` were on."""
        slowest = sorted(self.answers, key=lambda a: -a.seconds)
        layers: dict[str, int] = {}
        for answer in slowest:
            if answer.seconds <= over:
                break
            layers[answer.layer] = layers.get(answer.layer, 0) + 1
        plain = [a.seconds for a in self.answers if a.layer != "hub"]
        return (
            f"{sum(layers.values())} of {len(self.answers)} over {ms(over)} "
            f"({', '.join(f'{layer} {n}' for layer, n in layers.items())}); the slowest: "
            + ", ".join(a.describe() for a in slowest[:3])
            + (f"; without hubs p99 {ms(pct(plain, 99))}" if plain else "")
        )


def query_plan(estate: Estate, queries: int, seed: int = SEED) -> list[SampledEntity]:
    """``queries`` entities to ask about: a tenth of them hubs, the rest ordinary tables of
    every layer in equal numbers, shuffled (the same plan for every direction and depth)."""
    hubs = max(len(HUBS), queries // 10) if queries >= 2 * len(HUBS) else 0
    ordinary = queries - hubs
    per_layer = -(-ordinary // len(LAYERS))
    sampled = estate.sample(per_layer, seed)
    plain = [s for s in sampled if s.layer != "hub"]
    hub_list = [s for s in sampled if s.layer == "hub"]
    plan = [plain[i % len(plain)] for i in range(ordinary)]
    plan += [hub_list[i % len(hub_list)] for i in range(hubs)]
    random.Random(seed).shuffle(plan)
    return plan


async def _graph(
    api: aiohttp.ClientSession, entity: str, direction: str, depth: int
) -> tuple[float, int, str | dict[str, Any]]:
    params = {"entity": entity, "direction": direction, "depth": str(depth), "limit": str(LIMIT)}
    t0 = time.perf_counter()
    async with api.get("/api/v1/lineage/graph", params=params) as response:
        body = await response.read()
    elapsed = time.perf_counter() - t0
    if response.status != 200:
        return elapsed, response.status, body.decode(errors="replace")
    answer: dict[str, Any] = json.loads(body)
    return elapsed, response.status, answer


async def _queries(
    api: aiohttp.ClientSession, plan: Sequence[SampledEntity], direction: str, depth: int
) -> Measured:
    measured = Measured()
    for sampled in plan:
        elapsed, status, answer = await _graph(api, sampled.entity, direction, depth)
        if isinstance(answer, str):
            if len(measured.errors) < 3:
                measured.errors.append(
                    f"GET /api/v1/lineage/graph?entity={sampled.entity}&direction={direction}"
                    f"&depth={depth}&limit={LIMIT} -> {status} {answer[:600]}"
                )
            continue
        measured.answers.append(
            Answer(
                seconds=elapsed,
                layer=sampled.layer,
                nodes=len(answer["nodes"]),
                edges=len(answer["edges"]),
                truncated=bool(answer["truncated"]),
            )
        )
    return measured


# -- the scenario ----------------------------------------------------------------------------


def _session(stack: ServiceStack, token: str, clients: int) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        stack.url("gateway"),
        headers={"Authorization": f"Bearer {token}", "content-type": "application/json"},
        # keep-alive: one connection per client, reused for every request
        connector=aiohttp.TCPConnector(limit=clients),
        timeout=aiohttp.ClientTimeout(total=120),
    )


def _ingest_rows(loaded: Loaded, clients: int) -> tuple[list[Row], list[str]]:
    name = label(loaded.edges)
    scenario = f"lineage ingest ({name} edges), {clients} clients"
    rate = loaded.answered_edges / loaded.seconds
    meter = loaded.meter
    assert meter is not None
    thousands = max(1.0, loaded.answered_edges / 1_000)
    rows = [
        Row(scenario, "edges/s", INGEST_TARGET, f"{rate:,.0f}/s"),
        Row(scenario, "events/s", "-", f"{loaded.events / loaded.seconds:,.0f}/s"),
        Row(scenario, "CPU per 1,000 edges, system", "-", ms(meter.system() / thousands)),
    ]
    notes = [
        f"lineage ingest {name}: {loaded.events:,} events, {loaded.answered_edges:,} edges "
        f"answered ({loaded.new_edges:,} new) in {loaded.seconds:.0f}s; "
        f"{meter.describe_per(round(thousands), '1,000 edges')}; over the {loaded.seconds:.0f}s: "
        f"{meter.describe(loaded.seconds)}."
    ]
    if loaded.retried:
        notes.append(f"lineage ingest {name}: {loaded.retried} requests retried (429 or 503).")
    if loaded.complete and loaded.answered_edges != loaded.edges:
        notes.append(
            f"lineage ingest {name}: the answers add up to {loaded.answered_edges:,} edges, "
            f"not the estate's {loaded.edges:,}."
        )
    if not loaded.complete:
        notes.append(
            f"lineage ingest {name}: INCOMPLETE, {loaded.refused} events refused, "
            f"{loaded.answered_edges:,} of {loaded.edges:,} edges recorded; first refusals:"
        )
        notes += [f"  {error}" for error in loaded.errors]
    if rate < EDGES_PER_SECOND and loaded.complete:
        cores = os.cpu_count() or 1
        per_thousand = meter.system() / thousands
        notes.append(
            f"lineage ingest {name} misses {EDGES_PER_SECOND:,} edges/s: the system kept "
            f"{meter.system() / loaded.seconds:.2f} of the machine's {cores} cores busy, and at "
            f"{ms(per_thousand)} of CPU per 1,000 edges {cores} cores allow at most "
            f"{cores / per_thousand * 1000:,.0f} edges/s; {EDGES_PER_SECOND:,} edges/s needs "
            f"under {ms(cores / EDGES_PER_SECOND * 1000)} per 1,000 edges "
            f"({loaded.answered_edges / max(1, loaded.events):.1f} edges per event)."
        )
        busy = sum(meter.spent.values()) / loaded.seconds
        if busy < 0.8 * cores:
            notes.append(
                f"lineage ingest {name} was not bound by CPU: {busy:.2f} of {cores} cores were "
                f"busy in all (bench client and other sessions included): the events wait in "
                f"turn ({ms(loaded.seconds / loaded.events)} per event, "
                f"{ms(loaded.seconds * clients / loaded.events)} each client waits) for the "
                f"lineage service's one batch writer, which writes the events that gathered "
                f"while the previous batch committed (group commit) and waits for each commit's "
                f"WAL flush; its batches take longer as the tables' indexes grow (Postgres "
                f"{ms(meter.spent.get('postgres', 0.0) / thousands)} per 1,000 edges here)."
            )
    return rows, notes


async def _query_size(
    stack: ServiceStack, postgres: Postgres, token: str, loaded: Loaded, queries: int
) -> tuple[list[Row], list[str], dict[tuple[str, int], float]]:
    name = label(loaded.edges)
    plan = query_plan(loaded.estate, queries)
    rows: list[Row] = []
    notes: list[str] = []
    p99s: dict[tuple[str, int], float] = {}
    async with _session(stack, token, 1) as api:
        for sampled in plan[:WARM_UP]:  # connections, caches, the planner's statistics
            for direction in DIRECTIONS:
                await _graph(api, sampled.entity, direction, HEADLINE_DEPTH)
        meter = stack_meter(stack, postgres)
        meter.start()
        t0 = time.perf_counter()
        scenario = f"lineage query ({name} edges), limit {LIMIT}"
        details = []
        count = 0
        for direction in DIRECTIONS:
            for depth in DEPTHS:
                measured = await _queries(api, plan, direction, depth)
                count += len(measured.answers)
                if measured.errors:
                    notes.append(
                        f"lineage query {name} {direction} depth {depth}: "
                        f"{len(plan) - len(measured.answers)} of {len(plan)} failed; first:"
                    )
                    notes += [f"  {error}" for error in measured.errors]
                if not measured.latencies:
                    continue
                p99 = pct(measured.latencies, 99)
                p99s[direction, depth] = p99
                target = QUERY_TARGET if depth == HEADLINE_DEPTH else "-"
                rows.append(Row(scenario, f"p99 {direction} depth {depth}", target, ms(p99)))
                details.append(f"{direction} depth {depth}: {measured.describe()}")
                if depth == HEADLINE_DEPTH and p99 > QUERY_P99:
                    notes.append(
                        f"lineage query {name} {direction} depth {depth} misses "
                        f"{ms(QUERY_P99)}: {measured.why_slow(QUERY_P99)}."
                    )
        elapsed = time.perf_counter() - t0
        meter.stop()
    notes.append(f"lineage query {name}, {len(plan)} entities each: " + "; ".join(details) + ".")
    if count:
        notes.append(
            f"lineage query {name}: {meter.describe_per(count, 'query')}; over the "
            f"{elapsed:.0f}s: {meter.describe(elapsed)}."
        )
    return rows, notes, p99s


async def lineage(
    stack: ServiceStack,
    postgres: Postgres,
    tokens: dict[int, str],
    sizes: Sequence[int],
    clients: int,
    queries: int,
) -> tuple[list[Row], list[str]]:
    """Load every size (smallest first), then query every size; ``tokens``: an operator's
    token in each size's tenant."""
    rows: list[Row] = []
    notes: list[str] = []
    loads: list[Loaded] = []
    for edges in sorted(sizes):
        _progress(f"loading {label(edges)} edges into tenant {tenant(edges)}...")
        async with _session(stack, tokens[edges], clients) as api:
            loaded = await _load(api, stack, postgres, edges, clients)
        _progress(
            f"{label(edges)}: {loaded.answered_edges:,} edges in {loaded.seconds:.0f}s "
            f"({loaded.answered_edges / loaded.seconds:,.0f} edges/s)"
        )
        r, n = _ingest_rows(loaded, clients)
        rows, notes = rows + r, notes + n
        loads.append(loaded)
    # As pgbench does before it measures: the load's dead tuples vacuumed and the planner's
    # statistics current, so the queries meet the tables as they are in steady state, not an
    # autovacuum pass that the load set off a moment ago.
    _progress("vacuum analyze of the lineage tables...")
    await _vacuum_analyze(postgres.url("bench_lineage"))
    growth: dict[int, dict[tuple[str, int], float]] = {}
    for loaded in loads:
        if not loaded.complete:
            notes.append(f"lineage query {label(loaded.edges)}: skipped, its load is incomplete.")
            continue
        _progress(f"querying {label(loaded.edges)}...")
        r, n, p99s = await _query_size(stack, postgres, tokens[loaded.edges], loaded, queries)
        rows, notes = rows + r, notes + n
        growth[loaded.edges] = p99s
    if len(growth) > 1:
        sizes_text = " / ".join(label(edges) for edges in growth)
        for direction in DIRECTIONS:
            measured = " / ".join(
                ms(p99s[direction, HEADLINE_DEPTH]) if (direction, HEADLINE_DEPTH) in p99s else "-"
                for p99s in growth.values()
            )
            rows.append(
                Row(
                    f"lineage query growth, {sizes_text} edges",
                    f"p99 {direction} depth {HEADLINE_DEPTH}",
                    "-",
                    measured,
                )
            )
    notes.append(
        f"lineage: gateway and lineage service only (at nice 0), Postgres with fsync on; one "
        f"tenant per size in one database, all loaded before any is queried; estate seed "
        f"{SEED}; ingest with {clients} keep-alive clients; VACUUM ANALYZE after the loads "
        f"(as pgbench does before measuring); queries one at a time, timed by "
        f"the client around the HTTP call, a tenth of them on hub tables "
        f"({', '.join(name for name, _ in HUBS)})."
    )
    return rows, notes


async def _vacuum_analyze(url: str) -> None:
    """VACUUM ANALYZE the lineage schema's tables (VACUUM cannot run in a transaction, so on a
    plain asyncpg connection, where each statement commits by itself)."""
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        for table in ("edges", "edge_runs", "edge_audit", "datasets"):
            await conn.execute(f"VACUUM ANALYZE lineage.{table}")
    finally:
        await conn.close()
