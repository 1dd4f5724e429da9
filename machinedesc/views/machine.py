"""What a person wants to see of a Board: its clusters, its memory map in address order (holes,
overlaps and regions mapped twice made visible) and its interrupt tree through the gates the planner inserts.

Pure functions over ``board.model.Board`` and ``plan.wires.lower_wires``; the renderers
(``views.show``, ``views.picture``, ``views.diff``) share them, so text, JSON, pictures and diffs
agree on every number.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..board.checks import region_size
from ..board.expr import SIZE
from ..board.model import Board, Component
from ..errors import Collector
from ..plan.graph import build_graph
from ..plan.wires import Connection, lower_wires
from ..plan.planner import make_plan
from ..plan.steps import Plan
from ..source import SourceLocation

NO_CLUSTER = ""
#: Overlap notes shown per region; a board with thousands of regions at one
#: address (allowed at different priorities) gets a count, not a quadratic list.
MAX_NOTES = 8
_UNITS = (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10))


def human_size(size: int | None, *, exact: bool = False) -> str:
    """``134217728`` -> ``128 MiB``; ``0x8000`` -> ``32 KiB``; ``1536`` -> ``1.50 KiB``; ``7`` -> ``7 B``.

    Exact in the largest binary unit that divides the size, else that unit with
    up to two decimals (rounded down, so a size never looks bigger than it is).
    With ``exact`` (``diff``: two different sizes never read alike) always the
    largest unit that divides it, as a board writes it: ``1536`` -> ``1536 B``.
    """
    if size is None:
        return "?"
    for unit, shift in _UNITS:
        if size >= 1 << shift:
            whole, rest = divmod(size, 1 << shift)
            if not rest:
                return f"{whole} {unit}"
            if not exact:
                return f"{whole}.{(rest * 100) >> shift:02d} {unit}"
    return f"{size} B"


def counted(count: int, what: str) -> str:
    """``1 wire``, ``2 wires``, ``1,024 steps``."""
    return f"{count:,} {what}{'' if count == 1 else 's'}"


def plan_of(board: Board) -> Plan:
    """The plan of a loaded board (as ``plan`` makes it, without firmware); raises BoardError on a cycle."""
    problems = Collector()
    sg = build_graph(board, problems)
    problems.raise_if_any()
    assert sg is not None
    return make_plan(board, sg)


def cluster_of(comp: Component, by_id: dict[str, Component]) -> str:
    """The id of the cpu-cluster ``comp`` is (a QOM descendant of) inside, else NO_CLUSTER."""
    seen: set[str] = set()
    cur = by_id.get(comp.parent) if comp.parent else None
    while cur is not None and cur.id not in seen:
        if cur.info.is_cluster:
            return cur.id
        seen.add(cur.id)
        cur = by_id.get(cur.parent) if cur.parent else None
    return NO_CLUSTER


def groups(board: Board) -> dict[str, list[Component]]:
    """Components by cluster id, in board order; clusters first (in board order), then NO_CLUSTER.

    A cluster's own entry is not in its group: it is the group's heading.
    """
    by_id = board.by_id
    out: dict[str, list[Component]] = {c.id: [] for c in board.components if c.info.is_cluster}
    rest: list[Component] = []
    for comp in board.components:
        if comp.info.is_cluster:
            continue
        cluster = cluster_of(comp, by_id)
        (out[cluster] if cluster else rest).append(comp)
    out[NO_CLUSTER] = rest
    return out


def cpu_types(board: Board) -> dict[str, int]:
    """CPU type -> how many, in the order the types first appear."""
    out: dict[str, int] = {}
    for comp in board.components:
        if comp.info.is_cpu:
            out[comp.type] = out.get(comp.type, 0) + 1
    return out


def memory_total(board: Board) -> int:
    """Bytes of the board's memories (``sysbus-memory`` components, RAM and ROM), mapped or not."""
    total = 0
    for comp in board.components:
        size = comp.props.get("size") if comp.type == "sysbus-memory" else None
        if isinstance(size, int) and not isinstance(size, bool):
            total += size
    return total


@dataclass(frozen=True)
class MapRow:
    """One line of the memory map: a mapped region, or the hole before the next one.

    ``end`` is inclusive; ``size`` and ``end`` are None when neither the type
    table nor the board's ``size:`` knows the region's size. ``notes`` say what
    the region overlaps (and which one wins) and whether the same region of
    the component is mapped at several addresses: QEMU keeps one mapping per
    region (``sysbus_mmio_map`` moves a mapped region), the last one the plan
    sends, which is the last in the component's ``mmio`` list. A window of
    a region (``offset``) is a row of its own, [start, start + window size),
    with a note naming the bytes of the region it shows; windows never move
    the region, and a region may have any number of them.
    """

    start: int
    end: int | None
    size: int | None
    component: str
    type: str
    region: int
    priority: int
    location: SourceLocation | None
    notes: tuple[str, ...] = ()
    #: A window of the region (an alias, ``mmio: offset:``): its offset in the region, bytes; None for the region.
    offset: int | None = None

    @property
    def is_hole(self) -> bool:
        return self.component == ""

    @property
    def region_text(self) -> str:
        """``1``, or for a window ``1+0x1000`` (region 1 from offset 0x1000)."""
        return f"{self.region}" if self.offset is None else f"{self.region}+{self.offset:#x}"


def memory_map(board: Board) -> list[MapRow]:
    """The mapped regions in address order (then priority, highest first), with the holes between them."""
    regions: list[MapRow] = []
    for comp in board.components:
        for m in comp.mmio:
            size = m.size if m.size is not None else region_size(comp, m.region)
            if size is not None and size <= 0:
                size = None
            end = m.addr + size - 1 if size is not None else None
            regions.append(MapRow(m.addr, end, size, comp.id, comp.type, m.region, m.priority, m.location,
                                  offset=m.offset))
    regions.sort(key=lambda r: (r.start, -r.priority, r.component, r.region, r.offset or 0))
    mapped: dict[tuple[str, int], list[int]] = {}  # in the order the plan maps them (the regions, not windows)
    for comp in board.components:
        for m in comp.mmio:
            if not m.window:
                mapped.setdefault((comp.id, m.region), []).append(m.addr)
    out: list[MapRow] = []
    covered = -1  # the last address covered by a region so far
    covered_known = True
    open_: list[MapRow] = []  # earlier regions that may still overlap later ones
    for i, r in enumerate(regions):
        if out and r.start > covered + 1 and covered_known:
            out.append(MapRow(covered + 1, r.start - 1, r.start - covered - 1, "", "", 0, 0, None))
        open_ = [o for o in open_ if o.end is not None and o.end >= r.start]
        overlapping = list(open_)
        for later in regions[i + 1:]:
            if r.end is None or later.start > r.end:
                break
            overlapping.append(later)
        notes = [_overlap_note(r, other) for other in overlapping[:MAX_NOTES]]
        if len(overlapping) > MAX_NOTES:
            notes.append(f"overlaps {len(overlapping) - MAX_NOTES:,} more regions")
        open_.append(r)
        if r.offset is None:
            notes += _remap_notes(r, mapped[(r.component, r.region)])
        else:
            notes.insert(0, _window_note(r, mapped.get((r.component, r.region), [])))
        out.append(MapRow(r.start, r.end, r.size, r.component, r.type, r.region, r.priority, r.location,
                          tuple(notes), r.offset))
        if r.end is None or r.end > covered:
            # After a region of unknown size, where the next hole begins is unknown too.
            covered_known = r.end is not None
            covered = r.end if r.end is not None else r.start
    return out


def _remap_notes(row: MapRow, addrs: list[int]) -> list[str]:
    """What QEMU does with a region mapped at several addresses: it keeps the last mapping."""
    others = [a for a in addrs if a != row.start]
    if not others:
        return []
    if addrs[-1] != row.start:
        return [f"not mapped here in QEMU: a later mapping of the same region moves it to {addrs[-1]:#x}"]
    shown = ", ".join(f"{a:#x}" for a in others[:MAX_NOTES])
    more = f" and {len(others) - MAX_NOTES:,} more" if len(others) > MAX_NOTES else ""
    return [f"also mapped at {shown}{more} before: QEMU keeps one mapping per region, this last one"]


def _window_note(row: MapRow, addrs: list[int]) -> str:
    """What a window row shows: which bytes of which region, and where the region itself is."""
    assert row.offset is not None
    shown = (f"bytes [{row.offset:#x}, {row.offset + row.size:#x})" if row.size is not None
             else f"from byte {row.offset:#x}")
    where = f"the region itself is at {addrs[-1]:#x}" if addrs else "the region itself is not mapped"
    return f"alias: {shown} of {row.component} region {row.region}; {where}"


def _overlap_note(row: MapRow, other: MapRow) -> str:
    if other.priority > row.priority:
        verdict = "hidden by it where they overlap"
    elif other.priority < row.priority:
        verdict = "wins where they overlap"
    else:
        verdict = "same priority (an error)"
    window = f" window +{other.offset:#x}" if other.offset is not None else ""
    return f"overlaps {other.component} region {other.region}{window} (priority {other.priority}): {verdict}"


@dataclass(frozen=True)
class Route:
    """One output line and where it goes: straight to an input, or into a gate and on from it.

    ``gate`` is the inserted split-irq / or-irq ("" for a direct wire); ``to``
    lists the inputs the gate's outputs reach (for an or-irq: the one input that
    the combined line drives, and ``joined`` the other outputs that feed it).
    """

    source: str
    wire: str
    gate: str
    gate_type: str
    to: tuple[str, ...]
    joined: tuple[str, ...] = ()


def interrupt_routes(board: Board) -> list[Route]:
    """Every output line of the board with the inputs it reaches, in the board's wiring order."""
    extra, conns = lower_wires(board)
    gates = {c.id: c.type for c in extra}
    outputs: dict[str, list[Connection]] = {}
    inputs: dict[str, list[str]] = {}  # gate -> the output lines that feed it
    for conn in conns:
        outputs.setdefault(conn.source.component, []).append(conn)
        if conn.target.component in gates:
            inputs.setdefault(conn.target.component, []).append(conn.source.text)
    reached: dict[str, tuple[str, ...]] = {}
    routes: list[Route] = []
    for conn in conns:
        src, dst = conn.source, conn.target
        if src.component in gates:
            continue
        if dst.component not in gates:
            routes.append(Route(src.text, conn.wire.name, "", "", (dst.text,)))
            continue
        gate = dst.component
        if gate not in reached:
            reached[gate] = tuple(_through(gate, gates, outputs))
        feeds = inputs[gate]
        joined = tuple(s for s in feeds if s != src.text) if len(feeds) <= MAX_NOTES + 1 else (
            f"{len(feeds) - 1:,} other outputs",)
        routes.append(Route(src.text, conn.wire.name, gate, gates[gate], reached[gate], joined))
    return routes


def _through(gate: str, gates: dict[str, str], outputs: dict[str, list[Connection]]) -> list[str]:
    """The inputs a gate's outputs reach, following gates behind it (an or-irq that feeds a split-irq)."""
    out: list[str] = []
    seen = {gate}
    todo = [gate]
    while todo:
        cur = todo.pop(0)
        for conn in outputs.get(cur, []):
            nxt = conn.target.component
            if nxt in gates:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
                    out.append(f"{conn.target.text} ({gates[nxt]} {nxt})")
                continue
            out.append(conn.target.text)
    return out


def is_size(comp: Component, prop: str) -> bool:
    """Whether QEMU's type of ``prop`` of ``comp`` is a size (``size`` of sysbus-memory), by the type data."""
    info = (comp.info.properties or {}).get(prop)
    return info is not None and info.kind == "size"


def size_params(tree: Mapping[str, Any]) -> frozenset[str]:
    """The parameters whose value the merged tree writes with a unit (``ram_size: 128 MiB``)."""
    params = tree.get("params")
    return frozenset(k for k, v in params.items() if isinstance(v, str) and SIZE.match(v)) \
        if isinstance(params, Mapping) else frozenset()


def value_text(value: Any, *, size: bool = False) -> str:
    """A property value as the board would write it: ``true``, ``0x80000000`` for addresses, ``'text'``;
    with ``size`` (a value known to be a size), an integer in its unit (``human_size``, exact)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, int) and size and value >= 0:
        return human_size(value, exact=True)
    if isinstance(value, int):
        # Addresses and sizes (page multiples) read best in hex, counts and frequencies in decimal.
        return f"{value:#x}" if value >= 0x10000 and not value % 0x1000 else str(value)
    if isinstance(value, list):
        return "[" + ", ".join(value_text(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {value_text(v)}" for k, v in value.items()) + "}"
    return str(value) if value != "" else '""'
