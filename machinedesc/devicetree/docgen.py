"""Generates docs/devicetree.md's binding table from data/bindings.yaml, so the two cannot drift.

Run ``python -m machinedesc.devicetree.docgen`` after changing the table; a
test fails while docs/devicetree.md is stale.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .bindings import Binding, all_bindings

DOC = Path(__file__).resolve().parents[2] / "docs" / "devicetree.md"
MARKER = ("<!-- generated from machinedesc/devicetree/data/bindings.yaml by "
          "`python -m machinedesc.devicetree.docgen`; do not edit below -->")


def _props(b: Binding) -> str:
    parts = []
    for name, spec in b.props.items():
        value = spec.get("value") if isinstance(spec, dict) else spec
        omit = f" (left out when {spec['omit-if']})" if isinstance(spec, dict) and "omit-if" in spec else ""
        parts.append(f"`{name}` = `{value}`{omit}")
    if b.clocks:
        parts.append("`clocks`/`clock-names`: " + ", ".join(f"`{n}` ({hz // 1_000_000} MHz fixed-clock)"
                                                            for n, hz in b.clocks.items()))
    if b.controller:
        parts.append(f"interrupt controller, `#interrupt-cells` = {b.controller['cells']} "
                     f"({b.controller['specifier']})")
    for key, what in (("isa", "riscv,isa from the type's default extensions"),
                      ("regs", "reg: " + _regs(b.raw.get("regs"))), ("timebase", "its `timebase-freq` is "
                                                                       "/cpus timebase-frequency"),
                      ("syscon", "/poweroff and /reboot (syscon-poweroff, syscon-reboot)")):
        if key in b.raw:
            parts.append(what)
    return "; ".join(parts)


def _regs(regs: Any) -> str:
    if not isinstance(regs, list):
        return ""
    return ", ".join(f"region {r.get('region', 0)} + `{r.get('offset', 0)}` size `{r['size']}`" for r in regs)


def _defaults(b: Binding) -> str:
    def shown(value: Any) -> str:
        return str(value).lower() if isinstance(value, bool) else str(value)

    text = ", ".join(f"`{k}`={shown(v)}" for k, v in b.defaults.items())
    for alt in b.raw.get("variants", ()):
        when = ", ".join(f"`{k}`={shown(v)}" for k, v in alt["when"].items())
        what = "; ".join(f"{k} {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in alt.items() if k != "when")
        text += f"; with {when}: {what}"
    return text


def build_table() -> str:
    """The Markdown table of every binding, in the table's order."""
    rows = ["| QEMU type | kind | node | compatible | interrupts from | properties | QEMU defaults assumed |",
            "|---|---|---|---|---|---|---|"]
    for b in all_bindings():
        node = "`/memory@ADDR`" if b.kind == "memory" else (
            "`/cpus/cpu@ID`" if b.kind.endswith("-cpu") else f"`{b.name}@ADDR`")
        compat = ", ".join(f'"{c}"' for c in b.compatible) or ("riscv" if b.kind == "riscv-cpu" else "")
        irqs = ", ".join(f"`{i}`" for i in b.interrupts)
        if b.kind == "sifive-plic":
            irqs = "hart-config: a context per mode letter"
        rows.append(f"| `{b.type}` | {b.kind} | {node} | {compat} | {irqs} | {_props(b)} | {_defaults(b)} |")
    return "\n".join(rows) + "\n"


def build_doc() -> str:
    text = DOC.read_text(encoding="utf-8")
    head = text.split(MARKER, 1)[0]
    return f"{head}{MARKER}\n\n## The binding table\n\n{build_table()}"


def main() -> None:
    DOC.write_text(build_doc(), encoding="utf-8")
    print(f"wrote {DOC}", file=sys.stderr)


if __name__ == "__main__":
    main()
