"""The step graph while the planner decides it: adjacency with reasons, contraction, and one shared reachability search.

``Steps`` adds and removes edges as networkx.DiGraph does, without its
per-call cost; ``first_reachable`` answers "does a path from A reach any of
B1..Bn, and which first" in one bidirectional search (issue 8: a cluster of N
CPUs costs O(N), not O(N^2)).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..qemu.phases import Phase

if TYPE_CHECKING:
    from .graph import Node


class Steps:
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


def contract(steps: Steps, keep: Node, drop: Node) -> None:
    for p, why in list(steps.pred[drop].items()):
        if p != keep:
            steps.add_edge(p, keep, why)
    for s, why in list(steps.succ[drop].items()):
        if s != keep and s not in steps.succ[keep]:
            steps.add_edge(keep, s, why)
    steps.remove_node(drop)


def first_reachable(steps: Steps, source: Node, targets: list[Node]) -> Node | None:
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
    """What is reachable from one node, learnt lazily; see first_reachable.

    Once ``reaches`` has said True the search is spent (the frontier it stopped in is incomplete).
    """

    def __init__(self, steps: Steps, source: Node) -> None:
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
