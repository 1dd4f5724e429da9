"""The binding table (data/bindings.yaml): which QEMU type becomes which device-tree node."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ruamel.yaml import YAML


@dataclass(frozen=True)
class Binding:
    """One entry of the table; ``raw`` keeps the keys only some kinds read (isa, regs, ...)."""

    type: str
    kind: str = "device"
    name: str = "device"
    compatible: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    props: Mapping[str, Any] = field(default_factory=dict)
    interrupts: tuple[str, ...] = ()
    clocks: Mapping[str, int] = field(default_factory=dict)
    console: bool = False
    controller: Mapping[str, Any] | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


@functools.cache
def _table() -> dict[str, Any]:
    text = resources.files("machinedesc.devicetree.data").joinpath("bindings.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = YAML(typ="safe").load(text)
    return data


def system_info(system: str) -> Mapping[str, Any]:
    """The per-system settings (``bus``: the node devices go under, "" for the root)."""
    systems: Mapping[str, Mapping[str, Any]] = _table()["systems"]
    return systems.get(system, {"bus": "soc"})


def riscv_isa_order() -> tuple[str, ...]:
    """QEMU's order of the multi-letter RISC-V extensions (the table's ``riscv-isa-order``)."""
    return tuple(_table().get("riscv-isa-order", ()))


def all_bindings() -> list[Binding]:
    """Every entry, in the table's order (for docs/devicetree.md)."""
    return [_binding(key, spec) for key, spec in _table()["types"].items()]


@functools.cache
def binding_for(qemu_type: str) -> Binding | None:
    """The entry for ``qemu_type`` (exact name, then the first matching pattern), or None."""
    types: Mapping[str, Any] = _table()["types"]
    spec = types.get(qemu_type)
    if spec is None:
        spec = next((s for key, s in types.items() if fnmatch.fnmatchcase(qemu_type, key)), None)
    return None if spec is None else _binding(qemu_type, spec)


def variant(binding: Binding, env: Mapping[str, Any]) -> Binding:
    """The binding for a component with properties ``env`` ('-' as '_'): the first matching variant's
    keys over the entry's own, or the entry itself."""
    for alt in binding.raw.get("variants", ()):
        if all(env.get(k.replace("-", "_")) == v for k, v in alt["when"].items()):
            merged = {k: v for k, v in binding.raw.items() if k != "variants"}
            merged.update({k: v for k, v in alt.items() if k != "when"})
            return _binding(binding.type, merged)
    return binding


def _binding(qemu_type: str, spec: Mapping[str, Any]) -> Binding:
    irqs = spec.get("interrupts", ())
    return Binding(
        type=qemu_type, kind=spec.get("kind", "device"), name=spec.get("name", "device"),
        compatible=tuple(spec.get("compatible", ())), defaults=dict(spec.get("defaults", {})),
        props=dict(spec.get("props", {})), interrupts=(irqs,) if isinstance(irqs, str) else tuple(irqs),
        clocks=dict(spec.get("clocks", {})), console=bool(spec.get("console", False)),
        controller=spec.get("controller"), raw=dict(spec),
    )


def import_table() -> Mapping[str, Any]:
    """The table's ``import`` section (``skip``: compatible -> reason; ``split``: compatible -> parts)."""
    section: Mapping[str, Any] = _table().get("import", {})
    return section


@functools.cache
def by_compatible() -> dict[str, Binding]:
    """The table in reverse: an entry's (or a variant's) most specific compatible string -> the binding.

    Only the first string of each list: the generic ones after it (``arm,primecell``,
    ``syscon``) name no one type; an entry's ``import-compatible`` strings (``arm,gic-400``)
    name it too. A variant's binding carries its ``when`` properties in ``raw["when"]``.
    """
    out: dict[str, Binding] = {}
    for key, spec in _table()["types"].items():
        if "*" in key or "?" in key:
            continue
        entry = _binding(key, spec)
        for alt in spec.get("variants", ()):
            merged = {k: v for k, v in spec.items() if k != "variants"}
            merged.update(alt)
            if alt.get("compatible"):
                out.setdefault(alt["compatible"][0], _binding(key, merged))
        for compat in (*entry.compatible[:1], *spec.get("import-compatible", ())):
            out.setdefault(compat, entry)
    return out


def cpu_bindings(kind: str) -> list[Binding]:
    """Every entry of ``kind`` (riscv-cpu, arm-cpu), in the table's order."""
    return [b for b in all_bindings() if b.kind == kind]
