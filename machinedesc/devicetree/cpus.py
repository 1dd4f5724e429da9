"""CPU nodes (/cpus, cpu-map), and the Arm nodes the CPUs imply: PSCI, the generic timer, the PMU.

RISC-V: ``reg`` is the hart ID (``mhartid``), ``riscv,isa*`` come from the
binding's default extension list (QEMU's own for the type) adjusted by the
CPU's boolean extension properties, each CPU gets a ``riscv,cpu-intc``
child that wires into it point at. Arm: ``reg`` is the MPIDR affinity QEMU
gives a CPU on a machine built over QMP (``mp-affinity``, else Aff0 = index
mod 8, Aff1 = index div 8: ``arm_build_mp_affinity`` with 8 CPUs per
cluster), ``enable-method = "psci"`` when ``psci-conduit`` is 1 (SMC) or 2
(HVC): QEMU's built-in PSCI 1.1 answers the calls.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..board.model import Component
from .bindings import Binding, binding_for, riscv_isa_order
from .interrupts import line_specifiers
from .tree import Cells, Node, Ref, Strings, cell_value, cells, strings

if TYPE_CHECKING:
    from .generate import Gen

#: QEMU's order of single-letter extensions in riscv,isa (target/riscv/cpu.c riscv_single_letter_exts);
#: the multi-letter ones follow data/bindings.yaml's riscv-isa-order.
SINGLE_LETTERS = "iemafdqcbpvh"
#: PSCI 0.2+ function IDs (SMC64 where there is one), as -M virt lists them for PSCI 0.1 clients.
PSCI_FUNCTIONS = {"migrate": 0xC4000005, "cpu_on": 0xC4000003, "cpu_off": 0x84000002, "cpu_suspend": 0xC4000001}
#: Arm CPU GPIO outputs (target/arm/cpu.h GTIMER_*) in the order of the arm,armv8-timer binding's interrupts.
TIMER_OUTPUTS = (3, 0, 1, 2)  # secure phys, non-secure phys, virtual, hyp


def add_cpus(gen: Gen) -> dict[int, str]:
    """Add /cpus with a node per CPU; returns RISC-V hart ID -> the CPU's component id."""
    cpus = Node("cpus", props={"#address-cells": cells(1), "#size-cells": cells(0)})
    intc: dict[int, str] = {}
    cpu_comps = [c for c in gen.board.components if c.info.is_cpu]
    for index, comp in enumerate(cpu_comps):
        binding = binding_for(comp.type)
        if binding is None:
            gen.notes.append(f"{comp.id}: no binding for CPU type {comp.type}: left out of the device tree")
            continue
        if binding.kind == "riscv-cpu":
            hartid = cell_value(comp.props.get("mhartid", 0))
            if hartid is None:
                # Only without a type database for the system does such a value get this far.
                gen.notes.append(f"{comp.id}: mhartid {comp.props.get('mhartid')!r} is not a 32-bit hart ID: "
                                 "left out of the device tree")
                continue
            node = _riscv_cpu(gen, comp, binding, hartid)
            intc[hartid] = comp.id
            gen.controllers[comp.id] = (node.children[0].label or "", "index", {})
        else:
            node = _arm_cpu(gen, comp, binding, index)
        gen.nodes[comp.id] = node
        cpus.add(node)
    timebase = _timebase(gen)
    if timebase is not None:
        cpus.props["timebase-frequency"] = cells(timebase)
    cpu_map = _cpu_map(gen, cpu_comps)
    if cpu_map is not None:
        cpus.add(cpu_map)
    if cpus.children:
        gen.root.add(cpus)
    return intc


def _riscv_cpu(gen: Gen, comp: Component, binding: Binding, hartid: int) -> Node:
    label = gen.label(comp.id)
    base = str(binding.raw.get("isa-base", "rv64i"))
    exts = set(binding.raw.get("isa", []))
    order = riscv_isa_order()
    for name, value in comp.props.items():
        if isinstance(value, bool) and (name in order or (len(name) == 1 and name in SINGLE_LETTERS)):
            exts = exts | {name} if value else exts - {name}
    single = sorted((e for e in exts if len(e) == 1), key=SINGLE_LETTERS.index)
    rank = {name: k for k, name in enumerate(order)}
    multi = sorted((e for e in exts if len(e) > 1), key=lambda e: (rank.get(e, len(rank)), e))
    node = Node("cpu", f"{hartid:x}", label, {
        "device_type": strings("cpu"), "reg": cells(hartid), "status": strings("okay"),
        "compatible": strings("riscv"),
    })
    gen.set_props(node, comp, binding)
    node.props["riscv,isa-base"] = strings(base)
    node.props["riscv,isa-extensions"] = Strings(tuple(single + multi))
    node.props["riscv,isa"] = strings("_".join([base[:4] + "".join(single), *multi]))
    mmu = _mmu_type(comp, str(binding.raw.get("mmu-type", "")))
    if mmu:
        node.props["mmu-type"] = strings(mmu)
    node.add(Node("interrupt-controller", None, gen.fresh_label(f"{label}_intc"), {
        "#interrupt-cells": cells(1), "#address-cells": cells(0), "interrupt-controller": None,
        "compatible": strings("riscv,cpu-intc"),
    }))
    return node


def _mmu_type(comp: Component, default: str) -> str:
    """The highest satp mode left enabled: the binding's, unless the CPU turns modes off (sv57: false)."""
    modes = ["sv39", "sv48", "sv57", "sv64"]
    if not default or not any(m in comp.props for m in modes):
        return default
    top = modes.index(default.split(",")[-1])
    enabled = [m for k, m in enumerate(modes) if comp.props.get(m, k <= top) is True]
    return f"riscv,{enabled[-1]}" if enabled else "riscv,none"


def _arm_cpu(gen: Gen, comp: Component, binding: Binding, index: int) -> Node:
    mpidr = comp.props.get("mp-affinity")
    if not isinstance(mpidr, int):
        mpidr = ((index // 8) << 8) | (index % 8)
    node = Node("cpu", f"{mpidr:x}", gen.label(comp.id), {
        "device_type": strings("cpu"), "compatible": Strings(binding.compatible), "reg": cells(mpidr),
    })
    conduit = comp.props.get("psci-conduit", 0)
    if conduit in (1, 2):
        node.props["enable-method"] = strings("psci")
    else:
        gen.notes.append(f"{comp.id}: psci-conduit is not 1 (smc) or 2 (hvc): no enable-method "
                         "(add one under devicetree: components:, e.g. spin-table)")
    gen.set_props(node, comp, binding)
    return node


def _timebase(gen: Gen) -> int | None:
    for comp in gen.board.components:
        binding = binding_for(comp.type)
        if binding is not None and "timebase" in binding.raw:
            value = gen.env(comp, binding).get(str(binding.raw["timebase"]).replace("-", "_"))
            if isinstance(value, int):
                return value
    return None


def _cpu_map(gen: Gen, cpu_comps: list[Component]) -> Node | None:
    """cpu-map: a cluster node per cpu-cluster (by cluster-id), a core per CPU in it."""
    clusters: dict[int, list[Component]] = {}
    by_id = gen.by_id
    for comp in cpu_comps:
        parent = by_id.get(comp.parent or "")
        if parent is None or not parent.info.is_cluster or comp.id not in gen.nodes:
            return None
        cluster_id = cell_value(parent.props.get("cluster-id", 0))
        if cluster_id is None:
            gen.notes.append(f"cpu-map: left out, {parent.id}'s cluster-id "
                             f"{parent.props.get('cluster-id')!r} is not an integer")
            return None
        clusters.setdefault(cluster_id, []).append(comp)
    if not clusters:
        return None
    cpu_map = Node("cpu-map")
    for cid in sorted(clusters):
        cluster = cpu_map.add(Node(f"cluster{cid}"))
        for k, comp in enumerate(clusters[cid]):
            cluster.add(Node(f"core{k}", props={"cpu": cells(Ref(gen.label(comp.id)))}))
    return cpu_map


def add_arm_extras(gen: Gen) -> None:
    """PSCI, the generic timer, the PMU and the GIC's own interrupts, from the first Arm CPU's wiring."""
    arm = [c for c in gen.board.components if c.info.is_cpu and (b := binding_for(c.type)) and b.kind == "arm-cpu"]
    if not arm:
        return
    first = arm[0]
    conduit = first.props.get("psci-conduit", 0)
    if conduit in (1, 2):
        psci = Node("psci", props={"compatible": strings("arm,psci-1.0", "arm,psci-0.2", "arm,psci"),
                                   "method": strings("smc" if conduit == 1 else "hvc")})
        psci.props.update({k: cells(v) for k, v in PSCI_FUNCTIONS.items()})
        gen.root.add(psci)
    for comp in gen.board.components:
        binding = binding_for(comp.type)
        node = gen.nodes.get(comp.id)
        if binding is not None and node is not None and binding.kind == "arm-gicv3":
            regions = len([m for m in comp.mmio])
            node.props["#redistributor-regions"] = cells(max(regions - 1, 1))
    maint = line_specifiers(gen, first.id, "gicv3-maintenance-interrupt", 0)
    if maint:
        label, spec = maint[0]
        gic = next(n for n in gen.nodes.values() if n.label == label)
        gic.props["interrupt-parent"] = cells(Ref(label))
        gic.props["interrupts"] = cells(*spec)
    timer = [line_specifiers(gen, first.id, "unnamed-gpio-out", k) for k in TIMER_OUTPUTS]
    if all(timer):
        node = Node("timer", props={"compatible": strings("arm,armv8-timer", "arm,armv7-timer"),
                                    "interrupt-parent": cells(Ref(timer[0][0][0])),
                                    "interrupts": Cells(tuple(c for t in timer for c in t[0][1])),
                                    "always-on": None})
        gen.root.add(node)
    elif any(timer):
        gen.notes.append(f"{first.id}: the generic timer needs its secure, non-secure, virtual and hyp "
                         "outputs (unnamed-gpio-out[3], [0], [1], [2]) wired to GIC PPIs: no /timer node")
    pmu = line_specifiers(gen, first.id, "pmu-interrupt", 0)
    if pmu:
        gen.root.add(Node("pmu", props={"compatible": strings("arm,armv8-pmuv3"),
                                        "interrupt-parent": cells(Ref(pmu[0][0])), "interrupts": cells(*pmu[0][1])}))
