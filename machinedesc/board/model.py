"""The Board model: frozen dataclasses for components, MMIO, lines, wires, backends and raw commands.

``builder.build_board`` makes them from the located tree; every stage after
the board's reads them.  They hold values and positions, never YAML nodes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..qemu.phases import Phase
from ..qemu.types import TypeInfo, system_type_info
from ..source import SourceLocation
from .located import LMap, Pos, to_location
from .bootspec import BootSpec

QEMU_ID = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
LINE = re.compile(r"^(?P<comp>[^.]+)\.(?P<name>[A-Za-z][A-Za-z0-9_-]*)(?:\[(?P<index>[0-9]+)\])?$")
U64_MAX = (1 << 64) - 1
#: Copies one entry may make: far above any SoC, low enough that a typo in a
#: --set value fails at once instead of exhausting memory.
MAX_COUNT = 100_000
#: What a whole board may expand to, count copies included: components, and
#: line ends of wires (a wire copy from one output to two inputs has three).
#: Memory and planning time grow with them; a file holds far more entries.
MAX_COMPONENTS = MAX_COUNT
MAX_WIRE_ENDS = 4 * MAX_COUNT
S64_MIN = -(1 << 63)


@dataclass(frozen=True)
class Mmio:
    """One MMIO region of a component, or a window of it, mapped at an address.

    Without ``offset``, the whole region is mapped at ``addr`` (QEMU's
    ``sysbus_mmio_map``: a region has one such place, a later mapping moves
    it) and ``size``, bytes, is only the region's size for the checks when
    the type data lacks it.  With ``offset`` (bytes into the region), the
    window [offset, offset + size) is mapped at ``addr`` through an alias
    (patch 32's alias form of ``x-sysbus-mmio-map``); ``size`` is then the
    window's and required, and a region may have any number of windows.
    """

    region: int
    addr: int
    priority: int
    size: int | None
    location: SourceLocation | None
    offset: int | None = None

    @property
    def window(self) -> bool:
        """Whether this maps a window of the region (an alias) rather than the region itself."""
        return self.offset is not None

    def describe(self, comp_id: str) -> str:
        """``uart0 region 0``, or ``pcie region 1 window [0x10000000, +0x2eff0000)``, for messages."""
        text = f"{comp_id} region {self.region}"
        if self.offset is not None and self.size is not None:
            text += f" window [{self.offset:#x}, +{self.size:#x})"
        return text

    def alias_name(self) -> str:
        """The name QEMU gives the alias of a window (patch 32), without the QOM child index ``[0]``."""
        assert self.offset is not None and self.size is not None
        return f"mmio{self.region}-alias-{self.offset:#x}+{self.size:#x}@{self.addr:#x}"


@dataclass(frozen=True, eq=False)
class EntryParts:
    """Where the parts of one YAML component entry are written: positions only, no YAML values.

    ``own`` is the entry mapping's position, ``values`` the position of each
    of its values (``type``, ``parent``, ``phase``...), ``sections`` for each
    value that is itself a mapping (``props``, ``links``) its own position
    and the positions of its values.  Copies of a replicated entry share one.
    ``expressions`` keeps, for each property written as a ``${...}`` string,
    that text (``{"num-harts": "${harts}"}``): where a value came from, for
    ``diff`` and ``show``.
    """

    own: Pos
    values: Mapping[str, Pos]
    sections: Mapping[str, tuple[Pos, Mapping[str, Pos]]]
    expressions: Mapping[str, str] = field(default_factory=dict)
    #: For each value that is a mapping, the positions of its keys: a name the
    #: type does not have (``props.NAME``) is reported at its key.
    keys: Mapping[str, Mapping[str, Pos]] = field(default_factory=dict)

    @classmethod
    def of(cls, entry: LMap) -> EntryParts:
        """The positions of ``entry`` (its position dicts are shared, not copied)."""
        maps = {k: v for k, v in entry.items() if isinstance(v, LMap)}
        sections = {k: (v.pos, v.value_locs) for k, v in maps.items()}
        props = entry.get("props")
        expressions = {k: v for k, v in props.items() if isinstance(v, str) and "${" in v} \
            if isinstance(props, LMap) else {}
        return cls(entry.pos, entry.value_locs, sections, expressions, {k: v.key_locs for k, v in maps.items()})


@dataclass(frozen=True)
class Component:
    """One device to create (a copy of a replicated entry is a component of its own)."""

    id: str
    type: str
    index: int
    location: SourceLocation | None
    yaml_path: str
    parent: str | None = None
    props: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, str] = field(default_factory=dict)
    mmio: tuple[Mmio, ...] = ()
    phase: Phase = Phase.INITIALIZED
    #: Where the parts of the YAML entry it came from are written (None: synthetic).
    parts: EntryParts | None = field(default=None, compare=False, repr=False)
    synthetic: bool = False
    #: The board's system (qemu-system-<system>): whose type database describes ``type``.
    system: str = ""

    @property
    def info(self) -> TypeInfo:
        return system_type_info(self.type, self.system)

    def part_location(self, *path: str, key: bool = False) -> SourceLocation | None:
        """Where ``type``, ``parent``, ``props.NAME`` or ``links.NAME`` of this entry is written
        (with ``key``: where the name ``NAME`` of ``props.NAME`` or ``links.NAME`` is).

        A part that is not written gives the position of what holds it (the
        ``props`` mapping, the entry); without positions, the component's own.
        """
        parts = self.parts
        if parts is None or len(path) > 2:
            return self.location
        if key and len(path) == 2 and path[-1] in parts.keys.get(path[0], {}):
            return to_location(parts.keys[path[0]][path[-1]])
        if len(path) == 1:
            own, values = parts.own, parts.values
        elif path[0] in parts.sections:
            own, values = parts.sections[path[0]]
        else:
            return self.location
        return to_location(values.get(path[-1], own))


def link_target(target: str) -> tuple[str, str]:
    """``uart0`` -> ("uart0", ""); ``ram/mem[0]`` -> ("ram", "mem[0]"): a component and a
    path inside it (absolute QOM paths give ("", path))."""
    if target.startswith("/"):
        return "", target
    head, _, rest = target.partition("/")
    return head, rest


@dataclass(frozen=True)
class LineRef:
    """``component.name[index]``: one GPIO line of a component."""

    component: str
    name: str
    index: int
    location: SourceLocation | None

    @property
    def text(self) -> str:
        return f"{self.component}.{self.name}[{self.index}]"

    @property
    def prop(self) -> str:
        """The QOM property (output) or child (input) name of the line."""
        return f"{self.name}[{self.index}]"


@dataclass(frozen=True)
class Wire:
    """Output line(s) connected to input line(s); ``join`` combines several outputs."""

    name: str
    sources: tuple[LineRef, ...]
    targets: tuple[LineRef, ...]
    join: str | None
    location: SourceLocation | None
    yaml_path: str


@dataclass(frozen=True)
class Backend:
    """A QOM object created with object-add before the machine initializes."""

    id: str
    type: str
    props: Mapping[str, Any]
    location: SourceLocation | None
    #: Where each property's value is written (for messages about one property).
    prop_positions: Mapping[str, Pos] = field(default_factory=dict, compare=False, repr=False)

    def prop_location(self, name: str) -> SourceLocation | None:
        """Where property ``name``'s value is written; the backend's own position if unknown."""
        pos = self.prop_positions.get(name)
        return to_location(pos) if pos is not None else self.location


@dataclass(frozen=True)
class RawCommand:
    """A user's raw QMP command, sent in ``phase`` after the ``after`` components."""

    name: str
    execute: str
    arguments: Mapping[str, Any]
    phase: Phase
    after: tuple[str, ...]
    location: SourceLocation | None
    after_locations: tuple[SourceLocation | None, ...] = ()


@dataclass(frozen=True)
class Board:
    """A whole board, ready for the checks and the planner."""

    file: str
    name: str
    summary: str
    system: str
    machine: str
    machine_props: Mapping[str, Any]
    params: Mapping[str, Any]
    chardevs: Mapping[str, str]
    backends: tuple[Backend, ...]
    components: tuple[Component, ...]
    wires: tuple[Wire, ...]
    raw: tuple[RawCommand, ...]
    #: Some component entries could not be expanded (their problems are
    #: reported), so a reference to a missing id may be a consequence.
    incomplete: bool = False
    #: Component ids a variant deleted with null, and where.
    deleted: Mapping[str, SourceLocation] = field(default_factory=dict)
    #: Where each of ``machine_props`` is written (the steps that set them name that line).
    machine_prop_locations: Mapping[str, SourceLocation] = field(default_factory=dict, compare=False, repr=False)
    #: The ``boot:`` section (board/bootspec.py), if any.
    boot: BootSpec | None = None
    #: The ``devicetree:`` section, expressions evaluated (docs/devicetree.md),
    #: and its YAML entry for locating its parts in messages.
    devicetree: Mapping[str, Any] = field(default_factory=dict)
    devicetree_spec: Any = field(default=None, compare=False, repr=False)

    @property
    def by_id(self) -> dict[str, Component]:
        return {c.id: c for c in self.components}

    def qom_path(self, comp: Component, by_id: Mapping[str, Component]) -> str:
        """The QOM path the component gets: under its parent, else /machine/peripheral."""
        seen: list[str] = []
        parts: list[str] = []
        cur: Component | None = comp
        while cur is not None and cur.id not in seen:
            seen.append(cur.id)
            parts.append(cur.id)
            if cur.parent is None:
                return "/machine/peripheral/" + "/".join(reversed(parts))
            if cur.parent.startswith("/"):
                return cur.parent.rstrip("/") + "/" + "/".join(reversed(parts))
            cur = by_id.get(cur.parent)
        return "/machine/peripheral/" + "/".join(reversed(parts))
