"""Located tree -> Board: parameters applied, copies expanded, values typed (the types are in ``model``).

Every problem goes to the Collector with its position; ``build_board``
returns what it could build, and the caller raises once the checks have
run too. The pieces, in the order they run: ``builder_params`` (params:,
--set), ``builder_components`` (components:, fragments, MMIO),
``builder_wires`` (wiring:); ``builder_values`` types each value.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import Collector
from ..qemu.phases import Phase
from ..source import SourceLocation
from .bootspec import boot_spec
from .builder_components import components_of
from .builder_params import REWRITE_CHECK, params_of
from .builder_values import Builder
from .builder_wires import wires_of
from .located import LMap, PathT, Pos, location_of
from .model import Backend, Board, RawCommand
from .requires import failed_requirements


def build_board(doc_tree: LMap, file: str, overrides: Mapping[str, str], problems: Collector,
                deleted: Mapping[PathT, SourceLocation] | None = None,
                fragments: Mapping[str, LMap] | None = None) -> Board:
    """The Board for a schema-valid tree; semantic problems go to ``problems``.

    ``fragments`` holds the fragment file of each component entry with ``use``
    (includes.Document.fragments); its components take the entry's place, its
    wires follow the board's.
    """
    b = Builder(doc_tree, file, problems)
    b.fragments = fragments or {}
    tree = doc_tree
    params = params_of(b, overrides)
    env: dict[str, Any] = dict(params)
    for failed in failed_requirements(tree, lambda raw, path: b.value(raw, env, path)):
        b.err(("requires", failed.index, "check"), failed.message, REWRITE_CHECK if failed.written_wrong else
              f"{failed.check} is false for these parameters (params:, --set)")

    chardevs = {k: str(v) for k, v in tree.get("chardevs", {}).items()}
    machine_raw = tree.get("machine", "none")
    machine_locations: dict[str, SourceLocation] = {}
    if isinstance(machine_raw, dict):
        machine = str(machine_raw["type"])
        machine_props = {k: b.value(v, env, ("machine", "props", k)) for k, v in machine_raw.get("props", {}).items()}
        machine_locations = {k: loc for k in machine_props
                             if (loc := location_of(tree, ("machine", "props", k))) is not None}
    else:
        machine, machine_props = str(machine_raw), {}

    backends = tuple(
        Backend(bid, spec["type"],
                {k: b.value(v, env, ("backends", bid, "props", k)) for k, v in spec.get("props", {}).items()},
                location_of(tree, ("backends", bid), key=True), _value_positions(spec.get("props")))
        for bid, spec in tree.get("backends", {}).items()
    )
    components = components_of(b, env, {})
    wires = wires_of(b, env) + tuple(b.fragment_wires)
    raw = _raw(b, env)
    boot = boot_spec(b, env)
    devicetree = b.value(dict(tree.get("devicetree", {})), env, ("devicetree",)) or {}
    name = tree.get("name") or Path(file).stem
    return Board(
        file=file, name=name, summary=tree.get("summary", ""), system=tree["system"], machine=machine,
        machine_props=machine_props, machine_prop_locations=machine_locations, params=params, chardevs=chardevs,
        backends=backends,
        components=components, wires=wires, raw=raw,
        incomplete=bool(problems.problems),
        deleted={str(p[1]): loc for p, loc in (deleted or {}).items() if len(p) == 2 and p[0] == "components"},
        boot=boot,
        devicetree=devicetree, devicetree_spec=tree.get("devicetree"),
    )


def _value_positions(node: Any) -> Mapping[str, Pos]:
    """Where each value of a mapping is written (empty when ``node`` has no positions)."""
    return node.value_locs if isinstance(node, LMap) else {}


def _raw(b: Builder, env: Mapping[str, Any]) -> tuple[RawCommand, ...]:
    out: list[RawCommand] = []
    for name, spec in b.tree.get("qmp", {}).items():
        path: PathT = ("qmp", name)
        args = b.value(dict(spec.get("arguments", {})), env, (*path, "arguments"))
        after = tuple(spec.get("after", ()))
        out.append(RawCommand(name, spec["execute"], args or {}, Phase(spec.get("phase", "initialized")),
                              after, location_of(b.tree, path, key=True),
                              tuple(location_of(b.tree, (*path, "after", i)) for i in range(len(after)))))
    return tuple(out)
