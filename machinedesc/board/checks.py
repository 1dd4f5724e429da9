"""Semantic checks on a Board: references, lines, drivers, MMIO overlaps, clusters."""

from __future__ import annotations

import heapq
import re
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..errors import Collector
from ..qemu.phases import Phase
from ..qemu.types import LineInfo
from ..source import SourceLocation
from .expr import ExprError, evaluate
from .model import U64_MAX, Board, Component, LineRef, Mmio, link_target
from .typecheck import check_types, env_of

#: Property names that may change how many lines or how large regions a device
#: has: when a board sets one on a device whose counts and sizes come from the
#: type database (measured with default properties), that check becomes a note.
SHAPING_PROPERTY = re.compile(r"(^|[-_])(num|len)[-_]|size|count|shift|width|pages|harts|cpus|irqs|lines|ports|regions")

#: Interrupt controllers whose input 0 is no interrupt source, with why (QEMU 10.0 sources).
RESERVED_INPUT_ZERO = {
    "riscv.sifive.plic": "PLIC source 0 is reserved: it means 'no interrupt' (a claim that reads 0 found "
                         "none pending; SiFive PLIC spec, hw/intc/sifive_plic.c)",
    "riscv.aplic": "APLIC source 0 is reserved (the AIA spec; hw/intc/riscv_aplic.c asserts 0 < irq "
                   "and QEMU would abort)",
}


def check_board(board: Board, problems: Collector) -> None:
    """Add a problem for every semantic error of ``board`` (and a note for every check it cannot make)."""
    by_id = board.by_id
    backends = {b.id for b in board.backends}
    check_types(board, problems)
    _check_refs(board, by_id, backends, problems)
    _check_clusters(board, by_id, problems)
    _check_lines(board, by_id, problems)
    _check_mmio(board, problems)


def _ref_hint(name: str, choices: Any, deleted: Mapping[str, Any], problems: Collector) -> str:
    if name in deleted:
        return f"'{name}' was deleted at {deleted[name]} ({name}: ~)"
    return problems.hints.did_you_mean(name, choices) or "it must be the id of a component of this board"


def _check_refs(board: Board, by_id: Mapping[str, Component], backends: set[str], problems: Collector) -> None:
    # When some entries failed to expand, a missing id may be one of theirs:
    # report only the original problems, not their echoes.
    missing_ok = board.incomplete
    for comp in board.components:
        if comp.parent is not None and not comp.parent.startswith("/"):
            if comp.parent not in by_id:
                if missing_ok:
                    continue
                problems.add(comp.part_location("parent"), f"{comp.yaml_path}.parent",
                             f"parent '{comp.parent}' is not a component",
                             _ref_hint(comp.parent, by_id, board.deleted, problems))
            elif comp.parent == comp.id:
                problems.add(comp.location, f"{comp.yaml_path}.parent", f"'{comp.id}' cannot be its own parent")
        for prop, target in comp.links.items():
            if not str(target).strip():
                # device_add would get prop="" and QEMU's link setter fails on it (or a blank path
                # means no target at all): either way not what the board says.
                problems.add(comp.part_location("links", prop), f"{comp.yaml_path}.links.{prop}",
                             "an empty link target",
                             "write the id of the component or backend it points to (or an absolute QOM "
                             "path), or leave the link out to keep it unset")
                continue
            owner = link_target(target)[0]
            if owner and owner not in by_id and owner not in backends and not missing_ok:
                problems.add(comp.part_location("links", prop), f"{comp.yaml_path}.links.{prop}",
                             f"link target '{owner}' is not a component or backend",
                             _ref_hint(owner, [*by_id, *backends], board.deleted, problems))
        for prop in comp.info.chardevs:
            name = comp.props.get(prop)
            if isinstance(name, str) and name not in board.chardevs:
                problems.add(comp.part_location("props", prop), f"{comp.yaml_path}.props.{prop}",
                             f"chardev '{name}' is not declared",
                             problems.hints.did_you_mean(name, board.chardevs)
                             or f"declare it under chardevs: (e.g. {name}: stdio)")
        if comp.phase is Phase.READY:
            _check_hotplug(comp, problems)
    for raw in board.raw:
        for i, name in enumerate(raw.after):
            if name not in by_id and not missing_ok:
                where = raw.after_locations[i] if i < len(raw.after_locations) else raw.location
                problems.add(where, f"qmp.{raw.name}.after[{i}]",
                             f"'{name}' is not a component", _ref_hint(name, by_id, board.deleted, problems))


def _check_hotplug(comp: Component, problems: Collector) -> None:
    """What QEMU cannot add once the machine is ready."""
    where = comp.part_location("phase")
    if comp.info.is_cluster:
        problems.add(where, f"{comp.yaml_path}.phase", "a cpu-cluster cannot be hot-plugged",
                     "clusters must be realized before their CPUs, in the initialized phase")
    elif comp.info.sysbus:
        problems.add(where, f"{comp.yaml_path}.phase", f"{comp.type} is a sysbus device: QEMU cannot hot-plug it",
                     "only devices on a hot-pluggable bus can be added when ready: use phase: initialized")
    elif comp.mmio:
        problems.add(where, f"{comp.yaml_path}.phase", "MMIO can only be mapped before the machine is ready",
                     "use phase: initialized, or drop mmio:")


def _check_clusters(board: Board, by_id: Mapping[str, Component], problems: Collector) -> None:
    members: dict[str, int] = defaultdict(int)
    for comp in board.components:
        if comp.parent is not None and comp.parent in by_id and comp.info.is_cpu:
            members[comp.parent] += 1
    for comp in board.components:
        # With entries that failed to expand, the CPUs may be among them.
        if comp.info.is_cluster and not members[comp.id] and not board.incomplete:
            problems.add(comp.location, comp.yaml_path, f"cpu-cluster '{comp.id}' has no CPUs",
                         f"give CPUs 'parent: {comp.id}', or remove the cluster (QEMU refuses an empty one)")


def shaping_props(comp: Component) -> list[str]:
    """The properties ``comp`` sets that may change its line counts or region sizes (SHAPING_PROPERTY)."""
    return sorted(k for k, v in comp.props.items()
                  if isinstance(v, int) and not isinstance(v, bool) and SHAPING_PROPERTY.search(k))


def _lowered(comp: Component, index: int) -> str:
    """The shaping properties ``comp`` sets below their default and to at most ``index`` (``num-lines to 2
    (default 4)``): if a measured line count follows one of them, ``index`` is beyond it. '' when none."""
    known = comp.info.properties or {}
    found = []
    for name in shaping_props(comp):
        value, prop = comp.props[name], known.get(name)
        default = prop.default if prop is not None else None
        if value <= index and (not isinstance(default, int) or isinstance(default, bool) or value < default):
            found.append(f"{name} to {value}" + (f" (default {default})" if isinstance(default, int) else ""))
    return ", ".join(found)


def _line_count(info: LineInfo, comp: Component) -> int | None:
    if info.count is None or isinstance(info.count, int):
        return info.count
    env = env_of(comp)
    try:
        value = evaluate(info.count, env)
    except ExprError:
        return None  # the property has its QEMU default, which we do not know
    return value if isinstance(value, int) else None


def _check_line(ref: LineRef, by_id: Mapping[str, Component], output: bool, where: str,
                problems: Collector, board: Board) -> bool:
    comp = by_id.get(ref.component)
    if comp is None and board.incomplete:
        return False
    if comp is None:
        problems.add(ref.location, where, f"'{ref.component}' is not a component",
                     _ref_hint(ref.component, by_id, board.deleted, problems))
        return False
    family = comp.info.outputs if output else comp.info.inputs
    info = comp.info.output(ref.name) if output else comp.info.input(ref.name)
    kind = "output" if output else "input"
    if info is None:
        names = ", ".join(sorted(family)) or "none known"
        problems.add(ref.location, where, f"{comp.type} '{comp.id}' has no {kind} line '{ref.name}'",
                     problems.hints.did_you_mean(ref.name, family) or f"its {kind} lines: {names}")
        return False
    count = _line_count(info, comp)
    if count is not None and ref.index >= count and info.from_defaults and shaping_props(comp):
        problems.note(ref.location, where,
                      f"{ref.text}: {comp.type} has {count} '{ref.name}' lines with its default properties; "
                      f"{comp.id} sets {', '.join(shaping_props(comp))}, so the index is not checked",
                      "QEMU checks it when the wire is connected")
    elif count is not None and ref.index >= count:
        problems.add(ref.location, where,
                     f"{ref.text}: index {ref.index} out of range ({comp.id} has {count} '{ref.name}' lines)")
        return False
    elif count is not None and info.from_defaults and (lowered := _lowered(comp, ref.index)):
        problems.note(ref.location, where,
                      f"{ref.text}: checked only against the {count} '{ref.name}' lines {comp.type} has with its "
                      f"default properties; {comp.id} sets {lowered}: if the count follows it, index {ref.index} "
                      "is out of range", "QEMU checks it when the wire is connected")
    reserved = RESERVED_INPUT_ZERO.get(comp.type) if not output and ref.index == 0 else None
    if reserved is not None:
        problems.add(ref.location, where, f"{ref.text}: {reserved}",
                     f"wire the device to source 1 or above ({comp.id}.{ref.name}[1], ...)")
        return False
    return True


def _check_lines(board: Board, by_id: Mapping[str, Component], problems: Collector) -> None:
    driven: dict[str, tuple[str, LineRef]] = {}
    for wire in board.wires:
        for src in wire.sources:
            _check_line(src, by_id, True, f"{wire.yaml_path}.from", problems, board)
        for dst in wire.targets:
            if not _check_line(dst, by_id, False, f"{wire.yaml_path}.to", problems, board):
                continue
            first = driven.get(dst.text)
            if first is not None:
                problems.add(dst.location, f"{wire.yaml_path}.to",
                             f"input {dst.text} is already driven by wire '{first[0]}' (at {first[1].location})",
                             "an input takes one output; list both outputs in one wire with join: or")
            else:
                driven[dst.text] = (wire.name, dst)


def region_size(comp: Component, region: int) -> int | None:
    """The size of MMIO region ``region`` from the type data (a hand-table expression or a measured size)."""
    return region_size_or_why(comp, region)[0]


def _size_followers(comp: Component) -> list[str]:
    """The properties ``comp`` sets that may change its regions in a way the type data does not compute."""
    info = comp.info
    follows = sorted(set(info.mmio_follows) & set(comp.props))
    return follows or (shaping_props(comp) if info.mmio_from_defaults else [])


def region_size_or_why(comp: Component, region: int) -> tuple[int | None, str]:
    """(size, "") of MMIO region ``region`` from the type data, or (None, why it is not known)."""
    info = comp.info
    sizes = info.mmio
    if sizes is None or region >= len(sizes):
        why = (info.device.probe_note if info.device is not None and info.device.probe_note else "no size measured")
        return None, f"the size of {comp.type}'s region {region} is unknown ({why})"
    follows = _size_followers(comp)
    if follows:
        size = sizes[region]
        shown = f"{size:#x} bytes" if isinstance(size, int) else str(size)
        return None, (f"{comp.type}'s region {region} is {shown} with default properties; "
                      f"{comp.id} sets {', '.join(follows)}, which may change it")
    spec = sizes[region]
    if isinstance(spec, int):
        return spec, ""
    try:
        value = evaluate(spec, env_of(comp))
    except ExprError:
        return None, f"the size of {comp.type}'s region {region} ({spec}) cannot be computed"
    return (value, "") if isinstance(value, int) else (None, f"{spec} is not an integer")


#: Overlapping pairs listed per group of regions that overlap at one priority;
#: the rest of the group is summed up in one more problem, so that N regions at
#: one address give a bounded report, not N * (N - 1) / 2 lines.
MAX_OVERLAPS_LISTED = 32

_Span = tuple[int, int, int, Component, int]  # start, end, priority, component, index in comp.mmio


def _check_mmio(board: Board, problems: Collector) -> None:
    spans = _mmio_spans(board, problems)
    spans.sort(key=lambda s: (s[0], s[1], s[3].index, s[4]))
    # One sweep per priority (regions of different priorities may overlap),
    # all fed in address order, so that problems come in the same order.
    sweeps: dict[int, _OverlapSweep] = {}
    for span in spans:
        sweep = sweeps.get(span[2])
        if sweep is None:
            sweep = sweeps[span[2]] = _OverlapSweep(problems)
        sweep.add(span)
    for sweep in sweeps.values():
        sweep.end_group()


def _mmio_spans(board: Board, problems: Collector) -> list[_Span]:
    """Every mapping with a known size, as a span: a region's, or a window's; problems for those that cannot be.

    A window (``offset``) occupies [addr, addr + size), whatever the size of
    its region, so several windows of one region at several addresses are
    spans of their own and overlap only what they cover.
    """
    spans: list[_Span] = []
    for comp in board.components:
        info = comp.info
        for k, m in enumerate(comp.mmio):
            where = f"{comp.yaml_path}.mmio"
            if info.known and not info.sysbus:
                problems.add(m.location, where, f"{comp.type} is not a sysbus device: it has no MMIO regions to map")
                continue
            if info.mmio is not None and m.region >= len(info.mmio):
                follows = _size_followers(comp)
                if not follows:
                    problems.add(m.location, where,
                                 f"{comp.type} has {len(info.mmio)} MMIO region(s); region {m.region} does not exist")
                    continue
                problems.note(m.location, where,
                              f"{comp.type} has {len(info.mmio)} MMIO region(s) with default properties; {comp.id} "
                              f"sets {', '.join(follows)}, so region {m.region} is not checked",
                              "QEMU checks it when the region is mapped")
                if m.size is None:
                    continue
            if m.addr < 0:
                problems.add(m.location, where, f"negative address {m.addr}")
                continue
            if m.window and not _window_fits(comp, m, where, problems):
                continue
            size, why = (m.size, "") if m.size is not None else region_size_or_why(comp, m.region)
            if size is None:
                problems.note(m.location, where, f"overlaps of {comp.id} region {m.region} are not checked: {why}",
                              "give the region's size in the mapping (mmio: [{addr: ..., size: ...}])")
            if size is None or size <= 0:
                continue
            end = m.addr + size - 1
            if end > U64_MAX:
                problems.add(m.location, where, f"region [{m.addr:#x}, {end:#x}] ends beyond the 64-bit address space")
                continue
            spans.append((m.addr, end, m.priority, comp, k))
    return spans


def _window_fits(comp: Component, m: Mmio, where: str, problems: Collector) -> bool:
    """Whether window ``m`` is not empty and, when the region's size is known, lies within the region."""
    assert m.offset is not None and m.size is not None
    if m.size == 0:
        problems.add(m.location, where, f"{m.describe(comp.id)}: a window's size must not be zero")
        return False
    region = region_size(comp, m.region)
    if region is not None and m.offset + m.size > region:
        problems.add(m.location, where,
                     f"{m.describe(comp.id)} does not lie within the region ({region:#x} bytes)",
                     f"a window of it ends at {region:#x} at most: offset + size <= {region:#x}")
        return False
    return True


def _span_location(span: _Span) -> SourceLocation | None:
    return span[3].mmio[span[4]].location or span[3].location


def _span_name(span: _Span) -> str:
    return span[3].mmio[span[4]].describe(span[3].id)


class _OverlapSweep:
    """Overlaps among the regions of one priority, fed in address order.

    A group is a run of regions each overlapping an earlier one of the run.
    Its first MAX_OVERLAPS_LISTED pairs are listed, each naming both regions
    (a region with every earlier region still open); the others are only
    counted, with a heap of the open regions' ends, so a group of N costs
    O(N log N) and its report is bounded.
    """

    def __init__(self, problems: Collector) -> None:
        self.problems = problems
        self.open: list[_Span] = []  # the open regions, in address order, while pairs are still listed
        self.ends: list[int] = []  # heap: the end of every open region
        self.first: _Span | None = None
        self.group_end = -1
        self.regions = 0
        self.pairs = 0
        self.listed = 0
        self.unlisted: _Span | None = None  # the region of the first pair not listed

    def add(self, span: _Span) -> None:
        start, end = span[0], span[1]
        if start > self.group_end:
            self.end_group()
            self.first, self.regions, self.pairs, self.listed, self.unlisted = span, 0, 0, 0, None
            self.open, self.ends = [], []
        ends = self.ends
        while ends and ends[0] < start:
            heapq.heappop(ends)
        # Every open region began no later and ends at or after ``start``: each overlaps this one.
        if self.listed < MAX_OVERLAPS_LISTED:
            self.open = [a for a in self.open if a[1] >= start]
            for other in self.open:
                if self.listed == MAX_OVERLAPS_LISTED:
                    self.unlisted = span
                    break
                self._report(other, span)
                self.listed += 1
            self.open.append(span)
        elif self.unlisted is None and ends:
            self.unlisted = span
        self.pairs += len(ends)
        heapq.heappush(ends, end)
        self.group_end = max(self.group_end, end)
        self.regions += 1

    def _report(self, a: _Span, b: _Span) -> None:
        a_start, a_end, prio = a[0], a[1], a[2]
        b_start, b_end, b_comp = b[0], b[1], b[3]
        self.problems.add(
            _span_location(b), f"{b_comp.yaml_path}.mmio",
            f"{_span_name(b)} [{b_start:#x}, {b_end:#x}] overlaps "
            f"{_span_name(a)} [{a_start:#x}, {a_end:#x}] at the same priority {prio}",
            "move one of them, or give the one that should win a higher priority",
        )

    def end_group(self) -> None:
        """Sum up the pairs of the group just ended that were not listed."""
        if self.first is None or self.unlisted is None:
            return
        b = self.unlisted
        self.problems.add(
            _span_location(b), f"{b[3].yaml_path}.mmio",
            f"{self.pairs - self.listed:,} more overlapping pairs at the same priority {b[2]} are not listed, "
            f"from {_span_name(b)} [{b[0]:#x}, {b[1]:#x}] on: {self.regions:,} regions overlap in "
            f"[{self.first[0]:#x}, {self.group_end:#x}] ({self.pairs:,} pairs; only the first "
            f"{MAX_OVERLAPS_LISTED} of a group are listed)",
            "move them apart, or give the ones that should win a higher priority",
        )
