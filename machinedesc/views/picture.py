"""``machinedesc graph``: a board as a Graphviz picture, built with the ``graphviz`` binding.

``machine_dot`` draws the machine: each cpu-cluster a box holding its CPUs,
the memory-mapped devices in a box of their own in address order (each with
its address), other devices beside them, IRQ wires as solid edges labelled
with their lines (through the split-irq / or-irq gates the planner inserts,
drawn as yellow hexagons), QOM links as dashed edges labelled with the
property. ``memory_map_dot`` draws the memory map as one table, lowest
address at the top, holes grey, overlaps marked. Both are DOT text, the same
bytes for the same board: nodes and edges are emitted in the board's order.
``render`` turns DOT into SVG or PNG with Graphviz's ``dot`` program.
"""

from __future__ import annotations

import html

import graphviz

from ..board.model import Board, Component, link_target
from ..errors import InstallError, printable
from ..plan.wires import lower_wires
from .machine import NO_CLUSTER, MapRow, groups, human_size, memory_map

FONT = "DejaVu Sans"
#: What ``render`` can make from DOT, besides DOT itself.
FORMATS = ("svg", "png")


def _digraph(name: str) -> graphviz.Digraph:
    g = graphviz.Digraph(name=name)
    g.attr(rankdir="LR", fontname=FONT, fontsize="12", labelloc="t", nodesep="0.5", ranksep="0.9")
    g.attr("node", fontname=FONT, fontsize="10", shape="box", style="rounded,filled", fillcolor="white")
    g.attr("edge", fontname=FONT, fontsize="8")
    return g


def _label(*lines: str) -> str:
    # DOT's own escapes: the binding quotes the string, \n breaks a line.
    return "\\n".join(printable(line).replace("\\", "\\\\") for line in lines)


def _node(g: graphviz.Digraph, comp: Component) -> None:
    info = comp.info
    lines = [comp.id, comp.type]
    lines += [f"@ {m.addr:#x}" + (f" (region {m.region})" if m.region else "")
              + (f" (window {m.offset:#x}+{m.size:#x})" if m.offset is not None and m.size is not None else "")
              for m in comp.mmio]
    if info.is_cpu:
        g.node(comp.id, _label(*lines), fillcolor="#dbe9f6")
    elif comp.type == "sysbus-memory":
        size = comp.props.get("size")
        if isinstance(size, int) and not isinstance(size, bool):
            lines.insert(2, human_size(size) + (" ROM" if comp.props.get("readonly") is True else " RAM"))
        g.node(comp.id, _label(*lines), shape="box3d", style="filled", fillcolor="#e8f3e0")
    else:
        g.node(comp.id, _label(*lines))


def machine_dot(board: Board) -> str:
    """The DOT text of the machine picture."""
    g = _digraph(board.name)
    g.attr(label=_label(f"{board.name} (qemu-system-{board.system}, machine {board.machine})"))
    for cluster, members in groups(board).items():
        if cluster == NO_CLUSTER:
            _devices(g, members)
            continue
        with g.subgraph(name=f"cluster_{cluster}") as sub:
            head = board.by_id[cluster]
            sub.attr(label=_label(f"{cluster} ({head.type})"), style="rounded,filled", fillcolor="#f4f8fc",
                     color="#5b8bc0")
            _column(sub, f"column_{cluster}", members)
    _wires(g, board)
    _links(g, board)
    return str(g.source)


def _devices(g: graphviz.Digraph, members: list[Component]) -> None:
    mapped = sorted((c for c in members if c.mmio), key=lambda c: (min(m.addr for m in c.mmio), c.index))
    if mapped:
        with g.subgraph(name="cluster_sysbus") as sub:
            # One column (rank), lowest address at the top; invisible edges keep that order.
            sub.attr(label="memory-mapped (by address)", style="rounded,dashed", color="#888888")
            _column(sub, "column_sysbus", mapped)
    for comp in members:
        if not comp.mmio:
            _node(g, comp)


def _column(g: graphviz.Digraph, name: str, members: list[Component]) -> None:
    """``members`` one above the other, the first at the top, in a subgraph of one rank."""
    with g.subgraph(name=name) as column:
        column.attr(rank="same")
        for comp in members:
            _node(column, comp)
        # Flat edges of a left-to-right graph run bottom to top: each from the next member to the one before.
        for a, b in zip(members, members[1:], strict=False):
            column.edge(b.id, a.id, style="invis")


def _wires(g: graphviz.Digraph, board: Board) -> None:
    extra, conns = lower_wires(board)
    for gate in extra:
        g.node(gate.id, _label(gate.type, gate.id), shape="hexagon", style="filled", fillcolor="#fff2cc",
               fontsize="8")
    column = _column_of(board)
    for conn in conns:
        src, dst = conn.source, conn.target
        # A labelled edge inside one rank (a UART wired to the PLIC beside it) crashes Graphviz 2.42's
        # dot (SIGSEGV in its flat-edge label code): such an edge carries its text as an xlabel.
        flat = column.get(src.component) is not None and column.get(src.component) == column.get(dst.component)
        text = _label(src.prop, f"-> {dst.prop}")
        g.edge(src.component, dst.component, **({"xlabel": text} if flat else {"label": text}), color="#c0392b",
               fontcolor="#c0392b")


def _column_of(board: Board) -> dict[str, str]:
    """Which column (rank) each component is drawn in: its cluster's, or the sysbus one."""
    out: dict[str, str] = {}
    for cluster, members in groups(board).items():
        for comp in members:
            if cluster != NO_CLUSTER:
                out[comp.id] = cluster
            elif comp.mmio:
                out[comp.id] = "sysbus"
    return out


def _links(g: graphviz.Digraph, board: Board) -> None:
    by_id = board.by_id
    backends = {b.id: b.type for b in board.backends}
    for comp in board.components:
        for prop, target in comp.links.items():
            owner, inside = link_target(target)
            if owner in by_id or owner in backends:
                if owner in backends:
                    g.node(owner, _label(owner, f"backend {backends[owner]}"), shape="note")
                g.edge(comp.id, owner, taillabel=_label(prop + (f" ({inside})" if inside else "")), style="dashed",
                       color="#555555", constraint="false")
        if comp.parent and comp.parent in by_id and not by_id[comp.parent].info.is_cluster:
            g.edge(comp.parent, comp.id, label="child", style="dotted", arrowhead="none")


def _row(r: MapRow) -> str:
    end = f"{r.end:#x}" if r.end is not None else "?"
    cells = [f"{r.start:#x}", end, human_size(r.size)]
    if r.is_hole:
        what = "(hole)"
        bg = ' BGCOLOR="#eeeeee"'
    else:
        what = f"{r.component} [{r.region_text}]" + (f" prio {r.priority}" if r.priority else "")
        bg = ' BGCOLOR="#fde2e1"' if r.notes else ""
    cells.append(what)
    if not r.is_hole:
        cells.append(r.type)
    tds = "".join(f'<TD ALIGN="LEFT"{bg}>{html.escape(printable(c))}</TD>' for c in cells)
    if r.is_hole:
        tds += f"<TD{bg}></TD>"
    notes = "".join(f'<TR><TD></TD><TD COLSPAN="4" ALIGN="LEFT"><FONT POINT-SIZE="8">{html.escape(printable(n))}'
                    "</FONT></TD></TR>" for n in r.notes)
    return f"<TR>{tds}</TR>{notes}"


def memory_map_dot(board: Board) -> str:
    """The DOT text of the memory-map picture: one table, lowest address first."""
    g = _digraph(f"{board.name}-memory-map")
    g.attr(label=_label(f"{board.name}: memory map"))
    rows = memory_map(board)
    head = "".join(f'<TD ALIGN="LEFT"><B>{h}</B></TD>' for h in ("start", "end", "size", "component [region]",
                                                                  "type"))
    body = "".join(_row(r) for r in rows) or '<TR><TD COLSPAN="5">nothing mapped</TD></TR>'
    table = f'<<TABLE BORDER="0" CELLBORDER="1" CELLSPACING="0" CELLPADDING="4"><TR>{head}</TR>{body}</TABLE>>'
    g.node("map", table, shape="plaintext", style="")
    return str(g.source)


def render(dot: str, fmt: str) -> bytes:
    """``dot`` laid out by Graphviz's ``dot`` program as ``fmt`` (svg or png); InstallError without it."""
    try:
        return bytes(graphviz.Source(dot).pipe(format=fmt))
    except graphviz.ExecutableNotFound:
        raise InstallError("machinedesc: Graphviz's `dot` program is not installed (Debian: apt-get install "
                           "graphviz); `-o FILE.dot` writes the picture's source without it") from None
