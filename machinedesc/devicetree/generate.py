"""Board -> DeviceTree: CPUs, memory, one node per device with a binding, interrupts from the wiring.

How a QEMU type becomes a node is data (data/bindings.yaml, see
docs/devicetree.md); this module walks the board once: CPU nodes under
/cpus, memory nodes, device nodes (under the system's bus node), then the
interrupts each device's wired outputs give in the controllers they reach
(``interrupts``), then /chosen, /aliases, syscon and clock nodes
(``system_nodes``) and the board's own ``devicetree:`` overrides
(``overrides``). CPU nodes are ``cpus``'s, PCI hosts ``pci``'s.
A component whose type has no binding is left out and named in
``DeviceTree.notes`` (``machinedesc dtb -v``): nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from ..board.expr import ExprError, substitute
from ..board.model import Board, Component, LineRef, Mmio
from .bindings import Binding, binding_for, system_info, variant
from .cpus import add_arm_extras, add_cpus
from .interrupts import add_interrupts, plic_contexts
from .overrides import apply_overrides, early_overrides
from .pci import pci_host, pci_interrupt_map
from .system_nodes import add_chosen, add_clocks, add_syscon
from .tree import Cells, DeviceTree, Node, Ref, Strings, Value, cells, split64, strings


class Gen:
    """One generation: the tree being built and what the later passes need to know."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.by_id = board.by_id
        self.notes: list[str] = []
        self._labels: dict[str, str] = {}
        self._taken: set[str] = set()
        self.root = Node("", props={
            "#address-cells": cells(2), "#size-cells": cells(2),
            "compatible": strings(f"machinedesc,{board.name}"),
            "model": strings(board.summary or board.name),
        })
        bus = str(system_info(board.system).get("bus", ""))
        self.bus = self.root
        if bus:
            self.bus = Node(bus, props={"#address-cells": cells(2), "#size-cells": cells(2),
                                        "compatible": strings("simple-bus"), "ranges": None})
        #: component id -> its node; interrupt targets: component id -> (label, specifier kind).
        self.nodes: dict[str, Node] = {}
        self.controllers: dict[str, tuple[str, str, Mapping[str, Any]]] = {}
        self.wires_from: dict[tuple[str, str, int], list[LineRef]] = {}
        #: (component, line family) -> the indices of its wired outputs
        self.wired: dict[tuple[str, str], set[int]] = {}
        for wire in board.wires:
            for src in wire.sources:
                self.wires_from.setdefault((src.component, src.name, src.index), []).extend(wire.targets)
                self.wired.setdefault((src.component, src.name), set()).add(src.index)

    # ---------------------------------------------------------------- helpers

    def label(self, comp_id: str) -> str:
        """A DTS label for a component: its id with other characters as '_', unique."""
        if comp_id not in self._labels:
            self._labels[comp_id] = self.fresh_label(comp_id)
        return self._labels[comp_id]

    def fresh_label(self, name: str) -> str:
        """A label no other node has: ``name`` made a C identifier, with _2, _3, ... when taken."""
        base = re.sub(r"[^A-Za-z0-9_]", "_", name)
        base = base if re.match(r"[A-Za-z_]", base) else "_" + base
        label, n = base, 2
        while label in self._taken:
            label, n = f"{base}_{n}", n + 1
        self._taken.add(label)
        return label

    def env(self, comp: Component, binding: Binding | None) -> dict[str, Any]:
        """The QEMU properties (with the binding's defaults) as expression names ('-' -> '_')."""
        merged = {**(binding.defaults if binding else {}), **comp.props}
        return {k.replace("-", "_"): v for k, v in merged.items()}

    def evaluate(self, raw: Any, env: Mapping[str, Any], what: str) -> Any:
        try:
            return substitute(raw, env)
        except ExprError as err:
            self.notes.append(f"{what}: {err.message}; property left out")
            return None

    def region_size(self, comp: Component, region: int, size: int | None, env: Mapping[str, Any]) -> int | None:
        if size is not None:
            return size
        sizes = comp.info.mmio
        if sizes is None or region >= len(sizes):
            return None
        spec = sizes[region]
        if isinstance(spec, int):
            return spec
        value = self.evaluate("${" + spec + "}", env, f"{comp.id}: size of region {region}")
        return value if isinstance(value, int) else None

    def reg(self, comp: Component, binding: Binding, env: Mapping[str, Any]) -> list[tuple[int, int]] | None:
        """(address, size) of each reg entry: the mapped regions in region order, or the binding's regs."""
        mapped = described_mappings(comp, self.notes)
        if "regs" in binding.raw:
            out = []
            for spec in binding.raw["regs"]:
                m = mapped.get(int(spec.get("region", 0)))
                offset = self.evaluate(spec.get("offset", 0), env, f"{comp.id}: reg offset")
                size = self.evaluate(spec["size"], env, f"{comp.id}: reg size")
                if m is None or not isinstance(offset, int) or not isinstance(size, int):
                    return None
                out.append((m.addr + offset, size))
            return out
        out = []
        for region in sorted(mapped):
            m = mapped[region]
            size = self.region_size(comp, region, m.size, env)
            if size is None:
                self.notes.append(f"{comp.id} ({comp.type}): the size of MMIO region {region} is not known "
                                  "(give mmio: size:); node left out")
                return None
            out.append((m.addr, size))
        return out

    def to_value(self, value: Any) -> Value | Literal[False]:
        """A YAML or expression value as a property: False means 'leave it out'."""
        if value is True:
            return None
        if value is False or value is None:
            return False
        if isinstance(value, int):
            if value < 0:  # split64 of a negative number gave two cells of ones for -1
                as32 = (f" ({value} in one cell, two's complement, is {value & 0xFFFFFFFF:#x})"
                        if value >= -1 << 31 else "")
                raise ValueError(f"{value} is negative: a property's cells are unsigned, 0 to 0xffffffff{as32}")
            return Cells(split64(value, 2 if value >> 32 else 1))
        if isinstance(value, str):
            return strings(value)
        if isinstance(value, list) and not value:
            # An empty string list has no DTS spelling (dtc: "a = ;" is a syntax error).
            raise ValueError("[] is an empty list: write true for an empty property, false to leave it out")
        if isinstance(value, list) and all(isinstance(v, str) and not v.startswith("&") for v in value):
            return Strings(tuple(value))
        if isinstance(value, list):
            items: list[int | Ref] = []
            for v in value:
                if isinstance(v, str) and v.startswith("&"):
                    items.append(Ref(self.label(v[1:])))
                elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 1 << 32:
                    items.append(v)
                else:
                    raise ValueError(f"{v!r} is not a 32-bit cell or a &reference")
            return Cells(tuple(items))
        raise ValueError(f"{value!r} cannot be a device-tree property")

    def set_props(self, node: Node, comp: Component, binding: Binding, env: Mapping[str, Any] | None = None) -> None:
        env = self.env(comp, binding) if env is None else env
        for name, spec in binding.props.items():
            raw, omit = (spec.get("value"), spec.get("omit-if")) if isinstance(spec, dict) else (spec, None)
            value = self.evaluate(raw, env, f"{comp.id}: {name}")
            if value is None or (omit is not None and value == omit):
                continue
            try:
                converted = self.to_value(value)
            except ValueError as err:  # a binding's expression over the board's values, e.g. negative
                self.notes.append(f"{comp.id}: {name}: {err}; property left out")
                continue
            if converted is not False:
                node.props[name] = converted

    # ---------------------------------------------------------------- devices

    def device(self, comp: Component, binding: Binding) -> None:
        env = self.env(comp, binding)
        binding = variant(binding, env)
        regs = self.reg(comp, binding, env)
        if regs is None:
            return
        if not regs:
            self.notes.append(f"{comp.id} ({comp.type}): not mapped (no mmio:): left out of the device tree")
            return
        node = Node(binding.name, f"{regs[0][0]:x}", self.label(comp.id))
        if binding.compatible:
            node.props["compatible"] = Strings(binding.compatible)
        node.props["reg"] = Cells(tuple(c for addr, size in regs for c in (*split64(addr, 2), *split64(size, 2))))
        self.set_props(node, comp, binding, env)
        if binding.controller is not None:
            node.props["#interrupt-cells"] = cells(int(binding.controller["cells"]))
            node.props["#address-cells"] = cells(0)
            node.props["interrupt-controller"] = None
            self.controllers[comp.id] = (node.label or "", str(binding.controller["specifier"]), env)
        self.nodes[comp.id] = node
        self.bus.add(node)


def generate(board: Board, *, bootargs: str | None = None) -> DeviceTree:
    """The guest's device tree for ``board`` (deterministic: the same board gives the same tree).

    ``bootargs`` goes to /chosen. Components without a binding are listed in
    the result's ``notes``; overrides come from the board's ``devicetree:``.

    Raises:
        BoardError: a ``devicetree:`` override names a missing component or holds a bad value.
    """
    gen = Gen(board)
    intc = add_cpus(gen)
    for comp in board.components:
        binding = binding_for(comp.type)
        if comp.info.is_cpu or comp.info.is_cluster:
            continue
        if binding is None:
            if comp.type not in ("split-irq", "or-irq"):
                gen.notes.append(f"{comp.id}: no binding for type {comp.type}: left out of the device tree")
            continue
        if binding.kind == "memory":
            _memory(gen, comp)
        elif binding.kind == "pci-host-ecam":
            pci_host(gen, comp, binding)
        else:
            gen.device(comp, binding)
    early_overrides(gen)
    for comp in board.components:
        binding = binding_for(comp.type)
        node = gen.nodes.get(comp.id)
        if binding is None or node is None:
            continue
        if binding.kind == "pci-host-ecam":
            pci_interrupt_map(gen, comp, node)
            continue
        if binding.kind == "sifive-plic":
            plic_contexts(gen, comp, node, intc)
        add_interrupts(gen, comp, binding, node, extended=binding.kind == "riscv-clint-like")
    add_arm_extras(gen)
    if gen.bus is not gen.root and gen.bus.children:
        gen.root.add(gen.bus)
    add_chosen(gen, bootargs)
    add_syscon(gen)
    add_clocks(gen)
    tree = DeviceTree(gen.root, gen.notes)
    apply_overrides(gen, tree)
    return tree


def described_mappings(comp: Component, notes: list[str] | None = None) -> dict[int, Mmio]:
    """The mapping of each region that the device tree describes (``reg``, ``/memory``), by region.

    A region's own mapping (``mmio`` without ``offset``; the last one, as QEMU
    moves a region mapped twice); else, for a region mapped only through
    windows, its first window in board order: for a device only one that
    starts at offset 0 (its registers are where the driver expects them, in
    the window's size), for RAM any (the guest sees that RAM there).  The
    other windows are aliases of what is described already: the guest would
    count RAM twice, and a binding has no way to say "mirror"; each is named
    in ``notes``.
    """
    memory = comp.type == "sysbus-memory"
    out = {m.region: m for m in comp.mmio if not m.window}
    for m in comp.mmio:
        if m.window and m.region not in out and (memory or m.offset == 0):
            out[m.region] = m
    if notes is not None:
        for m in comp.mmio:
            if m.window and out.get(m.region) is not m:
                notes.append(f"{comp.id} ({comp.type}): {m.describe(comp.id)} at {m.addr:#x} is an alias, "
                             "not described in the device tree")
    return out


def _memory(gen: Gen, comp: Component) -> None:
    if comp.props.get("readonly") is True:
        gen.notes.append(f"{comp.id}: a read-only memory (ROM) is not a /memory node")
        return
    m = described_mappings(comp, gen.notes).get(0)
    size = m.size if m is not None and m.window else comp.props.get("size")
    if m is not None and isinstance(size, int):
        node = Node("memory", f"{m.addr:x}", gen.label(comp.id), {
            "device_type": strings("memory"),
            "reg": Cells((*split64(m.addr, 2), *split64(size, 2))),
        })
        gen.nodes[comp.id] = node
        gen.root.add(node)
