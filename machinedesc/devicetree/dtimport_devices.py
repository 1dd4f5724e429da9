"""import-dtb's plain nodes: the root (model, compatible), /memory as RAM, a device of the binding table, the console.

Each takes the ``Importer`` and one node it dispatched here
(``Importer.node``), adds components and says what became of the node;
``chardevs`` gives the console UART (/chosen stdout-path) the stdio chardev.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..qemu.types import system_type_info
from .bindings import Binding
from .dtimport import Comp
from .dtread import Node

if TYPE_CHECKING:
    from .dtimport import Importer


def import_root(imp: Importer, node: Node) -> None:
    consumed = {"model", "compatible"}
    model = imp.tree.string(node, "model")
    if model is not None:
        imp.devicetree["model"] = model
    if imp.tree.strings(node, "compatible"):
        imp.devicetree["compatible"] = imp.tree.strings(node, "compatible")
    imp.folded(node, "the board (model and compatible into devicetree:)")
    imp.leftover(node, consumed)


def import_memory(imp: Importer, node: Node) -> None:
    ids = []
    for k, (addr, size) in enumerate(imp.tree.reg(node)):
        lo, hi, why = system_type_info("sysbus-memory", imp.system).limits.get("size", (1, 1 << 64, ""))
        if not lo <= size <= hi:  # QEMU refuses 0 bytes, and aborts near 2**64
            imp.notes.append(f"{node.path}: reg entry {k} at {addr:#x} is {size:#x} bytes: no RAM ({why})")
            continue
        cid = imp.fresh_id("ram" if k == 0 else f"ram{k}")
        ids.append(imp.add(cid, Comp("sysbus-memory", node.path, {"size": size}, {0: addr})))
    if not ids:
        return imp.skip(node, "a memory node without reg (or none of a size QEMU makes)")
    imp.imported(node, ids)
    imp.leftover(node, set())


def import_device(imp: Importer, node: Node, binding: Binding) -> None:
    regs = imp.tree.reg(node)
    if not regs:
        return imp.skip(node, f"no reg: {binding.type} is placed by its MMIO regions")
    consumed: set[str] = set()
    props = {**binding.raw.get("import-props", {}), **imp.reverse_props(node, binding, consumed)}
    if binding.clocks:
        consumed |= {"clocks", "clock-names"}
    label = imp.id_for(node)
    ids = []
    if binding.raw.get("import-split-reg"):
        sector = int(props.get("sector-length", 0))
        for k, (addr, size) in enumerate(regs):
            own = dict(props)
            if sector and size % sector == 0:
                own["num-blocks"] = size // sector
            else:
                imp.notes.append(f"{node.path}: reg entry {k} ({size:#x} bytes) is not a whole number of "
                                  f"{sector:#x}-byte sectors: num-blocks not set")
            ids.append(imp.add(imp.fresh_id(f"{label}{k}"), Comp(binding.type, node.path, own, {0: addr})))
    else:
        regions = system_type_info(binding.type, imp.system).mmio
        if regions is not None and len(regs) > len(regions):
            imp.unmapped.setdefault(node.path, []).append(
                f"reg entries {len(regions)}..{len(regs) - 1} ({binding.type} has {len(regions)} MMIO region(s))")
            regs = regs[:len(regions)]
        mmio = {k: addr for k, (addr, _size) in enumerate(regs)}
        ids.append(imp.add(imp.fresh_id(label), Comp(binding.type, node.path, props, mmio)))
    if binding.console:
        imp.uarts.append((node, ids[0]))
    if binding.interrupts:
        imp.sources.append((node, binding, ids))
    imp.imported(node, ids)
    imp.leftover(node, consumed)


def import_console(imp: Importer, node: Node) -> None:
    imp.leftover(node, {"stdout-path", "stdin-path"} | {p for p in node.props if p.startswith("serial")})


def chardevs(imp: Importer) -> dict[str, str]:
    """serial0: stdio for the console UART (/chosen stdout-path, else the first), the others null."""
    chosen = imp.tree.root.nodes.get("chosen")
    stdout = (imp.tree.string(chosen, "stdout-path") or "") if chosen is not None else ""
    stdout = stdout.split(":")[0]
    if stdout and not stdout.startswith("/"):
        aliases = imp.tree.root.nodes.get("aliases")
        stdout = (imp.tree.string(aliases, stdout) or "") if aliases is not None else ""
    ordered = sorted(imp.uarts, key=lambda u: (u[0].path != stdout, imp.comps[u[1]].mmio.get(0, 0)))
    out: dict[str, str] = {}
    for k, (_node, cid) in enumerate(ordered):
        out[f"serial{k}"] = "stdio" if k == 0 else "null"
        imp.comps[cid].props["chardev"] = f"serial{k}"
    return out


