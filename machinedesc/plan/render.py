"""Plan -> text: the QMP configuration file (qmp-shell syntax) and JSON lines."""

from __future__ import annotations

import json
import shlex

from ..qemu.phases import Phase
from .qmpfile import format_command
from .steps import Plan, Step

HEADER_MAGIC = "# machinedesc plan, format 1"


def qemu_command(plan: Plan) -> list[str]:
    """The QEMU command line the plan needs (the QMP socket is the runner's to add)."""
    return [plan.binary, *plan.qemu_args, "-preconfig"]


def command_line(step: Step) -> str:
    """``cmd key=value ...`` for one step, as qmp-shell and ``machinedesc run`` read it."""
    return format_command(step.command, step.arguments)


def _comment(step: Step) -> str:
    where = f"{step.location.short}: " if step.location else ""
    return f"# {where}{step.reason}"


def _dtb_line(dtb_sha256: str) -> str:
    """The header's ``# dtb:`` line: the hash, or why it was not computed (``not computed: WHY``)."""
    if dtb_sha256.startswith("not computed"):
        return f"# dtb: {dtb_sha256}"
    return f"# dtb: sha256 {dtb_sha256} (the device tree of `machinedesc dtb`)"


def render_qmp(plan: Plan) -> str:
    """The seed's QMP configuration file: header, then per phase a comment and one command per line.

    Comment lines always start with ``# `` and a word without '=', so qmp-shell
    reports them as unparsable and skips them instead of sending anything.
    """
    lines = [
        HEADER_MAGIC,
        f"# board: {plan.board}",
        f"# name: {plan.name}",
        f"# system: {plan.system}",
        _dtb_line(plan.dtb_sha256),
        f"# qemu: {shlex.join(qemu_command(plan))}",
        "# usage: start QEMU with the command above plus -qmp unix:SOCKET,server=on,wait=on,",
        "# then: machinedesc run THIS-FILE --connect SOCKET",
        *(f"# boot-{note}" for note in plan.notes),
    ]
    for phase in Phase:
        steps = plan.steps_in(phase)
        if not steps and phase is Phase.READY:
            continue
        lines += ["", f"# phase: {phase.value}"]
        for step in steps:
            lines.append(_comment(step))
            lines.append(command_line(step))
    return "\n".join(lines) + "\n"


def render_json(plan: Plan) -> str:
    """One QMP wire message per line (no ids), in order."""
    return "".join(json.dumps(s.message, separators=(",", ":")) + "\n" for s in plan.steps)
