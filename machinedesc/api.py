"""machinedesc's public Python API: everything a program or a test needs, and nothing else (docs/api.md).

Only the names in ``__all__`` are public and kept stable; the sub-packages
(``board``, ``plan``, ``apply``, ``qemu``, ``live``, ``views``) are the
implementation and may change between releases.

Boards, without QEMU::

    board = api.load_board("boards/soc.yaml", {"harts": 4})    # Board, or BoardError
    problems = api.check("boards/soc.yaml")                     # [Problem, ...], [] when valid
    plan = api.plan("boards/soc.yaml", firmware=["hello.elf"])  # Plan: .steps, .checks, .qemu_args

A machine in a real QEMU, built and verified as ``machinedesc apply`` does::

    with api.machine("boards/soc.yaml", firmware=["hello.elf"], paused=True) as m:
        m.qmp("qom-get", path="hart1", property="mhartid")      # the build's own QMP connection
        m.qmp("cont")
        m.console.expect("hello from hart 0", timeout=10)
        assert m.wait(timeout=10) == 0                           # QEMU's exit status: the guest powered off
    # here QEMU is gone and its private directory removed, whatever happened in the block

``machine_async`` is the same for asyncio (``async with``; ``await m.qmp``,
``await m.wait``; the console is the same object).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

from .apply.job import Options, plan_job
from .board.model import Board
from .errors import (BoardError, CapabilityError, ConsoleError, ConsoleExpectError, MachinedescError, Problem,
                     QemuError, QemuNotFoundError, QemuTimeoutError, StepError, UsageError)
from .live.console import Console
from .live.machine import AsyncMachine, Machine
from .plan import pipeline
from .plan.steps import Check, Plan, Step

#: A board file (str or path).
BoardPath = str | PathLike[str]
#: ``--set NAME=VALUE`` overrides: values as on the command line ("4", "128 MiB", "true"), or ints and bools.
Overrides = Mapping[str, str | int | bool]


def _sets(overrides: Overrides | None) -> dict[str, str]:
    """``sets`` as ``--set`` texts; UsageError for anything but a mapping of names to str, int or bool."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise UsageError(f"machinedesc: sets takes a mapping of parameter names to values, e.g. {{'harts': 4}}, "
                         f"got {type(overrides).__name__} {overrides!r}")
    out: dict[str, str] = {}
    for name, value in overrides.items():
        if not isinstance(name, str):
            raise UsageError(f"machinedesc: sets: parameter names are strings, got {name!r}")
        if not isinstance(value, (str, int)):  # bool is an int; a float, None or list has no --set text
            raise UsageError(f"machinedesc: sets {name}: a value is a string, an integer or a boolean, "
                             f"got {type(value).__name__} {value!r}")
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def load_board(board: BoardPath, sets: Overrides | None = None, *, allow_host_access: bool = False) -> Board:
    """The checked ``Board`` of a board file with ``sets`` applied; raises BoardError (``.problems``)."""
    return pipeline.load_board(Path(board), _sets(sets), allow_host_access=allow_host_access)


def check(board: BoardPath, sets: Overrides | None = None, *, allow_host_access: bool = False) -> list[Problem]:
    """Every problem of a board file (``Problem``: ``location`` file:line:col, ``message``, ``hint``); [] if valid.

    The same checks as ``machinedesc validate``, and the plan's (wiring,
    ordering) too: a board with no problems here can be planned.
    """
    try:
        pipeline.load_plan(Path(board), _sets(sets), allow_host_access=allow_host_access)
    except BoardError as err:
        return list(err.problems)
    return []


#: The command line's boot options by name: ``bios``, ``kernel``, ``initrd`` (files), ``append``
#: (the kernel command line), ``dtb`` (a file, ``auto`` or ``none``); docs/boot.md.
Boot = Mapping[str, str | PathLike[str]]
#: One firmware file, or several (``--firmware`` each).
Firmware = Sequence[BoardPath] | BoardPath


def plan(board: BoardPath, sets: Overrides | None = None, firmware: Firmware = (), *,
         boot: Boot | None = None, cache: bool = True, allow_host_access: bool = False) -> Plan:
    """The ``Plan`` of a board file (the QMP steps, the checks, QEMU's arguments); raises BoardError.

    ``firmware``: ELF files loaded into the machine (``--firmware``).
    ``boot``: ``--bios``/``--kernel``/``--initrd``/``--append``/``--dtb``, by name (docs/boot.md).
    ``cache``: reuse a plan computed before for the same inputs (docs/plan.md).
    """
    return pipeline.load_plan(Path(board), _sets(sets), _firmware(firmware),
                              cache=cache, allow_host_access=allow_host_access, boot=_boot(boot))


#: The keys of ``boot``: the command line's boot options, by name (docs/boot.md).
BOOT_KEYS = ("bios", "kernel", "initrd", "append", "dtb")


def _firmware(firmware: Firmware) -> tuple[Path, ...]:
    """``firmware`` as resolved paths of regular files (one path alone is a list of one); UsageError else."""
    from .storage import FileProblem, check_regular

    files = [firmware] if isinstance(firmware, (str, PathLike)) else list(firmware)
    out = []
    for item in files:
        if not isinstance(item, (str, PathLike)):
            raise UsageError(f"machinedesc: firmware takes file paths, got {item!r}")
        try:
            check_regular(Path(item))
        except FileProblem as problem:
            raise UsageError(f"machinedesc: firmware {item}: {problem.message}") from None
        out.append(Path(item).resolve())
    return tuple(out)


def _boot(boot: Boot | None) -> dict[str, str] | None:
    """``boot`` checked: known keys, string or path values (None leaves an option out); UsageError else."""
    if boot is None:
        return None
    if not isinstance(boot, Mapping):
        raise UsageError(f"machinedesc: boot takes a mapping of {', '.join(BOOT_KEYS)}, got {type(boot).__name__}")
    unknown = sorted(set(boot) - set(BOOT_KEYS))
    if unknown:
        raise UsageError(f"machinedesc: boot has no option {unknown[0]!r}: use {', '.join(BOOT_KEYS)}")
    out = {}
    for key, value in boot.items():
        if value is None:
            continue
        if not isinstance(value, (str, PathLike)):
            raise UsageError(f"machinedesc: boot {key} takes a string or a path, got {value!r}")
        out[key] = str(value)
    return out or None


def _options(qemu: str | PathLike[str] | None, timeout: float, paused: bool, extra_args: Sequence[str],
             verbose: bool, allow_host_access: bool, timings: dict[str, float] | None) -> Options:
    if isinstance(extra_args, str):
        raise UsageError("machinedesc: extra_args takes a list of QEMU arguments, e.g. ['-m', '64K'] "
                         "(shlex.split a string)")
    return Options(qemu=str(qemu) if qemu is not None else None, timeout=timeout, paused=paused,
                   extra_args=tuple(extra_args), verbose=verbose, allow_host_access=allow_host_access,
                   timings=timings)


def _plan_of(board: BoardPath | Plan, sets: Overrides | None, firmware: Firmware, boot: Boot | None,
             allow_host_access: bool) -> Plan:
    if isinstance(board, Plan):
        if sets or firmware or boot:
            raise UsageError("machinedesc: sets, firmware and boot apply to a board file, not to a Plan "
                             "(plan it with them)")
        return board
    return plan(board, sets, firmware, boot=boot, allow_host_access=allow_host_access)


def machine(board: BoardPath | Plan, sets: Overrides | None = None, firmware: Firmware = (), *,
            boot: Boot | None = None, qemu: str | PathLike[str] | None = None, timeout: float = 30.0,
            paused: bool = False, extra_args: Sequence[str] = (), verbose: bool = False,
            allow_host_access: bool = False, timings: dict[str, float] | None = None) -> Machine:
    """A machine for a board file (or a ``Plan``), built in QEMU on entering ``with``.

    The board is planned now (BoardError if invalid); entering the ``with``
    block starts QEMU (``qemu``, else the lookup of docs/apply.md), builds
    and verifies the machine and starts its CPUs (unless ``paused``);
    ``timeout`` bounds QEMU's start and each QMP reply. It raises what
    ``apply`` exits with (CapabilityError 3, StepError 4, QemuError 5...)
    and leaves nothing behind. ``boot``: the command line's boot options
    by name (``{"kernel": "Image", "append": "console=ttyS0"}``, docs/boot.md).
    ``extra_args`` are more QEMU options;
    ``timings`` (a dict) receives seconds per build stage.
    """
    chosen = _plan_of(board, sets, firmware, boot, allow_host_access)
    return Machine(plan_job(chosen), _options(qemu, timeout, paused, extra_args, verbose, allow_host_access,
                                              timings))


def machine_async(board: BoardPath | Plan, sets: Overrides | None = None, firmware: Firmware = (), *,
                  boot: Boot | None = None, qemu: str | PathLike[str] | None = None, timeout: float = 30.0,
                  paused: bool = False, extra_args: Sequence[str] = (), verbose: bool = False,
                  allow_host_access: bool = False, timings: dict[str, float] | None = None) -> AsyncMachine:
    """``machine`` for asyncio: ``async with machine_async(...) as m``."""
    chosen = _plan_of(board, sets, firmware, boot, allow_host_access)
    return AsyncMachine(plan_job(chosen), _options(qemu, timeout, paused, extra_args, verbose, allow_host_access,
                                                   timings))


__all__ = [
    # boards and plans
    "load_board", "check", "plan", "Board", "Plan", "Step", "Check", "Problem",
    # machines
    "machine", "machine_async", "Machine", "AsyncMachine", "Console",
    # errors (machinedesc.errors)
    "MachinedescError", "BoardError", "UsageError", "CapabilityError", "QemuNotFoundError", "StepError",
    "QemuError", "QemuTimeoutError", "ConsoleError", "ConsoleExpectError",
]
