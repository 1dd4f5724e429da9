"""Board -> DeviceTree: CPUs, memory, one node per device with a binding, interrupts from the wiring.

How a QEMU type becomes a node is data (data/bindings.yaml, see
docs/devicetree.md); this module walks the board once: CPU nodes under
/cpus, memory nodes, device nodes (under the system's bus node), then the
interrupts each device's wired outputs give in the controllers they reach,
then /chosen, /aliases and the board's own ``devicetree:`` overrides.
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
from .cpus import add_arm_extras, add_cpus, cell_value
from .overrides import apply_overrides, early_overrides
from .pci import pci_host, pci_interrupt_map
from .tree import Cells, DeviceTree, Node, Ref, Strings, Value, cells, split64, strings

#: Arm GIC flags of a level-high interrupt (bindings/interrupt-controller/arm,gic-v3.yaml).
GIC_LEVEL_HIGH = 4


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

    def specifier(self, target: LineRef) -> tuple[str, tuple[int, ...]] | None:
        """The interrupt specifier a wire into ``target`` gives: (controller label, cells), or None."""
        ctrl = self.controllers.get(target.component)
        if ctrl is None or target.name != "unnamed-gpio-in":
            return None
        label, kind, env = ctrl
        if kind == "index":
            return label, (target.index,)
        if kind in ("gic", "gicv2"):
            spis = int(env.get("num_irq", 32)) - 32
            if target.index < spis:
                return label, (0, target.index, GIC_LEVEL_HIGH)
            irq = (target.index - spis) % 32
            # GICv2: a PPI's flags name the CPUs it reaches (bits 15:8), all of them as -M virt says.
            mask = ((1 << min(int(env.get("num_cpu", 1)), 8)) - 1) << 8 if kind == "gicv2" else 0
            return (label, (1, irq - 16, GIC_LEVEL_HIGH | mask)) if irq >= 16 else None
        return None

    def line_specifiers(self, comp_id: str, line: str, index: int) -> list[tuple[str, tuple[int, ...]]]:
        out = []
        for target in self.wires_from.get((comp_id, line, index), []):
            spec = self.specifier(target)
            if spec is None:
                self.notes.append(f"{comp_id}.{line}[{index}] drives {target.text}, not an interrupt "
                                  "controller of the device tree: no interrupt for it")
            else:
                out.append(spec)
        return out

    def interrupts(self, comp: Component, binding: Binding, node: Node, extended: bool) -> None:
        specs: list[tuple[str, tuple[int, ...]]] = []
        for line in binding.interrupts:
            match = re.fullmatch(r"(.+)\[(\d+)\]", line)
            if match:
                specs += self.line_specifiers(comp.id, match[1], int(match[2]))
                continue
            indices = sorted(self.wired.get((comp.id, line), ()))
            for i in indices:
                specs += self.line_specifiers(comp.id, line, i)
        if not specs:
            return
        parents = {label for label, _ in specs}
        if extended or len(parents) > 1:
            items: list[int | Ref] = []
            for label, spec in specs:
                items += [Ref(label), *spec]
            node.props["interrupts-extended"] = Cells(tuple(items))
        else:
            node.props["interrupt-parent"] = cells(Ref(specs[0][0]))
            node.props["interrupts"] = Cells(tuple(c for _, spec in specs for c in spec))

    def plic_contexts(self, comp: Component, node: Node, intc: Mapping[int, str]) -> None:
        """interrupts-extended of a SiFive PLIC: one entry per context of hart-config, in order."""
        config = str(comp.props.get("hart-config", ""))
        base = cell_value(comp.props.get("hartid-base", 0))
        if base is None:
            # Only without a type database for the system does such a value get this far.
            self.notes.append(f"{comp.id}: hartid-base {comp.props.get('hartid-base')!r} is not a 32-bit hart ID: "
                              "its contexts are left out of the device tree")
            return
        bits = {"M": 11, "S": 9, "H": 10, "U": 8}  # the external-interrupt bit of each mode in mip
        # Context n is the n-th entry (sifive_plic.c parse_hart_config numbers them hart by hart, mode
        # by mode; an empty entry names no hart): a hart without a CPU node (omit: true) keeps its
        # contexts' places, marked "not present" by a -1 specifier (the sifive,plic-1.0.0 binding) on
        # some hart's controller, which Linux and OpenSBI both skip (neither is 9 nor 11).
        contexts: list[tuple[str | None, int]] = []
        for k, modes in enumerate(m for m in config.split(",") if m):
            ctrl = self.controllers.get(intc.get(base + k, ""))
            label = ctrl[0] if ctrl else None
            if label is None:
                self.notes.append(f"{comp.id}: hart-config names hart {base + k}, which has no CPU node: "
                                  "its contexts are marked not present (-1)")
            contexts += [(label, bits.get(mode, 0)) for mode in modes]
        present = [label for label, _ in contexts if label is not None]
        if present:
            items: list[int | Ref] = []
            for label, bit in contexts:
                items += [Ref(label), bit] if label is not None else [Ref(present[0]), 0xFFFFFFFF]
            node.props["interrupts-extended"] = Cells(tuple(items))


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
            gen.plic_contexts(comp, node, intc)
        gen.interrupts(comp, binding, node, extended=binding.kind == "riscv-clint-like")
    add_arm_extras(gen)
    if gen.bus is not gen.root and gen.bus.children:
        gen.root.add(gen.bus)
    _chosen(gen, bootargs)
    _syscon(gen)
    _clocks(gen)
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


def _console_uarts(gen: Gen) -> list[tuple[Component, Node]]:
    """The UART nodes, the console (a chardev with backend stdio) first, then board order."""
    uarts: list[tuple[int, int, Component, Node]] = []
    for comp in gen.board.components:
        binding = binding_for(comp.type)
        node = gen.nodes.get(comp.id)
        if binding is None or node is None or not binding.console:
            continue
        chardev = comp.props.get("chardev")
        console = gen.board.chardevs.get(str(chardev), "").split(",")[0] == "stdio"
        uarts.append((0 if console else 1, len(uarts), comp, node))
    return [(c, n) for *_, c, n in sorted(uarts, key=lambda u: (u[0], u[1]))]


def _chosen(gen: Gen, bootargs: str | None) -> None:
    chosen = Node("chosen")
    aliases = Node("aliases")
    on_bus = {id(n) for n in gen.bus.children} if gen.bus is not gen.root else set()
    for k, (_comp, node) in enumerate(_console_uarts(gen)):
        # UART nodes sit on the bus or at the root.
        path = f"/{gen.bus.full_name}/{node.full_name}" if id(node) in on_bus else f"/{node.full_name}"
        aliases.props[f"serial{k}"] = strings(path)
        if k == 0:
            chosen.props["stdout-path"] = strings(path)
    if bootargs is not None:
        chosen.props["bootargs"] = strings(bootargs)
    if aliases.props:
        gen.root.add(aliases)
    gen.root.add(chosen)


def _syscon(gen: Gen) -> None:
    """/poweroff and /reboot for a syscon device (the SiFive test device), as -M virt has them."""
    for comp in gen.board.components:
        binding = binding_for(comp.type)
        if binding is None or comp.id not in gen.nodes or "syscon" not in binding.raw:
            continue
        # The first syscon device of the board gets them (-M virt has one).
        for name, value in binding.raw["syscon"].items():
            if gen.root.child(name) is None:
                gen.root.add(Node(name, props={
                    "compatible": strings(f"syscon-{name}"), "regmap": cells(Ref(gen.label(comp.id))),
                    "offset": cells(0), "value": cells(int(value)),
                }))
        return


def _clocks(gen: Gen) -> None:
    """One fixed-clock node per distinct frequency the bindings' clocks need, at the root."""
    made: dict[int, str] = {}
    for comp in gen.board.components:
        binding = binding_for(comp.type)
        node = gen.nodes.get(comp.id)
        if binding is None or node is None or not binding.clocks:
            continue
        refs: list[int | Ref] = []
        for hz in binding.clocks.values():
            if hz not in made:
                made[hz] = gen.fresh_label(f"clk{hz // 1_000_000}mhz" if hz % 1_000_000 == 0 else f"clk{hz}hz")
                gen.root.add(Node(f"clock-{hz}", None, made[hz], {
                    "compatible": strings("fixed-clock"), "#clock-cells": cells(0),
                    "clock-frequency": cells(hz), "clock-output-names": strings(made[hz]),
                }))
            refs.append(Ref(made[hz]))
        node.props["clocks"] = Cells(tuple(refs))
        node.props["clock-names"] = Strings(tuple(binding.clocks))
