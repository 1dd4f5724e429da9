"""import-dtb's PCIe hosts: a ``pci-host-ecam-generic`` node as a ``gpex-pcihost`` with MMIO windows and wires.

The reverse of pci.py, and of what hw/arm/virt.c create_pcie() and
hw/riscv/virt.c create_pcie_irq_map() build: QEMU's generic host has three
regions (0 the ECAM, 1 the PCI memory space, 2 the 64 KiB PCI I/O space),
which the machine shows to the CPU through windows (``mmio:`` entries with
``offset`` and ``size``, docs/format.md):

- ``reg`` (the ECAM) is a window of region 0 at offset 0, of reg's size;
- each ``ranges`` entry (Open Firmware's PCI bus binding: space code, PCI
  address, CPU address, size) of 32- or 64-bit memory is a window of region 1
  whose offset is the PCI address; the I/O entry maps region 2 itself (PCI
  address 0, the whole 64 KiB), else a window of it;
- ``interrupt-map`` (slot S pin P -> a controller's specifier, INTA-INTD
  swizzled as virt's ``(S + P - 1) % 4``) gives the wires of
  ``sysbus-irq[0..3]``: entry (S, P) is ``sysbus-irq[(S + P - 1) % 4]``; an
  entry that disagrees with another for the same line is noted, not guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .bindings import Binding
from .dtimport import Comp
from .dtimport_intc import input_of
from .dtread import Node, join

if TYPE_CHECKING:
    from .dtimport import Importer


#: The space code of a ranges entry's first cell (bits 25:24): I/O, 32-bit and 64-bit memory.
SPACE_IO, SPACE_MEM32, SPACE_MEM64 = 1, 2, 3
#: The relocatable/prefetchable/aliased bits of that cell, which QEMU's host has no property for.
PCI_FLAG_BITS = 0xE0000000
#: INTA-INTD: the host's sysbus-irq outputs (GPEX_NUM_IRQS).
PCI_PINS = 4
#: gpex's region 2, the PCI I/O space (hw/pci-host/gpex.c), and the ECAM bytes of one bus.
PIO_SIZE = 0x10000
ECAM_BUS_BYTES = 1 << 20


def pci_host(imp: Importer, node: Node, binding: Binding) -> None:
    """The host: its ECAM window, the windows of its ranges; interrupt-map is wired later (``pci_wires``)."""
    tree = imp.tree
    regs = tree.reg(node)
    if not regs:
        return imp.skip(node, "a PCIe host without reg: its ECAM is the reg")
    ecam, ecam_size = regs[0]
    comp = Comp(binding.type, node.path)
    comp.windows.append((0, 0, ecam_size, ecam))
    if len(regs) > 1:
        imp.unmapped.setdefault(node.path, []).append("reg entries after the ECAM")
    bus_range = tree.nums(node, "bus-range")
    if bus_range and (bus_range[0] != 0 or bus_range[-1] != max(ecam_size // ECAM_BUS_BYTES, 1) - 1):
        imp.notes.append(f"{node.path}: bus-range {bus_range}: the generator writes 0 to the ECAM's buses - 1 "
                         f"({max(ecam_size // ECAM_BUS_BYTES, 1) - 1})")
    _ranges(imp, node, comp)
    cid = imp.add(imp.id_for(node), comp)
    imp.pci_hosts.append((node, cid))
    imp.imported(node, [cid])
    imp.leftover(node, {"bus-range", "linux,pci-domain", "interrupt-map", "interrupt-map-mask"})


def _ranges(imp: Importer, node: Node, comp: Comp) -> None:
    """A window (or region 2) per ranges entry, in the tree's order."""
    tree = imp.tree
    cells = tree.nums(node, "ranges")
    cac = tree.cells_of(node, "#address-cells", 3)
    pac = tree.cells_of(node.parent, "#address-cells", 2) if node.parent is not None else 2
    sc = tree.cells_of(node, "#size-cells", 2)
    step = cac + pac + sc
    if cac != 3 or len(cells) % step:
        imp.unmapped.setdefault(node.path, []).append(f"ranges (not entries of 3 + {pac} + {sc} cells)")
        return
    for k in range(0, len(cells), step):
        head, pci = cells[k], join(cells[k + 1:k + cac])
        cpu = tree.translate(node.parent, join(cells[k + cac:k + cac + pac])) if node.parent is not None else 0
        size = join(cells[k + cac + pac:k + step])
        space = (head >> 24) & 3
        if head & PCI_FLAG_BITS:
            imp.notes.append(f"{node.path}: ranges entry {k // step} has flags {head & PCI_FLAG_BITS:#x} "
                             "(prefetchable, ...): the generator does not write them")
        if space == SPACE_IO and pci == 0 and size == PIO_SIZE:
            comp.mmio[2] = cpu
        elif space == SPACE_IO:
            comp.windows.append((2, pci, size, cpu))
        elif space in (SPACE_MEM32, SPACE_MEM64):
            wide = pci + size > 1 << 32
            if wide != (space == SPACE_MEM64):
                imp.notes.append(f"{node.path}: ranges entry {k // step} is {'64' if space == 3 else '32'}-bit "
                                 f"memory {'above' if wide else 'below'} 4 GiB: the generator writes it as "
                                 f"{'64' if wide else '32'}-bit")
            comp.windows.append((1, pci, size, cpu))
        else:
            imp.notes.append(f"{node.path}: ranges entry {k // step} is configuration space: not a window")


def pci_wires(imp: Importer) -> None:
    """sysbus-irq[0..3] of each host from its interrupt-map (run once every controller is imported)."""
    for node, cid in imp.pci_hosts:
        targets: dict[int, tuple[str, int]] = {}
        for slot, pin, ctrl, spec in _interrupt_map(imp, node):
            line = (slot + pin - 1) % PCI_PINS
            target = input_of(imp, node, ctrl, spec)
            if target is None:
                continue
            if targets.setdefault(line, target) != target:
                imp.notes.append(f"{node.path}: interrupt-map slot {slot} INT{'ABCD'[pin - 1]} goes to "
                                 f"{ctrl.path} {list(spec)}, not where the swizzle's sysbus-irq[{line}] goes "
                                 f"(slot 0 INT{'ABCD'[line]}): not wired")
        for line in sorted(targets):
            comp, index = targets[line]
            imp.wires.append((cid, "sysbus-irq", line, comp, "unnamed-gpio-in", index))


def _interrupt_map(imp: Importer, node: Node) -> list[tuple[int, int, Node, tuple[int, ...]]]:
    """(slot, pin 1-4, controller, specifier) of each interrupt-map entry; [] (noted) when it cannot be read."""
    tree = imp.tree
    cells = tree.nums(node, "interrupt-map")
    mask = tree.nums(node, "interrupt-map-mask") or [0xFFFFFFFF] * 4
    cac, icells = tree.cells_of(node, "#address-cells", 3), tree.cells_of(node, "#interrupt-cells", 1)
    if cac != 3 or icells != 1 or len(mask) != 4:
        if cells:
            imp.notes.append(f"{node.path}: interrupt-map with {cac} address and {icells} interrupt cells "
                             "(a PCI host's are 3 and 1): not wired")
        return []
    out = []
    k = 0
    while k + 5 <= len(cells):
        unit, pin = cells[k] & mask[0], cells[k + 3] & mask[3]
        ctrl = tree.phandle(node, "interrupt-map", cells[k + 4])
        # The parent unit address has the controller's #address-cells (none given: 0, as Linux reads it).
        pac, pic = tree.cells_of(ctrl, "#address-cells", 0), tree.cells_of(ctrl, "#interrupt-cells", 1)
        spec = tuple(cells[k + 5 + pac:k + 5 + pac + pic])
        k += 5 + pac + pic
        if len(spec) != pic or not 1 <= pin <= PCI_PINS:
            imp.notes.append(f"{node.path}: interrupt-map entry with pin {pin} or a short specifier: not wired")
            continue
        out.append(((unit >> 11) & 0x1F, pin, ctrl, spec))
    return out
