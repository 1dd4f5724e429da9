"""Board -> step graph: networkx nodes are steps (create, set, realize, map, wire, ...),
edges are QEMU's ordering constraints; realized=false is used only where needed.

The wires are first lowered to point-to-point connections (``wires``); the
graph is decided (links folded into device_add, create and realize fused)
on ``reach.Steps`` and handed to networkx once, for the sort.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

import networkx as nx

from ..board.model import Board, Component, RawCommand, link_target
from ..errors import Collector
from ..qemu.phases import EXIT_PRECONFIG, MACHINE_INIT, Phase
from .reach import Steps, contract, first_reachable
from .wires import Connection, lower_wires

#: What a step does: a backend's object-add, a machine property, a component's
#: create / link set / realize / MMIO map, a raw command, a firmware load, a wire,
#: a phase transition.
NodeKind = Literal["backend", "machine", "create", "set", "realize", "map", "raw", "firmware", "wire", "transition"]


class Node(NamedTuple):
    """One step of the graph (a networkx node): its kind and what it is about.

    ``name``: the component's id (create, set, realize, map), the backend's
    id, the machine property, the raw command's name, or the transition
    command.  ``number``: the MMIO region (map), the connection (wire) or the
    firmware file.  ``prop``: the link property (set).  A tuple, so that the
    hundreds of thousands of dict lookups of a big board hash at C speed.
    """

    kind: NodeKind
    name: str = ""
    number: int = 0
    prop: str = ""


#: The steps that belong to a component (and name it).
COMPONENT_STEPS = frozenset({"create", "set", "realize", "map"})
XMI = Node("transition", MACHINE_INIT)
XEP = Node("transition", EXIT_PRECONFIG)


@dataclass
class StepGraph:
    """The ordered constraint graph and the decisions the planner renders."""

    graph: nx.DiGraph
    components: list[Component]
    connections: list[Connection]
    folded_links: dict[str, set[str]] = field(default_factory=dict)
    #: The phase of every step in ``graph``.
    phase: dict[Node, Phase] = field(default_factory=dict)
    unrealized: dict[str, str] = field(default_factory=dict)
    order: list[Node] = field(default_factory=list)


def build_graph(board: Board, problems: Collector, firmware: int = 0) -> StepGraph | None:
    """The ordered step graph of ``board``; None (with problems added) on a real cycle."""
    extra, conns = lower_wires(board)
    comps = [*board.components, *extra]
    by_id = {c.id: c for c in comps}
    phase, edges = _collect_steps(board, comps, by_id, conns, firmware)
    if not _check_phases(phase, edges, by_id, board, problems):
        return None

    steps = Steps(phase, edges)
    sg = StepGraph(nx.DiGraph(), comps, conns)
    _fold_links(sg, steps)
    _fuse(sg, steps, problems)
    if problems.problems:
        return None
    # networkx gets the graph once it is final (contracting steps in it, one
    # networkx call per edge, cost more than all the rest of the planning),
    # without attributes: the phases and reasons stay in sg.phase and steps.
    g = sg.graph
    sg.phase = steps.phase
    g.add_nodes_from(steps.phase)
    g.add_edges_from((u, v) for u, nexts in steps.succ.items() for v in nexts)
    try:
        # The phase leads the sort key and every edge goes forward in phase,
        # so the order is grouped by phase; the transitions go between.
        order = list(nx.lexicographical_topological_sort(g, key=_SortKey(steps.phase, by_id, board, conns)))
    except nx.NetworkXUnfeasible:
        _report_cycle(g, steps, by_id, problems)
        return None
    accel = sum(1 for n in order if phase[n] is Phase.ACCEL_CREATED)
    init = accel + sum(1 for n in order if phase[n] is Phase.INITIALIZED)
    sg.order = [*order[:accel], XMI, *order[accel:init], XEP, *order[init:]]
    return sg


_Edges = list[tuple[Node, Node, str]]


def _collect_steps(board: Board, comps: list[Component], by_id: Mapping[str, Component], conns: list[Connection],
                   firmware: int) -> tuple[dict[Node, Phase], _Edges]:
    """Every step with its phase, and every constraint between two steps with its reason."""
    # Nodes and edges are collected first and given to networkx once the
    # graph is final: networkx clears its caches on every single add.
    phase: dict[Node, Phase] = {}
    edges: _Edges = []
    edge = edges.append

    for b in board.backends:
        phase[Node("backend", b.id)] = Phase.ACCEL_CREATED
    for prop in board.machine_props:
        phase[Node("machine", prop)] = Phase.ACCEL_CREATED
    # A device that creates CPUs (riscv.hart_array) counts as them for the devices that look CPUs up.
    cpus = [c for c in comps if c.info.is_cpu or c.info.creates_cpus is not None]
    mapped = [c for c in comps if c.mmio and c.phase is Phase.INITIALIZED]
    for c in comps:
        _component_steps(c, by_id, cpus, mapped, phase, edges)
    for conn in conns:
        src, dst = by_id.get(conn.source.component), by_id.get(conn.target.component)
        if src is None or dst is None:
            continue
        w = Node("wire", number=conn.index)
        phase[w] = Phase.READY if Phase.READY in (src.phase, dst.phase) else Phase.INITIALIZED
        out = src.info.output(conn.source.name)
        inp = dst.info.input(conn.target.name)
        edge((Node("realize" if out is None or out.after_realize else "create", src.id), w,
              f"{conn.source.text} must exist"))
        edge((Node("realize" if inp is None or inp.after_realize else "create", dst.id), w,
              f"{conn.target.text} must exist"))
    _late_steps(board, comps, by_id, firmware, phase, edges)
    return phase, edges


def _late_steps(board: Board, comps: list[Component], by_id: Mapping[str, Component], firmware: int,
                phase: dict[Node, Phase], edges: _Edges) -> None:
    """Raw commands after the steps of the components they name, firmware after CPUs and memories."""
    edge = edges.append
    for raw in board.raw:
        q = Node("raw", raw.name)
        phase[q] = raw.phase
        for name in raw.after:
            for n in _component_nodes(phase, name, by_id):
                edge((n, q, f"qmp.{raw.name} comes after {name}"))
    for k in range(firmware):
        f = Node("firmware", number=k)
        phase[f] = Phase.INITIALIZED
        for c in comps:
            if c.phase is Phase.INITIALIZED and (c.info.is_cpu or c.mmio):
                last = Node("map", c.id, len(c.mmio) - 1) if c.mmio else Node("realize", c.id)
                edge((last, f, "firmware loads once CPUs and memory are in place"))


def _component_steps(c: Component, by_id: Mapping[str, Component], cpus: list[Component],
                     mapped: list[Component], phase: dict[Node, Phase], edges: _Edges) -> None:
    """The steps of one component (create, realize, set, map) and the constraints on them."""
    edge = edges.append
    create, realize = Node("create", c.id), Node("realize", c.id)
    phase[create] = phase[realize] = c.phase
    edge((create, realize, "realize after create"))
    parent = by_id.get(c.parent) if c.parent else None
    if parent is not None:
        edge((Node("create", parent.id), create, f"{parent.id} is the parent of {c.id}"))
        if parent.info.is_cluster and c.info.is_cpu:
            edge((create, Node("realize", parent.id), f"{parent.id} realizes once its CPUs ({c.id}, ...) exist"))
            edge((Node("realize", parent.id), realize, f"CPU {c.id} reads its cluster index when it realizes"))
    for prop, target in sorted(c.links.items()):
        owner, inside = link_target(target)
        if owner in by_id:
            s = Node("set", c.id, prop=prop)
            phase[s] = c.phase
            # An object inside a device (ram/mem[0]) exists once the device realizes.
            edge((Node("realize" if inside else "create", owner), s, f"link {c.id}.{prop} needs {target} to exist"))
            edge((create, s, f"link {c.id}.{prop} is set on {c.id}"))
            if c.info.link_at_realize(prop):
                edge((s, realize, f"{c.id} checks link '{prop}' when it realizes"))
    if c.info.realize_after_cpus:
        for cpu in cpus:
            edge((Node("realize", cpu.id), realize, f"{c.type} finds its CPUs when it realizes"))
    if c.info.realize_after_maps:
        for other in mapped:
            if other.id != c.id:
                for k in range(len(other.mmio)):
                    edge((Node("map", other.id, k), realize, f"{c.type} reads the memory map when it realizes"))
    for k in range(len(c.mmio)):
        phase[Node("map", c.id, k)] = c.phase
        edge((realize, Node("map", c.id, k), f"{c.id} is mapped after it realizes"))


def _component_nodes(phase: Mapping[Node, Phase], cid: str, by_id: Mapping[str, Component]) -> list[Node]:
    comp = by_id.get(cid)
    if comp is None:
        return []
    nodes = [Node("create", cid), Node("realize", cid)]
    nodes += [Node("set", cid, prop=p) for p in sorted(comp.links) if Node("set", cid, prop=p) in phase]
    nodes += [Node("map", cid, k) for k in range(len(comp.mmio))]
    return nodes


def _check_phases(phase: Mapping[Node, Phase], edges: list[tuple[Node, Node, str]],
                  by_id: Mapping[str, Component], board: Board, problems: Collector) -> bool:
    """Every constraint must go forward in phase: a cold-plug step cannot wait for a hot-plug one."""
    ok = True
    raw_reported: set[str] = set()
    raw_by_name: dict[str, RawCommand] = {}
    for r in board.raw:
        raw_by_name.setdefault(r.name, r)
    order = {n: _PHASE_ORDER[p] for n, p in phase.items()}
    for u, v, why in edges:
        if order[u] <= order[v]:
            continue
        ok = False
        if v.kind == "raw":
            # A raw command asked to follow a component of a later phase: say it once, at the command.
            raw = raw_by_name[v.name]
            if raw.name in raw_reported:
                continue
            raw_reported.add(raw.name)
            late = next(a for a in raw.after if a in by_id and by_id[a].phase.order > raw.phase.order)
            where = raw.after_locations[raw.after.index(late)] if raw.after_locations else raw.location
            problems.add(where, f"qmp.{raw.name}.after",
                         f"qmp.{raw.name} runs in phase {raw.phase.value}, before {late} exists "
                         f"(created in phase {by_id[late].phase.value})",
                         f"use phase: {by_id[late].phase.value}, or drop {late} from after")
            continue
        comp = by_id.get(u.name) if u.kind in COMPONENT_STEPS else None
        problems.add(comp.location if comp else None, comp.yaml_path if comp else "",
                     f"{node_label(u)} happens in phase {phase[u].value}, but {node_label(v)} "
                     f"(phase {phase[v].value}) must come after it: {why}",
                     "a step cannot wait for a later phase: put both in the same phase")
    return ok


_LABELS: Mapping[NodeKind, str] = {"create": "create", "realize": "realize", "map": "map", "backend": "backend",
                                   "machine": "machine property", "raw": "qmp", "firmware": "firmware", "wire": "wire"}


def node_label(n: Node) -> str:
    """A step in the user's words, for cycles and reasons: ``realize uart0``, ``set cpu0.memory``, ``wire 3``."""
    if n.kind == "transition":
        return n.name
    if n.kind == "set":
        return f"set {n.name}.{n.prop}"
    if n.kind in ("firmware", "wire"):
        return f"{_LABELS[n.kind]} {n.number}"
    return f"{_LABELS[n.kind]} {n.name}"


def _report_cycle(g: nx.DiGraph, steps: Steps, by_id: Mapping[str, Component], problems: Collector) -> None:
    cycle = nx.find_cycle(g)
    text = node_label(cycle[0][0])
    for u, v in cycle:
        text += f" -> {node_label(v)} ({steps.succ[u][v]})"
    comp = next((by_id[u.name] for u, _ in cycle if u.kind in COMPONENT_STEPS and u.name in by_id), None)
    problems.add(comp.location if comp else None, comp.yaml_path if comp else "",
                 f"ordering cycle that realized=false cannot break: {text}",
                 "break the loop (of parents or links checked at realize)")


def _fold_links(sg: StepGraph, steps: Steps) -> None:
    """Pass a link in device_add itself when its target can be created first."""
    for c in sg.components:
        for prop in sorted(c.links):
            s, create = Node("set", c.id, prop=prop), Node("create", c.id)
            if s not in steps.pred:
                continue
            if first_reachable(steps, create, [p for p in steps.pred[s] if p != create]) is not None:
                continue
            contract(steps, create, s)
            sg.folded_links.setdefault(c.id, set()).add(prop)


def _fuse(sg: StepGraph, steps: Steps, problems: Collector) -> None:
    """One plain device_add unless some step must sit between create and realize."""
    for c in sg.components:
        create, realize = Node("create", c.id), Node("realize", c.id)
        between = first_reachable(steps, create, [p for p in steps.pred[realize] if p != create])
        if between is not None:
            why = steps.pred[realize][between]
            if c.phase is Phase.READY:
                problems.add(c.location, c.yaml_path,
                             f"'{c.id}' is hot-plugged but would need realized=false ({why})",
                             "realized=false is only possible before x-exit-preconfig: use phase: initialized")
            sg.unrealized[c.id] = why
            continue
        contract(steps, create, realize)


_PHASE_ORDER = {p: p.order for p in Phase}
#: Within one component, create < set < realize < map.
_KIND: Mapping[NodeKind, int] = {"backend": 0, "machine": 1, "create": 2, "set": 3, "realize": 4, "map": 5, "raw": 6,
                                 "firmware": 7, "wire": 8, "transition": 9}


class _SortKey:
    """The tie-break of the topological sort: phase, then the board's own order (see docs/plan.md)."""

    def __init__(self, phase: Mapping[Node, Phase], by_id: Mapping[str, Component], board: Board,
                 conns: list[Connection]) -> None:
        self.phase = {n: _PHASE_ORDER[p] for n, p in phase.items()}
        self.by_id = by_id
        # Positions looked up once, not searched per node: the key is computed for every step.
        self.backends: dict[str, int] = {}
        for k, b in enumerate(board.backends):
            self.backends.setdefault(b.id, k)
        self.machine_props = {p: k for k, p in enumerate(board.machine_props)}
        self.raw: dict[str, tuple[int, int | None]] = {}
        for k, raw in enumerate(board.raw):
            anchors = [by_id[a].index for a in raw.after if a in by_id]
            self.raw.setdefault(raw.name, (k, max(anchors) if anchors else None))
        self.anchor: dict[str, int] = {}
        for conn in conns:
            for cid in (conn.source.component, conn.target.component):
                self.anchor.setdefault(cid, conn.index)

    def __call__(self, n: Node) -> tuple[int, int, int, int, int]:
        phase = self.phase[n]
        kind = n.kind
        if kind in COMPONENT_STEPS:
            comp = self.by_id[n.name]
            if comp.synthetic:
                # Inserted devices sit with the first wire that needs them.
                return (phase, 1, self.anchor[comp.id], 0, _KIND[kind])
            if kind == "map":
                # Maps after everything that does not need them: QEMU renders the memory map
                # once for a run of maps sent in one x-batch, instead of once per map.
                return (phase, 4, comp.index, 0, n.number)
            return (phase, 0, comp.index, _KIND[kind], n.number)
        if kind == "wire":
            return (phase, 1, n.number, 1, 0)
        if kind == "backend":
            return (phase, 0, self.backends[n.name], 0, 0)
        if kind == "machine":
            return (phase, 0, self.machine_props[n.name], 1, 0)
        if kind == "raw":
            raw_index, last = self.raw[n.name]
            # Without after: last in its phase, after the maps too: it sees the whole machine.
            return (phase, 0, last, 9, raw_index) if last is not None else (phase, 5, raw_index, 0, 0)
        if kind == "firmware":
            return (phase, 2, n.number, 0, 0)
        return (phase, 9, 0, 0, 0)
