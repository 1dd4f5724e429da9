"""``machinedesc diff``: what differs between two boards once includes, parameters and ``count:`` are
expanded, section by section, each change with where it is written on both sides.

Components are matched by id; properties, links, parent and phase compared
value by value; the memory map by component region; the wiring by output ->
input line pairs (with the gate the planner puts between them); and the plan
by its number of steps. Two boards are equal when no section has a change;
where the files say something (``file:line``, comments, the order of keys) is
not part of the meaning.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..board.includes import load_document
from ..board.located import location_of
from ..board.model import Board, Component
from ..errors import BoardError, printable
from ..plan.pipeline import load_board
from ..source import SourceLocation
from .machine import counted, human_size, interrupt_routes, is_size, plan_of, size_params, value_text
from .revision import Side, checkout

#: The sections of a diff, in the order they are printed.
SECTIONS = ("board", "components", "memory map", "wiring", "plan")


@dataclass(frozen=True)
class Change:
    """One difference. ``sign``: ``+`` added, ``-`` removed, ``~`` changed; ``old``/``new`` where it is written."""

    section: str
    sign: str
    text: str
    old: SourceLocation | None = None
    new: SourceLocation | None = None

    def render(self) -> str:
        where = []
        if self.old is not None:
            where.append(f"{'was ' if self.sign == '~' else ''}{self.old.short}")
        if self.new is not None:
            where.append(f"{'now ' if self.sign == '~' else ''}{self.new.short}")
        return f"  {self.sign} {self.text}" + (f"  ({', '.join(where)})" if where else "")


_Where = Mapping[str, SourceLocation | None]


def _values(section: str, what: str, old: Mapping[str, Any], new: Mapping[str, Any],
            old_at: _Where, new_at: _Where, sizes: frozenset[str] = frozenset()) -> list[Change]:
    """Changes of the entries of two mappings; ``what`` is their path prefix (``params.``), ``*_at``
    where each entry is written, by that path prefix and key; ``sizes`` the keys whose values are sizes."""
    out = []
    for key in [*old, *(k for k in new if k not in old)]:
        was, now = old_at.get(f"{what}{key}"), new_at.get(f"{what}{key}")
        size = key in sizes
        if key not in new:
            out.append(Change(section, "-", f"{what}{key}: {value_text(old[key], size=size)}", was))
        elif key not in old:
            out.append(Change(section, "+", f"{what}{key}: {value_text(new[key], size=size)}", None, now))
        elif old[key] != new[key] or type(old[key]) is not type(new[key]):
            out.append(Change(section, "~", f"{what}{key}: {value_text(old[key], size=size)} -> "
                              f"{value_text(new[key], size=size)}", was, now))
    return out


@dataclass(frozen=True)
class Loaded:
    """A board to compare: the model, its plan's step count, and where its board-level entries are
    written, by path (``name``, ``params.harts``, ``chardevs.serial0``, ...; absent: a default)."""

    board: Board
    steps: int
    where: _Where
    #: The parameters whose default is written with a unit (``128 MiB``): shown in units.
    size_params: frozenset[str] = frozenset()


#: The board-level sections whose entries ``_board_changes`` compares, as the YAML spells them.
_TOP = ("name", "summary", "system", "machine")
_ENTRIES = ("machine.props", "params", "chardevs", "backends", "qmp")


def _board_changes(a: Loaded, b: Loaded) -> list[Change]:
    old, new = a.board, b.board
    out = _values("board", "", {"name": old.name, "summary": old.summary, "system": old.system,
                                "machine": old.machine}, {"name": new.name, "summary": new.summary,
                                                          "system": new.system, "machine": new.machine},
                  a.where, b.where)
    out += _values("board", "machine.props.", old.machine_props, new.machine_props, a.where, b.where)
    out += _values("board", "params.", old.params, new.params, a.where, b.where, a.size_params | b.size_params)
    out += _values("board", "chardevs.", old.chardevs, new.chardevs, a.where, b.where)
    out += _values("board", "backends.", {b.id: {"type": b.type, **b.props} for b in old.backends},
                   {b.id: {"type": b.type, **b.props} for b in new.backends}, a.where, b.where)
    out += _values("board", "qmp.", {r.name: {"execute": r.execute, "arguments": dict(r.arguments),
                                              "phase": r.phase.value, "after": list(r.after)} for r in old.raw},
                   {r.name: {"execute": r.execute, "arguments": dict(r.arguments), "phase": r.phase.value,
                             "after": list(r.after)} for r in new.raw}, a.where, b.where)
    return out


def _where_written(tree: Mapping[str, Any]) -> dict[str, SourceLocation | None]:
    """Path (``params.harts``) -> where the merged tree has it written, for the board-level entries."""
    out: dict[str, SourceLocation | None] = {key: location_of(tree, (key,)) for key in _TOP if key in tree}
    for section in _ENTRIES:
        path = tuple(section.split("."))
        node: Any = tree
        for part in path:
            node = node.get(part) if isinstance(node, Mapping) else None
        for key in node if isinstance(node, Mapping) else ():
            out[f"{section}.{key}"] = location_of(tree, (*path, key))
    return out


def _expression(comp: Component, prop: str) -> str:
    """`` (from ${harts})`` when the property is written as an expression, else ""."""
    raw = comp.parts.expressions.get(prop) if comp.parts is not None else None
    return f" (from {raw})" if raw is not None else ""


def _component_changes(old: Board, new: Board) -> list[Change]:
    out: list[Change] = []
    new_by_id = new.by_id
    old_by_id = old.by_id
    for comp in old.components:
        if comp.id not in new_by_id:
            out.append(Change("components", "-", f"{comp.id} ({comp.type})", comp.location))
    for comp in new.components:
        was = old_by_id.get(comp.id)
        if was is None:
            out.append(Change("components", "+", f"{comp.id} ({comp.type})", None, comp.location))
        elif was.type != comp.type:
            out.append(Change("components", "~", f"{comp.id}: type {was.type} -> {comp.type}",
                              was.part_location("type"), comp.part_location("type")))
        else:
            out += _same_component(was, comp)
    return out


def _same_component(was: Component, comp: Component) -> list[Change]:
    out: list[Change] = []
    for key in [*was.props, *(k for k in comp.props if k not in was.props)]:
        before, after = was.props.get(key), comp.props.get(key)
        if key in was.props and key in comp.props and before == after and type(before) is type(after):
            continue
        sign = "~" if key in was.props and key in comp.props else ("-" if key in was.props else "+")
        size = is_size(comp, key)
        old_text, new_text = value_text(before, size=size), value_text(after, size=size)
        text = {"~": f"{old_text} -> {new_text}{_expression(comp, key)}",
                "-": f"{old_text} (removed)", "+": f"{new_text}{_expression(comp, key)}"}[sign]
        out.append(Change("components", sign, f"{comp.id}.props.{key}: {text}",
                          was.part_location("props", key) if key in was.props else None,
                          comp.part_location("props", key) if key in comp.props else None))
    for key in [*was.links, *(k for k in comp.links if k not in was.links)]:
        before_link, after_link = was.links.get(key), comp.links.get(key)
        if before_link != after_link:
            out.append(Change("components", "~", f"{comp.id}.links.{key}: {before_link or '(none)'} -> "
                              f"{after_link or '(none)'}",
                              was.part_location("links", key) if before_link else None,
                              comp.part_location("links", key) if after_link else None))
    if was.parent != comp.parent:
        out.append(Change("components", "~", f"{comp.id}.parent: {was.parent or '(none)'} -> "
                          f"{comp.parent or '(none)'}",
                          was.part_location("parent") if was.parent else was.location,
                          comp.part_location("parent") if comp.parent else comp.location))
    if was.phase is not comp.phase:
        out.append(Change("components", "~", f"{comp.id}.phase: {was.phase.value} -> {comp.phase.value}",
                          was.location, comp.location))
    return out


_Maps = tuple[tuple[int, int | None, int], ...]


def _mappings(board: Board) -> dict[tuple[str, int | str], tuple[_Maps, SourceLocation | None]]:
    """(component, region) -> (its mappings as (addr, size, priority), where the first is written).

    A window of a region (``offset``) is keyed ``"<region>+<offset>"``: it is a mapping of its own.
    """
    out: dict[tuple[str, int | str], tuple[list[tuple[int, int | None, int]], SourceLocation | None]] = {}
    for comp in board.components:
        for m in comp.mmio:
            key: int | str = m.region if m.offset is None else f"{m.region}+{m.offset:#x}"
            entry = out.setdefault((comp.id, key), ([], m.location))
            entry[0].append((m.addr, m.size, m.priority))
    return {k: (tuple(sorted(v[0], key=lambda t: (t[0], t[2]))), v[1]) for k, v in out.items()}


def _where(maps: _Maps) -> str:
    return ", ".join(f"{a:#x}" + (f" size {human_size(s, exact=True)}" if s is not None else "")
                     + (f" priority {p}" if p else "")
                     for a, s, p in maps)


def _memory_changes(old: Board, new: Board) -> list[Change]:
    before, after = _mappings(old), _mappings(new)
    keys = sorted(set(before) | set(after), key=lambda k: (min(a for a, _, _ in (after.get(k) or before[k])[0]),
                                                           k[0], int(str(k[1]).split("+")[0]), str(k[1])))
    out: list[Change] = []
    for key in keys:
        region, _, offset = str(key[1]).partition("+")
        name = f"{key[0]} region {region}" + (f" window +{offset}" if offset else "")
        if key not in after:
            out.append(Change("memory map", "-", f"{name} at {_where(before[key][0])}", before[key][1]))
        elif key not in before:
            out.append(Change("memory map", "+", f"{name} at {_where(after[key][0])}", None, after[key][1]))
        elif before[key][0] != after[key][0]:
            out.append(Change("memory map", "~", f"{name}: {_where(before[key][0])} -> {_where(after[key][0])}",
                              before[key][1], after[key][1]))
    return out


def _edges(board: Board) -> dict[tuple[str, str], tuple[str, SourceLocation | None]]:
    """(output line, input line) -> (how: "" direct, else the gate type; where the wire is written)."""
    wires = {w.name: w.location for w in board.wires}
    out: dict[tuple[str, str], tuple[str, SourceLocation | None]] = {}
    for route in interrupt_routes(board):
        for target in route.to:
            out.setdefault((route.source, target), (route.gate_type, wires.get(route.wire)))
    return out


def _wiring_changes(old: Board, new: Board) -> list[Change]:
    before, after = _edges(old), _edges(new)
    out: list[Change] = []
    for key, (how, where) in before.items():
        if key not in after:
            out.append(Change("wiring", "-", f"{key[0]} -> {key[1]}" + (f" (via {how})" if how else ""), where))
    for key, (how, where) in after.items():
        if key not in before:
            out.append(Change("wiring", "+", f"{key[0]} -> {key[1]}" + (f" (via {how})" if how else ""), None, where))
        elif before[key][0] != how:
            out.append(Change("wiring", "~", f"{key[0]} -> {key[1]}: {before[key][0] or 'direct'} -> {how or 'direct'}",
                              before[key][1], where))
    return out


def compare(a: Loaded, b: Loaded) -> list[Change]:
    """Every difference from ``a`` to ``b``, section by section (SECTIONS' order)."""
    old, new = a.board, b.board
    out = _board_changes(a, b) + _component_changes(old, new) + _memory_changes(old, new)
    out += _wiring_changes(old, new)
    old_steps, new_steps = a.steps, b.steps
    if old_steps != new_steps:
        out.append(Change("plan", "~", f"{counted(old_steps, 'step')} -> {counted(new_steps, 'step')} "
                          f"({new_steps - old_steps:+,})"))
    return out


def render_text(changes: list[Change], old_label: str, new_label: str) -> str:
    """The diff for people: a header, then each section that has changes; "no difference" when none."""
    lines = [f"--- {old_label}", f"+++ {new_label}"]
    if not changes:
        lines.append("no difference in meaning")
    for section in SECTIONS:
        mine = [c for c in changes if c.section == section]
        if mine:
            lines.append(f"{section}:")
            lines += [c.render() for c in mine]
    return "\n".join(printable(line) for line in lines) + "\n"


def render_json(changes: list[Change], old_label: str, new_label: str) -> str:
    """The diff for tools: ``{"old", "new", "equal", "changes": [{section, sign, text, old, new}]}``."""
    data = {"old": old_label, "new": new_label, "equal": not changes,
            "changes": [{"section": c.section, "sign": c.sign, "text": c.text,
                         "old": str(c.old) if c.old else None, "new": str(c.new) if c.new else None}
                        for c in changes]}
    return json.dumps(data, indent=2) + "\n"


def _load(side: Side, overrides: Mapping[str, str], allow_host_access: bool) -> Loaded:
    try:
        board = load_board(side.path, overrides, side.catalog, allow_host_access=allow_host_access)
        steps = len(plan_of(board).steps)
        # The files again, for the positions of params, chardevs, ... (the Board keeps only their values).
        tree = load_document(side.path, side.catalog).tree
    except BoardError as err:
        raise side.relabel(err) from None
    return Loaded(board, steps, _where_written(tree), size_params(tree))


def diff_boards(old_spec: str, new_spec: str, overrides: Mapping[str, str] | None = None,
                catalog: Path | None = None, fmt: str = "text", *, allow_host_access: bool = False
                ) -> tuple[str, bool]:
    """The diff of two board specs (``FILE`` or ``FILE@REVISION``) as text or JSON, and whether they are equal.

    Raises BoardError (either board is invalid, its files named ``REV:path``)
    or UsageError (a revision that git does not know, a board not in it).
    """
    with checkout(old_spec, catalog) as old_side, checkout(new_spec, catalog) as new_side:
        changes = compare(_load(old_side, overrides or {}, allow_host_access),
                          _load(new_side, overrides or {}, allow_host_access))
        render = render_json if fmt == "json" else render_text
        text = render(changes, old_side.label, new_side.label)
        return old_side.rename(new_side.rename(text)), not changes
