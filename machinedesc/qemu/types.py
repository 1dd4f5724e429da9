"""What machinedesc knows about a QEMU type: the hand table (data/qemu_types.yaml) over the type database.

The type database (``qemu/typedb.py``) is measured from the binary: every
type, its properties, lines and MMIO sizes with default properties.  The
hand table keeps what cannot be measured (roles, how a size or a line count
follows a property, realize ordering) and wins where both say something.
``type_info(name)`` is the table alone; ``type_info(name, db)`` merges both;
``system_type_info(name, system)`` merges the table over the database of a
board's system (cached: the board model asks it for every component).
"""

from __future__ import annotations

import fnmatch
import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING, Any

from ruamel.yaml import YAML

from .typedb import database

if TYPE_CHECKING:
    from collections.abc import Mapping

    from .typedb import DeviceTypeInfo, GpioLines, PropertyInfo, TypeDatabase


@dataclass(frozen=True)
class LineInfo:
    """A GPIO line family of a type: how many (int, property expression or unknown) and when.

    ``from_defaults``: the count was measured by the type database with the
    type's default properties (a property the board sets may change it).
    """

    count: int | str | None = None
    after_realize: bool = True
    from_defaults: bool = field(default=False, compare=False)


@dataclass(frozen=True)
class CpuUse:
    """Which CPU ids a device looks up (hand table ``cpus:``) or creates (``creates_cpus:``).

    The ids are ``first`` .. ``first + count - 1``, expressions over the
    device's properties ('-' in names becomes '_'); ``items`` names a string
    property whose comma-separated entries are counted instead of ``count``
    (the PLIC's hart-config); ``unless`` names a boolean property that, when
    true, means no CPU is looked up (the APLIC in MSI mode); ``what`` is the
    property named in messages (num-harts, num-cpu).
    """

    first: int | str = 0
    count: int | str = 1
    items: str | None = None
    unless: str | None = None
    what: str = ""


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
    #: Hand table: realize reads the memory map, so every region is mapped first.
    realize_after_maps: bool = False
    lines_known: bool = True
    mmio_from_defaults: bool = False
    device: DeviceTypeInfo | None = None
    #: Hand table: properties that change region sizes in a way no expression there computes.
    mmio_follows: tuple[str, ...] = ()
    #: Hand table: the CPU ids the device looks up when it realizes.
    cpus: CpuUse | None = None
    #: Hand table: the CPUs the device creates itself (riscv.hart_array).
    creates_cpus: CpuUse | None = None
    #: Hand table, CPU types: the property holding a CPU's id (RISC-V mhartid); None: its creation index.
    cpu_id: str | None = None
    #: Hand table: property -> (lowest, highest, why): values QEMU takes but cannot build.
    limits: Mapping[str, tuple[int, int, str]] = field(default_factory=dict)

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

    def defaults(self) -> dict[str, Any]:
        """The database's default property values, named as in expressions ('-' -> '_')."""
        props = self.properties or {}
        return {k.replace("-", "_"): p.default for k, p in props.items()
                if isinstance(p.default, (int, str)) and p.kind != "other"}


@functools.cache
def _table() -> tuple[tuple[str, dict[str, Any]], ...]:
    text = resources.files("machinedesc.qemu.data").joinpath("qemu_types.yaml").read_text(encoding="utf-8")
    raw = YAML(typ="safe").load(text)
    return tuple(raw.items())


def _lines(raw: dict[str, Any] | None) -> dict[str, LineInfo]:
    return {name: LineInfo(spec.get("count"), spec.get("after_realize", True))
            for name, spec in (raw or {}).items()}


def _cpu_use(raw: Any) -> CpuUse | None:
    if not isinstance(raw, dict):
        return None
    return CpuUse(raw.get("first", 0), raw.get("count", 1), raw.get("items"), raw.get("unless"), raw.get("what", ""))


@functools.cache
def system_type_info(name: str, system: str) -> TypeInfo:
    """``type_info`` of ``name`` over the type database of qemu-system-``system`` (the shipped snapshot);
    the table alone when ``system`` is empty or has no database."""
    return type_info(name, system_database(system))


@functools.cache
def system_database(system: str) -> TypeDatabase | None:
    """The type database a board of ``system`` is checked against (``typedb.database``), or None."""
    return database(system) if system else None


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
        realize_after_maps=bool(entry.get("realize_after_maps", False)),
        mmio_follows=tuple(entry.get("mmio_follows", ())), cpus=_cpu_use(entry.get("cpus")),
        creates_cpus=_cpu_use(entry.get("creates_cpus")), cpu_id=entry.get("cpu_id"),
        limits={k: (int(v[0]), int(v[1]), str(v[2])) for k, v in (entry.get("limits") or {}).items()},
    )


def _measured_lines(device: DeviceTypeInfo) -> tuple[dict[str, LineInfo], dict[str, LineInfo], bool]:
    """(outputs, inputs, complete) from the database: after realize when probed, else before."""
    before: GpioLines | None = device.lines_before_realize
    after: GpioLines | None = device.lines_after_realize
    lines = after or before
    if lines is None:
        return {}, {}, False

    def families(counts: Mapping[str, int], earlier: Mapping[str, int]) -> dict[str, LineInfo]:
        return {k: LineInfo(n, after_realize=after is not None and earlier.get(k) != n, from_defaults=True)
                for k, n in counts.items()}

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
        realize_after_maps=table.realize_after_maps,
        lines_known=complete or (table.known and bool(table.outputs or table.inputs)),
        mmio_from_defaults=table.mmio is None and device.mmio_sizes is not None, device=device,
        mmio_follows=table.mmio_follows, cpus=table.cpus, creates_cpus=table.creates_cpus, cpu_id=table.cpu_id,
        limits=table.limits,
    )
