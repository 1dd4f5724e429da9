"""QEMU's machine-init phases, in the order QEMU passes through them (query-machine-phase)."""

from __future__ import annotations

import enum


class Phase(enum.Enum):
    """The machine-init phase in which a step is sent (names as QEMU reports them)."""

    ACCEL_CREATED = "accel-created"
    INITIALIZED = "initialized"
    READY = "ready"

    @property
    def order(self) -> int:
        return _PHASE_ORDER[self]


_PHASE_ORDER = {p: i for i, p in enumerate(Phase)}
