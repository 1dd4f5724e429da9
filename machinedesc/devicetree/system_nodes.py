"""The nodes a board implies beyond its devices: /chosen and /aliases, /poweroff and /reboot, fixed clocks.

They run after the device nodes: each reads ``gen.nodes`` (the component
nodes made so far) and the bindings (``console``, ``syscon``, ``clocks``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..board.model import Component
from .bindings import binding_for
from .tree import Cells, Node, Ref, Strings, cells, strings

if TYPE_CHECKING:
    from .generate import Gen


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


def add_chosen(gen: Gen, bootargs: str | None) -> None:
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


def add_syscon(gen: Gen) -> None:
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


def add_clocks(gen: Gen) -> None:
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
