"""import-dtb's interrupts: the controllers (ACLINT/CLINT, PLIC, GIC v3 and v2), what a GIC implies, devices' wires.

The reverse of generate.py's controller kinds (interrupts.py): each becomes
a component and an entry of ``Importer.ctrls`` (how a specifier names one of
its inputs), and its outputs to the harts wires. What a GIC binding (v3, or
v2: arm_gic) implies without saying (its IRQ/FIQ/VIRQ/VFIQ outputs to each
CPU, the CPUs' timer and PMU outputs on PPIs) becomes wires too; ``num-irq``
the tree does not give is chosen and named in the report. Last, each
imported device's ``interrupts`` become wires into the controllers' inputs
(``wire_sources``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from ..qemu.types import system_type_info
from .bindings import Binding, by_compatible
from .cpus import TIMER_OUTPUTS
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


def input_of(imp: Importer, node: Node, ctrl: Node, spec: tuple[int, ...]) -> tuple[str, int] | None:
    """The (component, unnamed-gpio-in index) a specifier of ``node`` names; None (noted) when none."""
    c = imp.ctrls.get(ctrl.path)
    if c is None:
        imp.notes.append(f"{node.path}: an interrupt to {ctrl.path}, which is not imported: not wired")
        return None
    if len(spec) < (1 if c.kind == "index" else 3):
        imp.notes.append(f"{node.path}: interrupt specifier {list(spec)} of {ctrl.path} is too short to name "
                          "an input (its #interrupt-cells): not wired")
        return None
    if c.kind == "index":
        return c.comp, spec[0]
    if spec[0] == 0:  # GIC SPI
        return c.comp, spec[1]
    imp.notes.append(f"{node.path}: GIC interrupt {list(spec)} is not an SPI: a device's PPI is not wired")
    return None


def wire_sources(imp: Importer) -> None:
    """Wires from each imported device's interrupts: the k-th specifier is its binding's k-th line."""
    for node, binding, ids in imp.sources:
        specs = imp.tree.interrupts(node)
        for k, (ctrl, spec) in enumerate(specs):
            line = _line(binding.interrupts, k)
            target = input_of(imp, node, ctrl, spec)
            if line is None:
                imp.notes.append(f"{node.path}: interrupt {k} has no output line in the binding of "
                                  f"{binding.type}: not wired")
            elif target is not None:
                imp.wires.append((ids[0], line[0], line[1], target[0], "unnamed-gpio-in", target[1]))


def _line(lines: tuple[str, ...], k: int) -> tuple[str, int] | None:
    """The k-th output line of a binding's ``interrupts``: a family (``sysbus-irq``: [k]) or a list."""
    if len(lines) == 1 and "[" not in lines[0]:
        return lines[0], k
    if k >= len(lines):
        return None
    m = re.fullmatch(r"(.+)\[(\d+)\]", lines[k])
    return (m[1], int(m[2])) if m else None
