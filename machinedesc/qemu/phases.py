"""QEMU's machine-init phases as machinedesc builds in them, and the commands that move between them.

QEMU with ``-preconfig`` stops before the machine is initialized; QMP then
moves it on, one phase at a time (query-machine-phase reports where it is):

```
  accel-created --x-machine-init--> initialized --x-exit-preconfig--> ready
```

QEMU 10 reports the first of these as ``late-backends-created`` (one step
after ``accel-created``, with nothing machinedesc sends in between): both
names mean ``Phase.ACCEL_CREATED``, in a QMP file's ``# phase:`` comment and
in QEMU's reply.  This module is the one place that spells the phase names
and the two transition commands.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping


#: The command that moves QEMU from accel-created to initialized (machine init, before any device is realized).
MACHINE_INIT = "x-machine-init"
#: The command that leaves -preconfig: QEMU realizes the machine, which becomes ready.
EXIT_PRECONFIG = "x-exit-preconfig"


class Phase(enum.Enum):
    """The machine-init phase in which a step is sent (names as QEMU reports them)."""

    ACCEL_CREATED = "accel-created"
    INITIALIZED = "initialized"
    READY = "ready"

    @property
    def order(self) -> int:
        """0, 1, 2 in the order QEMU passes through the phases."""
        return _PHASE_ORDER[self]

    @property
    def names(self) -> frozenset[str]:
        """Every name QEMU (query-machine-phase) or a QMP file uses for this phase."""
        return _NAMES[self]

    @property
    def transition(self) -> str | None:
        """The QMP command that leaves this phase for the next one (None: the last phase)."""
        return _LEAVE.get(self)

    def accepts(self, reported: str) -> bool:
        """Whether QEMU's query-machine-phase answer ``reported`` is this phase."""
        return reported in _NAMES[self]

    @classmethod
    def named(cls, name: str) -> Phase:
        """The phase called ``name`` (any of PHASE_NAMES); ValueError for another name."""
        for phase, names in _NAMES.items():
            if name in names:
                return phase
        raise ValueError(f"unknown phase '{name}'")

    @classmethod
    def left_by(cls, command: str) -> Phase:
        """The phase that the transition ``command`` leaves; ValueError when it is no transition."""
        for phase, leave in _LEAVE.items():
            if leave == command:
                return phase
        raise ValueError(f"'{command}' is not a phase transition")

    @classmethod
    def after(cls, command: str) -> Phase | None:
        """The phase the transition ``command`` leads to; None when ``command`` is no transition."""
        return TRANSITIONS.get(command)


_PHASE_ORDER = {p: i for i, p in enumerate(Phase)}

_NAMES: Mapping[Phase, frozenset[str]] = {
    Phase.ACCEL_CREATED: frozenset({"accel-created", "late-backends-created"}),
    Phase.INITIALIZED: frozenset({"initialized"}),
    Phase.READY: frozenset({"ready"}),
}

_LEAVE: Mapping[Phase, str] = {Phase.ACCEL_CREATED: MACHINE_INIT, Phase.INITIALIZED: EXIT_PRECONFIG}

#: The transition commands and the phase each leads to.
TRANSITIONS: Mapping[str, Phase] = {command: list(Phase)[p.order + 1] for p, command in _LEAVE.items()}

#: Every phase name a ``# phase:`` comment may use (QEMU's MachinePhase names and the plan's).
PHASE_NAMES: frozenset[str] = frozenset().union(*_NAMES.values())
