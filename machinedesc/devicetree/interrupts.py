"""Interrupts of the device tree: the specifier a wire into a controller gives, per device and per PLIC context.

A wire into a controller's ``unnamed-gpio-in[n]`` is a specifier of that
controller's kind (``index``: one cell; ``gic``/``gicv2``: SPI or PPI with
the level-high flag); a device's ``interrupts`` (or
``interrupts-extended``, for several parents) lists its wired outputs in
its binding's order.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..board.model import Component, LineRef
from .bindings import Binding
from .tree import Cells, Node, Ref, cell_value, cells

if TYPE_CHECKING:
    from .generate import Gen

#: Arm GIC flags of a level-high interrupt (bindings/interrupt-controller/arm,gic-v3.yaml).
GIC_LEVEL_HIGH = 4


def specifier(gen: Gen, target: LineRef) -> tuple[str, tuple[int, ...]] | None:
    """The interrupt specifier a wire into ``target`` gives: (controller label, cells), or None."""
    ctrl = gen.controllers.get(target.component)
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


def line_specifiers(gen: Gen, comp_id: str, line: str, index: int) -> list[tuple[str, tuple[int, ...]]]:
    out = []
    for target in gen.wires_from.get((comp_id, line, index), []):
        spec = specifier(gen, target)
        if spec is None:
            gen.notes.append(f"{comp_id}.{line}[{index}] drives {target.text}, not an interrupt "
                              "controller of the device tree: no interrupt for it")
        else:
            out.append(spec)
    return out


def add_interrupts(gen: Gen, comp: Component, binding: Binding, node: Node, extended: bool) -> None:
    specs: list[tuple[str, tuple[int, ...]]] = []
    for line in binding.interrupts:
        match = re.fullmatch(r"(.+)\[(\d+)\]", line)
        if match:
            specs += line_specifiers(gen, comp.id, match[1], int(match[2]))
            continue
        indices = sorted(gen.wired.get((comp.id, line), ()))
        for i in indices:
            specs += line_specifiers(gen, comp.id, line, i)
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


def plic_contexts(gen: Gen, comp: Component, node: Node, intc: Mapping[int, str]) -> None:
    """interrupts-extended of a SiFive PLIC: one entry per context of hart-config, in order."""
    config = str(comp.props.get("hart-config", ""))
    base = cell_value(comp.props.get("hartid-base", 0))
    if base is None:
        # Only without a type database for the system does such a value get this far.
        gen.notes.append(f"{comp.id}: hartid-base {comp.props.get('hartid-base')!r} is not a 32-bit hart ID: "
                          "its contexts are left out of the device tree")
        return
    bits = {"M": 11, "S": 9, "H": 10, "U": 8}  # the external-interrupt bit of each mode in mip
    # Context n is the n-th entry (sifive_plic.c parse_hart_config numbers them hart by hart, mode
    # by mode; an empty entry names no hart): a hart without a CPU node (omit: true) keeps its
    # contexts' places, marked "not present" by a -1 specifier (the sifive,plic-1.0.0 binding) on
    # some hart's controller, which Linux and OpenSBI both skip (neither is 9 nor 11).
    contexts: list[tuple[str | None, int]] = []
    for k, modes in enumerate(m for m in config.split(",") if m):
        ctrl = gen.controllers.get(intc.get(base + k, ""))
        label = ctrl[0] if ctrl else None
        if label is None:
            gen.notes.append(f"{comp.id}: hart-config names hart {base + k}, which has no CPU node: "
                              "its contexts are marked not present (-1)")
        contexts += [(label, bits.get(mode, 0)) for mode in modes]
    present = [label for label, _ in contexts if label is not None]
    if present:
        items: list[int | Ref] = []
        for label, bit in contexts:
            items += [Ref(label), bit] if label is not None else [Ref(present[0]), 0xFFFFFFFF]
        node.props["interrupts-extended"] = Cells(tuple(items))
