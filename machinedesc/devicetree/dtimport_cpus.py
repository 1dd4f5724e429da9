"""import-dtb's CPUs and interrupt controllers: /cpus and cpu-map, the ACLINT/CLINT, the PLIC, the GICv3, Arm extras.

The reverse of cpus.py and of generate.py's controller kinds: a RISC-V CPU
node's type is the table's riscv-cpu entry of its ``riscv,isa-base``, its
extensions beyond (or missing from) the entry's are boolean properties;
an Arm CPU's type is the entry of its compatible, ``/psci``'s method its
``psci-conduit`` (and, as -M virt does for QEMU's built-in PSCI, no EL3, and
no EL2 behind an HVC conduit). What a GIC binding (v3, or v2: arm_gic)
implies without saying (its IRQ/FIQ/VIRQ/VFIQ outputs to each CPU, the CPUs'
timer and PMU outputs on PPIs) becomes wires too; ``num-irq`` the tree does not give is chosen and
named in the report.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DeviceTreeFileError
from .bindings import Binding, by_compatible, cpu_bindings, riscv_isa_order
from .cpus import PSCI_FUNCTIONS, SINGLE_LETTERS, TIMER_OUTPUTS
from ..qemu.types import system_type_info
from .dtimport import Comp, Ctrl
from .dtread import Node

if TYPE_CHECKING:
    from .dtimport import Importer

#: The mip bit of each mode's external interrupt (a PLIC context's specifier) and its letter in hart-config.
MODE_OF_BIT = {11: "M", 9: "S", 10: "H", 8: "U"}
#: The GICv3 redistributor frame of one CPU (RD_base + SGI_base), bytes.
GICV3_REDIST_SIZE = 0x20000
#: The CPUs a GICv2 serves (GIC_NCPU, include/hw/intc/arm_gic_common.h).
GICV2_MAX_CPUS = 8
#: The most SPIs a GICv3 has in QEMU: num-irq is at most GICV3_MAXIRQ (1020), the 32 SGIs and PPIs
#: plus a multiple of 32 (arm_gicv3_common_realize): 960.
GICV3_MAX_SPIS = (1020 - 32) // 32 * 32
#: PPIs are 0..15 (an interrupt specifier's second cell, GIC binding).
GIC_PPIS = 16
_MMU_MODES = ("sv39", "sv48", "sv57", "sv64")


def import_cpus(imp: Importer) -> None:
    """/cpus: the system, a cpu-cluster per cpu-map cluster, a component per CPU node; /psci."""
    tree = imp.tree
    cpus = tree.root.nodes.get("cpus")
    nodes = [n for n in cpus.nodes.values() if tree.string(n, "device_type") == "cpu"] if cpus is not None else []
    if not nodes:
        raise DeviceTreeFileError(tree.locate(cpus or tree.root), "no CPU nodes (device_type \"cpu\" under /cpus): "
                                  "a board needs CPUs, and they say which qemu-system-X it is for")
    riscv = [n for n in nodes if _isa_base(imp, n)]
    imp.system = ("riscv32" if _isa_base(imp, riscv[0]).startswith("rv32") else "riscv64") if riscv else "aarch64"
    conduit = _psci(imp)
    imp.folded(cpus, "the CPUs' container (timebase-frequency goes to the timer)")
    imp.leftover(cpus, {"timebase-frequency"})
    nodes.sort(key=lambda n: (tree.num(n, "reg") or 0, n.path))
    first: dict[int, Node] = {}
    for node in list(nodes):  # two CPUs of one hart ID / MPIDR: the machine would not tell them apart
        reg = tree.num(node, "reg") or 0
        if reg in first:
            imp.skip(node, f"reg {reg:#x} again (the hart ID or MPIDR of {first[reg].path}): one CPU each")
            nodes.remove(node)
        first.setdefault(reg, node)
    for index, node in enumerate(nodes):
        if riscv:
            _riscv_cpu(imp, node)
        else:
            _arm_cpu(imp, node, index, conduit)
    _clusters(imp, cpus)


def _isa_base(imp: Importer, node: Node) -> str:
    base = imp.tree.string(node, "riscv,isa-base")
    isa = imp.tree.string(node, "riscv,isa") or ""
    return base or (isa[:4] + "i" if isa.startswith("rv") else "")


def _psci(imp: Importer) -> int:
    """psci-conduit from /psci's method (1: smc, 2: hvc; 0 without one), the node folded."""
    for node in imp.tree.root.nodes.values():
        if not any(c.startswith("arm,psci") for c in imp.tree.strings(node, "compatible")):
            continue
        method = imp.tree.string(node, "method")
        if method not in ("smc", "hvc"):
            imp.skip(node, f"PSCI method {method!r}: QEMU's built-in PSCI answers smc or hvc")
            return 0
        imp.folded(node, f"QEMU's built-in PSCI: psci-conduit {1 if method == 'smc' else 2} on the CPUs")
        imp.leftover(node, {"method", *PSCI_FUNCTIONS})
        return 1 if method == "smc" else 2
    return 0


def _riscv_cpu(imp: Importer, node: Node) -> None:
    tree = imp.tree
    base = _isa_base(imp, node)
    binding = next((b for b in cpu_bindings("riscv-cpu") if b.raw.get("isa-base") == base), None)
    if binding is None or not imp.known_type(binding.type):
        return imp.skip(node, f"no binding: no RISC-V CPU type of the table has riscv,isa-base {base}")
    hartid = tree.num(node, "reg") or 0
    consumed = {"riscv,isa", "riscv,isa-base", "riscv,isa-extensions", "mmu-type"}
    props: dict[str, Any] = {"mhartid": hartid, **imp.reverse_props(node, binding, consumed)}
    exts = tree.strings(node, "riscv,isa-extensions") or _isa_string_extensions(tree.string(node, "riscv,isa"))
    default = list(binding.raw.get("isa", []))
    # An extension is turned on or off by the CPU property of its name; QEMU derives some
    # (zic64b, ziccamoa, ...) from others, with no property to set: those cannot follow the tree.
    settable = set(system_type_info(binding.type, imp.system).properties or ())
    known = (set(riscv_isa_order()) | set(SINGLE_LETTERS)) & settable if settable else set()
    missing = []
    for ext in [e for e in exts if e not in default] + [e for e in default if e not in exts]:
        if ext in known:
            props[ext] = ext in exts
        else:
            missing.append(("+" if ext in exts else "-") + ext)
    if missing:
        imp.unmapped.setdefault(node.path, []).append(
            f"riscv,isa-extensions {' '.join(missing)} (no QEMU CPU property turns them on or off)")
    props.update(_mmu(imp, node, str(binding.raw.get("mmu-type", ""))))
    cid = imp.add(f"hart{hartid}", Comp(binding.type, node.path, props))
    imp.cpus.append(cid)
    imp.imported(node, [cid])
    imp.leftover(node, consumed)
    for child in node.nodes.values():
        if "riscv,cpu-intc" in tree.strings(child, "compatible"):
            imp.ctrls[child.path] = Ctrl("index", cid)
            imp.folded(child, f"{cid}'s interrupt inputs (unnamed-gpio-in[mip bit])")
            imp.leftover(child, set())


def _isa_string_extensions(isa: str | None) -> list[str]:
    """The extensions of a riscv,isa string (rv64imafdc_zicsr_...): single letters, then the rest."""
    if not isa or not isa.startswith("rv"):
        return []
    first, *multi = isa[4:].split("_")
    return ["i", *[c for c in first if c != "i"], *multi] if isa[4:5] in ("i", "e") else [*first, *multi]


def _mmu(imp: Importer, node: Node, default: str) -> dict[str, bool]:
    """The satp modes to turn off so that the highest left is the node's mmu-type (cpus._mmu_type)."""
    want = (imp.tree.string(node, "mmu-type") or default).split(",")[-1]
    top = default.split(",")[-1]
    if want == top or top not in _MMU_MODES:
        return {}
    if want != "none" and want not in _MMU_MODES:
        imp.unmapped.setdefault(node.path, []).append(f"mmu-type {want}")
        return {}
    upto = -1 if want == "none" else _MMU_MODES.index(want)
    return {m: False for k, m in enumerate(_MMU_MODES) if upto < k <= _MMU_MODES.index(top)}


def _arm_cpu(imp: Importer, node: Node, index: int, conduit: int) -> None:
    tree = imp.tree
    binding = next((by_compatible()[c] for c in tree.strings(node, "compatible")
                    if c in by_compatible() and by_compatible()[c].kind == "arm-cpu"), None)
    if binding is None or not imp.known_type(binding.type):
        return imp.skip(node, f"no binding for CPU {', '.join(tree.strings(node, 'compatible'))}")
    consumed: set[str] = set()
    props: dict[str, Any] = {}
    mpidr = tree.num(node, "reg") or 0
    if mpidr != ((index // 8) << 8) | (index % 8):
        props["mp-affinity"] = mpidr
    method = tree.string(node, "enable-method")
    if method == "psci" and conduit:
        consumed.add("enable-method")
        # -M virt gives QEMU's PSCI to a guest without EL3 (and without EL2 behind an HVC conduit).
        props.update({"has_el3": False, **({"has_el2": False} if conduit == 2 else {}), "psci-conduit": conduit})
    cid = imp.add(f"cpu{index}", Comp(binding.type, node.path, props))
    imp.cpus.append(cid)
    imp.imported(node, [cid])
    imp.leftover(node, consumed)


def _clusters(imp: Importer, cpus: Node) -> None:
    """A cpu-cluster per cpu-map cluster (cluster-id in tree order); CPUs in none join one more."""
    of_node = {imp.comps[cid].path: cid for cid in imp.cpus}
    groups: list[tuple[Node | None, list[str]]] = []
    cpu_map = cpus.nodes.get("cpu-map")
    taken: set[str] = set()
    if cpu_map is not None:
        imp.folded(cpu_map, "cpu-map (its clusters are cpu-cluster components)")
        for sub in _subtree(cpu_map):
            cores = [c for c in sub.nodes.values() if c.name.startswith("core")]
            members = [of_node[t.path] for core in cores for t in _core_cpus(imp, core) if t.path in of_node]
            again = sorted({m for m in members if m in taken or members.count(m) > 1})
            if again:
                imp.notes.append(f"{sub.path}: CPUs {', '.join(again)} are named by more than one cpu-map core: "
                                 "each stays in the first cluster that names it")
            members = [m for m in dict.fromkeys(members) if m not in taken]
            taken |= set(members)
            if members:
                groups.append((sub, members))
            imp.folded(sub, "cpu-map (its clusters are cpu-cluster components)")
    placed = {m for _, ms in groups for m in ms}
    rest = [cid for cid in imp.cpus if cid not in placed]
    if rest:
        if cpu_map is not None:
            imp.notes.append(f"CPUs {', '.join(rest)} are in no cpu-map cluster: cluster{len(groups)} holds them")
        groups.append((None, rest))
    for k, (_sub, members) in enumerate(groups):
        cluster = imp.add(f"cluster{k}", Comp("cpu-cluster", (cpu_map.path if cpu_map is not None else cpus.path),
                                              {"cluster-id": k}))
        for cid in members:
            imp.comps[cid].parent = cluster
    # Clusters first, then the CPUs: the order the board writes them.
    order = [c for c in imp.comps if imp.comps[c].type == "cpu-cluster"] + [c for c in imp.comps
                                                                            if imp.comps[c].type != "cpu-cluster"]
    imp.comps = {c: imp.comps[c] for c in order}


def _subtree(node: Node) -> list[Node]:
    out = []
    for child in node.nodes.values():
        out.append(child)
        out.extend(_subtree(child))
    return out


def _core_cpus(imp: Importer, core: Node) -> list[Node]:
    """The CPU nodes a cpu-map core names (its ``cpu``, or its threads')."""
    holders = [core, *[t for t in core.nodes.values() if t.name.startswith("thread")]]
    return [imp.tree.phandle(h, "cpu", n) for h in holders for n in imp.tree.nums(h, "cpu")]


# ---------------------------------------------------------------- interrupt controllers


def clint_like(imp: Importer, node: Node, parts: list[dict[str, Any]]) -> None:
    """An ACLINT MSWI/SSWI/MTIMER node, or a SiFive CLINT (several parts): components and wires to the harts."""
    tree = imp.tree
    regs = tree.reg(node)
    if not regs:
        return imp.skip(node, "no reg")
    outs: list[list[tuple[str, int]]] = [[] for _ in parts]
    for ctrl, spec in tree.interrupts(node):
        c = imp.ctrls.get(ctrl.path)
        k = next((i for i, p in enumerate(parts) if spec and (len(parts) == 1 or p.get("mip") == spec[0])), None)
        if c is None or k is None:
            imp.notes.append(f"{node.path}: interrupts-extended entry {ctrl.path} {list(spec)} names no hart "
                             "input of an imported part: not wired")
            continue
        outs[k].append((c.comp, spec[0]))
    timebase = tree.num(tree.root.nodes["cpus"], "timebase-frequency")
    ids = []
    for part, targets in zip(parts, outs, strict=True):
        binding = by_compatible_type(str(part["type"]))
        props: dict[str, Any] = dict(part.get("props", {}))
        hartids = sorted({int(imp.comps[h].props["mhartid"]) for h, _ in targets})
        first = hartids[0] if hartids else 0
        props.update({"hartid-base": first, "num-harts": len(hartids) or 1})
        if hartids and hartids != list(range(first, first + len(hartids))):
            imp.notes.append(f"{node.path}: harts {hartids} are not consecutive: num-harts covers "
                             f"{first}..{hartids[-1]}")
            props["num-harts"] = hartids[-1] - first + 1
        if part["type"] == "riscv.aclint.mtimer" and timebase is not None:
            props["timebase-freq"] = timebase
        mmio = _clint_mmio(imp, node, part, regs, props, binding)
        cid = imp.add(imp.fresh_id(str(part.get("name", "clint"))), Comp(str(part["type"]), node.path, props, mmio))
        ids.append(cid)
        for h, bit in targets:
            imp.wires.append((cid, "unnamed-gpio-out", int(imp.comps[h].props["mhartid"]) - first,
                              h, "unnamed-gpio-in", bit))
    imp.imported(node, ids)
    imp.leftover(node, set())


def by_compatible_type(qemu_type: str) -> Binding | None:
    return next((b for b in by_compatible().values() if b.type == qemu_type), None)


def _clint_mmio(imp: Importer, node: Node, part: dict[str, Any], regs: list[tuple[int, int]],
                props: dict[str, Any], binding: Binding | None) -> dict[int, int]:
    """Region 0's address; an ACLINT MTIMER's two reg entries (mtime, mtimecmp) give time-base and its size."""
    if part["type"] != "riscv.aclint.mtimer" or "offset" in part and len(regs) == 1:
        return {0: regs[0][0] + int(part.get("offset", 0))}
    if len(regs) != 2:
        imp.notes.append(f"{node.path}: an ACLINT MTIMER has two reg entries (mtime, mtimecmp): using the first")
        return {0: regs[0][0]}
    timecmp = int((binding.defaults if binding else {}).get("timecmp-base", 0))
    base = regs[1][0] - timecmp
    props["time-base"] = regs[0][0] - base
    props["aperture-size"] = max(a + s for a, s in regs) - base
    return {0: base}


def plic(imp: Importer, node: Node, binding: Binding) -> None:
    """A SiFive PLIC: its contexts (interrupts-extended) are hart-config; S and M contexts wired to the harts."""
    tree = imp.tree
    regs = tree.reg(node)
    if not regs:
        return imp.skip(node, "no reg")
    consumed: set[str] = set()
    props: dict[str, Any] = {**binding.raw.get("import-props", {}), **imp.reverse_props(node, binding, consumed)}
    for name, (lo, hi, why) in system_type_info(binding.type, imp.system).limits.items():
        if isinstance(props.get(name), int) and not lo <= props[name] <= hi:
            return imp.skip(node, f"{name} {props[name]} (from the tree) is beyond QEMU's {binding.type}: {why}")
    groups: list[tuple[str, str]] = []  # (hart component, modes)
    for ctrl, spec in tree.interrupts(node):
        c = imp.ctrls.get(ctrl.path)
        mode = MODE_OF_BIT.get(spec[0]) if spec else None
        if c is None or mode is None:
            imp.notes.append(f"{node.path}: context {ctrl.path} {list(spec)} is not a hart's external interrupt")
            continue
        if groups and groups[-1][0] == c.comp:
            groups[-1] = (c.comp, groups[-1][1] + mode)
        else:
            groups.append((c.comp, mode))
    hartids = [int(imp.comps[h].props["mhartid"]) for h, _ in groups]
    first = hartids[0] if hartids else 0
    if hartids != list(range(first, first + len(hartids))):
        imp.notes.append(f"{node.path}: contexts of harts {hartids}: hart-config takes consecutive hart IDs")
    props.update({"hart-config": ",".join(m for _, m in groups), "hartid-base": first, "aperture-size": regs[0][1]})
    cid = imp.add(imp.id_for(node),
                  Comp(binding.type, node.path, props, {0: regs[0][0]}))
    for k, (hart, modes) in enumerate(groups):
        for mode in modes:
            if mode in "SM":
                # QEMU's PLIC: S-mode outputs first, then M-mode (hw/intc/sifive_plic.c sifive_plic_create).
                imp.wires.append((cid, "unnamed-gpio-out", k if mode == "S" else len(groups) + k,
                                  hart, "unnamed-gpio-in", 9 if mode == "S" else 11))
            else:
                imp.notes.append(f"{node.path}: {hart}'s {mode}-mode context: QEMU's PLIC drives only M and S")
    imp.ctrls[node.path] = Ctrl("index", cid)
    imp.imported(node, [cid])
    imp.leftover(node, consumed)


def gic(imp: Importer, node: Node, binding: Binding) -> None:
    """An Arm GICv3 (distributor, redistributors) or GICv2 (distributor, CPU interface); num-irq from the SPIs used."""
    tree = imp.tree
    regs = tree.reg(node)
    v2 = binding.kind == "arm-gicv2"
    if len(regs) < 2:
        second = "CPU interface" if v2 else "redistributor"
        return imp.skip(node, f"a GIC needs its distributor and {second} reg entries")
    n = len(imp.cpus)
    used = [spec[1] for other in tree.dt.node_iter() if "interrupts" in other.props or
            "interrupts-extended" in other.props for ctrl, spec in tree.interrupts(other)
            if ctrl is node and len(spec) == 3 and spec[0] == 0 and spec[1] < GICV3_MAX_SPIS]
    spis = max(32, -(-(max(used, default=0) + 1) // 32) * 32)
    imp.notes.append(f"{node.path}: num-irq {spis + 32} (the tree does not say): {spis} SPIs, the smallest multiple "
                     f"of 32 above the highest it uses ({max(used, default=0)}), plus 32")
    if v2:
        props = {**_gicv2_props(imp, node, binding, regs, n), "num-irq": spis + 32}
    else:
        if tree.num(node, "#redistributor-regions") not in (None, 1) or len(regs) > 2:
            imp.unmapped.setdefault(node.path, []).append("reg entries after the first redistributor region")
        if regs[1][1] < n * GICV3_REDIST_SIZE:
            imp.notes.append(f"{node.path}: the redistributor region holds {regs[1][1] // GICV3_REDIST_SIZE} frames "
                             f"for {n} CPUs")
        props = {"revision": 3, "num-cpu": n, "num-irq": spis + 32, "redist-region-count": [n]}
    cid = imp.add(imp.id_for(node),
                  Comp(binding.type, node.path, props, {0: regs[0][0], 1: regs[1][0]}))
    imp.ctrls[node.path] = Ctrl("gic", cid)
    imp.gic = (node, cid, spis)
    imp.imported(node, [cid])
    imp.leftover(node, {"#redistributor-regions"})


def _gicv2_props(imp: Importer, node: Node, binding: Binding, regs: list[tuple[int, int]], n: int) -> dict[str, Any]:
    """arm_gic's properties: revision 2 (1 for a variant that says so), num-cpu; what is left out, noted."""
    if n > GICV2_MAX_CPUS:
        imp.notes.append(f"{node.path}: a GICv2 serves at most {GICV2_MAX_CPUS} CPUs, the tree has {n}")
    if len(regs) > 2:
        # -M virt,virtualization=on: GICH and GICV (hw/arm/virt.c create_gic); their maintenance interrupt is
        # the GIC's own output, which the board's line table does not count (qemu_types.yaml arm_gic).
        imp.unmapped.setdefault(node.path, []).append(
            "reg entries after the CPU interface (the virtualization extensions' interfaces)")
    return {"revision": int(binding.raw.get("when", {}).get("revision", 2)), "num-cpu": n}


def arm_extras(imp: Importer) -> None:
    """What a GIC implies: its outputs to each CPU; the timer and PMU PPIs (and a GICv3's maintenance) of each CPU."""
    if imp.gic is None:
        for node in imp.arm_nodes:
            imp.skip(node, "needs a GIC (v2 or v3), which is not imported")
        return
    node, gic_id, spis = imp.gic
    n = len(imp.cpus)
    for i, cpu in enumerate(imp.cpus):
        for j in range(4):  # IRQ, FIQ, VIRQ, VFIQ (hw/arm/virt.c create_gic)
            imp.wires.append((gic_id, "sysbus-irq", j * n + i, cpu, "unnamed-gpio-in", j))
    imp.implied = 4 * n
    if imp.comps[gic_id].type == "arm_gic":
        if imp.tree.interrupts(node):
            imp.notes.append(f"{node.path}: the GICv2's maintenance interrupt (virtualization extensions): not wired")
    else:
        _ppis(imp, node, spis, [("gicv3-maintenance-interrupt", 0)])
    for extra in imp.arm_nodes:
        compat = imp.tree.strings(extra, "compatible")
        if "arm,armv8-pmuv3" in compat:
            _ppis(imp, extra, spis, [("pmu-interrupt", 0)])
            imp.folded(extra, "each CPU's pmu-interrupt, wired to its PPI")
        else:
            _ppis(imp, extra, spis, [("unnamed-gpio-out", k) for k in TIMER_OUTPUTS])
            imp.folded(extra, "each CPU's generic timer outputs, wired to their PPIs")
        imp.leftover(extra, {"always-on"})


def _ppis(imp: Importer, node: Node, spis: int, lines: list[tuple[str, int]]) -> None:
    """Wire each CPU's ``lines`` (in order) to the PPIs of ``node``'s interrupts."""
    specs = [spec for _ctrl, spec in imp.tree.interrupts(node)]
    for k, spec in enumerate(specs):
        if k >= len(lines) or len(spec) != 3 or spec[0] != 1 or spec[1] >= GIC_PPIS:
            imp.notes.append(f"{node.path}: interrupt {k} {list(spec)}: no CPU output for it: not wired")
            continue
        for i, cpu in enumerate(imp.cpus):
            imp.wires.append((cpu, lines[k][0], lines[k][1], imp.gic[1] if imp.gic else "", "unnamed-gpio-in",
                              spis + 32 * i + 16 + spec[1]))
