"""What a QEMU binary can do: its QMP schema and device types, probed once per binary and cached.

apply and run check, before sending a single step, that every command, every
argument and every device type they will use exists, so that stock QEMU fails
fast with exit 3 and a message saying what is missing, instead of a QMP error
halfway through a build.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CapabilityError, UnknownTypeError
from ..storage import cache_dir, write_file
from .binary import HOW_TO_GET_PATCHED
from .session import Session, qemu_version

# device_add takes any device property; these are the arguments that only the
# patched QEMU understands (they are in its schema, not in stock QEMU's).
_DEVICE_ADD_CONTROL = frozenset({"realized", "parent"})

#: The arguments of x-sysbus-mmio-map's alias form (map a window of a region, patch 32 of the
#: series); builds of the series before it have the command without them.
MMIO_ALIAS_ARGS = frozenset({"offset", "size"})

# Bump when the cached capability format (Capabilities.to_json) changes.
_PROBE_FORMAT = 1


@dataclass(frozen=True)
class Capabilities:
    """What a QEMU binary offers: each command's argument names (with union variants), device types."""

    #: command -> (member names, union tag or None, {tag value: variant member names})
    commands: Mapping[str, tuple[frozenset[str], str | None, Mapping[str, frozenset[str]]]]
    types: frozenset[str]

    def to_json(self) -> dict[str, Any]:
        return {"commands": {name: [sorted(m), tag, {k: sorted(v) for k, v in var.items()}]
                             for name, (m, tag, var) in self.commands.items()},
                "types": sorted(self.types)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Capabilities:
        return cls({name: (frozenset(m), tag, {k: frozenset(v) for k, v in var.items()})
                    for name, (m, tag, var) in data["commands"].items()},
                   frozenset(data["types"]))


async def query_capabilities(session: Session[Any]) -> Capabilities:
    """Ask QEMU for its schema (query-qmp-schema) and device types (qom-list-types)."""
    schema = await session.call("query-qmp-schema")
    by_name = {entry["name"]: entry for entry in schema}
    commands: dict[str, tuple[frozenset[str], str | None, Mapping[str, frozenset[str]]]] = {}
    for entry in schema:
        if entry.get("meta-type") != "command":
            continue
        members, variants, tag = _members(by_name, entry.get("arg-type"))
        commands[entry["name"]] = (frozenset(members), tag,
                                   {case: frozenset(_members(by_name, t)[0]) for case, t in variants.items()})
    types: frozenset[str] = frozenset()
    if "qom-list-types" in commands:
        reply = await session.call("qom-list-types", {"abstract": False})
        types = frozenset(t["name"] for t in reply)
    return Capabilities(commands, types)


def _cache_file(binary: Path) -> Path | None:
    """The cache entry (relative to the cache root) for ``binary``: keyed by its path, size and mtime."""
    try:
        st = binary.stat()
    except OSError:
        return None
    key = hashlib.sha256(f"{_PROBE_FORMAT}\0{binary.resolve()}\0{st.st_size}\0{st.st_mtime_ns}".encode())
    return Path("probe") / f"{key.hexdigest()[:32]}.json"


async def capabilities(session: Session[Any], binary: Path | None) -> Capabilities:
    """The binary's capabilities, from the cache when the same binary was probed before.

    Probing costs ~50-80 ms (the schema alone is ~230 kB of JSON); a binary
    that changes gets a new key.  ``binary`` None (--connect) always probes.
    """
    entry = _cache_file(binary) if binary is not None else None
    directory = cache_dir("probe") if entry is not None else None
    if entry is not None and directory is not None:
        try:
            return Capabilities.from_json(json.loads((directory / entry.name).read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            pass
    caps = await query_capabilities(session)
    directory = cache_dir("probe", create=True) if entry is not None else None
    if entry is not None and directory is not None:
        with contextlib.suppress(OSError):
            write_file(directory / entry.name, json.dumps(caps.to_json()).encode(), mode=0o600)
    return caps


async def probe(session: Session[Any], title: str, commands: Sequence[tuple[str, Mapping[str, Any]]],
                needed: Iterable[str], binary: str, binary_path: Path | None = None,
                locations: Sequence[str] = ()) -> Capabilities:
    """Check that QEMU has every command, argument and device type that ``commands`` use; its capabilities.

    ``needed`` names further commands machinedesc itself sends (e.g.
    query-machine-phase); ``locations``, ``file:line:col`` or '' for each
    command, where it comes from.  Raises CapabilityError (exit 3) naming the
    binary, its version, what is missing and how to get the patched build
    (a build of the series without the alias form of x-sysbus-mmio-map, at
    the line of the first window: ``alias_refusal``); or, when only device
    types are missing (the binary has the series: a typo in a type name, or
    a type this binary lacks), UnknownTypeError (exit 4).
    """
    caps = await capabilities(session, binary_path)
    refusal = alias_refusal(caps, commands, locations, f"{binary} ({qemu_version(session.client)})")
    if refusal is not None:
        raise CapabilityError(refusal)
    problem = missing_capabilities(caps, commands, needed)
    if problem is None:
        return caps
    if all(line.startswith("  missing device types: ") for line in problem):
        drivers = {str(args.get("driver", "")) for name, args in commands if name == "device_add"}
        raise UnknownTypeError(sorted(drivers - caps.types), caps.types)
    lines = [f"machinedesc: {binary} ({qemu_version(session.client)}) cannot build {title}:", *problem]
    lines.append("  hint: this needs QEMU with machinedesc's patch series (qemu/patches); "
                 + HOW_TO_GET_PATCHED)
    raise CapabilityError("\n".join(lines))


def alias_refusal(caps: Capabilities, commands: Sequence[tuple[str, Mapping[str, Any]]],
                  locations: Sequence[str], binary: str) -> str | None:
    """The error for a binary whose x-sysbus-mmio-map lacks the alias form, at the first command that uses it.

    A build of the series from before patch 32 has x-sysbus-mmio-map without
    ``offset`` and ``size``: it could build every other step, so the message
    names the board line that maps a window, not a list of arguments.  None
    when the binary has the form, has no x-sysbus-mmio-map at all (the
    generic message says so), or no command maps a window.
    """
    spec = caps.commands.get("x-sysbus-mmio-map")
    if spec is None or MMIO_ALIAS_ARGS <= spec[0]:
        return None
    first = next((i for i, (name, args) in enumerate(commands)
                  if name == "x-sysbus-mmio-map" and MMIO_ALIAS_ARGS & set(args)), None)
    if first is None:
        return None
    where = locations[first] if first < len(locations) else ""
    return (f"{where + ': ' if where else ''}{binary} cannot map a window of a region "
            "(mmio: with offset and size): its x-sysbus-mmio-map has no alias form\n"
            "  hint: the alias form is patch 32 of machinedesc's series (qemu/patches); "
            + HOW_TO_GET_PATCHED)


def missing_capabilities(caps: Capabilities, commands: Sequence[tuple[str, Mapping[str, Any]]],
                         needed: Iterable[str] = ()) -> list[str] | None:
    """Lines naming what ``commands`` (and ``needed``) require and ``caps`` lacks, or None."""
    missing_cmds = sorted(({name for name, _ in commands} | set(needed)) - caps.commands.keys())
    missing_args: set[str] = set()
    drivers: set[str] = set()
    for name, arguments in commands:
        spec = caps.commands.get(name)
        if spec is None:
            continue
        members, tag, variants = spec
        keys = set(arguments)
        if name == "device_add":
            drivers.add(str(arguments.get("driver", "")))
            keys &= _DEVICE_ADD_CONTROL
        elif tag is not None and tag in arguments:
            variant = variants.get(str(arguments[tag]))
            if variant is None:
                missing_args.add(f"{name} {tag}={arguments[tag]}")
                continue
            members = members | variant
        for key in sorted(keys - members):
            missing_args.add(f"{name} '{key}'")
    drivers.discard("")
    missing_types = sorted(drivers - caps.types) if caps.types else []
    if not (missing_cmds or missing_args or missing_types):
        return None
    lines = []
    if missing_cmds:
        lines.append("  missing QMP commands: " + ", ".join(missing_cmds))
    if missing_args:
        lines.append("  missing QMP arguments: " + ", ".join(sorted(missing_args)))
    if missing_types:
        lines.append("  missing device types: " + ", ".join(missing_types))
    return lines


def _members(by_name: Mapping[str, Any], type_name: str | None) -> tuple[set[str], dict[str, str], str | None]:
    if not type_name or type_name not in by_name:
        return set(), {}, None
    entry = by_name[type_name]
    members = {m["name"] for m in entry.get("members", [])}
    variants = {v["case"]: v["type"] for v in entry.get("variants", [])}
    return members, variants, entry.get("tag")
