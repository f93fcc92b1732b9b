"""A synthetic data estate as OpenLineage COMPLETE events, for the lineage benchmark.

Shaped like a lakehouse, layer by layer, every job one event (so every edge is new, and the
edges of all events together are exactly the ``edges`` asked for):

``source``
    Tables of operational systems (``postgres://crm-db:5432/crm.public.accounts_17``), object
    store drops (``s3://landing/web/clickstream/sessions_3``) and Kafka topics.
``bronze``
    Ingestion jobs, mostly 1:1 (one source table -> one ``bronze.*`` table); a few split a
    source into a table and its history, or union 2-4 shards; a few sources are ingested twice.
``silver``
    Joins of 2-10 bronze tables, a quarter of them also reading 1-3 other silver tables,
    writing 1-3 ``silver.*`` tables. The first five jobs build the hubs.
``hub``
    ``silver.calendar``, ``silver.customers``, ``silver.products``, ``silver.currency_rates``
    and ``silver.geography``: read by a fixed share of the silver, gold and mart jobs, so
    thousands of jobs (and thousands of neighbours) each once the estate has 100 k edges.
``gold``
    Fan-in of 5-30 silver tables (hubs included), writing 1-3 ``gold.*`` tables.
``mart``
    1-10 gold tables (and hubs) -> 1-2 ``mart.*`` tables.
``report``
    1-5 mart tables -> one ``report.*`` table or an export ``s3://exports/reports/...``.

Each layer's tables are read by several jobs of the next (drawn from a shuffled deck, with a
skew towards the oldest tables: some are far more popular than others). The edge budget is
split between layers (``LAYER_SHARES``) and the last event is cut so the total is exact.

Everything is drawn from one ``random.Random(seed)``: the same (edges, seed) gives the same
events, run ids and times included. Names are generated lowercase and already canonical
(``controlroom_contracts.entities.openlineage_entity`` leaves them as they are).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from controlroom_contracts.openlineage import OPENLINEAGE_SCHEMA_URL

MIN_EDGES: Final = 1_000
PRODUCER: Final = "https://github.com/controlroom/controlroom/tree/main/tools/devstack"
WAREHOUSE: Final = "supabase"
EPOCH: Final = datetime(2025, 1, 1, tzinfo=UTC)

LAYERS: Final = ("source", "bronze", "silver", "gold", "mart", "report")

LAYER_SHARES: Final = (
    ("bronze", 0.04),
    ("silver", 0.33),
    ("gold", 0.40),
    ("mart", 0.18),
    ("report", 0.05),
)
"""The share of the edges each layer's jobs write (ingestion jobs write the bronze layer)."""

HUBS: Final = (
    ("silver.calendar", 0.40),
    ("silver.customers", 0.30),
    ("silver.products", 0.25),
    ("silver.currency_rates", 0.20),
    ("silver.geography", 0.20),
)
"""Hub tables and the share of gold and mart jobs reading each (silver jobs: half that)."""

_SYSTEMS: Final = {
    "crm": ("accounts", "contacts", "leads", "opportunities", "activities", "campaigns"),
    "erp": ("orders", "order_lines", "invoices", "suppliers", "purchase_orders", "ledger"),
    "billing": ("subscriptions", "charges", "refunds", "plans", "payments", "credits"),
    "hr": ("employees", "departments", "positions", "payroll", "absences", "reviews"),
    "inventory": ("items", "warehouses", "stock_levels", "shipments", "returns", "bins"),
    "support": ("tickets", "comments", "agents", "slas", "satisfaction", "macros"),
}
_DROPS: Final = {
    "web/clickstream": ("sessions", "pageviews", "clicks", "searches"),
    "mobile/events": ("installs", "screens", "crashes", "pushes"),
    "partners/feeds": ("catalog", "prices", "availability", "affiliates"),
}
_TOPICS: Final = ("order_events", "payment_events", "shipment_events", "audit_events")
_SUBJECTS: Final = (
    "orders", "customers", "revenue", "churn", "inventory", "marketing", "finance",
    "support", "logistics", "product", "sales", "hr",
)  # fmt: skip
_SHAPES: Final = ("enriched", "daily", "joined", "deduped", "snapshot", "scd2", "current")
_MEASURES: Final = ("kpis", "summary", "cohorts", "funnel", "forecast", "ledger", "trends")
_TEAMS: Final = ("finance", "sales", "ops", "exec", "growth", "risk", "supply", "people")


@dataclass(frozen=True)
class Dataset:
    namespace: str
    name: str

    @property
    def entity(self) -> str:
        """The canonical entity the server makes of it (lowercase names are canonical)."""
        if self.namespace == WAREHOUSE:
            return self.name
        return f"{self.namespace}/{self.name}"

    def wire(self) -> dict[str, str]:
        return {"namespace": self.namespace, "name": self.name}


def _warehouse(name: str) -> Dataset:
    return Dataset(WAREHOUSE, name)


@dataclass(frozen=True)
class SampledEntity:
    layer: str
    """One of ``LAYERS``, or ``hub``."""
    entity: str


class _Deck:
    """Draws tables so each is read by about as many jobs as the others (a shuffled deck,
    reshuffled when exhausted), with a share of draws skewed towards the oldest tables."""

    def __init__(self, rng: random.Random, items: list[Dataset], skew: float = 0.15) -> None:
        self._rng = rng
        self._items = items
        self._order: list[Dataset] = []
        self._skew = skew

    def draw(self, k: int) -> list[Dataset]:
        """``k`` distinct tables (all of them if there are fewer)."""
        k = min(k, len(self._items))
        chosen: list[Dataset] = []
        taken: set[Dataset] = set()
        while len(chosen) < k:
            if self._rng.random() < self._skew:
                # popular tables: the first ones of the layer, ever more likely towards them
                item = self._items[int(len(self._items) * self._rng.random() ** 3)]
            else:
                if not self._order:
                    self._order = list(self._items)
                    self._rng.shuffle(self._order)
                item = self._order.pop()
            if item not in taken:
                taken.add(item)
                chosen.append(item)
        return chosen


@dataclass
class Estate:
    """The estate of ``edges`` edges for ``seed``: ``events()`` generates it (once) and fills
    ``tables``, the datasets of each layer, as it goes."""

    edges: int
    seed: int = 0
    tables: dict[str, list[Dataset]] = field(default_factory=dict, init=False)
    _generated: bool = field(default=False, init=False)
    _rng: random.Random = field(default_factory=random.Random, init=False, repr=False)
    _total: int = field(default=0, init=False)
    _events: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.edges < MIN_EDGES:
            raise ValueError(f"an estate has at least {MIN_EDGES} edges")

    @property
    def event_count(self) -> int:
        """The events generated so far."""
        return self._events

    @property
    def finished(self) -> bool:
        """``events()`` has made its last event."""
        return self._generated and self._total == self.edges

    # -- the events --------------------------------------------------------------------------

    def events(self) -> Iterator[dict[str, Any]]:
        """OpenLineage COMPLETE RunEvents, ingestion first, reports last."""
        if self._generated:
            raise RuntimeError("an Estate generates its events once; make another")
        self._generated = True
        self._rng = random.Random(self.seed)
        self._total = 0
        self._events = 0
        self.tables = {layer: [] for layer in LAYERS}
        self.tables["hub"] = []
        targets: dict[str, int] = {}
        cumulative = 0.0
        for layer, share in LAYER_SHARES:
            cumulative += share
            targets[layer] = round(self.edges * cumulative)
        targets["report"] = self.edges
        yield from self._bronze(targets["bronze"])
        yield from self._silver(targets["silver"])
        yield from self._gold(targets["gold"])
        yield from self._marts(targets["mart"])
        yield from self._reports(targets["report"])

    def _event(
        self, namespace: str, name: str, inputs: list[Dataset], outputs: list[Dataset]
    ) -> dict[str, Any]:
        self._total += len(inputs) * len(outputs)
        at = EPOCH + timedelta(seconds=self._events)
        self._events += 1
        run_id = uuid.UUID(int=self._rng.getrandbits(128), version=4)
        return {
            "eventType": "COMPLETE",
            "eventTime": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "run": {"runId": str(run_id)},
            "job": {"namespace": namespace, "name": name},
            "inputs": [d.wire() for d in inputs],
            "outputs": [d.wire() for d in outputs],
            "producer": PRODUCER,
            "schemaURL": OPENLINEAGE_SCHEMA_URL,
        }

    def _new(self, layer: str, dataset: Dataset) -> Dataset:
        self.tables[layer].append(dataset)
        return dataset

    def _outputs(
        self, layer: str, make: Callable[[], Dataset], weights: tuple[int, ...]
    ) -> list[Dataset]:
        count = self._rng.choices(range(1, len(weights) + 1), weights)[0]
        return [self._new(layer, make()) for _ in range(count)]

    def _hubs(self, scale: float) -> list[Dataset]:
        return [_warehouse(name) for name, share in HUBS if self._rng.random() < share * scale]

    # -- the layers --------------------------------------------------------------------------

    def _source(self) -> Dataset:
        rng, n = self._rng, len(self.tables["source"])
        kind = rng.random()
        if kind < 0.70:
            system = rng.choice(list(_SYSTEMS))
            table = rng.choice(_SYSTEMS[system])
            return Dataset(f"postgres://{system}-db:5432", f"{system}.public.{table}_{n}")
        if kind < 0.92:
            prefix = rng.choice(list(_DROPS))
            return Dataset("s3://landing", f"{prefix}/{rng.choice(_DROPS[prefix])}_{n}")
        return Dataset("kafka://events-broker:9092", f"{rng.choice(_TOPICS)}_{n}")

    def _bronze(self, target: int) -> Iterator[dict[str, Any]]:
        rng = self._rng
        while self._total < target:
            kind = rng.random()
            if kind < 0.05 and self.tables["source"]:
                inputs = [rng.choice(self.tables["source"])]  # ingested a second time
            elif kind < 0.10:
                first = self._new("source", self._source())
                shards = [
                    self._new("source", Dataset(first.namespace, f"{first.name}_shard{i}"))
                    for i in range(1, rng.randint(1, 3) + 1)
                ]
                inputs = [first, *shards]
            else:
                inputs = [self._new("source", self._source())]
            stem = inputs[0].name.rsplit("/", 1)[-1].replace(".public.", "_").replace(".", "_")
            n = len(self.tables["bronze"])
            outputs = [self._new("bronze", _warehouse(f"bronze.{stem}_b{n}"))]
            if rng.random() < 0.10:
                outputs.append(self._new("bronze", _warehouse(f"bronze.{stem}_b{n}_history")))
            scheme = inputs[0].namespace.split(":", 1)[0]
            tool = {"postgres": "airbyte", "s3": "spark-ingest", "kafka": "kafka-connect"}[scheme]
            job = f"ingest_{outputs[0].name.removeprefix('bronze.')}"
            yield self._event(tool, job, inputs, outputs)

    def _silver_name(self) -> Dataset:
        rng, n = self._rng, len(self.tables["silver"])
        return _warehouse(f"silver.{rng.choice(_SUBJECTS)}_{rng.choice(_SHAPES)}_{n}")

    def _silver(self, target: int) -> Iterator[dict[str, Any]]:
        rng = self._rng
        bronze = _Deck(rng, self.tables["bronze"])
        for hub, _share in HUBS:
            output = self._new("hub", _warehouse(hub))
            yield self._event("dbt", f"models.{hub}", bronze.draw(rng.randint(3, 6)), [output])
        while self._total < target:
            inputs = bronze.draw(rng.randint(2, 10))
            if rng.random() < 0.25 and self.tables["silver"]:
                inputs += rng.sample(
                    self.tables["silver"], min(len(self.tables["silver"]), rng.randint(1, 3))
                )
            inputs += self._hubs(0.5)
            outputs = self._outputs("silver", self._silver_name, (70, 22, 8))
            yield self._event("dbt", f"models.{outputs[0].name}", inputs, outputs)

    def _gold(self, target: int) -> Iterator[dict[str, Any]]:
        rng = self._rng
        silver = _Deck(rng, self.tables["silver"])
        while self._total < target:
            hubs = self._hubs(1.0)
            inputs = hubs + silver.draw(max(1, rng.randint(5, 30) - len(hubs)))
            outputs = self._outputs("gold", self._gold_name, (60, 30, 10))
            yield self._event("dbt", f"models.{outputs[0].name}", inputs, outputs)

    def _gold_name(self) -> Dataset:
        rng, n = self._rng, len(self.tables["gold"])
        return _warehouse(f"gold.{rng.choice(_SUBJECTS)}_{rng.choice(_MEASURES)}_{n}")

    def _marts(self, target: int) -> Iterator[dict[str, Any]]:
        rng = self._rng
        gold = _Deck(rng, self.tables["gold"])
        while self._total < target:
            inputs = gold.draw(rng.randint(1, 10)) + self._hubs(1.0)
            outputs = self._outputs("mart", self._mart_name, (75, 25))
            yield self._event("dbt", f"models.{outputs[0].name}", inputs, outputs)

    def _mart_name(self) -> Dataset:
        rng, n = self._rng, len(self.tables["mart"])
        return _warehouse(f"mart.{rng.choice(_TEAMS)}_{rng.choice(_SUBJECTS)}_{n}")

    def _reports(self, target: int) -> Iterator[dict[str, Any]]:
        rng = self._rng
        marts = _Deck(rng, self.tables["mart"])
        while self._total < target:
            inputs = marts.draw(rng.randint(1, 5))[: target - self._total]  # exact at the end
            n = len(self.tables["report"])
            name = f"{rng.choice(_TEAMS)}_{rng.choice(_SUBJECTS)}_{n}"
            if rng.random() < 0.2:
                output = Dataset("s3://exports", f"reports/{name}.parquet")
            else:
                output = _warehouse(f"report.{name}")
            self._new("report", output)
            yield self._event("airflow", f"reports.{name}", inputs, [output])

    # -- what to query -----------------------------------------------------------------------

    def sample(self, per_layer: int, seed: int | None = None) -> list[SampledEntity]:
        """``per_layer`` entities of each layer (fewer where a layer has fewer), then every hub;
        only once ``events()`` has run to its end."""
        if not self.finished:
            raise RuntimeError("generate the events first")
        rng = random.Random(self.seed if seed is None else seed)
        picked: list[SampledEntity] = []
        for layer in (*LAYERS, "hub"):
            tables = self.tables[layer]
            count = len(tables) if layer == "hub" else min(per_layer, len(tables))
            picked += [SampledEntity(layer, d.entity) for d in rng.sample(tables, count)]
        return picked


def estate_events(edges: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """The estate's OpenLineage COMPLETE events: exactly ``edges`` distinct edges in all."""
    return Estate(edges, seed).events()


def sample_entities(edges: int, seed: int = 0, per_layer: int = 30) -> list[SampledEntity]:
    """Entities to query in the estate ``estate_events(edges, seed)`` made: ``per_layer``
    ordinary tables of each layer and every hub (it generates the estate to know them)."""
    estate = Estate(edges, seed)
    for _event in estate.events():
        pass
    return estate.sample(per_layer)
