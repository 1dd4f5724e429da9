"""The plan: the ordered QMP steps per machine-init phase, and what apply verifies."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..qemu.phases import Phase
from ..source import SourceLocation


class StepKind(enum.Enum):
    """What a step does; the planner orders by these, the renderer names them."""

    BACKEND = "backend"
    MACHINE = "machine"
    CREATE = "create"
    SET = "set"
    REALIZE = "realize"
    MAP = "map"
    WIRE = "wire"
    RAW = "raw"
    TRANSITION = "transition"


@dataclass(frozen=True)
class Step:
    """One QMP command and where it came from: a step of a plan, or a command line of a QMP file.

    The planner fills every field; a QMP file's line (``plan.qmpfile``) has
    kind RAW, no reason and no component, and no phase before its first
    ``# phase:`` comment.  The apply engine sends and reports both alike.
    """

    phase: Phase | None
    kind: StepKind
    command: str
    arguments: Mapping[str, Any]
    location: SourceLocation | None
    reason: str = ""
    component: str | None = None
    #: The command as its QMP file wrote it, when a dialect translated it (``sysbus-mmio-map`` of the v4
    #: dialect, sent as ``x-sysbus-mmio-map``): messages about the file name what the user wrote.
    written: str | None = None

    @property
    def message(self) -> dict[str, Any]:
        """The QMP wire message (without id)."""
        return qmp_message(self.command, self.arguments)

    @property
    def as_written(self) -> str:
        """The command as the user's file spells it (``written``, else ``command``)."""
        return self.written or self.command

    @property
    def note(self) -> str:
        """Why the step is there, naming its component: ``uart0: realize uart0`` ('' if nothing is known)."""
        if self.component and self.component not in self.reason:
            return f"{self.component}: {self.reason}" if self.reason else self.component
        return self.reason


def qmp_message(command: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``{"execute": command, "arguments": {...}}``, without arguments when there are none."""
    if arguments:
        return {"execute": command, "arguments": dict(arguments)}
    return {"execute": command}


@dataclass(frozen=True)
class Check:
    """What apply verifies after x-exit-preconfig, against QEMU's QOM tree.

    A component check (``prop`` None): the object at ``path`` exists, and is
    realized if it is a device; ``subject`` is the component's id, or, for
    the alias of a mapped window, ``<device>/<alias child>``.  A link
    check: ``qom-get path=path property=prop`` equals ``target`` (or ends in
    ``/target`` when ``target`` is relative); ``subject`` is ``path``.
    """

    subject: str
    path: str
    location: SourceLocation | None
    prop: str | None = None
    target: str | None = None

    @classmethod
    def component(cls, component: str, qom_path: str, location: SourceLocation | None) -> Check:
        """``component``'s object at ``qom_path`` must exist (and be realized)."""
        return cls(component, qom_path, location)

    @classmethod
    def link(cls, source: str, prop: str, target: str, location: SourceLocation | None) -> Check:
        """Link property ``prop`` of the object at QOM path ``source`` must point at ``target``."""
        return cls(source, source, location, prop, target)

    @property
    def what(self) -> str:
        """``component 'uart0'`` or ``link /machine/soc/uart0.irq``, for messages."""
        if self.prop is None and "/" in self.subject:
            return f"MMIO window '{self.subject}'"
        if self.prop is None:
            return f"component '{self.subject}'"
        return f"link {self.path}.{self.prop}"


@dataclass(frozen=True)
class Plan:
    """Everything needed to build the board: QEMU arguments, steps, and checks.

    ``qemu_args`` excludes the binary, ``-preconfig`` and the QMP socket, which
    the tool that starts QEMU adds; ``chardevs`` maps chardev ids to the backend
    the board asks for, so apply can redirect them (``--serial``).
    """

    board: str
    name: str
    system: str
    qemu_args: tuple[str, ...]
    steps: tuple[Step, ...]
    #: The component checks, then the link checks.
    checks: tuple[Check, ...] = ()
    chardevs: Mapping[str, str] = field(default_factory=dict)
    #: How the machine boots (machinedesc.boot): placement lines for the header (``# boot-...``).
    boot_notes: tuple[str, ...] = ()
    #: sha256 (hex) of the guest's device tree generated from the board (``machinedesc dtb``, compiled
    #: by dtc), or ``not computed: WHY`` (no dtc installed: devicetree.dtc.dtb_sha256).
    dtb_sha256: str = ""
    #: What validation could not check, one rendered line each (``note: ...``), for stderr.
    notes: tuple[str, ...] = ()

    @property
    def binary(self) -> str:
        """The QEMU system emulator the board needs, e.g. ``qemu-system-riscv64``."""
        return f"qemu-system-{self.system}"

    def steps_in(self, phase: Phase) -> tuple[Step, ...]:
        """The steps sent while the machine is in ``phase``, in order."""
        return tuple(s for s in self.steps if s.phase is phase)

    @property
    def components(self) -> tuple[Check, ...]:
        """The checks that a component exists."""
        return tuple(c for c in self.checks if c.prop is None)

    @property
    def links(self) -> tuple[Check, ...]:
        """The checks of a link property's value."""
        return tuple(c for c in self.checks if c.prop is not None)


# ------------------------------------------------------------ data form (plan cache)


def plan_to_data(plan: Plan) -> dict[str, Any]:
    """``plan`` as JSON-able data; ``plan_from_data`` reads it back (the plan cache stores it)."""
    return {
        "board": plan.board, "name": plan.name, "system": plan.system, "qemu_args": list(plan.qemu_args),
        "steps": [[s.phase.value if s.phase else None, s.kind.value, s.command, dict(s.arguments),
                   _loc_to_data(s.location), s.reason, s.component] for s in plan.steps],
        "components": [[c.subject, c.path, _loc_to_data(c.location)] for c in plan.components],
        "links": [[k.path, k.prop, k.target, _loc_to_data(k.location)] for k in plan.links],
        "chardevs": dict(plan.chardevs), "boot_notes": list(plan.boot_notes),
        "dtb_sha256": plan.dtb_sha256, "notes": list(plan.notes),
    }


def plan_from_data(data: Any) -> Plan:
    """The Plan ``plan_to_data`` gave; raises ValueError, KeyError or TypeError for anything else."""
    if not isinstance(data, dict):
        raise TypeError("a plan is a JSON object")
    steps = tuple(Step(None if p is None else Phase(p), StepKind(k), _str(c), _dict(a), _loc_from_data(loc), _str(r),
                       None if comp is None else _str(comp))
                  for p, k, c, a, loc, r, comp in data["steps"])
    components = tuple(Check.component(_str(c), _str(q), _loc_from_data(loc)) for c, q, loc in data["components"])
    links = tuple(Check.link(_str(s), _str(p), _str(t), _loc_from_data(loc)) for s, p, t, loc in data["links"])
    return Plan(_str(data["board"]), _str(data["name"]), _str(data["system"]),
                tuple(_str(a) for a in data["qemu_args"]), steps, components + links,
                {_str(k): _str(v) for k, v in _dict(data["chardevs"]).items()},
                tuple(_str(n) for n in data["boot_notes"]), _str(data["dtb_sha256"]),
                tuple(_str(n) for n in data["notes"]))


def _loc_to_data(loc: SourceLocation | None) -> list[Any] | None:
    if loc is None:
        return None
    return [loc.file, loc.line, loc.col, [_loc_to_data(c) for c in loc.chain]]


def _loc_from_data(data: Any) -> SourceLocation | None:
    if data is None:
        return None
    file, line, col, chain = data
    if not (isinstance(line, int) and isinstance(col, int)):
        raise TypeError("line and column are integers")
    links = tuple(_loc_from_data(c) for c in chain)
    return SourceLocation(_str(file), line, col, tuple(c for c in links if c is not None))


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def _dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object, got {type(value).__name__}")
    return value
