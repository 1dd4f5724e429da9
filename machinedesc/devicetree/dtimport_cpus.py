"""import-dtb's CPUs: /cpus and cpu-map -> CPU components (RISC-V harts, Arm CPUs) and clusters.

The reverse of cpus.py: a RISC-V CPU node's type is the table's riscv-cpu
entry of its ``riscv,isa-base``, its extensions beyond (or missing from) the
entry's are boolean properties, its ``riscv,cpu-intc`` child an interrupt
controller of the hart's inputs; an Arm CPU's type is the entry of its
compatible, ``/psci``'s method its ``psci-conduit`` (and, as -M virt does for
QEMU's built-in PSCI, no EL3, and no EL2 behind an HVC conduit). The
controllers outside /cpus are dtimport_intc's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import DeviceTreeFileError
from ..qemu.types import system_type_info
from .bindings import by_compatible, cpu_bindings, riscv_isa_order
from .cpus import PSCI_FUNCTIONS, SINGLE_LETTERS
from .dtimport import Comp, Ctrl
from .dtread import Node

if TYPE_CHECKING:
    from .dtimport import Importer

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
