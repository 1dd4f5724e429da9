"""Board -> problems: the host-access policy (``safety``) applied to every value of a board, at its YAML position.

Strings that would smuggle options into QEMU's command line (machine type,
chardev ids, raw command names) are refused always; what touches the host
only without --allow-host-access.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import Collector
from .located import location_of
from .model import Board
from .safety import (COMMAND_NAME, HINT, HOST_MACHINE_PROPS, LIFECYCLE_COMMANDS, RESERVED_CHARDEV, chardev_problem,
                     command_problem, device_problem, escape_control, machine_problem, object_problem)


def check_board(board: Board, tree: Any, problems: Collector, allow_host_access: bool = False) -> None:
    """Add a problem for every string that would smuggle options into QEMU's command line, and,
    unless ``allow_host_access``, for everything in the board that touches the host."""
    def add(path: tuple[str | int, ...], message: str, is_host: bool, key: bool = False) -> None:
        where = ".".join(str(p) for p in path)
        problems.add(location_of(tree, path, key=key), where, message, HINT if is_host else None)

    _check_machine(board, tree, add, allow_host_access)
    _check_chardevs(board, add, allow_host_access)
    _check_raw(board, add, allow_host_access)
    if not allow_host_access:
        for backend in board.backends:
            obj = object_problem(backend.type, backend.props)
            if obj:
                add(("backends", backend.id, *(("props", obj[1]) if obj[1] else ("type",))), obj[0], True)
        _check_components(board, problems)


_Add = Callable[..., None]


def _check_machine(board: Board, tree: Any, add: _Add, allow_host_access: bool) -> None:
    why = machine_problem(board.machine)
    if why:
        add(("machine", "type") if isinstance(tree.get("machine"), dict) else ("machine",), why, False)
    for prop in board.machine_props:
        if prop in HOST_MACHINE_PROPS and not allow_host_access:
            add(("machine", "props", prop),
                f"machine property '{prop}' touches the host: it {HOST_MACHINE_PROPS[prop]}", True, key=True)


def _check_chardevs(board: Board, add: _Add, allow_host_access: bool) -> None:
    for cid, spec in board.chardevs.items():
        if RESERVED_CHARDEV.fullmatch(cid):
            add(("chardevs", cid), f"chardev id '{cid}' is reserved for machinedesc's own QMP monitor", False,
                key=True)
        found = chardev_problem(spec, allow_host_access)
        if found:
            add(("chardevs", cid), found[0], found[1])


def _check_raw(board: Board, add: _Add, allow_host_access: bool) -> None:
    for raw in board.raw:
        base: tuple[str | int, ...] = ("qmp", raw.name)
        if not COMMAND_NAME.fullmatch(raw.execute):
            add((*base, "execute"), f"'{escape_control(raw.execute)}' is not a QMP command name", False)
            continue
        if raw.execute in LIFECYCLE_COMMANDS:
            add((*base, "execute"), f"'{raw.execute}' cannot be a raw command: {LIFECYCLE_COMMANDS[raw.execute]}",
                False)
            continue
        found = None if allow_host_access else command_problem(raw.execute, raw.arguments)
        if found:
            add((*base, "arguments", *found[1]) if found[1] else (*base, "execute"), found[0], True)


def _check_components(board: Board, problems: Collector) -> None:
    seen: set[str] = set()
    for comp in board.components:
        # Copies of a replicated entry share its YAML: report the entry once.
        where = comp.yaml_path.split(" (i=")[0]
        if comp.synthetic or where in seen:
            continue
        seen.add(where)
        dev = device_problem(comp.type, comp.props)
        if dev:
            loc = comp.part_location("props", dev[1]) if dev[1] else comp.part_location("type")
            problems.add(loc, f"{where}.props.{dev[1]}" if dev[1] else f"{where}.type", dev[0], HINT)
