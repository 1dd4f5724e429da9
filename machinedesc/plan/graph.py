"""Board -> step graph: networkx nodes are steps (create, set, realize, map, wire, ...),
edges are QEMU's ordering constraints; realized=false is used only where needed."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from ..board.model import Board, Component, LineRef, RawCommand, Wire, link_target
from ..errors import Collector
from ..qemu.phases import Phase

Node = tuple[Any, ...]
XMI: Node = ("T", "x-machine-init")
XEP: Node = ("T", "x-exit-preconfig")


@dataclass(frozen=True)
class Connection:
    """One qom-set of an output link to an input line, after fan-out/or lowering."""

    source: LineRef
    target: LineRef
    wire: Wire
    index: int
    via: str = ""


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


def _synthetic_id(base: str, taken: set[str]) -> str:
    cid = base
    while cid in taken:
        cid += "-auto"
    taken.add(cid)
    return cid


def lower_wires(board: Board) -> tuple[list[Component], list[Connection]]:
    """Turn wires into point-to-point connections, inserting or-irq/split-irq devices."""
    taken = {c.id for c in board.components}
    extra: list[Component] = []
    index = len(board.components)
    # (wire, sources, targets) after or-lowering; fan-out is grouped per source line.
    fanout: dict[str, list[tuple[LineRef, LineRef, Wire]]] = defaultdict(list)
    order: list[str] = []
    conns: list[Connection] = []

    def synth(kind: str, base: str, wire: Wire, lines: int) -> Component:
        nonlocal index
        comp = Component(id=_synthetic_id(base, taken), type=kind, index=index, location=wire.location,
                         yaml_path=wire.yaml_path, props={"num-lines": lines}, synthetic=True,
                         system=board.system)
        index += 1
        extra.append(comp)
        return comp

    for wire in board.wires:
        sources = wire.sources
        if wire.join == "or" and len(sources) > 1:
            first = wire.targets[0]
            gate = synth("or-irq", f"or-{first.component}-{first.name}-{first.index}", wire, len(sources))
            for k, src in enumerate(sources):
                # A joined output may also fan out elsewhere: group it like any other.
                if src.text not in fanout:
                    order.append(src.text)
                fanout[src.text].append((src, LineRef(gate.id, "unnamed-gpio-in", k, src.location), wire))
            sources = (LineRef(gate.id, "unnamed-gpio-out", 0, wire.location),)
        for dst in wire.targets:
            key = sources[0].text
            if key not in fanout:
                order.append(key)
            fanout[key].append((sources[0], dst, wire))
    for key in order:
        group = fanout[key]
        src, _, wire = group[0]
        if len(group) == 1:
            conns.append(Connection(src, group[0][1], wire, len(conns)))
            continue
        split = synth("split-irq", f"split-{src.component}-{src.name}-{src.index}", wire, len(group))
        conns.append(Connection(src, LineRef(split.id, "unnamed-gpio-in", 0, src.location), wire, len(conns),
                                via=split.id))
        for k, (_, dst, w) in enumerate(group):
            conns.append(Connection(LineRef(split.id, "unnamed-gpio-out", k, w.location), dst, w, len(conns),
                                    via=split.id))
    return extra, conns


def build_graph(board: Board, problems: Collector, firmware: int = 0) -> StepGraph | None:
    """The ordered step graph of ``board``; None (with problems added) on a real cycle."""
    extra, conns = lower_wires(board)
    comps = [*board.components, *extra]
    by_id = {c.id: c for c in comps}
    phase, edges = _collect_steps(board, comps, by_id, conns, firmware)
    if not _check_phases(phase, edges, by_id, board, problems):
        return None

    steps = _Steps(phase, edges)
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
        phase[("B", b.id)] = Phase.ACCEL_CREATED
    for prop in board.machine_props:
        phase[("P", prop)] = Phase.ACCEL_CREATED
    # A device that creates CPUs (riscv.hart_array) counts as them for the devices that look CPUs up.
    cpus = [c for c in comps if c.info.is_cpu or c.info.creates_cpus is not None]
    for c in comps:
        _component_steps(c, by_id, cpus, phase, edges)
    for conn in conns:
        src, dst = by_id.get(conn.source.component), by_id.get(conn.target.component)
        if src is None or dst is None:
            continue
        w = ("W", conn.index)
        phase[w] = Phase.READY if Phase.READY in (src.phase, dst.phase) else Phase.INITIALIZED
        out = src.info.output(conn.source.name)
        inp = dst.info.input(conn.target.name)
        edge((("R" if out is None or out.after_realize else "C", src.id), w, f"{conn.source.text} must exist"))
        edge((("R" if inp is None or inp.after_realize else "C", dst.id), w, f"{conn.target.text} must exist"))
    _late_steps(board, comps, by_id, firmware, phase, edges)
    return phase, edges


def _late_steps(board: Board, comps: list[Component], by_id: Mapping[str, Component], firmware: int,
                phase: dict[Node, Phase], edges: _Edges) -> None:
    """Raw commands after the steps of the components they name, firmware after CPUs and memories."""
    edge = edges.append
    for raw in board.raw:
        q = ("Q", raw.name)
        phase[q] = raw.phase
        for name in raw.after:
            for n in _component_nodes(phase, name, by_id):
                edge((n, q, f"qmp.{raw.name} comes after {name}"))
    for k in range(firmware):
        f = ("F", k)
        phase[f] = Phase.INITIALIZED
        for c in comps:
            if c.phase is Phase.INITIALIZED and (c.info.is_cpu or c.mmio):
                last = ("M", c.id, len(c.mmio) - 1) if c.mmio else ("R", c.id)
                edge((last, f, "firmware loads once CPUs and memory are in place"))


def _component_steps(c: Component, by_id: Mapping[str, Component], cpus: list[Component],
                     phase: dict[Node, Phase], edges: _Edges) -> None:
    """The steps of one component (create, realize, set, map) and the constraints on them."""
    edge = edges.append
    create, realize = ("C", c.id), ("R", c.id)
    phase[create] = phase[realize] = c.phase
    edge((create, realize, "realize after create"))
    parent = by_id.get(c.parent) if c.parent else None
    if parent is not None:
        edge((("C", parent.id), create, f"{parent.id} is the parent of {c.id}"))
        if parent.info.is_cluster and c.info.is_cpu:
            edge((create, ("R", parent.id), f"{parent.id} realizes once its CPUs ({c.id}, ...) exist"))
            edge((("R", parent.id), realize, f"CPU {c.id} reads its cluster index when it realizes"))
    for prop, target in sorted(c.links.items()):
        owner, inside = link_target(target)
        if owner in by_id:
            s = ("S", c.id, prop)
            phase[s] = c.phase
            # An object inside a device (ram/mem[0]) exists once the device realizes.
            edge((("R" if inside else "C", owner), s, f"link {c.id}.{prop} needs {target} to exist"))
            edge((create, s, f"link {c.id}.{prop} is set on {c.id}"))
            if c.info.link_at_realize(prop):
                edge((s, realize, f"{c.id} checks link '{prop}' when it realizes"))
    if c.info.realize_after_cpus:
        for cpu in cpus:
            edge((("R", cpu.id), realize, f"{c.type} finds its CPUs when it realizes"))
    for k in range(len(c.mmio)):
        phase[("M", c.id, k)] = c.phase
        edge((realize, ("M", c.id, k), f"{c.id} is mapped after it realizes"))


def _component_nodes(phase: Mapping[Node, Phase], cid: str, by_id: Mapping[str, Component]) -> list[Node]:
    comp = by_id.get(cid)
    if comp is None:
        return []
    nodes: list[Node] = [("C", cid), ("R", cid)]
    nodes += [("S", cid, p) for p in sorted(comp.links) if ("S", cid, p) in phase]
    nodes += [("M", cid, k) for k in range(len(comp.mmio))]
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
        if v[0] == "Q":
            # A raw command asked to follow a component of a later phase: say it once, at the command.
            raw = raw_by_name[v[1]]
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
        comp = by_id.get(u[1]) if u[0] in "CRSM" else None
        problems.add(comp.location if comp else None, comp.yaml_path if comp else "",
                     f"{node_label(u)} happens in phase {phase[u].value}, but {node_label(v)} "
                     f"(phase {phase[v].value}) must come after it: {why}",
                     "a step cannot wait for a later phase: put both in the same phase")
    return ok


def node_label(n: Node) -> str:
    """A step in the user's words, for cycles and reasons."""
    verbs = {"C": "create", "R": "realize", "M": "map", "B": "backend", "P": "machine property",
             "Q": "qmp", "F": "firmware", "W": "wire"}
    if n[0] == "T":
        return str(n[1])
    if n[0] == "S":
        return f"set {n[1]}.{n[2]}"
    return f"{verbs[n[0]]} {n[1]}"


def _report_cycle(g: nx.DiGraph, steps: _Steps, by_id: Mapping[str, Component], problems: Collector) -> None:
    cycle = nx.find_cycle(g)
    text = node_label(cycle[0][0])
    for u, v in cycle:
        text += f" -> {node_label(v)} ({steps.succ[u][v]})"
    comp = next((by_id[u[1]] for u, _ in cycle if u[0] in "CRSM" and u[1] in by_id), None)
    problems.add(comp.location if comp else None, comp.yaml_path if comp else "",
                 f"ordering cycle that realized=false cannot break: {text}",
                 "break the loop (of parents or links checked at realize)")


class _Steps:
    """The step graph while it is being decided: insertion-ordered adjacency dicts (with each
    edge's reason) that add and remove edges exactly as networkx.DiGraph does, without its
    per-call cost."""

    def __init__(self, phase: dict[Node, Phase], edges: list[tuple[Node, Node, str]]) -> None:
        self.phase = phase
        self.succ: dict[Node, dict[Node, str]] = {n: {} for n in phase}
        self.pred: dict[Node, dict[Node, str]] = {n: {} for n in phase}
        succ, pred = self.succ, self.pred
        for u, v, why in edges:  # add_edge, inlined: this runs for every edge of the board
            succ[u][v] = why
            pred[v][u] = why

    def add_edge(self, u: Node, v: Node, why: str) -> None:
        """Add the edge, or replace its reason (it keeps its place), as DiGraph.add_edge."""
        self.succ[u][v] = why
        self.pred[v][u] = why

    def remove_node(self, n: Node) -> None:
        for v in self.succ.pop(n):
            del self.pred[v][n]
        for u in self.pred.pop(n):
            del self.succ[u][n]
        del self.phase[n]


def _contract(steps: _Steps, keep: Node, drop: Node) -> None:
    for p, why in list(steps.pred[drop].items()):
        if p != keep:
            steps.add_edge(p, keep, why)
    for s, why in list(steps.succ[drop].items()):
        if s != keep and s not in steps.succ[keep]:
            steps.add_edge(keep, s, why)
    steps.remove_node(drop)


def _fold_links(sg: StepGraph, steps: _Steps) -> None:
    """Pass a link in device_add itself when its target can be created first."""
    for c in sg.components:
        for prop in sorted(c.links):
            s, create = ("S", c.id, prop), ("C", c.id)
            if s not in steps.pred:
                continue
            if _first_reachable(steps, create, [p for p in steps.pred[s] if p != create]) is not None:
                continue
            _contract(steps, create, s)
            sg.folded_links.setdefault(c.id, set()).add(prop)


def _fuse(sg: StepGraph, steps: _Steps, problems: Collector) -> None:
    """One plain device_add unless some step must sit between create and realize."""
    for c in sg.components:
        create, realize = ("C", c.id), ("R", c.id)
        between = _first_reachable(steps, create, [p for p in steps.pred[realize] if p != create])
        if between is not None:
            why = steps.pred[realize][between]
            if c.phase is Phase.READY:
                problems.add(c.location, c.yaml_path,
                             f"'{c.id}' is hot-plugged but would need realized=false ({why})",
                             "realized=false is only possible before x-exit-preconfig: use phase: initialized")
            sg.unrealized[c.id] = why
            continue
        _contract(steps, create, realize)


def _first_reachable(steps: _Steps, source: Node, targets: list[Node]) -> Node | None:
    """The first of ``targets`` (in their order) that a path from ``source`` reaches, else None.

    One search answers for all the targets, so that a cluster of N CPUs (or a
    timer that waits for N CPUs) costs O(N), not N searches of O(N) each as
    one ``nx.has_path`` per target did: a forward search from ``source`` and
    backward searches from the targets, each side growing where its frontier
    is smaller (as ``has_path``'s bidirectional search does); what a side has
    learnt is kept for the next target.
    """
    if not targets:
        return None
    search = _Reach(steps, source)
    for target in targets:
        if search.reaches(target):
            return target
    return None


class _Reach:
    """What is reachable from one node, learnt lazily; see _first_reachable.

    Once ``reaches`` has said True the search is spent (the frontier it stopped in is incomplete).
    """

    def __init__(self, steps: _Steps, source: Node) -> None:
        self.steps = steps
        self.ahead = {source}  # reached from source
        self.forward = [source]  # of those, the ones whose successors are not looked at yet
        self.dead: set[Node] = set()  # cannot be reached from source, nor can anything before them

    def reaches(self, target: Node) -> bool:
        if target in self.ahead:
            return True
        if target in self.dead or not self.forward:
            # Once the forward search is complete, ``ahead`` is exactly what is reachable.
            return False
        behind = {target}
        backward = [target]
        while self.forward and backward:
            if len(self.forward) <= len(backward):
                if self._grow_forward(behind):
                    return True
            elif self._grow_backward(behind, backward):
                return True
        if self.forward:
            # The backward search ended without meeting: nothing it saw is reachable.
            self.dead |= behind
            return False
        return target in self.ahead

    def _grow_forward(self, behind: set[Node]) -> bool:
        """One level more of the forward search; True when it meets the backward one."""
        succ, ahead = self.steps.succ, self.ahead
        grown: list[Node] = []
        for u in self.forward:
            for v in succ[u]:
                if v in behind:
                    return True
                if v not in ahead:
                    ahead.add(v)
                    grown.append(v)
        self.forward = grown
        return False

    def _grow_backward(self, behind: set[Node], backward: list[Node]) -> bool:
        """One level more of a backward search (``backward`` is replaced in place); True when they meet."""
        pred, ahead, dead = self.steps.pred, self.ahead, self.dead
        grown: list[Node] = []
        for u in backward:
            for v in pred[u]:
                if v in ahead:
                    return True
                if v not in behind and v not in dead:
                    behind.add(v)
                    grown.append(v)
        backward[:] = grown
        return False


_PHASE_ORDER = {p: p.order for p in Phase}
_KIND = {"B": 0, "P": 1, "C": 2, "S": 3, "R": 4, "M": 5, "Q": 6, "F": 7, "W": 8, "T": 9}


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
        kind = n[0]
        if kind in "CRSM":
            comp = self.by_id[n[1]]
            sub = n[2] if kind == "M" else 0
            if comp.synthetic:
                # Inserted devices sit with the first wire that needs them.
                return (phase, 1, self.anchor[comp.id], 0, _KIND[kind])
            return (phase, 0, comp.index, _KIND[kind], sub)
        if kind == "W":
            return (phase, 1, n[1], 1, 0)
        if kind == "B":
            return (phase, 0, self.backends[n[1]], 0, 0)
        if kind == "P":
            return (phase, 0, self.machine_props[n[1]], 1, 0)
        if kind == "Q":
            raw_index, last = self.raw[n[1]]
            return (phase, 0, last, 9, raw_index) if last is not None else (phase, 3, raw_index, 0, 0)
        if kind == "F":
            return (phase, 2, n[1], 0, 0)
        return (phase, 9, 0, 0, 0)
