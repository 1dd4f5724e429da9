"""The plan: the ordered QMP steps per machine-init phase, and what apply verifies."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .source import SourceLocation


class Phase(enum.Enum):
    """The machine-init phase in which a step is sent (names as QEMU reports them)."""

    ACCEL_CREATED = "accel-created"
    INITIALIZED = "initialized"
    READY = "ready"

    @property
    def order(self) -> int:
        return _PHASE_ORDER[self]


_PHASE_ORDER = {p: i for i, p in enumerate(Phase)}


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
    """One QMP command, with the YAML location it came from and why it is there."""

    phase: Phase
    kind: StepKind
    command: str
    arguments: Mapping[str, Any]
    location: SourceLocation | None
    reason: str
    component: str | None = None

    @property
    def message(self) -> dict[str, Any]:
        """The QMP wire message (without id)."""
        return qmp_message(self.command, self.arguments)


def qmp_message(command: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """``{"execute": command, "arguments": {...}}``, without arguments when there are none."""
    if arguments:
        return {"execute": command, "arguments": dict(arguments)}
    return {"execute": command}


@dataclass(frozen=True)
class ComponentCheck:
    """After x-exit-preconfig, ``qom_path`` must exist and be realized."""

    component: str
    qom_path: str
    location: SourceLocation | None


@dataclass(frozen=True)
class LinkCheck:
    """After x-exit-preconfig, ``qom-get path=source property=prop`` must equal ``target``."""

    source: str
    prop: str
    target: str
    location: SourceLocation | None


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
    components: tuple[ComponentCheck, ...] = ()
    links: tuple[LinkCheck, ...] = ()
    chardevs: Mapping[str, str] = field(default_factory=dict)

    @property
    def binary(self) -> str:
        """The QEMU system emulator the board needs, e.g. ``qemu-system-riscv64``."""
        return f"qemu-system-{self.system}"

    def steps_in(self, phase: Phase) -> tuple[Step, ...]:
        """The steps sent while the machine is in ``phase``, in order."""
        return tuple(s for s in self.steps if s.phase is phase)
