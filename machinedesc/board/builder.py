"""Located tree -> Board: parameters applied, copies expanded, values typed (the types are in ``model``).

Every problem goes to the Collector with its position; ``build_board``
returns what it could build, and the caller raises once the checks have
run too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import Collector
from ..qemu.phases import Phase
from ..source import SourceLocation
from .bootspec import boot_spec
from .expr import ExprError, parse_size, substitute
from .located import LMap, PathT, Pos, entry_location, format_path, location_of
from .model import (
    MAX_COMPONENTS,
    MAX_COUNT,
    MAX_WIRE_ENDS,
    QEMU_ID,
    S64_MIN,
    U64_MAX,
    Backend,
    Board,
    Component,
    EntryParts,
    LineRef,
    Mmio,
    RawCommand,
    Wire,
)
from .requires import failed_requirements
from .yaml_reader import LiteralError, resolve_plain


#: The hint for a requirement whose check is not a comparison.
_REWRITE_CHECK = "a check is a comparison: ${harts >= 1}, ${1 <= contexts <= 2}, ${mode == 'MS'}"


class _Builder:
    def __init__(self, tree: LMap, file: str, problems: Collector) -> None:
        self.tree = tree
        self.file = file
        self.problems = problems
        #: What the board may still expand to, by section (MAX_COMPONENTS, MAX_WIRE_ENDS).
        self.left = {"components": MAX_COMPONENTS, "wiring": MAX_WIRE_ENDS}
        #: The fragment file of each component entry with ``use`` (by key), and the wires they add.
        self.fragments: Mapping[str, LMap] = {}
        self.fragment_wires: list[Wire] = []
        self.in_fragment = False
        #: Fragment requirements already reported at their own line: (fragment position, index).
        self.reported: set[tuple[Any, int]] = set()
        #: The board's system (a fragment's components take the board's, which uses them).
        self.system = str(tree.get("system", ""))

    def err(self, path: PathT, message: str, hint: str | None = None, *, key: bool = False) -> None:
        self.problems.add(location_of(self.tree, path, key=key), format_path(path), message, hint)

    def value(self, raw: Any, env: Mapping[str, Any], path: PathT) -> Any:
        """Substitute and type one value; report and return None on failure."""
        try:
            if isinstance(raw, list):
                return [self.value(v, env, (*path, i)) for i, v in enumerate(raw)]
            if isinstance(raw, dict):
                return {k: self.value(v, env, (*path, k)) for k, v in raw.items()}
            val = substitute(raw, env, self.problems.hints)
            if isinstance(val, str):
                size = parse_size(val)
                if size is not None:
                    val = size
        except ExprError as err:
            self.err(path, err.message, err.hint)
            return None
        if isinstance(val, float):
            # qmp-shell (and so the plan file) has no literal for them; QEMU properties are integers.
            self.err(path, f"{val!r} is not an integer", "write an integer, or quote it as a string")
            return None
        for item in val if isinstance(val, list) else [val]:
            if isinstance(item, int) and not isinstance(item, bool) and not S64_MIN <= item <= U64_MAX:
                self.err(path, f"{item:#x} does not fit in 64 bits")
                return None
        return val

    def integer(self, raw: Any, env: Mapping[str, Any], path: PathT, what: str) -> int | None:
        val = self.value(raw, env, path)
        if val is None:
            return None
        if isinstance(val, bool) or not isinstance(val, int):
            self.err(path, f"{what} must be an integer, got {yaml_repr(val)}")
            return None
        return val


def build_board(doc_tree: LMap, file: str, overrides: Mapping[str, str], problems: Collector,
                deleted: Mapping[PathT, SourceLocation] | None = None,
                fragments: Mapping[str, LMap] | None = None) -> Board:
    """The Board for a schema-valid tree; semantic problems go to ``problems``.

    ``fragments`` holds the fragment file of each component entry with ``use``
    (includes.Document.fragments); its components take the entry's place, its
    wires follow the board's.
    """
    b = _Builder(doc_tree, file, problems)
    b.fragments = fragments or {}
    tree = doc_tree
    params = _params(b, overrides)
    env: dict[str, Any] = dict(params)
    for failed in failed_requirements(tree, lambda raw, path: b.value(raw, env, path)):
        b.err(("requires", failed.index, "check"), failed.message, _REWRITE_CHECK if failed.written_wrong else
              f"{failed.check} is false for these parameters (params:, --set)")

    chardevs = {k: str(v) for k, v in tree.get("chardevs", {}).items()}
    machine_raw = tree.get("machine", "none")
    machine_locations: dict[str, SourceLocation] = {}
    if isinstance(machine_raw, dict):
        machine = str(machine_raw["type"])
        machine_props = {k: b.value(v, env, ("machine", "props", k)) for k, v in machine_raw.get("props", {}).items()}
        machine_locations = {k: loc for k in machine_props
                             if (loc := location_of(tree, ("machine", "props", k))) is not None}
    else:
        machine, machine_props = str(machine_raw), {}

    backends = tuple(
        Backend(bid, spec["type"],
                {k: b.value(v, env, ("backends", bid, "props", k)) for k, v in spec.get("props", {}).items()},
                location_of(tree, ("backends", bid), key=True), _value_positions(spec.get("props")))
        for bid, spec in tree.get("backends", {}).items()
    )
    components = _components(b, env, {})
    wires = _wires(b, env) + tuple(b.fragment_wires)
    raw = _raw(b, env)
    boot = boot_spec(b, env)
    devicetree = b.value(dict(tree.get("devicetree", {})), env, ("devicetree",)) or {}
    name = tree.get("name") or Path(file).stem
    return Board(
        file=file, name=name, summary=tree.get("summary", ""), system=tree["system"], machine=machine,
        machine_props=machine_props, machine_prop_locations=machine_locations, params=params, chardevs=chardevs,
        backends=backends,
        components=components, wires=wires, raw=raw,
        incomplete=bool(problems.problems),
        deleted={str(p[1]): loc for p, loc in (deleted or {}).items() if len(p) == 2 and p[0] == "components"},
        boot=boot,
        devicetree=devicetree, devicetree_spec=tree.get("devicetree"),
    )


def _value_positions(node: Any) -> Mapping[str, Pos]:
    """Where each value of a mapping is written (empty when ``node`` has no positions)."""
    return node.value_locs if isinstance(node, LMap) else {}


#: Names the builder binds itself, by where: a parameter of the same name would be shadowed
#: inside an entry with count (``i``, the copy index) or in a fragment (``id``, the using entry's key).
RESERVED_PARAMS = {"i": "inside an entry with count, ${i} is the copy index",
                   "id": "in a fragment, ${id} is the key of the entry that uses it"}


def _reserved(b: _Builder, name: str, names: tuple[str, ...]) -> bool:
    """Report a parameter named like one of ``names`` (RESERVED_PARAMS) at its key; True if it is."""
    if name not in names:
        return False
    b.err(("params", name), f"'{name}' cannot be a parameter: {RESERVED_PARAMS[name]}, which would hide it",
          "rename the parameter to a name that says what it is", key=True)
    return True


def _params(b: _Builder, overrides: Mapping[str, str]) -> dict[str, Any]:
    declared = b.tree.get("params", {})
    params: dict[str, Any] = {}
    for name, raw in declared.items():
        _reserved(b, name, ("i",))
        try:
            params[name] = _typed_param(raw)
        except ExprError as err:
            b.err(("params", name), err.message, err.hint)
            params[name] = 0  # reported; a stand-in keeps its uses from adding "not defined"
    for name, text in overrides.items():
        if name not in declared:
            hint = b.problems.hints.did_you_mean(name, declared) or (
                f"parameters of this board: {', '.join(sorted(declared))}" if declared else "this board has no params:")
            b.problems.add(None, f"--set {name}", f"'{name}' is not a parameter of {b.file}", hint)
            continue
        try:
            value = _typed_param(resolve_plain(text))
        except (ExprError, LiteralError) as err:
            b.problems.add(None, f"--set {name}", str(err))
            continue
        default = params[name]
        if _kind(value) != _kind(default):
            b.problems.add(None, f"--set {name}",
                           f"'{text}' is not {_kind(default)}, like the parameter's default {declared[name]!r}",
                           "write a value of the same kind (sizes like 128 MiB count as integers)")
            continue
        params[name] = value
    return params


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    return "a string"


def _typed_param(raw: Any) -> Any:
    """``raw``, a size written with a unit as its integer; raises ExprError for a size beyond 128 bits."""
    if isinstance(raw, str):
        size = parse_size(raw)
        if size is not None:
            return size
    return raw


def _copies(b: _Builder, spec: Mapping[str, Any], env: Mapping[str, Any], path: PathT,
            weight: int = 1) -> list[dict[str, Any]]:
    """The environments of each copy: one without count, count of them with ``i``.

    Each copy takes ``weight`` from what the board's section may still expand
    to; the entry that would exceed it is an error, later entries are skipped.
    """
    count = b.integer(spec["count"], env, (*path, "count"), "count") if "count" in spec else 1
    if count is None:
        return []
    if "count" in spec:
        if count < 0:
            b.err((*path, "count"), f"count must not be negative, got {count}")
            return []
        if count > MAX_COUNT:
            b.err((*path, "count"), f"count {count} is more than the {MAX_COUNT:,} copies one entry may make",
                  "check the parameter (e.g. a --set value); split a truly larger board into several entries")
            return []
    section = str(path[0])
    if count * weight > b.left[section]:
        if b.left[section] >= 0:
            what = (f"{MAX_COMPONENTS:,} components" if section == "components"
                    else f"{MAX_WIRE_ENDS:,} wire ends (outputs and inputs of every wire copy)")
            b.err((*path, "count") if "count" in spec else path, f"the board expands to more than {what}",
                  "check the counts (e.g. --set values); entries after this one are not expanded",
                  key="count" not in spec)
        b.left[section] = -1
        return []
    b.left[section] -= count * weight
    return [{**env, "i": i} for i in range(count)] if "count" in spec else [dict(env)]


def _use(b: _Builder, key: str, spec: Mapping[str, Any], env: Mapping[str, Any],
         seen: dict[str, tuple[SourceLocation | None, Any]], start: int) -> tuple[Component, ...]:
    """A component entry with ``use``: its fragment's components (its wires go to ``b.fragment_wires``).

    The fragment's ``params`` are its defaults; ``with`` values (expressions
    over the board's parameters) replace them; ``id`` is the entry's key.
    """
    path: PathT = ("components", key)
    extra = sorted(set(spec) - {"use", "with"})
    if extra:
        b.err((*path, extra[0]), f"an entry with use takes only with, not {extra[0]}",
              "set the fragment's parameters under with:, or write the device as an entry of its own", key=True)
    if b.in_fragment:
        b.err((*path, "use"), "a fragment cannot use another fragment: fragments do not nest",
              "use both fragments from the board")
        return ()
    frag = b.fragments.get(key)
    if frag is None:
        return ()
    sub = _Builder(frag, b.file, b.problems)
    sub.left = b.left  # one budget for the whole board
    sub.in_fragment = True
    sub.system = b.system
    declared = frag.get("params", {})
    fenv: dict[str, Any] = {}
    for name, raw in declared.items():
        _reserved(sub, name, ("i", "id"))
        try:
            fenv[name] = _typed_param(raw)
        except ExprError as err:
            sub.err(("params", name), err.message, err.hint)
            fenv[name] = 0
    for name, raw in spec.get("with", {}).items():
        if name not in declared:
            hint = b.problems.hints.did_you_mean(name, declared) or (
                f"its parameters: {', '.join(sorted(declared))}" if declared else "it has no params:")
            b.err((*path, "with", name), f"'{name}' is not a parameter of the fragment {frag.pos[0]}", hint, key=True)
            continue
        value = b.value(raw, env, (*path, "with", name))
        if value is not None:  # else reported at the with: value; the default stands in (no "None" follow-ons)
            fenv[name] = value
    fenv["id"] = key
    failures = failed_requirements(frag, lambda raw, rpath: sub.value(raw, fenv, rpath))
    for failed in failures:
        if failed.written_wrong:  # the fragment's own mistake: at its line, once however many uses
            if (frag.pos[0], failed.index) not in b.reported:
                b.reported.add((frag.pos[0], failed.index))
                sub.err(("requires", failed.index, "check"), failed.message, _REWRITE_CHECK)
            continue
        b.err((*path, "with") if "with" in spec else (*path, "use"), failed.message,
              f"{failed.check} (requires of {frag.pos[0]}) is false for this use's with: values", key=True)
    if failures:
        return ()  # its components would only repeat the failure as follow-on errors
    comps = _components(sub, fenv, seen, start)
    b.fragment_wires += [replace(w, name=f"{key}.{w.name}", yaml_path=f"{key}: {w.yaml_path}")
                         for w in _wires(sub, fenv)]
    return comps


def _components(b: _Builder, env: Mapping[str, Any], seen: dict[str, tuple[SourceLocation | None, Any]],
                start: int = 0) -> tuple[Component, ...]:
    out: list[Component] = []
    components = b.tree.get("components", {})
    for key, spec in components.items():
        path: PathT = ("components", key)
        if "use" in spec:
            out.extend(_use(b, key, spec, env, seen, start + len(out)))
            continue
        if "count" in spec and "${" not in key:
            b.err(path, "a component with count needs ${i} in its id, or every copy gets the same id",
                  f"rename it to '{key}${{i}}'", key=True)
            continue
        loc = entry_location(components, key, key=True)
        parts = EntryParts.of(spec) if isinstance(spec, LMap) else None
        for copy in _copies(b, spec, env, path):
            comp = _component(b, key, spec, copy, path, loc, start + len(out), parts)
            if comp is None:
                continue
            if comp.id in seen:
                first, first_i = seen[comp.id]
                if first == loc and "i" in copy:
                    b.err(path, f"copies i={first_i} and i={copy['i']} both get the id '{comp.id}'",
                          "the id must differ for every copy, e.g. use ${i} itself", key=True)
                else:
                    where = f" (first at {first})" if first else ""
                    b.err(path, f"duplicate component id '{comp.id}'{where}", "ids must be unique across the board",
                          key=True)
                continue
            seen[comp.id] = (loc, copy.get("i"))
            out.append(comp)
    return tuple(out)


def _component(b: _Builder, key: str, spec: Mapping[str, Any], env: Mapping[str, Any], path: PathT,
               loc: SourceLocation | None, index: int, parts: EntryParts | None) -> Component | None:
    cid = b.value(key, env, path)
    if not isinstance(cid, str) or not QEMU_ID.match(cid):
        if cid is not None:
            b.err(path, f"'{cid}' is not a valid QEMU id",
                  "ids start with a letter and use letters, digits, '_', '.', '-'", key=True)
        return None
    ctype = b.value(spec["type"], env, (*path, "type"))
    if not isinstance(ctype, str) or not ctype:
        if ctype is not None:
            b.err((*path, "type"), f"type must be a QEMU type name, got {yaml_repr(ctype)}",
                  "a ${...} in type must give a string, e.g. a parameter cpu: cortex-a57-arm-cpu")
        return None
    props_spec = spec.get("props", {})
    props = {k: b.value(v, env, (*path, "props", k)) for k, v in props_spec.items()}
    links = {k: b.value(v, env, (*path, "links", k)) for k, v in spec.get("links", {}).items()}
    parent = b.value(spec["parent"], env, (*path, "parent")) if "parent" in spec else None
    mmio = _mmio(b, spec, env, (*path, "mmio"))
    copy = f"{format_path(path)}" + (f" (i={env['i']})" if "i" in env and "count" in spec else "")
    return Component(
        id=cid, type=ctype, index=index, location=loc, yaml_path=copy, parent=parent,
        props=props, links={k: str(v) for k, v in links.items() if v is not None}, mmio=mmio,
        phase=Phase(spec.get("phase", "initialized")),
        parts=parts, system=b.system,
    )


def _mmio(b: _Builder, spec: Any, env: Mapping[str, Any], path: PathT) -> tuple[Mmio, ...]:
    raw = spec.get("mmio")
    if raw is None:
        return ()
    if not isinstance(raw, list):
        addr = b.integer(raw, env, path, "address")
        return () if addr is None else (Mmio(0, addr, 0, None, entry_location(spec, "mmio")),)
    out: list[Mmio] = []
    for i, entry in enumerate(raw):
        p = (*path, i)
        addr = b.integer(entry["addr"], env, (*p, "addr"), "address")
        region = _within(b, b.integer(entry.get("region", 0), env, (*p, "region"), "region"), (*p, "region"),
                         0, U32_MAX, "an MMIO region index")
        prio = _within(b, b.integer(entry.get("priority", 0), env, (*p, "priority"), "priority"), (*p, "priority"),
                       S32_MIN, S32_MAX, "a 32-bit priority")
        size = _within(b, b.integer(entry["size"], env, (*p, "size"), "size"), (*p, "size"), 0, U64_MAX,
                       "a size in bytes") if "size" in entry else None
        offset = _within(b, b.integer(entry["offset"], env, (*p, "offset"), "offset"), (*p, "offset"), 0, U64_MAX,
                         "an offset in bytes") if "offset" in entry else None
        if addr is None or region is None or prio is None or ("offset" in entry and (offset is None or size is None)):
            continue
        out.append(Mmio(region, addr, prio, size, entry_location(raw, i), offset))
    return tuple(out)


U32_MAX = (1 << 32) - 1
S32_MIN, S32_MAX = -(1 << 31), (1 << 31) - 1


def _within(b: _Builder, value: int | None, path: PathT, lo: int, hi: int, what: str) -> int | None:
    """``value`` when in [lo, hi] (QMP's type for it: x-sysbus-mmio-map's uint32 region, int32 priority,
    uint64 offset and size), else None with an error at ``path``: QEMU would refuse the step."""
    if value is None or lo <= value <= hi:
        return value
    b.err(path, f"{value} is below 0: not {what}" if value < 0 == lo else f"{value} is not {what} ({lo} to {hi})")
    return None


#: A line end as written, with an optional range of indices: ``plic.unnamed-gpio-in[8..39]``.
_LINE_END = re.compile(r"^(?P<comp>[^.]+)\.(?P<name>[A-Za-z][A-Za-z0-9_-]*)"
                       r"(?:\[(?P<index>[0-9]+)(?:\.\.(?P<end>[0-9]+))?\])?$")


def _line(b: _Builder, raw: Any, env: Mapping[str, Any], path: PathT,
          where: SourceLocation | None) -> tuple[LineRef, int | None] | None:
    """The line ``raw`` names, and how many lines its range spans (None: not a range)."""
    text = b.value(raw, env, path)
    if text is None:
        return None
    match = _LINE_END.match(str(text))
    if not match:
        b.err(path, f"'{text}' is not a line", "write component.line[index], e.g. uart0.sysbus-irq[0]")
        return None
    first = int(match["index"] or 0)
    span = None
    if match["end"] is not None:
        last = int(match["end"])
        if last < first:
            b.err(path, f"'{text}': a range runs upwards, from its first index to its last",
                  f"write [{last}..{first}]")
            return None
        span = last - first + 1
        if span > MAX_COUNT:
            b.err(path, f"'{text}' spans {span:,} lines, more than the {MAX_COUNT:,} one entry may make")
            return None
    return LineRef(match["comp"], match["name"], first, where), span


def _ranges(b: _Builder, ends: list[tuple[LineRef, int | None] | None], paths: list[PathT]) -> int | None:
    """The one length of the ranged ends of a wire (1 without ranges); None (reported) if they differ."""
    spans = [(end[1], path) for end, path in zip(ends, paths, strict=True) if end is not None and end[1] is not None]
    if not spans:
        return 1
    first, first_path = spans[0]
    for span, path in spans[1:]:
        if span != first:
            b.err(path, f"this range spans {span} lines, but the range of {format_path(first_path)} spans {first}",
                  "ranges of one wire run in parallel: give them the same length")
            return None
    return first


def _shifted(line: LineRef, span: int | None, j: int) -> LineRef:
    return line if span is None else LineRef(line.component, line.name, line.index + j, line.location)


def _wires(b: _Builder, env: Mapping[str, Any]) -> tuple[Wire, ...]:
    out: list[Wire] = []
    wiring = b.tree.get("wiring", {})
    for name, spec in wiring.items():
        path: PathT = ("wiring", name)
        wire_loc = entry_location(wiring, name, key=True)
        if "count" in spec and "${" not in f"{spec['from']}{spec['to']}":
            b.err(path, "a wire with count needs ${i} in from or to, or every copy is the same wire",
                  "e.g. to: hart${i}.unnamed-gpio-in[7]", key=True)
            continue
        srcs_raw = spec["from"] if isinstance(spec["from"], list) else [spec["from"]]
        dsts_raw = spec["to"] if isinstance(spec["to"], list) else [spec["to"]]
        for copy in _copies(b, spec, env, path, len(srcs_raw) + len(dsts_raw)):
            from_path: PathT = (*path, "from")
            to_path: PathT = (*path, "to")
            src_at = [_item(spec, "from", i, from_path) for i in range(len(srcs_raw))]
            dst_at = [_item(spec, "to", i, to_path) for i in range(len(dsts_raw))]
            sources = [_line(b, r, copy, *at) for r, at in zip(srcs_raw, src_at, strict=True)]
            targets = [_line(b, r, copy, *at) for r, at in zip(dsts_raw, dst_at, strict=True)]
            join = spec.get("join")
            if len(sources) > 1 and join is None:
                b.err(from_path, "several outputs into one wire need 'join: or'",
                      "add join: or to combine them with an or-irq")
                continue
            if None in sources or None in targets:
                continue
            span = _ranges(b, [*sources, *targets], [at[0] for at in (*src_at, *dst_at)])
            if span is None:
                continue
            if span > 1 and not _take(b, path, (span - 1) * (len(sources) + len(targets))):
                return tuple(out)
            suffix = f"[{copy['i']}]" if "i" in copy and "count" in spec else ""
            ranged = span > 1 or any(e is not None and e[1] is not None for e in (*sources, *targets))
            for j in range(span):
                part = suffix + (f"[{j}]" if ranged else "")
                out.append(Wire(name + part, tuple(_shifted(*s, j) for s in sources if s),
                                tuple(_shifted(*t, j) for t in targets if t), join,
                                wire_loc, format_path(path) + part))
    return tuple(out)


def _take(b: _Builder, path: PathT, ends: int) -> bool:
    """Take ``ends`` more wire ends from the board's budget; False (reported once) when it runs out."""
    if ends > b.left["wiring"]:
        if b.left["wiring"] >= 0:
            b.err(path, f"the board expands to more than {MAX_WIRE_ENDS:,} wire ends (outputs and inputs of "
                  "every wire copy)", "check the ranges and counts; entries after this one are not expanded",
                  key=True)
        b.left["wiring"] = -1
        return False
    b.left["wiring"] -= ends
    return True


def _item(spec: Any, key: str, i: int, path: PathT) -> tuple[PathT, SourceLocation | None]:
    """Path and location of item ``i`` of ``spec[key]``, which may be a single value."""
    value = spec[key]
    if isinstance(value, list):
        return (*path, i), entry_location(value, i)
    return path, entry_location(spec, key)


def _raw(b: _Builder, env: Mapping[str, Any]) -> tuple[RawCommand, ...]:
    out: list[RawCommand] = []
    for name, spec in b.tree.get("qmp", {}).items():
        path: PathT = ("qmp", name)
        args = b.value(dict(spec.get("arguments", {})), env, (*path, "arguments"))
        after = tuple(spec.get("after", ()))
        out.append(RawCommand(name, spec["execute"], args or {}, Phase(spec.get("phase", "initialized")),
                              after, location_of(b.tree, path, key=True),
                              tuple(location_of(b.tree, (*path, "after", i)) for i in range(len(after)))))
    return tuple(out)


def yaml_repr(value: Any) -> str:
    """A value as the board would spell it (true, null, 'text'), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
