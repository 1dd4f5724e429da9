"""The QEMU type table (data/qemu_types.yaml): roles, lines, MMIO sizes, links, chardevs."""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ruamel.yaml import YAML


@dataclass(frozen=True)
class LineInfo:
    """A GPIO line family of a type: how many (int, property expression or unknown) and when."""

    count: int | str | None = None
    after_realize: bool = True


@dataclass(frozen=True)
class TypeInfo:
    """What machinedesc knows about one QEMU type; ``known`` is False for the default."""

    name: str
    known: bool = False
    role: str = "device"
    sysbus: bool | None = None
    mmio: tuple[int | str, ...] | None = None
    outputs: dict[str, LineInfo] = field(default_factory=dict)
    inputs: dict[str, LineInfo] = field(default_factory=dict)
    chardevs: tuple[str, ...] = ()
    links: dict[str, bool] = field(default_factory=dict)
    realize_after_cpus: bool = False

    @property
    def is_cpu(self) -> bool:
        return self.role == "cpu"

    @property
    def is_cluster(self) -> bool:
        return self.role == "cluster"

    def link_at_realize(self, prop: str) -> bool:
        """Whether realize reads link ``prop`` (unknown links: assume it does)."""
        return self.links.get(prop, True)

    def output(self, name: str) -> LineInfo | None:
        return self.outputs.get(name) if self.known else LineInfo()

    def input(self, name: str) -> LineInfo | None:
        return self.inputs.get(name) if self.known else LineInfo()


@functools.cache
def _table() -> tuple[tuple[str, dict[str, Any]], ...]:
    text = resources.files("machinedesc.qemu.data").joinpath("qemu_types.yaml").read_text(encoding="utf-8")
    raw = YAML(typ="safe").load(text)
    return tuple(raw.items())


def _lines(raw: dict[str, Any] | None) -> dict[str, LineInfo]:
    return {name: LineInfo(spec.get("count"), spec.get("after_realize", True))
            for name, spec in (raw or {}).items()}


@functools.cache
def type_info(name: str) -> TypeInfo:
    """The table entry for ``name`` (exact name first, then the first matching pattern)."""
    table = _table()
    entry = next((spec for key, spec in table if key == name), None)
    if entry is None:
        entry = next((spec for key, spec in table if fnmatch.fnmatchcase(name, key)), None)
    if entry is None:
        return TypeInfo(name)
    mmio = entry.get("mmio")
    links = {k: bool(v.get("at_realize", True)) for k, v in (entry.get("links") or {}).items()}
    return TypeInfo(
        name=name, known=True, role=entry.get("role", "device"), sysbus=entry.get("sysbus", False),
        mmio=tuple(mmio) if mmio is not None else None, outputs=_lines(entry.get("outputs")),
        inputs=_lines(entry.get("inputs")), chardevs=tuple(entry.get("chardevs", ())), links=links,
        realize_after_cpus=bool(entry.get("realize_after_cpus", False)),
    )
