"""What machinedesc knows about a QEMU type: the introspected database merged with the hand table.

Two sources, one view (``type_info``):

- the type database (``qemu.typedb``): what the QEMU binary of a system
  reports about every device type (ancestry, properties with their QEMU
  types, GPIO lines and MMIO regions measured with default properties);
- the hand table (``data/qemu_types.yaml``): what introspection cannot know
  (roles, which CPUs a device looks up when it realizes, how a region size or
  a line count follows a property, which properties name CPUs to create).

A hand-table entry overrides the database fact of the same name (a line
family, the region list, sysbus); everything else comes from the database.
"""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from ruamel.yaml import YAML

from .typedb import DeviceTypeInfo, PropertyInfo, TypeDatabase, snapshot


@dataclass(frozen=True)
class LineInfo:
    """A GPIO line family of a type: how many (int, property expression or unknown) and when.

    ``from_defaults``: the count was measured by the type database with the
    type's default properties (a property the board sets may change it).
    """

    count: int | str | None = None
    after_realize: bool = True
    from_defaults: bool = False


@dataclass(frozen=True)
class CpuUse:
    """Which CPU ids a device looks up (hand table ``cpus:`` / ``creates_cpus:``).

    The ids are ``first`` .. ``first + count - 1``, expressions over the
    device's properties ('-' in names becomes '_'); ``items`` names a string
    property whose comma-separated entries are counted instead of ``count``
    (the PLIC's hart-config); ``unless`` names a boolean property that, when
    true, means no CPU is looked up (the APLIC in MSI mode).
    """

    first: int | str = 0
    count: int | str = 1
    items: str | None = None
    unless: str | None = None
    #: The property the count comes from, for messages (num-harts, num-cpu).
    what: str = ""


@dataclass(frozen=True)
class TypeInfo:
    """What machinedesc knows about one QEMU type; ``known`` is False for a type neither source has."""

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
    #: The type database's entry (None: the database lacks the type, or there is no database).
    db: DeviceTypeInfo | None = None
    #: Whether the line families are known (hand table, or probed by the database).
    lines_known: bool = False
    #: MMIO sizes measured with default properties (not from the hand table).
    mmio_from_defaults: bool = False
    #: Properties that change the region sizes in a way the hand table cannot compute.
    mmio_follows: tuple[str, ...] = ()
    #: CPU ids the device looks up when it realizes.
    cpus: CpuUse | None = None
    #: CPUs the device creates itself (riscv.hart_array).
    creates_cpus: CpuUse | None = None
    #: The property that holds a CPU's id (riscv mhartid); None: its creation index (Arm).
    cpu_id: str | None = None

    @property
    def is_cpu(self) -> bool:
        return self.role == "cpu"

    @property
    def is_cluster(self) -> bool:
        return self.role == "cluster"

    @property
    def properties(self) -> Mapping[str, PropertyInfo] | None:
        """Every property QEMU reports for the type, or None when unknown."""
        return self.db.properties if self.db is not None else None

    def link_at_realize(self, prop: str) -> bool:
        """Whether realize reads link ``prop`` (unknown links: assume it does)."""
        return self.links.get(prop, True)

    def output(self, name: str) -> LineInfo | None:
        return self.outputs.get(name) if self.lines_known else LineInfo()

    def input(self, name: str) -> LineInfo | None:
        return self.inputs.get(name) if self.lines_known else LineInfo()

    def defaults(self) -> dict[str, Any]:
        """The database's default property values, names as in expressions ('-' -> '_')."""
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
def database(system: str) -> TypeDatabase | None:
    """The shipped type database of ``system`` (qemu-system-<system>), or None."""
    return snapshot(system) if system else None


def hand_entry(name: str) -> dict[str, Any] | None:
    """The hand-table entry for ``name`` (exact name first, then the first matching pattern)."""
    table = _table()
    entry = next((spec for key, spec in table if key == name), None)
    if entry is None:
        entry = next((spec for key, spec in table if fnmatch.fnmatchcase(name, key)), None)
    return entry


def _db_lines(db: DeviceTypeInfo, outputs: bool) -> dict[str, LineInfo] | None:
    after, before = db.lines_after_realize, db.lines_before_realize
    if after is None:
        return None  # not probed after realize: what realize adds is unknown
    out: dict[str, LineInfo] = {}
    for lines, after_realize in ((after, True), (before, False)):
        if lines is None:
            continue
        for family, count in (lines.outputs if outputs else lines.inputs).items():
            out[family] = LineInfo(count, after_realize, from_defaults=True)
    return out


@functools.cache
def type_info(name: str, system: str = "") -> TypeInfo:
    """What is known of ``name`` in qemu-system-``system`` (the hand table alone without a system)."""
    entry = hand_entry(name)
    db_db = database(system)
    db = db_db.get(name) if db_db is not None else None
    if entry is None and db is None:
        return TypeInfo(name)
    entry = entry or {}
    role = entry.get("role") or ("cpu" if db is not None and db.cpu else "device")
    sysbus = entry.get("sysbus", db.sysbus if db is not None else False)
    mmio: tuple[int | str, ...] | None = tuple(entry["mmio"]) if entry.get("mmio") is not None else None
    from_defaults = False
    if mmio is None and db is not None and db.mmio_sizes is not None:
        mmio, from_defaults = tuple(db.mmio_sizes), True
    outputs, inputs = _lines(entry.get("outputs")), _lines(entry.get("inputs"))
    lines_known = bool(entry)
    if db is not None:
        db_out, db_in = _db_lines(db, True), _db_lines(db, False)
        lines_known = lines_known or db_out is not None
        outputs = {**(db_out or {}), **outputs}
        inputs = {**(db_in or {}), **inputs}
    chardevs = tuple(entry.get("chardevs", ()))
    if db is not None:
        chardevs = tuple(sorted({*chardevs, *(p for p, info in db.properties.items() if info.kind == "chardev")}))
    links = {k: bool(v.get("at_realize", True)) for k, v in (entry.get("links") or {}).items()}
    return TypeInfo(
        name=name, known=True, role=role, sysbus=sysbus, mmio=mmio, outputs=outputs, inputs=inputs,
        chardevs=chardevs, links=links, realize_after_cpus=bool(entry.get("realize_after_cpus", False)),
        db=db, lines_known=lines_known, mmio_from_defaults=from_defaults,
        mmio_follows=tuple(entry.get("mmio_follows", ())), cpus=_cpu_use(entry.get("cpus")),
        creates_cpus=_cpu_use(entry.get("creates_cpus")), cpu_id=entry.get("cpu_id"),
    )
