"""``lineage``: what an entity is made from (upstream) and what is made from it (downstream),
as a tree in the terminal, or the API's Mermaid, Graphviz DOT or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from controlroom_cli import render
from controlroom_cli.errors import UsageProblem
from controlroom_cli.options import Json, Profile, connect

FORMATS = ("tree", "mermaid", "dot", "json")
DIRECTIONS = ("both", "upstream", "downstream")


@dataclass
class Branch:
    """An entity in the tree, reached through ``job``; ``repeated`` when it is shown
    elsewhere in the same direction already (a cycle, or a diamond)."""

    entity: str
    job: str | None
    children: list[Branch] = field(default_factory=list)
    repeated: bool = False


def branches(graph: dict[str, Any], direction: str) -> list[Branch]:
    """The tree of one direction of the API's graph, from its edges."""
    edges = [e for e in graph.get("edges") or [] if not e.get("deleted")]
    near, far = ("target", "source") if direction == "upstream" else ("source", "target")
    by_near: dict[str, list[dict[str, Any]]] = {}
    for edge in edges:
        by_near.setdefault(str(edge[near]), []).append(edge)
    seen = {str(graph["entity"])}

    def grow(entity: str) -> list[Branch]:
        grown = []
        for edge in sorted(by_near.get(entity, []), key=lambda e: (str(e[far]), str(e.get("job")))):
            other = str(edge[far])
            branch = Branch(other, edge.get("job"), repeated=other in seen)
            if not branch.repeated:
                seen.add(other)
                branch.children = grow(other)
            grown.append(branch)
        return grown

    return grow(str(graph["entity"]))


def lineage(
    entity: Annotated[
        str,
        typer.Argument(
            metavar="ENTITY",
            help="A dataset: supabase://raw.orders, s3://bucket/key, ...",
            show_default=False,
        ),
    ],
    depth: Annotated[
        int, typer.Option(min=1, max=10, metavar="N", help="Hops to walk each way.")
    ] = 1,
    direction: Annotated[
        str, typer.Option(metavar="DIRECTION", help="both, upstream or downstream.")
    ] = "both",
    output_format: Annotated[
        str,
        typer.Option(
            "--format", metavar="FORMAT", help="tree (in the terminal), mermaid, dot or json."
        ),
    ] = "tree",
    json_out: Json = False,
    profile: Profile = None,
) -> None:
    """An entity's lineage: upstream and downstream, as a tree or Mermaid / DOT text."""
    fmt = "json" if json_out else output_format
    if fmt not in FORMATS:
        raise UsageProblem(f"--format {output_format!r}: one of {', '.join(FORMATS)}")
    if direction not in DIRECTIONS:
        raise UsageProblem(f"--direction {direction!r}: one of {', '.join(DIRECTIONS)}")
    params = {"entity": entity, "depth": depth, "direction": direction}
    with connect(profile) as api:
        if fmt in ("mermaid", "dot"):
            render.out(api.get_text("/lineage/graph", format=fmt, **params).rstrip("\n"))
            return
        graph: dict[str, Any] = api.get("/lineage/graph", **params)
    if fmt == "json":
        render.emit_json(graph)
        return
    show_tree(graph, direction)


def show_tree(graph: dict[str, Any], direction: str) -> None:
    from rich.tree import Tree

    root = Tree(f"[bold]{_escape(str(graph['entity']))}[/bold]")
    for side in ("upstream", "downstream"):
        if direction not in ("both", side):
            continue
        grown = branches(graph, side)
        arrow = "↑" if side == "upstream" else "↓"
        node = root.add(f"{arrow} {side}" + ("" if grown else " (none)"), style="dim")
        _add(node, grown)
    render.console().print(root)
    if graph.get("truncated"):
        render.note("the graph was cut at its node limit: ask for less --depth")


def _add(node: Any, grown: list[Branch]) -> None:
    for branch in grown:
        label = _escape(branch.entity)
        if branch.job:
            label += f"  [dim]via {_escape(branch.job)}[/dim]"
        if branch.repeated:
            label += "  [dim](shown above)[/dim]"
        _add(node.add(label), branch.children)


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)
