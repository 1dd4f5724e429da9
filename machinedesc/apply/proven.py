"""What a build whose every step succeeded has already shown, so that verification need not ask QEMU again.

A ``device_add`` that succeeded without ``realized: false`` created a
realized device (QEMU realizes it inside the command, or fails the
command); a ``qom-set realized true`` that succeeded realized its object; a
``qom-set`` of a link or wire property that succeeded set it to the value
sent, unless a later step set it again (the last one counts). Verification
(``verify``) then only asks QEMU what the steps did not prove: where each
component sits in the QOM tree (one ``qom-list`` per containing object,
which also catches a planner whose idea of a path is not QEMU's), and the
checks no step answers - a realize or a link that no step made, a check
that expects something else than what was sent.  A map step of the alias
form (``offset``, ``size``) that succeeded created the window's alias
memory region, a QOM child of the device; its existence is still checked
with the device's ``qom-list``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..plan.steps import Check, Step


@dataclass
class Proof:
    """Realized components (device ids and QOM paths) and link values ``(path, property) -> value``."""

    realized_ids: set[str] = field(default_factory=set)
    realized_paths: set[str] = field(default_factory=set)
    links: dict[tuple[str, str], Any] = field(default_factory=dict)

    def covers(self, check: Check) -> bool:
        """Whether the succeeded steps already established what ``check`` asks (existence aside)."""
        if check.prop is None:
            return check.subject in self.realized_ids or check.path in self.realized_paths
        sent = self.links.get((check.path, check.prop))
        return sent is not None and sent == check.target


def proof_of(steps: Sequence[Step]) -> Proof:
    """What ``steps``, all succeeded and in this order, established about the machine."""
    proof = Proof()
    for step in steps:
        args = step.arguments
        if step.command == "device_add" and isinstance(args.get("id"), str):
            if args.get("realized", True) is True:
                proof.realized_ids.add(args["id"])
            else:
                proof.realized_ids.discard(args["id"])
        elif step.command == "x-sysbus-mmio-map" and "offset" in args and "size" in args:
            # The alias form created the window's alias, a child of the device (patch 32).
            proof.realized_ids.add(f"{args.get('device')}/{_alias_child(args)}")
        elif step.command == "qom-set" and isinstance(args.get("path"), str) and isinstance(args.get("property"), str):
            if args["property"] == "realized":
                if args.get("value") is True:
                    proof.realized_paths.add(args["path"])
                else:
                    proof.realized_paths.discard(args["path"])
            else:
                proof.links[(args["path"], args["property"])] = args.get("value")
    return proof


def _alias_child(args: Any) -> str:
    """The QOM child name QEMU gives the alias of an x-sysbus-mmio-map window (patch 32): the first of its name."""
    return (f"mmio{args.get('mmio', 0)}-alias-{args['offset']:#x}+{args['size']:#x}@{args['addr']:#x}[0]"
            if all(isinstance(args.get(k), int) for k in ("offset", "size", "addr")) else "")
