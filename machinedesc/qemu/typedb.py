"""The introspected QEMU type database (stub of the contract; the typedb branch replaces this file)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PropertyInfo:
    """One property of a device type, as QEMU reports it."""

    name: str
    qemu_type: str
    kind: str  # bool, int, uint, size, str, enum, link, chardev, array, other
    minimum: int | None = None
    maximum: int | None = None
    enum_values: tuple[str, ...] | None = None
    link_type: str | None = None
    default: Any = None
    description: str | None = None


@dataclass(frozen=True)
class GpioLines:
    """GPIO line families: name -> count."""

    inputs: Mapping[str, int] = field(default_factory=dict)
    outputs: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class DeviceTypeInfo:
    """One device type of the binary."""

    name: str
    ancestry: tuple[str, ...] = ()
    abstract: bool = False
    sysbus: bool = False
    cpu: bool = False
    creatable: bool = True
    properties: Mapping[str, PropertyInfo] = field(default_factory=dict)
    lines_before_realize: GpioLines | None = None
    lines_after_realize: GpioLines | None = None
    mmio_sizes: tuple[int, ...] | None = None
    probe_note: str | None = None


@dataclass(frozen=True)
class TypeDatabase:
    """Every device type of one QEMU binary."""

    system: str
    qemu_version: str
    binary_sha256: str
    types: Mapping[str, DeviceTypeInfo]

    def get(self, name: str) -> DeviceTypeInfo | None:
        return self.types.get(name)


def snapshot(system: str) -> TypeDatabase | None:
    """The shipped snapshot for ``system`` (none in this stub)."""
    return None
