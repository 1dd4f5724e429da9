"""import-dtb's checks of what a tree says that no machine can place, or no model has.

A node whose ``reg`` ends beyond the 64-bit address space (as the CPU sees
it, through the buses' ``ranges``) is skipped (``beyond_64_bits``).

A tree may name what its QEMU model does not have: a second interrupt of a
UART that has one ``sysbus-irq``, source 0xffffffff of a PLIC with 10, a
mip bit beyond a hart's inputs. Such a wire would make a board that fails
``validate``; it is left out and the report says so. The counts are the
type data's (``qemu/types.py``: a number, or an expression over the
component's properties such as ``num_sources``), as ``board/checks.py``
reads them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..board.expr import ExprError, evaluate
from ..errors import DeviceTreeFileError
from ..qemu.types import system_type_info
from .dtread import Node, Tree

if TYPE_CHECKING:
    from .dtimport import Importer


def beyond_64_bits(tree: Tree, node: Node) -> str | None:
    """Why ``node`` cannot be placed when a ``reg`` entry ends beyond the 64-bit address space, else None
    (also when its reg cannot be read: what handles the node says so, if it reads reg at all)."""
    try:
        regs = tree.reg(node) if "reg" in node.props else []
    except DeviceTreeFileError:
        return None
    for k, (addr, size) in enumerate(regs):
        if addr + size > 1 << 64:
            return (f"reg entry {k} [{addr:#x}, +{size:#x}) ends beyond the 64-bit address space "
                    "(as the CPU sees it, through the buses' ranges)")
    return None


def drop_wires_out_of_range(imp: Importer) -> None:
    """Leave out (noted in the report) each wire from an output or to an input its component lacks."""
    kept = []
    for wire in imp.wires:
        for cid, name, index, output in ((*wire[:3], True), (*wire[3:], False)):
            count = lines(imp, cid, name, output)
            if count is not None and not 0 <= index < count:
                imp.notes.append(f"{imp.comps[wire[0]].path}: {'output' if output else 'input'} {index} of "
                                 f"{cid}, which has {count} {name} lines: not wired")
                break
        else:
            kept.append(wire)
    imp.wires = kept


def lines(imp: Importer, cid: str, name: str, output: bool) -> int | None:
    """How many ``name`` lines component ``cid`` has with its properties; None when that is not known."""
    comp = imp.comps[cid]
    info = system_type_info(comp.type, imp.system)
    line = info.output(name) if output else info.input(name)
    count = line.count if line is not None else None
    if count is None or isinstance(count, int):
        return count
    env = {**info.defaults(), **{k.replace("-", "_"): v for k, v in comp.props.items()}}
    try:
        value = evaluate(count, env)
    except ExprError:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
