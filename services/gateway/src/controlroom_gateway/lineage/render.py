"""A lineage graph as text to paste into a document: a Mermaid flowchart or a Graphviz digraph.

Node ids are generated (n0, n1, ... in node order), never derived from entity names, so no name
can clash with the syntax around it; the names only ever appear inside quoted labels, escaped.
"""

from __future__ import annotations

from controlroom_contracts.rpc import GraphEdge, LineageGraph

TRUNCATED_NOTE = "Truncated: the graph was cut at the node limit; more lies beyond these nodes."

# Mermaid reads `#name;` / `#123;` inside a label as an entity code (mermaid.js.org, flowchart
# syntax, "Entity codes to escape characters"), so each character below is written as one:
# `"` would end the string; `#` would start an entity code; `%` could start a `%%{...}%%`
# directive, which Mermaid looks for anywhere in the text; `&`, `<`, `>` would be read as HTML
# by the default HTML labels; a backtick would turn the label into a Markdown string.
_MERMAID_CODES = {
    '"': "#quot;",
    "#": "#35;",
    "%": "#37;",
    "&": "#38;",
    "<": "#60;",
    ">": "#62;",
    "`": "#96;",
}


def _code(ch: str) -> int:
    """The code point a numeric entity writes for an unprintable character. Both renderers pass
    decoded entities on into SVG (XML), where C0 controls other than tab and line breaks, and
    lone surrogates, are invalid (and Graphviz's text layout rejects DEL): those become U+FFFD,
    the replacement character."""
    code = ord(ch)
    if (code < 0x20 and ch not in "\t\n\r") or code == 0x7F or 0xD800 <= code <= 0xDFFF:
        return 0xFFFD
    return code


def _order(graph: LineageGraph) -> dict[str, str]:
    """Each entity's node id, first seen first: the graph's nodes, then the root and any edge
    endpoint missing from them, so that every edge is drawn between labelled nodes."""
    ids: dict[str, str] = {}
    for entity in [
        *(node.entity for node in graph.nodes),
        graph.entity,
        *(end for edge in graph.edges for end in (edge.source, edge.target)),
    ]:
        ids.setdefault(entity, f"n{len(ids)}")
    return ids


def _edge_label(edge: GraphEdge) -> str:
    return f"{edge.job} ×{edge.run_count}" if edge.run_count > 1 else edge.job


def _mermaid_text(text: str) -> str:
    # Before parsing, Mermaid drops the last `;` of any line matching `style.*:\S*#.*;` (or the
    # same with classDef), which would break an entity code: a colon in such a label is encoded.
    colon = ":" if "style" in text or "classDef" in text else ""
    # Anything unprintable (newlines, U+2028, lone surrogates...) as a numeric code: a raw line
    # break would end the statement, and the output must stay encodable.
    encoded = "".join(
        _MERMAID_CODES.get(ch) or (f"#{_code(ch)};" if ch == colon or not ch.isprintable() else ch)
        for ch in text
    )
    # Mermaid rejects an empty `""` label; a blank one says the same.
    return encoded or " "


def to_mermaid(graph: LineageGraph) -> str:
    """A `flowchart LR`, the queried entity in the `focus` class, deleted edges dotted."""
    ids = _order(graph)
    lines = ["flowchart LR"]
    if graph.truncated:
        lines.append(f"    %% {TRUNCATED_NOTE}")
    lines += [f'    {nid}["{_mermaid_text(entity)}"]' for entity, nid in ids.items()]
    for edge in graph.edges:
        arrow = "-.->" if edge.deleted else "-->"
        label = _mermaid_text(_edge_label(edge))
        lines.append(f'    {ids[edge.source]} {arrow}|"{label}"| {ids[edge.target]}')
    # No `;` on this line: see the classDef rule in _mermaid_text.
    lines.append("    classDef focus fill:#fde68a,stroke:#b45309,stroke-width:3px,font-weight:bold")
    lines.append(f"    class {ids[graph.entity]} focus")
    return "\n".join(lines) + "\n"


def _dot_string(text: str) -> str:
    # In a DOT quoted string only `"` and `\` need a backslash (the latter also keeps Graphviz's
    # `\n`, `\l`, `\N`... label escapes from firing). Graphviz reads `&...;` entities in labels,
    # so `&` is written as one, and so is anything unprintable (no raw line breaks, no lone
    # surrogates in the output).
    out = []
    for ch in text:
        if ch in '\\"':
            out.append("\\" + ch)
        elif ch == "&":
            out.append("&amp;")
        elif not ch.isprintable():
            out.append(f"&#{_code(ch)};")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def to_dot(graph: LineageGraph) -> str:
    """A `digraph` left to right, the queried entity bold and filled, deleted edges dashed."""
    ids = _order(graph)
    lines = ["digraph lineage {", "    rankdir=LR;", "    node [shape=box];"]
    if graph.truncated:
        lines += ["    labelloc=t;", f"    label={_dot_string(TRUNCATED_NOTE)};"]
    for entity, nid in ids.items():
        focus = ', style="bold,filled", fillcolor="#fde68a"' if entity == graph.entity else ""
        lines.append(f"    {nid} [label={_dot_string(entity)}{focus}];")
    for edge in graph.edges:
        dashed = ", style=dashed" if edge.deleted else ""
        label = _dot_string(_edge_label(edge))
        lines.append(f"    {ids[edge.source]} -> {ids[edge.target]} [label={label}{dashed}];")
    lines.append("}")
    return "\n".join(lines) + "\n"
