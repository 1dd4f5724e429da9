"""``machinedesc show``: one board as text (for terminals and pipes) or JSON (for tools).

Text: a heading, the components grouped by cluster, the memory map in address
order and the interrupt tree. Sizes read as the memory map has them, in binary
units (``human_size``, exact, as ``diff`` shows them): size-typed properties
(by the type data) and parameters the board writes with a unit; JSON keeps
integers. Every name from the board goes through ``errors.printable`` (a
board cannot drive the terminal).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..board.includes import load_document
from ..board.model import Board, Component, Mmio
from ..errors import printable
from .machine import (NO_CLUSTER, MapRow, Route, counted, cpu_types, groups, human_size, interrupt_routes, is_size,
                      memory_map, memory_total, size_params, value_text)


def _addr_width(rows: list[MapRow]) -> int:
    """Hex digits for addresses: 8 when the whole map is below 4 GiB, else 16."""
    top = max((r.end if r.end is not None else r.start for r in rows), default=0)
    return 8 if top < 1 << 32 else 16


def _component_line(comp: Component) -> str:
    where = f"  {comp.location.short}" if comp.location else ""
    mmio = ", ".join(f"{m.addr:#x}" + _mapping_text(m) for m in comp.mmio)
    extra = f" @ {mmio}" if mmio else ""
    phase = f" [phase {comp.phase.value}]" if comp.phase.value != "initialized" else ""
    line = f"    {comp.id:<14} {comp.type}{extra}{phase}{where}"
    settings = [f"{k}={value_text(v, size=is_size(comp, k))}" for k, v in comp.props.items()]
    settings += [f"{k}->{v}" for k, v in comp.links.items()]
    return line + ("\n" + " " * 19 + " ".join(settings) if settings else "")


def _mapping_text(m: Mmio) -> str:
    """`` (region 1)``, `` (window 0x1000+0x2000)``, `` (region 1 window ...)`` or ''."""
    parts = [f"region {m.region}"] if m.region else []
    if m.offset is not None and m.size is not None:
        parts.append(f"window {m.offset:#x}+{m.size:#x}")
    return f" ({' '.join(parts)})" if parts else ""


def written_size_params(path: Path, catalog: Path | None = None) -> frozenset[str]:
    """The parameters the board file (its includes merged) writes with a unit: ``render_text``'s ``sizes``."""
    return size_params(load_document(path, catalog).tree)


def render_text(board: Board, sizes: frozenset[str] = frozenset()) -> str:
    """The whole text report, ending in a newline; ``sizes``: the parameters shown in units."""
    out = [f"{board.name}: {board.summary}" if board.summary else board.name,
           f"  file {board.file}, qemu-system-{board.system}, machine {board.machine}"]
    cpus = ", ".join(f"{n} x {t}" for t, n in cpu_types(board).items()) or "none"
    out.append(f"  CPUs: {cpus}; memory: {human_size(memory_total(board))}; "
               f"{counted(len(board.components), 'component')}, {counted(len(board.wires), 'wire')}")
    if board.params:
        out.append("  params: " + ", ".join(f"{k}={value_text(v, size=k in sizes)}" for k, v in board.params.items()))
    out += ["", "Components" if board.components else "Components: none"]
    for cluster, members in groups(board).items():
        if cluster == NO_CLUSTER:
            if members:
                out.append("  outside any cluster")
        else:
            comp = board.by_id[cluster]
            where = f"  {comp.location.short}" if comp.location else ""
            out.append(f"  cluster {cluster} ({comp.type}, {len(members)} members){where}")
        out += [part for c in members for part in _component_line(c).split("\n")]
    out += ["", *_map_text(memory_map(board)), "", *_irq_text(interrupt_routes(board))]
    return "\n".join(printable(line) for line in out) + "\n"


def _map_text(rows: list[MapRow]) -> list[str]:
    regions = sum(1 for r in rows if not r.is_hole)
    if not regions:
        return ["Memory map: nothing mapped"]
    w = _addr_width(rows) + 2
    out = [f"Memory map ({regions} region{'s' if regions != 1 else ''}, by address)",
           f"  {'start':<{w}} {'end':<{w}} {'size':>10}  {'component':<14} region prio  type, file:line"]
    for r in rows:
        end = f"{r.end:#0{w}x}" if r.end is not None else "?"
        if r.is_hole:
            out.append(f"  {r.start:#0{w}x} {end:<{w}} {human_size(r.size):>10}  (hole)")
            continue
        where = f"  {r.location.short}" if r.location else ""
        out.append(f"  {r.start:#0{w}x} {end:<{w}} {human_size(r.size):>10}  {r.component:<14} "
                   f"{r.region_text:>6} {r.priority:>4}  {r.type}{where}")
        out += [f"  {'':<{w}} ^ {note}" for note in r.notes]
    return out


def _irq_text(routes: list[Route]) -> list[str]:
    if not routes:
        return ["Interrupts: none wired"]
    out = [f"Interrupts ({len(routes)} output line{'s' if len(routes) != 1 else ''}, output -> input)"]
    for r in routes:
        if not r.gate:
            out.append(f"  {r.source} -> {r.to[0]}  (wire {r.wire})")
            continue
        out.append(f"  {r.source} -> {r.gate_type} {r.gate} (inserted, wire {r.wire})")
        if r.joined:
            out.append(f"      joined with {', '.join(r.joined)}")
        out += [f"      -> {t}" for t in r.to]
    return out


def to_data(board: Board) -> dict[str, Any]:
    """The JSON form of ``show`` (and of one row of ``list``'s details): plain data, keys in a fixed order."""
    def loc(where: Any) -> str | None:
        return str(where) if where is not None else None

    clusters = {cid: [c.id for c in members] for cid, members in groups(board).items() if cid != NO_CLUSTER}
    return {
        "file": board.file, "name": board.name, "summary": board.summary, "system": board.system,
        "machine": board.machine, "params": dict(board.params),
        "cpus": cpu_types(board), "memory_bytes": memory_total(board),
        "clusters": clusters,
        "components": [{"id": c.id, "type": c.type, "parent": c.parent, "props": dict(c.props),
                        "links": dict(c.links), "phase": c.phase.value, "location": loc(c.location),
                        "mmio": [{"region": m.region, "addr": m.addr, "priority": m.priority,
                                  **({"offset": m.offset, "size": m.size} if m.window else {})}
                                 for m in c.mmio]} for c in board.components],
        "memory_map": [{"start": r.start, "end": r.end, "size": r.size, "hole": r.is_hole,
                        "component": r.component or None, "type": r.type or None, "region": r.region,
                        "priority": r.priority, **({"offset": r.offset} if r.offset is not None else {}),
                        "location": loc(r.location), "notes": list(r.notes)}
                       for r in memory_map(board)],
        "interrupts": [{"from": r.source, "wire": r.wire, "gate": r.gate or None, "gate_type": r.gate_type or None,
                        "to": list(r.to), "joined": list(r.joined)} for r in interrupt_routes(board)],
    }


def render_json(board: Board) -> str:
    """``to_data`` as indented JSON, ending in a newline."""
    return json.dumps(to_data(board), indent=2) + "\n"
