"""Lineage graphs as Mermaid and DOT text: each node and edge once, names escaped, parseable.

The DOT text goes through a real parser (pydot). Mermaid has no Python parser, so its text is held
to the exact subset the renderer emits, line by line, strictly enough that a label which Mermaid
would read as syntax, a directive, an entity code, HTML or Markdown fails the check. A real
Mermaid parse is left to the UI's browser tests.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import pydot
import pytest

from controlroom_contracts.rpc import GraphEdge, GraphNode, LineageGraph
from controlroom_gateway.lineage.render import to_dot, to_mermaid

HOSTILE = [
    "raw.orders",
    "s3://bucket/curated/out",
    "postgres://db:5432/shop.public.orders",
    "file:///data/x.csv",
    'say "hi"',
    "it's",
    "back\\slash\\",
    "\\",
    '"',
    '\\"',
    "{braces}",
    "[brackets]",
    "(parens)",
    "a|b",
    "a -> b",
    "a --> b",
    "a -.-> b",
    "x; y",
    ";",
    "#",
    "#35;",
    "#quot;",
    "&amp;",
    "&#35;",
    "%",
    "%% not a comment",
    '%%{init: {"theme": "dark"}}%%',
    "<b>bold</b>",
    "`markdown`",
    "**bold**",
    "style n0 fill:#f00;",
    "classDef focus fill:#f00;",
    "mystyle:#x;",
    "end",
    "graph",
    "node",
    "edge",
    "subgraph",
    "digraph",
    "flowchart LR",
    "n0",
    "n1",
    'a"]\n    n99["injected',
    'a"];\n    injected [label="x',
    "café ☕ 数据 ×",
    "é\u0301",
    "tab\there",
    "line\nbreak",
    "cr\rhere",
    "ls\u2028ps\u2029",
    "zero\u200bwidth",
    "\u202eright to left",
    "nul\x00",
    "bell\x07del\x7f",
    "\ud800lone surrogate",
    "x" * 1024,
]


def edge(
    source: str, target: str, job: str = "nightly", runs: int = 1, deleted: bool = False
) -> GraphEdge:
    return GraphEdge(
        # Derived from the content, so that two builds of one graph are equal.
        id=uuid.uuid5(uuid.NAMESPACE_URL, repr((source, target, job))),
        source=source,
        target=target,
        job=job,
        edge_type="transform",
        origin="run",
        run_count=runs,
        latest_run_id=None,
        latest_run_at=None,
        deleted=deleted,
    )


def graph(
    entity: str, others: list[str], edges: list[GraphEdge], truncated: bool = False
) -> LineageGraph:
    nodes = [GraphNode(entity=entity, depth=0), *(GraphNode(entity=e, depth=1) for e in others)]
    return LineageGraph(entity=entity, nodes=nodes, edges=edges, truncated=truncated)


def hostile_graph() -> LineageGraph:
    n = len(HOSTILE)
    # Every name is a node and an edge's job; edges go both ways between neighbours, and some
    # are deleted or counted, so hostile text is in every position the renderers write.
    edges = [
        edge(HOSTILE[i], HOSTILE[(i + 1) % n], HOSTILE[(i + 7) % n][:400], i % 4, i % 3 == 0)
        for i in range(n)
    ]
    return graph(HOSTILE[0], HOSTILE[1:], edges)


CASES: dict[str, LineageGraph] = {
    "only the root": graph("raw.orders", [], []),
    "cycle": graph(
        "raw.a", ["raw.b"], [edge("raw.a", "raw.b", "load"), edge("raw.b", "raw.a", "back", 3)]
    ),
    "self loop": graph("raw.a", [], [edge("raw.a", "raw.a", "dedupe")]),
    "deleted edge": graph(
        "raw.a",
        ["raw.b", "raw.c"],
        [edge("raw.a", "raw.b", "old", 4, deleted=True), edge("raw.a", "raw.c", "new")],
    ),
    "truncated": graph("raw.a", ["raw.b"], [edge("raw.a", "raw.b", "load", 12)], truncated=True),
    "lone node besides edges": graph(
        "raw.a", ["raw.b", "raw.lonely"], [edge("raw.b", "raw.a", "load")]
    ),
    "uris": graph(
        "postgres://db:5432/shop.public.orders",
        ["s3://bucket/curated/out", "file:///data/x.csv"],
        [
            edge("file:///data/x.csv", "postgres://db:5432/shop.public.orders", "ingest", 2),
            edge("postgres://db:5432/shop.public.orders", "s3://bucket/curated/out", "export"),
        ],
    ),
    "names that look like ids": graph(
        "n1", ["n0", "n2"], [edge("n1", "n0", "n2"), edge("n0", "n2", "n1", deleted=True)]
    ),
    "two edges, one pair": graph(
        "raw.a", ["raw.b"], [edge("raw.a", "raw.b", "x"), edge("raw.a", "raw.b", "y", 2)]
    ),
    "hostile names": hostile_graph(),
    "empty names": graph("", ["raw.b"], [edge("", "raw.b", ""), edge("raw.b", "", "", 2)]),
    # Not what the lineage service sends, but nothing may be lost or doubled when it happens.
    "root and an endpoint missing from nodes": LineageGraph(
        entity="raw.root",
        nodes=[GraphNode(entity="raw.a", depth=1)],
        edges=[edge("raw.a", "raw.elsewhere"), edge("raw.root", "raw.a")],
    ),
    "no nodes at all": LineageGraph(entity="raw.orders"),
    "a node listed twice": LineageGraph(
        entity="raw.a",
        nodes=[GraphNode(entity="raw.a", depth=0), GraphNode(entity="raw.a", depth=1)],
        edges=[],
    ),
}


@dataclass
class Drawn:
    """What a reader of the picture sees: node labels in id order, edges by their ends' labels."""

    nodes: list[str]
    edges: list[tuple[str, str, str, bool]] = field(
        default_factory=list
    )  # (from, to, label, dashed)
    focus: list[str] = field(default_factory=list)
    truncated: bool = False


def shown(text: str) -> str:
    """A name as either picture shows it: characters that SVG cannot hold as U+FFFD."""
    return "".join(
        "\ufffd"
        if (ord(c) < 0x20 and c not in "\t\n\r") or ord(c) == 0x7F or 0xD800 <= ord(c) <= 0xDFFF
        else c
        for c in text
    )


def expected(g: LineageGraph) -> Drawn:
    entities = dict.fromkeys(
        [
            *(n.entity for n in g.nodes),
            g.entity,
            *(x for e in g.edges for x in (e.source, e.target)),
        ]
    )
    return Drawn(
        nodes=[shown(e) for e in entities],
        edges=[
            (
                shown(e.source),
                shown(e.target),
                shown(f"{e.job} ×{e.run_count}" if e.run_count > 1 else e.job),
                e.deleted,
            )
            for e in g.edges
        ],
        focus=[shown(g.entity)],
        truncated=g.truncated,
    )


# pydot 4.0.1, the latest, still calls pyparsing's camelCase names, deprecated since pyparsing 3.3;
# the project turns warnings into errors, so these (and only these, only here) are let through.
pytestmark = pytest.mark.filterwarnings("ignore::pyparsing.PyparsingDeprecationWarning")

# --- DOT, through pydot -------------------------------------------------------------------------

_DOT_STRING = re.compile(r'"((?:[^"\\&]|\\[\\"]|&amp;|&#\d+;)*)"', re.DOTALL)
_DOT_ESCAPE = re.compile(r"\\([\\\"])|&amp;|&#(\d+);")


def dot_text(quoted: str | None) -> str:
    """A parsed DOT string back to its text; only the escapes the renderer writes are allowed."""
    assert quoted is not None
    match = _DOT_STRING.fullmatch(quoted)
    assert match, f"not a DOT string the renderer writes: {quoted!r}"
    return _DOT_ESCAPE.sub(
        lambda m: m.group(1) or ("&" if m.group(2) is None else chr(int(m.group(2)))),
        match.group(1),
    )


def parse_dot(text: str) -> Drawn:
    graphs = pydot.graph_from_dot_data(text)
    assert graphs is not None and len(graphs) == 1
    [g] = graphs
    assert g.get_type() == "digraph"
    assert g.get("rankdir") == "LR"
    nodes = [n for n in g.get_nodes() if n.get_name() not in ("node", "edge", "graph")]
    assert [n.get_name() for n in nodes] == [f"n{i}" for i in range(len(nodes))]
    label = {n.get_name(): dot_text(n.get("label")) for n in nodes}
    edges = [
        (
            label[str(e.get_source())],
            label[str(e.get_destination())],
            dot_text(e.get("label")),
            e.get("style") == "dashed",
        )
        for e in g.get_edges()
    ]
    styled = {n.get_name(): n.get("style") for n in nodes if n.get("style") is not None}
    assert set(styled.values()) <= {'"bold,filled"'}
    note = g.get("label")
    return Drawn(
        nodes=list(label.values()),
        edges=edges,
        focus=[label[name] for name in styled],
        truncated=note is not None and "node limit" in dot_text(note),
    )


@pytest.mark.parametrize("g", CASES.values(), ids=CASES.keys())
def test_dot_parses_to_each_node_and_edge_once(g: LineageGraph) -> None:
    assert parse_dot(to_dot(g)) == expected(g)


# --- Mermaid, by the strict subset it is written in ---------------------------------------------

_LABEL = r'"((?:[^"#%&<>`]|#quot;|#\d+;)+)"'  # no raw character Mermaid would read as markup
_NODE = re.compile(rf"    (n\d+)\[{_LABEL}\]")
_EDGE = re.compile(rf"    (n\d+) (-->|-\.->)\|{_LABEL}\| (n\d+)")
_CLASS_DEF = re.compile(r"    classDef focus [^;]+")
_CLASS = re.compile(r"    class (n\d+) focus")
_COMMENT = re.compile(r"    %% ([^{].*)")
# Mermaid's own pre-parse rewrites (encodeEntities): a line matching these loses its last `;`.
_EATS_SEMICOLON = re.compile(r"(style|classDef).*:\S*#.*;")


def mermaid_text(label: str) -> str:
    assert label.isprintable(), label
    text = re.sub(r"#quot;|#(\d+);", lambda m: chr(int(m[1])) if m[1] else '"', label)
    return "" if text == " " else text  # the renderer writes an empty name as a blank


def parse_mermaid(text: str) -> Drawn:
    assert text.endswith("\n")
    lines = text[:-1].split("\n")
    assert text.splitlines() == lines, "a line break (U+2028, CR...) inside a statement"
    assert lines[0] == "flowchart LR"
    label: dict[str, str] = {}
    drawn = Drawn(nodes=[])
    class_defs = 0
    for line in lines[1:]:
        assert not _EATS_SEMICOLON.search(line), line
        if node := _NODE.fullmatch(line):
            assert node[1] == f"n{len(label)}" and not drawn.edges, line
            label[node[1]] = mermaid_text(node[2])
        elif edge := _EDGE.fullmatch(line):
            drawn.edges.append(
                (label[edge[1]], label[edge[4]], mermaid_text(edge[3]), edge[2] == "-.->")
            )
        elif _CLASS_DEF.fullmatch(line):
            class_defs += 1
        elif focus := _CLASS.fullmatch(line):
            drawn.focus.append(label[focus[1]])
        elif comment := _COMMENT.fullmatch(line):
            drawn.truncated = drawn.truncated or "node limit" in comment[1]
        else:
            pytest.fail(f"not in the Mermaid subset the renderer writes: {line!r}")
    assert class_defs == 1
    drawn.nodes = list(label.values())
    return drawn


@pytest.mark.parametrize("g", CASES.values(), ids=CASES.keys())
def test_mermaid_has_each_node_and_edge_once(g: LineageGraph) -> None:
    assert parse_mermaid(to_mermaid(g)) == expected(g)


# --- both -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("runs", "label"), [(0, "nightly"), (1, "nightly"), (2, "nightly ×2"), (12, "nightly ×12")]
)
def test_an_edge_is_labelled_with_its_job_and_runs(runs: int, label: str) -> None:
    g = graph("raw.a", ["raw.b"], [edge("raw.a", "raw.b", "nightly", runs)])
    assert parse_dot(to_dot(g)).edges == [("raw.a", "raw.b", label, False)]
    assert parse_mermaid(to_mermaid(g)).edges == [("raw.a", "raw.b", label, False)]


@pytest.mark.parametrize("render", [to_mermaid, to_dot])
@pytest.mark.parametrize("g", CASES.values(), ids=CASES.keys())
def test_the_same_graph_gives_the_same_text(
    render: Callable[[LineageGraph], str], g: LineageGraph
) -> None:
    again = LineageGraph.model_validate(g.model_dump())
    assert render(g) == render(again)
    # Also encodable as it is pasted: no lone surrogate survives.
    render(g).encode("utf-8")
