"""The lineage benchmark's synthetic estate: deterministic, the edges asked for (counted as the
server counts them), shaped like a lakehouse with hubs, every event within the API's limits; and
what the benchmark queries in it."""

from __future__ import annotations

import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import pytest

from controlroom_contracts.entities import openlineage_entity
from controlroom_contracts.openlineage import (
    MAX_DATASETS,
    MAX_EDGES_PER_EVENT,
    OpenLineageRunEvent,
)
from controlroom_devstack.bench_lineage import parse_sizes, query_plan, tenant
from controlroom_devstack.lineage_estate import (
    HUBS,
    LAYERS,
    MIN_EDGES,
    Estate,
    estate_events,
    sample_entities,
)


@dataclass
class Graph:
    """The estate as the server would store it: canonical entities, (source, target, job)."""

    events: list[dict[str, Any]]
    estate: Estate
    edges: set[tuple[str, str, str]] = field(default_factory=set)
    answered: int = 0
    """The sum of the ``edges`` the server would answer: inputs x outputs of each event."""
    neighbours: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    readers: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))


def _entities(datasets: list[dict[str, str]]) -> list[str]:
    # as the gateway reduces an event: canonical names, first seen, without repeats
    return list(dict.fromkeys(openlineage_entity(d["namespace"], d["name"]) for d in datasets))


def _graph(edges: int, seed: int = 0) -> Graph:
    estate = Estate(edges, seed)
    graph = Graph(events=list(estate.events()), estate=estate)
    for event in graph.events:
        job = f"{event['job']['namespace']}/{event['job']['name']}"
        inputs, outputs = _entities(event["inputs"]), _entities(event["outputs"])
        pairs = [(s, t) for s in inputs for t in outputs if s != t]
        graph.answered += len(pairs)
        for source, target in pairs:
            graph.edges.add((source, target, job))
            graph.neighbours[source].add(target)
            graph.neighbours[target].add(source)
        for source in inputs:
            graph.readers[source].add(job)
    return graph


@pytest.fixture(scope="module")
def estate_10k() -> Graph:
    return _graph(10_000)


@pytest.fixture(scope="module")
def estate_100k() -> Graph:
    return _graph(100_000)


def test_the_same_seed_gives_the_same_events_and_another_seed_others() -> None:
    first = list(estate_events(10_000, seed=7))
    assert first == list(estate_events(10_000, seed=7))
    assert first != list(estate_events(10_000, seed=8))


@pytest.mark.parametrize("size", ["estate_10k", "estate_100k"])
def test_the_edges_are_the_ones_asked_for_as_the_server_counts_them(
    size: str, request: pytest.FixtureRequest
) -> None:
    graph: Graph = request.getfixturevalue(size)
    asked = graph.estate.edges
    assert abs(len(graph.edges) - asked) <= asked * 0.03
    assert len(graph.edges) == asked  # exact, in fact: the last event is cut to fit
    # one job per event and no pair twice: the answers' edges add up to the distinct edges
    assert graph.answered == len(graph.edges)


@pytest.mark.parametrize("size", ["estate_10k", "estate_100k"])
def test_every_event_is_a_complete_run_event_within_the_limits(
    size: str, request: pytest.FixtureRequest
) -> None:
    graph: Graph = request.getfixturevalue(size)
    run_ids = set()
    for event in graph.events:
        parsed = OpenLineageRunEvent.model_validate(event)
        assert parsed.event_type == "COMPLETE"
        assert 1 <= len(event["inputs"]) <= min(30, MAX_DATASETS)
        assert 1 <= len(event["outputs"]) <= 3
        assert len(event["inputs"]) * len(event["outputs"]) <= MAX_EDGES_PER_EVENT
        # already canonical, no dataset twice, never one on both sides
        names = [f"{d['namespace']}/{d['name']}" for d in event["inputs"] + event["outputs"]]
        assert len(set(names)) == len(names)
        for dataset in event["inputs"] + event["outputs"]:
            entity = openlineage_entity(dataset["namespace"], dataset["name"])
            plain = dataset["name"] if dataset["namespace"] == "supabase" else None
            assert entity == (plain or f"{dataset['namespace']}/{dataset['name']}")
        run_ids.add(parsed.run.run_id)
    assert len(run_ids) == len(graph.events)


def test_jobs_read_several_tables_and_write_a_few(estate_100k: Graph) -> None:
    fan_in = [len(e["inputs"]) for e in estate_100k.events]
    edges_per_event = [len(e["inputs"]) * len(e["outputs"]) for e in estate_100k.events]
    assert statistics.mean(edges_per_event) > 5  # not one edge per request
    assert max(fan_in) == 30


def test_the_layers_are_shaped_like_a_lakehouse(estate_100k: Graph) -> None:
    tables = estate_100k.estate.tables
    assert set(tables) == {*LAYERS, "hub"}
    assert all(len(tables[layer]) > 1_000 for layer in LAYERS)
    by_layer = {d.entity: layer for layer, ds in tables.items() for d in ds}
    shapes: dict[str, list[tuple[int, int]]] = defaultdict(list)
    for event in estate_100k.events:
        layer = by_layer[_entities(event["outputs"])[0]]
        ins = [by_layer[e] for e in _entities(event["inputs"])]
        shapes[layer].append((len(ins), len(event["outputs"])))
        expected_inputs = {
            "bronze": {"source"},
            "hub": {"bronze"},
            "silver": {"bronze", "silver", "hub"},
            "gold": {"silver", "hub"},
            "mart": {"gold", "hub"},
            "report": {"mart"},
        }[layer]
        assert set(ins) <= expected_inputs, (layer, ins)
    one_to_one = sum(1 for shape in shapes["bronze"] if shape == (1, 1))
    assert one_to_one > 0.75 * len(shapes["bronze"])  # ingestion: mostly 1:1
    assert all(1 <= outs <= 3 for layer in shapes for _ins, outs in shapes[layer])
    assert statistics.mean(ins for ins, _outs in shapes["gold"]) > 10  # fan-in
    assert all(5 <= ins <= 30 for ins, _outs in shapes["gold"])
    # fan-out: the typical bronze and silver table is read by several jobs
    for layer in ("bronze", "silver"):
        readers = [len(estate_100k.readers[d.entity]) for d in tables[layer]]
        assert statistics.median(readers) >= 3, layer


def test_hubs_have_thousands_of_neighbours_at_100k(estate_100k: Graph) -> None:
    hubs = [d.entity for d in estate_100k.estate.tables["hub"]]
    assert hubs == [name for name, _share in HUBS]
    for hub in hubs:
        assert len(estate_100k.neighbours[hub]) >= 1_000, hub
    ordinary = [len(estate_100k.neighbours[d.entity]) for d in estate_100k.estate.tables["silver"]]
    assert statistics.median(ordinary) < 50


def test_sampled_entities_cover_every_layer_and_hub_and_exist(estate_10k: Graph) -> None:
    sampled = sample_entities(10_000, seed=0, per_layer=20)
    assert sampled == sample_entities(10_000, seed=0, per_layer=20)
    counts: dict[str, int] = defaultdict(int)
    for entity in sampled:
        counts[entity.layer] += 1
        assert entity.entity in estate_10k.neighbours
    assert counts == {**dict.fromkeys(LAYERS, 20), "hub": len(HUBS)}
    assert {e.entity for e in sampled if e.layer == "hub"} == {name for name, _ in HUBS}


def test_an_estate_is_generated_once_and_not_too_small() -> None:
    with pytest.raises(ValueError):
        Estate(MIN_EDGES - 1)
    estate = Estate(MIN_EDGES)
    with pytest.raises(RuntimeError):
        estate.sample(5)  # nothing generated yet
    assert len(list(estate.events())) > 0
    with pytest.raises(RuntimeError):
        list(estate.events())


def test_the_benchmark_queries_every_layer_and_a_tenth_hubs() -> None:
    estate = Estate(10_000)
    for _event in estate.events():
        pass
    plan = query_plan(estate, 200)
    assert len(plan) == 200
    assert plan == query_plan(estate, 200)
    layers = {entity.layer for entity in plan}
    assert layers == {*LAYERS, "hub"}
    assert sum(entity.layer == "hub" for entity in plan) == 20


def test_the_benchmark_sizes_and_their_tenants() -> None:
    assert parse_sizes("1m, 10000,100k,10_000") == [10_000, 100_000, 1_000_000]
    with pytest.raises(ValueError):
        parse_sizes("500")
    assert [tenant(size) for size in (10_000, 1_000_000, 2_500)] == [
        "lineage-10k",
        "lineage-1m",
        "lineage-2500",
    ]
