"""The board's ``devicetree:`` section applied to a generated tree (docs/devicetree.md, "Overrides")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..board.located import LMap, entry_location
from ..errors import Collector
from ..source import SourceLocation
from .tree import DeviceTree, Node, strings

if TYPE_CHECKING:
    from .generate import Gen


def _where(spec: Any, *path: str, key: bool = False) -> SourceLocation | None:
    """Where ``path`` (a value, or with ``key`` its key) is written in the ``devicetree:`` section."""
    node = spec
    for part in path[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
    return entry_location(node, path[-1], key=key) if isinstance(node, LMap) else None


def early_overrides(gen: Gen) -> None:
    """Rename nodes (``name:``) and take out those marked ``omit: true``, before anything points at them."""
    changes = gen.board.devicetree.get("components", {})
    if not changes:
        return
    parents = {id(c): n for _, n in gen.root.walk() for c in n.children}
    parents.update({id(c): gen.bus for c in gen.bus.children})
    cpus = gen.root.child("cpus")
    for cid, change in changes.items():
        node = gen.nodes.get(cid)
        if node is not None and "name" in change:
            node.name = str(change["name"])
        if node is None or not change.get("omit"):
            continue
        parent = parents[id(node)]
        parent.children.remove(node)
        del gen.nodes[cid]
        gen.controllers.pop(cid, None)
        gen.notes.append(f"{cid}: left out by devicetree: components: (omit: true)")
        cpu_map = cpus.child("cpu-map") if cpus is not None else None
        if parent is cpus and cpus is not None and cpu_map is not None:
            cpus.children.remove(cpu_map)
            gen.notes.append("cpu-map: left out, as a CPU is")


def apply_overrides(gen: Gen, tree: DeviceTree) -> None:
    """Apply model, compatible, per-component changes and extra nodes; raises BoardError."""
    section: Mapping[str, Any] = gen.board.devicetree
    spec = gen.board.devicetree_spec
    problems = Collector()
    if "model" in section:
        tree.root.props["model"] = strings(str(section["model"]))
    if "compatible" in section:
        value = section["compatible"]
        tree.root.props["compatible"] = strings(*(value if isinstance(value, list) else [value]))
    for cid, change in section.get("components", {}).items():
        path = ("devicetree", "components", cid)
        where = _where(spec, "components", cid, key=True)
        node = gen.nodes.get(cid)
        if change.get("omit") and cid in gen.by_id:
            continue
        if node is None:
            why = ("is not a component" if cid not in gen.by_id
                   else "has no node in the device tree (its type has no binding: add it under devicetree: nodes:)")
            hint = problems.hints.did_you_mean(cid, gen.by_id) if cid not in gen.by_id else None
            problems.add(where, ".".join(path), f"'{cid}' {why}", hint)
            continue
        _set(gen, node, change.get("props", {}), problems, spec, ("components", cid, "props"))
    for node_path, change in section.get("nodes", {}).items():
        node = _node_at(tree.root, str(node_path))
        _set(gen, node, change.get("props", {}), problems, spec, ("nodes", node_path, "props"))
    problems.raise_if_any()
    if not section:
        return
    try:
        tree.phandles()
    except ValueError as err:
        problems.add(_where(spec, "devicetree") if spec is not None else None, "devicetree", str(err))
        problems.raise_if_any()


def _node_at(root: Node, path: str) -> Node:
    node = root
    for part in [p for p in path.split("/") if p]:
        name, _, unit = part.partition("@")
        child = node.child(part)
        node = child if child is not None else node.add(Node(name, unit or None))
    return node


def _set(gen: Gen, node: Node, props: Mapping[str, Any], problems: Collector, spec: Any,
         path: tuple[str, ...]) -> None:
    for name, value in props.items():
        where, what = _where(spec, *path, name), ".".join(("devicetree", *path, name))
        refs = [v[1:] for v in value if isinstance(v, str) and v.startswith("&")] if isinstance(value, list) else []
        missing = [r for r in refs if r not in gen.nodes]
        for ref in missing:
            why = "is not a component" if ref not in gen.by_id else "has no node in the device tree"
            problems.add(where, what, f"&{ref}: '{ref}' {why}", problems.hints.did_you_mean(ref, gen.nodes))
        try:
            converted = gen.to_value(value)
        except ValueError as err:
            problems.add(where, what, str(err),
                         "write an integer, a string, true, false, or a list of integers and &id references")
            continue
        if missing:
            continue
        if converted is False:
            node.props.pop(name, None)
        else:
            node.props[name] = converted
