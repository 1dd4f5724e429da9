"""Semantic checks on a Board: references, lines, drivers, clusters; MMIO overlaps are ``checks_mmio``'s."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from ..errors import Collector
from ..qemu.phases import Phase
from ..qemu.types import LineInfo
# region_size and MAX_OVERLAPS_LISTED are checks_mmio's, imported from here too (boot, views, devicetree, tests).
from .checks_mmio import MAX_OVERLAPS_LISTED as MAX_OVERLAPS_LISTED
from .checks_mmio import check_mmio
from .checks_mmio import region_size as region_size
from .expr import ExprError, evaluate
from .model import Board, Component, LineRef, link_target
from .typecheck import check_types, env_of, shaping_props

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
    check_mmio(board, problems)


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
