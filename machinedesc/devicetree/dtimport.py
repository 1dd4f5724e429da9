"""``machinedesc import-dtb``: a board from a device tree (DTS or DTB), with a coverage report.

The binding table (data/bindings.yaml) read in reverse: a node whose
compatible is an entry's most specific string becomes a component of that
entry's QEMU type; its ``reg`` (translated to CPU addresses) its ``mmio``
regions; the properties the entry computes (``${baudbase * 16}``) give the
QEMU properties back; its ``interrupts`` / ``interrupts-extended``, through
the controllers' specifiers (a RISC-V hart's ``mip`` bit, a PLIC source, a
GIC SPI or PPI), become wires. ``/cpus`` and ``cpu-map`` become clusters of
CPUs (dtimport_cpus), the interrupt controllers components with inputs
(dtimport_intc), ``/memory`` nodes RAM. The table's ``import`` section
names what is skipped and why, and what one node is in QEMU when it is
several devices (the SiFive CLINT). A PCIe host's reg and ranges become MMIO
windows of its regions (dtimport_pci).

Every node lands in the report: imported (as which component), folded into
the board (buses, clocks, /chosen, the Arm timer ...), or skipped with its
reason; properties that could not be mapped are listed per node, and the
values the tree does not give are named. Nothing is dropped silently. The
output depends only on the tree: same input, same bytes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from ..qemu.types import system_database, system_type_info
from .bindings import Binding, by_compatible, import_table
from .dtread import Node, Tree, read

#: Properties every importer reads (or that say nothing QEMU needs): never "not mapped".
STRUCTURAL = frozenset({"compatible", "reg", "status", "phandle", "linux,phandle", "interrupts", "interrupts-extended",
                        "interrupt-parent", "#interrupt-cells", "#address-cells", "#size-cells",
                        "interrupt-controller", "device_type", "ranges"})
#: Compatibles folded into the board rather than imported: the reason the report gives.
FOLDED = {"simple-bus": "a bus (its ranges translate its children's reg)",
          "fixed-clock": "a clock: QEMU's devices have their clocks built in (the bindings' clocks)",
          "syscon-poweroff": "/poweroff: the generator writes it for the syscon device",
          "syscon-reboot": "/reboot: the generator writes it for the syscon device"}
#: Arm nodes read from the CPUs' side (dtimport_intc.arm_extras).
ARM_EXTRAS = ("arm,armv8-timer", "arm,armv7-timer", "arm,armv8-pmuv3")

Wire = tuple[str, str, int, str, str, int]  # from component, line, index -> to component, line, index


@dataclass
class Comp:
    """One component to write: QEMU type, properties, ``mmio`` (region -> address), the node it came from;
    ``windows``: (region, offset, size, address) of each window of a region (a PCIe host's)."""

    type: str
    path: str
    props: dict[str, Any] = field(default_factory=dict)
    mmio: dict[int, int] = field(default_factory=dict)
    parent: str | None = None
    windows: list[tuple[int, int, int, int]] = field(default_factory=list)


class Ctrl(NamedTuple):
    """An interrupt controller of the tree: how a specifier becomes an input of component ``comp``."""

    kind: str  # index: unnamed-gpio-in[first cell]; gic: SPI/PPI
    comp: str


@dataclass
class Imported:
    """The board text and the coverage report (stderr's lines)."""

    yaml: str
    report: list[str]


class Importer:
    """One import: the tree, and the components, wires and report lines made of it."""

    def __init__(self, tree: Tree, name: str) -> None:
        self.tree = tree
        self.name = name
        self.system = ""
        self.comps: dict[str, Comp] = {}
        self.ctrls: dict[str, Ctrl] = {}
        self.wires: list[Wire] = []
        self.outcome: dict[str, str] = {}  # node path -> imported ... / folded ... / skipped: why
        self.unmapped: dict[str, list[str]] = {}
        self.notes: list[str] = []
        self.cpus: list[str] = []  # CPU component ids, in MPIDR / hart-ID order
        self.sources: list[tuple[Node, Binding, list[str]]] = []  # devices whose interrupts become wires
        self.pci_hosts: list[tuple[Node, str]] = []  # PCIe hosts whose interrupt-map becomes wires
        self.arm_nodes: list[Node] = []
        self.uarts: list[tuple[Node, str]] = []
        self.devicetree: dict[str, Any] = {}
        self.gic: tuple[Node, str, int] | None = None  # the GIC node (v3 or v2), its component, its SPIs
        self.implied = 0  # wires no property names (the GIC's outputs to the CPUs)
        self.numbered: dict[str, str] = {}  # node path -> its numbered name, for names several nodes share

    # ------------------------------------------------------------ bookkeeping

    def fresh_id(self, base: str) -> str:
        base = re.sub(r"[^A-Za-z0-9_-]", "-", base).strip("-") or "node"
        base = base if base[0].isalpha() else "n" + base
        cid, n = base, 2
        while cid in self.comps:
            cid, n = f"{base}-{n}", n + 1
        return cid

    def add(self, cid: str, comp: Comp) -> str:
        comp.props = {k: cid if v == "${id}" else v for k, v in comp.props.items()}
        self.comps[cid] = comp
        return cid

    def imported(self, node: Node, ids: list[str]) -> None:
        self.outcome[node.path] = "imported as " + ", ".join(f"{c} ({self.comps[c].type})" for c in ids)

    def folded(self, node: Node, why: str) -> None:
        self.outcome[node.path] = "folded: " + why

    def skip(self, node: Node, why: str) -> None:
        self.outcome[node.path] = "skipped: " + why

    def leftover(self, node: Node, consumed: set[str]) -> None:
        """Note the properties of ``node`` nothing read."""
        left = [p for p in node.props if p not in consumed and p not in STRUCTURAL]
        if left:
            self.unmapped.setdefault(node.path, []).extend(left)

    def known_type(self, qemu_type: str) -> bool:
        db = system_database(self.system)
        return db is None or qemu_type in db.types

    # ------------------------------------------------------------ properties

    def reverse_props(self, node: Node, binding: Binding, consumed: set[str]) -> dict[str, Any]:
        """QEMU properties from the node's values of the binding's ``props`` (``${p}``, ``${p * K}``, ...)."""
        out: dict[str, Any] = {}
        names = system_type_info(binding.type, self.system).properties or {}
        for name, spec in binding.props.items():
            raw = spec.get("value") if isinstance(spec, dict) else spec
            if name not in node.props:
                continue
            consumed.add(name)
            m = _INVERSE.match(raw) if isinstance(raw, str) else None
            if m is None:
                continue  # a constant the generator writes (#interrupt-cells, ...): nothing to set
            value = self.tree.num(node, name)
            k = int(m["k"], 0) if m["k"] else 0
            back = _invert(value, m["op"], k)
            if back is None:
                self.unmapped.setdefault(node.path, []).append(f"{name} (not {raw} of an integer)")
                continue
            # Expressions name a property with '_' for '-' (has_el3 keeps its '_'): the one the type has.
            prop = m["p"] if m["p"] in names else m["p"].replace("_", "-")
            defaults = {k.replace("-", "_"): v for k, v in binding.defaults.items()}
            if defaults.get(m["p"]) != back:
                out[prop] = back
        return out

    # ------------------------------------------------------------ nodes

    def node(self, node: Node) -> None:
        """Import, fold or skip one node outside /cpus (its parent already decided)."""
        from .dtimport_devices import import_console, import_memory, import_root

        if node.path in self.outcome:
            return
        parent = self.outcome.get(node.parent.path, "") if node.parent is not None else ""
        if parent.startswith("skipped"):
            return self.skip(node, f"inside {node.parent.path}, which is skipped")
        if self.tree.string(node, "status") in ("disabled", "fail"):
            return self.skip(node, f"status = \"{self.tree.string(node, 'status')}\"")
        if node.parent is None:
            return import_root(self, node)
        if node.name in ("chosen", "aliases"):
            import_console(self, node)
            return self.folded(node, "the console (stdout-path, serial0) gets the stdio chardev")
        if node.parent.parent is not None and self.tree.string(node.parent, "device_type") == "pci":
            return self.skip(node, f"on the PCI bus of {node.parent.path}: PCI devices are found by enumeration "
                                   "(add them with -device)")
        bus = self.tree.bus_without_ranges(node) if "reg" in node.props else None
        if bus is not None:
            return self.skip(node, f"on {bus.path}, which has no ranges: its reg is not a CPU address")
        from .dtimport_lines import beyond_64_bits

        beyond = beyond_64_bits(self.tree, node)
        if beyond is not None:
            return self.skip(node, beyond)
        if self.tree.string(node, "device_type") == "memory":
            return import_memory(self, node)
        compatibles = self.tree.strings(node, "compatible")
        for compat in compatibles:
            if self.by_compatible(node, compat):
                return
        if compatibles:
            return self.skip(node, self.no_binding(compatibles))
        self.skip(node, "no compatible: not a device")

    def by_compatible(self, node: Node, compat: str) -> bool:
        """Handle ``node`` by ``compat`` when something knows it; False to try the next string."""
        from .dtimport_devices import import_device
        from .dtimport_intc import clint_like, gic, plic
        from .dtimport_pci import pci_host

        table = import_table()
        if compat in table.get("skip", {}):
            self.skip(node, str(table["skip"][compat]))
        elif compat in table.get("split", {}):
            clint_like(self, node, list(table["split"][compat]))
        elif compat in by_compatible():
            binding = by_compatible()[compat]
            if not self.known_type(binding.type):
                self.skip(node, f"no QEMU model: {binding.type} (the binding of {compat}) is not in "
                                f"qemu-system-{self.system}")
            elif binding.kind == "riscv-clint-like":
                clint_like(self, node, [{"type": binding.type, "name": binding.name, "offset": 0,
                                         "props": dict(binding.raw.get("when", {}))}])
            elif binding.kind == "sifive-plic":
                plic(self, node, binding)
            elif binding.kind in ("arm-gicv3", "arm-gicv2"):
                gic(self, node, binding)
            elif binding.kind == "device":
                import_device(self, node, binding)
            elif binding.kind == "pci-host-ecam":
                pci_host(self, node, binding)
            else:
                self.skip(node, f"a {binding.kind} node outside /cpus")
        elif compat in FOLDED:
            self.folded(node, FOLDED[compat])
            self.leftover(node, {"clock-frequency", "#clock-cells", "clock-output-names", "regmap", "offset",
                                 "value"})
        elif compat in ARM_EXTRAS or compat.startswith("arm,psci"):
            self.arm_nodes.append(node)
        else:
            return False
        return True

    def no_binding(self, compatibles: list[str]) -> str:
        """The reason for a compatible the table lacks, naming a QEMU type of the same name if there is one."""
        db = system_database(self.system)
        types = {_squash(t): t for t in sorted(db.types)} if db is not None else {}
        models = import_table().get("models", {})
        for compat in compatibles:
            if compat in models and (db is None or models[compat] in db.types):
                types[_squash(compat)] = str(models[compat])
            for candidate in (_squash(compat), _squash(compat.split(",")[-1])):
                if candidate in types:
                    return (f"no binding for {', '.join(compatibles)} (qemu-system-{self.system} has a type "
                            f"{types[candidate]}; the binding table has no entry for it)")
        return f"no binding for {', '.join(compatibles)} (and no QEMU type of that name)"

    def id_for(self, node: Node) -> str:
        """A component id for ``node``: its DTS label, else its name, numbered when several nodes share it."""
        if node.labels:
            return self.fresh_id(node.labels[0])
        return self.fresh_id(self.numbered.get(node.path, node.name.split("@")[0]))

    def number_names(self) -> None:
        """Nodes sharing a name (virtio_mmio@...) are numbered in address order: virtio_mmio0, virtio_mmio1, ..."""
        groups: dict[str, list[Node]] = {}
        for node in self.tree.dt.node_iter():
            groups.setdefault(node.name.split("@")[0], []).append(node)
        for base, nodes in groups.items():
            if len(nodes) > 1:
                nodes.sort(key=lambda n: (_unit(n.name), n.path))
                self.numbered.update({n.path: f"{base}{k}" for k, n in enumerate(nodes)})


_INVERSE = re.compile(r"^\$\{\s*(?P<p>[A-Za-z_][A-Za-z0-9_]*)\s*(?:(?P<op>[-+*])\s*(?P<k>0x[0-9a-fA-F]+|\d+))?\s*\}$")


def _squash(name: str) -> str:
    """A name without vendor separators and punctuation, for comparing compatibles with QEMU type names."""
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _unit(name: str) -> int:
    """The unit address of a node name (``serial@10000000``) as a number; -1 without one."""
    unit = name.partition("@")[2].split(",")[0]
    return int(unit, 16) if re.fullmatch(r"[0-9a-fA-F]+", unit) else -1


def _invert(value: int | None, op: str | None, k: int) -> int | None:
    """The QEMU property value ``p`` with ``p OP k == value``; None when there is none (or no value)."""
    if value is None:
        return None
    if op is None:
        return value
    if op == "*":
        return value // k if k and value % k == 0 else None
    back = value + k if op == "-" else value - k
    return back if back >= 0 else None


def import_dtb(path: Path, name: str) -> Imported:
    """The board of the device tree in ``path`` (DTS or DTB), named ``name``, and its coverage report.

    Raises DeviceTreeFileError (exit 2): not a device tree, a parse error
    (``file:line:col``), a phandle that names no node, a tree without CPUs.
    """
    from .dtimport_cpus import import_cpus
    from .dtimport_devices import chardevs
    from .dtimport_intc import arm_extras, wire_sources
    from .dtimport_pci import pci_wires
    from .dtimport_lines import drop_wires_out_of_range
    from .dtimport_yaml import render, report

    tree = read(path)
    imp = Importer(tree, name)
    imp.number_names()
    import_cpus(imp)
    for node in tree.dt.node_iter():
        imp.node(node)
    wire_sources(imp)
    pci_wires(imp)
    arm_extras(imp)
    drop_wires_out_of_range(imp)
    return Imported(render(imp, chardevs(imp)), report(imp))
