"""The terminal's lineage tree, grown from the graph's edges in each direction."""

from __future__ import annotations

from typing import Any

from controlroom_cli.lineage import Branch, branches


def edge(source: str, target: str, job: str, deleted: bool = False) -> dict[str, Any]:
    return {"source": source, "target": target, "job": job, "deleted": deleted}


GRAPH = {
    "entity": "silver.orders",
    "edges": [
        edge("raw.orders", "silver.orders", "clean"),
        edge("raw.customers", "silver.orders", "clean"),
        edge("landing.orders", "raw.orders", "ingest"),
        edge("silver.orders", "gold.daily", "aggregate"),
        edge("silver.orders", "gold.weekly", "aggregate"),
        edge("gold.daily", "silver.orders", "backfill"),  # a cycle
        edge("silver.orders", "gold.old", "retired", deleted=True),
    ],
}


def shape(grown: list[Branch]) -> list[Any]:
    return [
        (b.entity, b.job, b.repeated, shape(b.children))
        if b.children
        else (b.entity, b.job, b.repeated)
        for b in grown
    ]


def test_upstream_is_what_the_entity_is_made_from() -> None:
    assert shape(branches(GRAPH, "upstream")) == [
        ("gold.daily", "backfill", False, [("silver.orders", "aggregate", True)]),
        ("raw.customers", "clean", False),
        ("raw.orders", "clean", False, [("landing.orders", "ingest", False)]),
    ]


def test_downstream_ends_cycles_and_leaves_deleted_edges_out() -> None:
    assert shape(branches(GRAPH, "downstream")) == [
        ("gold.daily", "aggregate", False, [("silver.orders", "backfill", True)]),
        ("gold.weekly", "aggregate", False),
    ]


def test_an_entity_without_edges_has_an_empty_tree() -> None:
    assert branches({"entity": "lonely", "edges": []}, "upstream") == []
