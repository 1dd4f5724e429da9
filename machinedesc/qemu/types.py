"""What machinedesc knows about a QEMU type: the hand table (data/qemu_types.yaml) over the type database.

The type database (``qemu/typedb.py``) is measured from the binary: every
type, its properties, lines and MMIO sizes with default properties.  The
hand table keeps what cannot be measured (roles, how a size or a line count
follows a property, realize ordering) and wins where both say something.
``type_info(name)`` is the table alone; ``type_info(name, db)`` merges both.
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .typedb import DeviceTypeInfo, GpioLines, PropertyInfo, TypeDatabase


@dataclass(frozen=True)
class LineInfo:
    """A GPIO line family of a type: how many (int, property expression or unknown) and when."""

    count: int | str | None = None
    after_realize: bool = True


@dataclass(frozen=True)
class TypeInfo:
    """What machinedesc knows about one QEMU type; ``known`` is False for the default.

    ``lines_known``: the line families listed are all there are (a family not
    listed does not exist); False when the database could not probe the type
    after realize, so that other families may exist.  ``mmio_from_defaults``:
    ``mmio`` was measured with default properties (a board that sets other
    properties may get other sizes); False for the table's expressions.
    ``device`` is the database entry, None when the database lacks the type
    or none was given; ``properties`` its settable properties.
    """

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
    lines_known: bool = True
    mmio_from_defaults: bool = False
    device: DeviceTypeInfo | None = None

    @property
    def properties(self) -> Mapping[str, PropertyInfo] | None:
        """The type's settable properties from the database, None when unknown."""
        return self.device.properties if self.device is not None else None

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
        """The output family ``name``; None when the type has no such family; unknown count when unknown."""
        found = self.outputs.get(name)
        return found if found is not None or (self.known and self.lines_known) else LineInfo()

    def input(self, name: str) -> LineInfo | None:
        """The input family ``name`` (see ``output``)."""
        found = self.inputs.get(name)
        return found if found is not None or (self.known and self.lines_known) else LineInfo()


@functools.cache
def _table() -> tuple[tuple[str, dict[str, Any]], ...]:
    text = resources.files("machinedesc.qemu.data").joinpath("qemu_types.yaml").read_text(encoding="utf-8")
    raw = YAML(typ="safe").load(text)
    return tuple(raw.items())


def _lines(raw: dict[str, Any] | None) -> dict[str, LineInfo]:
    return {name: LineInfo(spec.get("count"), spec.get("after_realize", True))
            for name, spec in (raw or {}).items()}


def type_info(name: str, db: TypeDatabase | None = None) -> TypeInfo:
    """What is known about ``name``: the table entry (exact name first, then the first matching
    pattern), merged over ``db``'s entry when a database is given (see ``merge``)."""
    table = _table_info(name)
    device = db.get(name) if db is not None else None
    return merge(table, device) if device is not None else table


@functools.cache
def _table_info(name: str) -> TypeInfo:
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


def _measured_lines(device: DeviceTypeInfo) -> tuple[dict[str, LineInfo], dict[str, LineInfo], bool]:
    """(outputs, inputs, complete) from the database: after realize when probed, else before."""
    before: GpioLines | None = device.lines_before_realize
    after: GpioLines | None = device.lines_after_realize
    lines = after or before
    if lines is None:
        return {}, {}, False

    def families(counts: Mapping[str, int], earlier: Mapping[str, int]) -> dict[str, LineInfo]:
        return {k: LineInfo(n, after_realize=after is not None and earlier.get(k) != n) for k, n in counts.items()}

    empty = before or lines
    return (families(lines.outputs, empty.outputs), families(lines.inputs, empty.inputs), after is not None)


def merge(table: TypeInfo, device: DeviceTypeInfo) -> TypeInfo:
    """The table entry (wins where it says something) over the database entry ``device``.

    Lines: the table's families, then the measured ones (after realize when
    probed; a family counts as created by realize when it was not there, or
    had another count, before).  MMIO: the table's sizes, else the measured
    ones (``mmio_from_defaults``).  Chardevs and links: both, the table's
    settings first.  Realize after the CPUs: the table, or the probe found
    that realize needed CPUs.
    """
    outputs, inputs, complete = _measured_lines(device)
    role = table.role if table.known else ("cpu" if device.cpu else "device")
    mmio = table.mmio if table.mmio is not None else device.mmio_sizes
    links = {p: True for p, info in device.properties.items() if info.kind == "link"}
    chardevs = [p for p, info in sorted(device.properties.items()) if info.kind == "chardev"]
    return TypeInfo(
        name=table.name, known=True, role=role,
        sysbus=table.sysbus if table.known and table.sysbus else device.sysbus,
        mmio=mmio, outputs={**outputs, **table.outputs}, inputs={**inputs, **table.inputs},
        chardevs=tuple(dict.fromkeys([*table.chardevs, *chardevs])), links={**links, **table.links},
        realize_after_cpus=table.realize_after_cpus or "cpus" in device.realize_needs,
        lines_known=complete or (table.known and bool(table.outputs or table.inputs)),
        mmio_from_defaults=table.mmio is None and device.mmio_sizes is not None, device=device,
    )
