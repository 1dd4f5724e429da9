"""The v4 dialect of the QMP-configuration series, read into machinedesc's own (docs/apply.md, "Dialects").

GreenSocs' ``qemu-qmp-machines`` files were written for version 4 of the
QMP-configuration patch series, whose QEMU differs from machinedesc's
patched one in five ways; each is mapped here, line by line, keeping every
command's file position:

* no ``x-machine-init``: the first ``device_add`` (or ``sysbus-mmio-map``)
  in preconfig initializes the machine. An ``x-machine-init`` step, located
  at that line, is sent before it.
* ``sysbus-mmio-map device= addr= [mmio=] [priority=]`` is
  ``x-sysbus-mmio-map`` with the same arguments. Its alias form
  (``alias=true [offset=] size=``, the window [offset, offset + size) of
  the region; offset 0 when left out) is the alias form of
  ``x-sysbus-mmio-map`` (``offset`` and ``size``, patch 32 of the series);
  ``size`` is required, and ``offset``/``size`` without ``alias=true`` are
  refused at their line.
* ``qom-set path=/machine property=ram-addr value=ADDR`` with ``-m SIZE`` on
  the command line puts the machine's RAM at ADDR. The ``none`` machine maps
  ``-m`` RAM at address 0 and has no ``ram-addr``, so ``-m`` is taken off the
  command line and the RAM becomes a ``sysbus-memory`` of that size (id
  ``ram``, or ``ram-N`` if ``ram`` is taken) mapped at ADDR right after the
  machine initializes: the same writable RAM at the same address, made by a
  device instead of the machine (its memory region is named after the device).
  A ``ram-addr`` set once the machine is initialized (the first
  ``device_add``, or the file's own ``x-machine-init``) is an error at its
  line: the machine reads it as it initializes.
* numbers may be hex (``size=0x2000``): a string value ``0x...`` becomes an
  integer.
* QOM paths may be relative (``path=plic``, ``value=cpus/harts[0]/...``):
  one whose first part is a device the file adds is made absolute
  (``/machine/peripheral/plic``); QEMU would resolve it as a partial path too,
  but an absolute one cannot be ambiguous.

``riscv.hart_array`` needs no mapping: machinedesc's QEMU creates it with
``device_add`` like any device. Device types that exist only in GreenSocs'
fork (``FORK_ONLY``) are refused at their line.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..errors import QmpFileError, UsageError
from ..qemu.phases import MACHINE_INIT
from .qmpfile import QmpFile
from .steps import Step, StepKind

MACHINEDESC = "machinedesc"
V4 = "v4"
DIALECTS = (MACHINEDESC, V4)

#: Device types only GreenSocs' QEMU fork has, with what to write instead.
FORK_ONLY: Mapping[str, str] = {
    "arm-cpus": "an array of Arm CPUs in GreenSocs' fork only: add one CPU per core (e.g. cortex-a57-arm-cpu) "
                "under a cpu-cluster instead",
}
_HEX = re.compile(r"^0[xX][0-9a-fA-F]+$")
_SIZE = re.compile(r"^(?:size=)?([0-9]+)([KMGT]?)[bB]?$")
_UNITS = {"": 20, "K": 10, "M": 20, "G": 30, "T": 40}  # QEMU's -m: a bare number is MiB
_CREATES = ("device_add", "sysbus-mmio-map")


@dataclass(frozen=True)
class Dialect:
    """Which dialect a file was read in, and why (for the note on stderr)."""

    name: str
    why: str

    def note(self, path: str) -> str:
        return f"machinedesc: reading {path} in the {self.name} dialect ({self.why})"


def detect(qmp: QmpFile) -> Dialect:
    """The dialect of a parsed file: v4 if it uses sysbus-mmio-map, /machine ram-addr, or adds a
    device before any x-machine-init; machinedesc's otherwise."""
    init = False
    for step in qmp.commands:
        line = step.location.line if step.location else 0
        if step.command == MACHINE_INIT:
            init = True
        elif step.command == "sysbus-mmio-map":
            return Dialect(V4, f"line {line}: sysbus-mmio-map")
        elif _is_ram_addr(step):
            return Dialect(V4, f"line {line}: ram-addr of /machine")
        elif step.command == "device_add" and not init:
            return Dialect(V4, f"line {line}: device_add without x-machine-init before it")
    return Dialect(MACHINEDESC, "the commands of machinedesc plan")


def _is_ram_addr(step: Step) -> bool:
    args = step.arguments
    return step.command == "qom-set" and args.get("property") == "ram-addr" and \
        str(args.get("path", "")).rstrip("/") == "/machine"


def ram_size(args: Sequence[str]) -> tuple[int | None, list[str]]:
    """The bytes of a ``-m SIZE`` (or ``-m size=SIZE``) in ``args`` and the args without it.

    Raises UsageError for a size QEMU's -m would not take the same way.
    """
    out: list[str] = []
    size: int | None = None
    it = iter(args)
    for arg in it:
        if arg not in ("-m", "--m"):
            out.append(arg)
            continue
        value = next(it, "")
        match = _SIZE.match(value.split(",")[0])
        if not match or "," in value:
            raise UsageError(f"-m {value}: the v4 dialect reads -m SIZE or -m size=SIZE (e.g. 64K, 128M)")
        size = int(match[1]) << _UNITS[match[2]]
    return size, out


def translate(qmp: QmpFile, ram_bytes: int | None) -> QmpFile:
    """The file's commands in machinedesc's dialect (see the module docstring).

    Raises QmpFileError at the line of what cannot be mapped.
    """
    ids = {str(s.arguments.get("id")) for s in qmp.commands if s.command == "device_add" and "id" in s.arguments}
    ram_id = "ram" if "ram" not in ids else next(f"ram-{n}" for n in range(1, len(ids) + 2) if f"ram-{n}" not in ids)
    ram_addr: tuple[int, Step] | None = None
    explicit = any(s.command == MACHINE_INIT for s in qmp.commands)  # a file that initializes it itself
    initialized: Step | None = None  # the command that initialized the machine
    out: list[Step] = []
    for step in qmp.commands:
        args = _unhex(dict(step.arguments))
        if _is_ram_addr(step):
            ram_addr = (_ram_addr(step, args, ram_bytes, initialized), step)
            continue
        if step.command == "device_add" and str(args.get("driver")) in FORK_ONLY:
            raise _error(step, f"device type '{args['driver']}' exists only in GreenSocs' QEMU fork",
                         FORK_ONLY[str(args["driver"])])
        if initialized is None and (step.command == MACHINE_INIT or step.command in _CREATES and not explicit):
            initialized = step
            if step.command != MACHINE_INIT:
                out.append(Step(step.phase, StepKind.TRANSITION, MACHINE_INIT, {}, step.location,
                                "the v4 dialect initializes the machine at its first device_add"))
            else:
                out.append(replace(step, arguments=args))
            if ram_addr is not None:  # the -m RAM, where the machine would have put it as it initialized
                out.extend(_ram_steps(ram_id, ram_bytes or 0, *ram_addr))
            if step.command == MACHINE_INIT:
                continue
        if step.command == "sysbus-mmio-map":
            out.append(_mmio_map(step, args))
            continue
        if step.command == "qom-set":
            args = _absolute(args, ids)
        out.append(replace(step, arguments=args))
    if ram_addr is not None and initialized is None:
        raise _error(ram_addr[1], "ram-addr is set, but no device_add follows to initialize the machine")
    return replace(qmp, commands=tuple(out))


def _ram_addr(step: Step, args: Mapping[str, Any], ram_bytes: int | None, initialized: Step | None) -> int:
    """The address of a ``qom-set /machine ram-addr``; QmpFileError when it cannot place the -m RAM."""
    addr = args.get("value")
    if isinstance(addr, bool) or not isinstance(addr, int):
        raise _error(step, f"ram-addr must be an address, got {addr!r}")
    if ram_bytes is None:
        raise _error(step, "ram-addr places the -m RAM, but the command line has no -m SIZE",
                     "give the RAM size: `-- -m size=64K` after run's file, `--ram-size 64K` to import-qmp")
    if initialized is not None:
        line = initialized.location.line if initialized.location else 0
        raise _error(step, f"ram-addr is set after the machine was initialized (by line {line}): the RAM is "
                     "placed when the machine initializes",
                     "move the ram-addr qom-set before the first device_add (or x-machine-init)")
    return addr


def _ram_steps(ram_id: str, size: int, addr: int, at: Step) -> list[Step]:
    why = f"ram-addr: the -m RAM ({size} bytes) as a sysbus-memory at {addr:#x}"
    return [Step(at.phase, StepKind.CREATE, "device_add", {"driver": "sysbus-memory", "id": ram_id, "size": size},
                 at.location, why, ram_id),
            Step(at.phase, StepKind.MAP, "x-sysbus-mmio-map", {"device": ram_id, "addr": addr},
                 at.location, why, ram_id)]


def _mmio_map(step: Step, args: dict[str, Any]) -> Step:
    unknown = sorted(set(args) - {"device", "addr", "mmio", "priority", "alias", "offset", "size"})
    if unknown:
        raise _error(step, f"sysbus-mmio-map: unknown argument '{unknown[0]}'",
                     "it takes device, addr, mmio (the region index), priority, and alias=true with "
                     "offset and size for a window of the region")
    alias = args.pop("alias", False)
    if not isinstance(alias, bool):
        raise _error(step, f"sysbus-mmio-map: alias must be true or false, got {alias!r}")
    if not alias:
        if {"offset", "size"} & set(args):
            raise _error(step, "sysbus-mmio-map: offset= and size= map a window of the region only with alias=true",
                         "add alias=true, or leave them out to map the whole region")
        return Step(step.phase, StepKind.RAW, "x-sysbus-mmio-map", args, step.location, written=step.command)
    # The alias form: the window [offset (default 0), offset + size) of the region at addr,
    # x-sysbus-mmio-map's alias form (patch 32), which takes both offset and size.
    if "size" not in args:
        raise _error(step, "sysbus-mmio-map alias=true: size= is missing (the size of the window, bytes)",
                     "machinedesc's QEMU maps a window of a known size: give size=")
    args.setdefault("offset", 0)
    return Step(step.phase, StepKind.RAW, "x-sysbus-mmio-map", args, step.location, written=step.command)


def _unhex(value: Any) -> Any:
    if isinstance(value, str) and _HEX.match(value):
        return int(value, 16)
    if isinstance(value, dict):
        return {k: _unhex(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_unhex(v) for v in value]
    return value


def _absolute(args: dict[str, Any], ids: set[str]) -> dict[str, Any]:
    """qom-set's path (and a value that is a path) made absolute when it starts at a device of the file."""
    out = dict(args)
    for key in ("path", "value"):
        text = out.get(key)
        if isinstance(text, str) and not text.startswith("/") and (text.split("/")[0] in ids) and \
                (key == "path" or "/" in text):
            out[key] = "/machine/peripheral/" + text
    return out


def _error(step: Step, message: str, hint: str | None = None) -> QmpFileError:
    from ..source import SourceLocation

    return QmpFileError(step.location or SourceLocation("?", 0, 0), message, hint)
