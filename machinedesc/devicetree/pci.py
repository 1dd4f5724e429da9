"""PCIe host bridges (``gpex-pcihost``): a ``pci-host-ecam-generic`` node whose ``ranges`` come from the windows.

QEMU's generic PCIe host has three MMIO regions (hw/pci-host/gpex.c): 0 the
ECAM configuration space, 1 the PCI memory space (the whole 64-bit PCI
address space), 2 the PCI I/O space (64 KiB). A board shows them to the CPU
as hw/arm/virt.c and hw/riscv/virt.c do: the ECAM through a window at
offset 0 (or the region itself), PCI memory through windows whose offset is
the PCI bus address, the I/O space as a region. The node follows the
binding of Linux's Documentation/devicetree/bindings/pci/host-generic-pci.yaml
as QEMU's virt boards write it: ``reg`` the ECAM, ``ranges`` one entry per
window of region 1 (32-bit memory when it ends below 4 GiB, else 64-bit)
and one for the I/O space, ``bus-range`` from the ECAM size (1 MiB a bus),
``interrupt-map`` from the wiring of ``sysbus-irq[0..3]`` (INTA-INTD,
swizzled by slot as virt's create_pcie_irq_map does).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..board.checks import region_size
from ..board.model import Component, Mmio
from .bindings import Binding
from .interrupts import line_specifiers
from .tree import Cells, Node, Ref, Strings, cells, split64

if TYPE_CHECKING:
    from .generate import Gen

#: The first cell of a ranges entry (the PCI address's space code), Open Firmware's PCI bus binding.
PCI_IO, PCI_MEM32, PCI_MEM64 = 0x01000000, 0x02000000, 0x03000000
#: INTA..INTD: the host's interrupt outputs, sysbus-irq[0..3] (GPEX_NUM_IRQS).
PCI_PINS = 4
ECAM_BUS_BYTES = 1 << 20


def _size(comp: Component, m: Mmio) -> int | None:
    return m.size if m.window else region_size(comp, m.region)


def pci_host(gen: Gen, comp: Component, binding: Binding) -> None:
    """The host bridge's node (without interrupt-map: ``pci_interrupt_map`` adds it once controllers exist)."""
    ecam = next((m for m in comp.mmio if m.region == 0 and not m.window), None) or \
        next((m for m in comp.mmio if m.region == 0 and m.offset == 0), None)
    ecam_size = _size(comp, ecam) if ecam is not None else None
    if ecam is None or not ecam_size:
        gen.notes.append(f"{comp.id} ({comp.type}): its ECAM (region 0) is not mapped at offset 0: "
                         "left out of the device tree")
        return
    ranges: list[tuple[int, ...]] = []
    for m in comp.mmio:
        size = _size(comp, m)
        if m is ecam or size is None:
            continue
        pci = m.offset or 0
        if m.region == 2:
            space = PCI_IO
        elif m.region == 1 and m.window:
            space = PCI_MEM64 if pci + size > 1 << 32 else PCI_MEM32
        else:
            gen.notes.append(f"{comp.id} ({comp.type}): {m.describe(comp.id)} at {m.addr:#x} is not in ranges "
                             "(PCI memory is shown through windows of region 1)")
            continue
        ranges.append((space, *split64(pci, 2), *split64(m.addr, 2), *split64(size, 2)))
    node = Node(binding.name, f"{ecam.addr:x}", gen.label(comp.id), {
        "compatible": Strings(binding.compatible),
        "device_type": Strings(("pci",)),
        "reg": Cells((*split64(ecam.addr, 2), *split64(ecam_size, 2))),
        "bus-range": Cells((0, max(ecam_size // ECAM_BUS_BYTES, 1) - 1)),
        "linux,pci-domain": cells(0),
        "#address-cells": cells(3),
        "#size-cells": cells(2),
        "#interrupt-cells": cells(1),
        "dma-coherent": None,
    })
    if ranges:
        # I/O, then 32-bit, then 64-bit memory, each by PCI address: the order of QEMU's virt boards.
        node.props["ranges"] = Cells(tuple(c for entry in sorted(ranges) for c in entry))
    gen.nodes[comp.id] = node
    gen.bus.add(node)


def pci_interrupt_map(gen: Gen, comp: Component, node: Node) -> None:
    """``interrupt-map`` of a host bridge: slot S pin P (1-4) is sysbus-irq[(S + P - 1) % 4]'s interrupt."""
    specs = [line_specifiers(gen, comp.id, "sysbus-irq", k) for k in range(PCI_PINS)]
    if not any(specs):
        return
    if not all(len(s) == 1 for s in specs):
        gen.notes.append(f"{comp.id} ({comp.type}): sysbus-irq[0..3] are not each wired to one interrupt "
                         "controller input of the device tree: no interrupt-map")
        return
    items: list[int | Ref] = []
    for slot in range(PCI_PINS):
        for pin in range(PCI_PINS):
            label, spec = specs[(slot + pin) % PCI_PINS][0]
            items += [slot << 11, 0, 0, pin + 1, Ref(label), *spec]
    node.props["interrupt-map"] = Cells(tuple(items))
    node.props["interrupt-map-mask"] = Cells((3 << 11, 0, 0, 7))
