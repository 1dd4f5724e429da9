"""The board's wires as point-to-point connections: fan-out through split-irq, ``join: or`` through or-irq.

QEMU connects one GPIO output to one input; ``lower_wires`` inserts the
devices that make a wire with several targets (or several sources joined
by ``or``) out of such connections, as synthetic components.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from ..board.model import Board, Component, LineRef, Wire


@dataclass(frozen=True)
class Connection:
    """One qom-set of an output link to an input line, after fan-out/or lowering."""

    source: LineRef
    target: LineRef
    wire: Wire
    index: int
    via: str = ""


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
