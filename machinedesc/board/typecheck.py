"""Checks against the QEMU type data: types, properties and their values, links, CPU counts.

The facts come from ``qemu.types.type_info`` (the type database of the
board's system merged with the hand table). Without a database for the
system, only what the hand table knows is checked, and a note says so.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ..errors import Collector, Hints
from ..qemu.typedb import PropertyInfo, TypeDatabase
from ..qemu.types import CpuUse, TypeInfo, system_database, system_type_info
from .expr import ExprError, evaluate
from ..source import SourceLocation
from .builder_values import yaml_repr
from .model import Board, Component, link_target

#: device_add arguments that are not properties of the type.
DEVICE_ADD_OPTIONS = frozenset({"bus"})
#: Plain words YAML 1.1 read as booleans and YAML 1.2 (machinedesc) reads as strings.
YAML11_BOOLS = frozenset({"yes", "no", "on", "off", "y", "n"})
#: A string that was meant as a size but is not in the grammar (``1.5 GiB``, ``128MB``, ``4k``).
LOOKS_LIKE_SIZE = re.compile(r"^\s*[0-9][0-9_,.]*\s*([KMGTPE]i?B?|[kmgtpe]i?b?|B|bytes?)\s*$")
#: Property names that may change how many lines or how large regions a device
#: has: when a board sets one on a device whose counts and sizes come from the
#: type database (measured with default properties), that check becomes a note.
SHAPING_PROPERTY = re.compile(r"(^|[-_])(num|len)[-_]|size|count|shift|width|pages|harts|cpus|irqs|lines|ports|regions")

SIZE_HINT = "write a size as an integer, or an integer and a binary unit: B, KiB, MiB, GiB, TiB (e.g. 1536 MiB)"


def env_of(comp: Component) -> dict[str, Any]:
    """What expressions over ``comp``'s properties see: the database defaults, then the board's values."""
    env = comp.info.defaults()
    env.update({k.replace("-", "_"): v for k, v in comp.props.items()})
    return env


def shaping_props(comp: Component) -> list[str]:
    """The properties ``comp`` sets that may change its line counts or region sizes (SHAPING_PROPERTY)."""
    return sorted(k for k, v in comp.props.items()
                  if isinstance(v, int) and not isinstance(v, bool) and SHAPING_PROPERTY.search(k))


def check_types(board: Board, problems: Collector) -> None:
    """Problems for types, properties, values and links the type data refuses; notes for what it cannot check."""
    db = system_database(board.system)
    if db is None:
        problems.note(None, "", f"no type database for qemu-system-{board.system}: only the hand-written "
                                "types (qemu/data/qemu_types.yaml) are checked")
    by_id = board.by_id
    seen: set[tuple[int, str]] = set()
    hints: dict[str, tuple[str, str | None]] = {}  # unknown type -> (hint, suggested type), once per name
    for comp in board.components:
        if comp.synthetic or comp.parts is None:
            continue
        info = comp.info
        # Copies of one entry share its positions, type and property names: check those once.
        first_copy = (id(comp.parts), comp.type) not in seen
        seen.add((id(comp.parts), comp.type))
        if db is not None and info.device is None:
            if first_copy:
                _unknown_type(comp, db, hints, problems)
            continue
        refused = _refused(info)
        if refused is not None:
            if first_copy:
                problems.add(comp.part_location("type"), f"{_entry_path(comp)}.type", *refused)
            continue
        props = info.properties
        if props is None:
            _check_size_strings(comp.props, functools.partial(comp.part_location, "props"),
                                f"{comp.yaml_path}.props", problems)
            continue
        _check_props(comp, props, first_copy, problems)
        _check_links(comp, props, by_id, problems)
    for backend in board.backends:
        # Object types are not in the type database: only what is clearly a misspelt size.
        _check_size_strings(backend.props, backend.prop_location, f"backends.{backend.id}.props", problems)
    if not board.incomplete:
        check_cpu_counts(board, problems)


#: What the patched QEMU answers for a type it refuses in any machine built over QMP
#: (SoC containers, cores of other devices), as the type database's probe recorded it.
REFUSED_OVER_QMP = "cannot be created on a machine built over QMP"


def _refused(info: TypeInfo) -> tuple[str, str] | None:
    """(message, hint) for a type QEMU never creates with device_add: abstract, or refused over QMP."""
    device = info.device
    if device is None:
        return None
    if device.abstract:
        return f"'{info.name}' is an abstract QEMU type: it cannot be created", "use one of the types derived from it"
    note = device.probe_note or ""
    if not device.creatable and REFUSED_OVER_QMP in note:
        why = note[note.index(REFUSED_OVER_QMP) + len(REFUSED_OVER_QMP):].lstrip(": ")
        return (f"QEMU refuses '{info.name}' in a machine built over QMP", why or "use the devices it is made of")
    return None


def _entry_path(comp: Component) -> str:
    """The entry's YAML path without the copy (``components.hart${i}``)."""
    return comp.yaml_path.split(" (i=", 1)[0]


#: How similar (difflib's ratio) the one closest device type must be for an unknown type's property
#: names to be checked against it: a typo of one or two characters in a name of ten.
CLEAR_MATCH = 0.85


def _unknown_type(comp: Component, db: TypeDatabase, hints: dict[str, tuple[str, str | None]],
                  problems: Collector) -> None:
    """The unknown type's error; its property names checked against the suggested type when only one is close.

    Otherwise the properties are not checked at all, and the error says so
    (a typo in them would else surface only once the type is fixed).
    """
    if comp.type not in hints:
        ranked = problems.hints.ranked(comp.type, db.concrete(), 2)
        clear = ranked and ranked[0][0] >= CLEAR_MATCH and (len(ranked) == 1 or ranked[1][0] < ranked[0][0])
        hints[comp.type] = (f"did you mean '{ranked[0][1]}'?" if ranked else
                            f"`qemu-system-{db.system} -device help` lists the device types",
                            ranked[0][1] if clear else None)
    hint, guess = hints[comp.type]
    names = [n for n in comp.props if n not in DEVICE_ADD_OPTIONS]
    props = system_type_info(guess, db.system).properties if guess is not None and names else None
    message = f"qemu-system-{db.system} has no device type '{comp.type}'"
    if props is not None:
        message += f"; its property names are checked against '{guess}', their values not until the type is known"
    elif names:
        message += "; its properties are not checked until the type is known"
    problems.add(comp.part_location("type"), f"{_entry_path(comp)}.type", message, hint)
    for name in names:
        if props is not None and name not in props:
            problems.add(comp.part_location("props", name, key=True), f"{_entry_path(comp)}.props.{name}",
                         f"{guess} (the type suggested for '{comp.type}') has no property '{name}'",
                         problems.hints.did_you_mean(name, props) or f"its properties: {_names(props)}")


def _check_props(comp: Component, props: Mapping[str, PropertyInfo], first_copy: bool, problems: Collector) -> None:
    for name, value in comp.props.items():
        prop = props.get(name)
        if prop is None:
            if first_copy and name not in DEVICE_ADD_OPTIONS:
                problems.add(comp.part_location("props", name, key=True), f"{_entry_path(comp)}.props.{name}",
                             f"{comp.type} has no property '{name}'",
                             problems.hints.did_you_mean(name, props) or f"its properties: {_names(props)}")
            continue
        found = value_problem(prop, value) or _limit_problem(comp, name, value)
        if found is not None:
            problems.add(comp.part_location("props", name), f"{comp.yaml_path}.props.{name}", *found)


def _limit_problem(comp: Component, name: str, value: Any) -> tuple[str, str] | None:
    """(message, hint) for a value outside the hand table's ``limits`` of the type (QEMU would abort)."""
    limit = comp.info.limits.get(name)
    if limit is None or isinstance(value, bool) or not isinstance(value, int) or limit[0] <= value <= limit[1]:
        return None
    return (f"{value} is out of range for '{name}' of {comp.type}: {_bound(limit[0])}..{_bound(limit[1])} "
            f"({limit[2]})", "QEMU refuses the value when the device is created, or aborts (qemu_types.yaml limits)")


def _check_size_strings(values: Mapping[str, Any], where: Callable[[str], SourceLocation | None], path: str,
                        problems: Collector) -> None:
    """Where the property types are unknown: strings that look like a size but are not in the grammar.

    ``where(name)`` is the position of property ``name``'s value.
    """
    for name, value in values.items():
        if isinstance(value, str) and LOOKS_LIKE_SIZE.match(value):
            problems.add(where(name), f"{path}.{name}", f"'{value}' is not a size machinedesc reads",
                         SIZE_HINT)


def _names(props: Iterable[str], limit: int = 30) -> str:
    names = sorted(props)
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "") if names else "none"


def value_problem(prop: PropertyInfo, value: Any) -> tuple[str, str] | None:
    """(message, hint) when ``value`` is not a value of ``prop``'s QEMU type, else None."""
    if value is None:
        return None  # not computed: its own problem is reported
    kind, what = prop.kind, f"'{prop.name}' ({prop.qemu_type})"
    if kind == "bool":
        if isinstance(value, bool):
            return None
        if isinstance(value, str) and value.lower() in YAML11_BOOLS:
            return (f"{what} is a boolean; '{value}' is a string",
                    f"write true or false: YAML 1.2 reads '{value}' as a string, not a boolean")
        return f"{what} is a boolean, got {yaml_repr(value)}", "write true or false"
    if kind in ("int", "uint", "size"):
        return _number_problem(prop, what, value)
    if kind == "chardev":
        if isinstance(value, str):
            return None
        return f"{what} names a chardev, got {yaml_repr(value)}", "write the id of a chardev declared under chardevs:"
    if kind == "str":
        if isinstance(value, str):
            return None
        return f"{what} is a string, got {yaml_repr(value)}", f"quote it: '{yaml_repr(value)}'"
    if kind == "enum":
        choices = tuple(prop.enum_values or ())
        if isinstance(value, str) and (not choices or value in choices):
            return None
        return (f"{what} takes one of: {', '.join(choices)}; got {yaml_repr(value)}",
                # A few names at most: a hint budget of its own.
                Hints().did_you_mean(str(value), choices) or "write one of the values, as a string")
    if kind == "link":
        return (f"{what} is a link: set it under links:",
                f"e.g. links: {{{prop.name}: <id of the component it points to>}}")
    if kind == "array" and not isinstance(value, list):
        return f"{what} is a list, got {yaml_repr(value)}", "write a YAML list, e.g. [1, 2]"
    return None


def _number_problem(prop: PropertyInfo, what: str, value: Any) -> tuple[str, str] | None:
    if isinstance(value, bool):
        return f"{what} is a number, not a boolean", f"write {int(value)} (or another integer)"
    if isinstance(value, str):
        if LOOKS_LIKE_SIZE.match(value):
            return f"'{value}' is not a size machinedesc reads", SIZE_HINT
        return f"{what} is an integer, got the string {yaml_repr(value)}", "write an integer, unquoted"
    if not isinstance(value, int):
        return f"{what} is an integer, got {yaml_repr(value)}", "write an integer"
    lo, hi = prop.minimum, prop.maximum
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return (f"{value} is out of range for {what}: {_bound(lo)}..{_bound(hi)}",
                "QEMU would refuse the value when the device is created")
    return None


def _bound(v: int | None) -> str:
    if v is None:
        return "?"
    return f"{v:#x}" if v > 0xFFFF else str(v)


def _check_links(comp: Component, props: Mapping[str, PropertyInfo], by_id: Mapping[str, Component],
                 problems: Collector) -> None:
    for name, target in comp.links.items():
        prop = props.get(name)
        where_key = comp.part_location("links", name, key=True)
        if prop is None:
            links = [n for n, p in props.items() if p.kind == "link"]
            problems.add(where_key, f"{_entry_path(comp)}.links.{name}", f"{comp.type} has no property '{name}'",
                         problems.hints.did_you_mean(name, links) or f"its link properties: {_names(links)}")
            continue
        if prop.kind != "link":
            problems.add(where_key, f"{_entry_path(comp)}.links.{name}",
                         f"'{name}' of {comp.type} is not a link ({prop.qemu_type})", "set it under props:")
            continue
        owner, inside = link_target(target)
        other = by_id.get(owner)
        if other is None or inside or not prop.link_type:
            continue  # a backend, an object inside a device, an absolute path: QEMU checks those
        odb = other.info.device
        if odb is None or prop.link_type == other.type or prop.link_type in odb.ancestry:
            continue
        problems.add(comp.part_location("links", name), f"{comp.yaml_path}.links.{name}",
                     f"link '{name}' of {comp.type} must point to a {prop.link_type} ({prop.qemu_type}); "
                     f"'{owner}' is a {other.type}",
                     f"the types {other.type} is: " + ", ".join((other.type, *odb.ancestry)))


# ------------------------------------------------------------------ CPU counts


def _int(expr: int | str, env: Mapping[str, Any]) -> int | None:
    if isinstance(expr, int):
        return expr
    try:
        value = evaluate(expr, env)
    except ExprError:
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def cpu_range(use: CpuUse, comp: Component) -> tuple[int, int] | None:
    """(first, count) of the CPU ids ``use`` describes for ``comp``; None when not computable or off."""
    env = env_of(comp)
    if use.unless and env.get(use.unless.replace("-", "_")) is True:
        return None
    first = _int(use.first, env)
    if use.items:
        text = env.get(use.items.replace("-", "_"))
        count: int | None = len(text.split(",")) if isinstance(text, str) and text else None
    else:
        count = _int(use.count, env)
    if first is None or count is None:
        return None
    return first, count


def created_cpus(board: Board) -> int:
    """CPUs that components create themselves (riscv.hart_array num-harts), for -smp maxcpus."""
    total = 0
    for comp in board.components:
        use = comp.info.creates_cpus
        span = cpu_range(use, comp) if use is not None else None
        if span is not None:
            total += max(span[1], 0)
    return total


def cpu_ids(board: Board) -> list[int]:
    """The ids of the board's CPUs, in board order: RISC-V mhartid, else the creation index."""
    ids: list[int] = []
    index = 0
    for comp in board.components:
        info = comp.info
        if info.is_cpu:
            value = env_of(comp).get(info.cpu_id.replace("-", "_")) if info.cpu_id else index
            ids.append(value if isinstance(value, int) and not isinstance(value, bool) else 0)
            index += 1
        elif info.creates_cpus is not None:
            span = cpu_range(info.creates_cpus, comp)
            if span is not None:
                ids.extend(range(span[0], span[0] + span[1]))
                index += span[1]
    return ids


def check_cpu_counts(board: Board, problems: Collector) -> None:
    """Every CPU a device looks up when it realizes (hart ids, num-cpu) must be one of the board's."""
    ids: list[int] | None = None
    for comp in board.components:
        use = comp.info.cpus
        if use is None:
            continue
        span = cpu_range(use, comp)
        if span is None:
            continue
        if ids is None:
            ids = cpu_ids(board)
        have = set(ids)
        first, count = span
        missing = next((i for i in range(first, first + count) if i not in have), None)
        if missing is None:
            continue
        prop = use.what if use.what in comp.props else None
        where = comp.part_location("props", prop) if prop else comp.location
        last = first + count - 1
        wanted = f"CPU {first}" if count == 1 else f"CPUs {first}..{last}"
        value = env_of(comp).get(use.what.replace("-", "_"))
        setting = f"{use.what} {yaml_repr(value)}" if value is not None else use.what
        kind = "hart id (mhartid)" if comp.info.cpus and board.system.startswith("riscv") else "index"
        problems.add(where, f"{comp.yaml_path}.props.{prop}" if prop else comp.yaml_path,
                     f"{comp.type} '{comp.id}' looks up {wanted} when it realizes ({setting}), "
                     f"but the board has no CPU with {kind} {missing}",
                     f"the board's CPU ids: {_id_list(ids)}; make {use.what} match them, or add the CPUs")


def _id_list(ids: list[int]) -> str:
    if not ids:
        return "none"
    shown = ", ".join(str(i) for i in sorted(set(ids))[:16])
    return shown + (", ..." if len(set(ids)) > 16 else "")

