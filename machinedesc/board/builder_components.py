"""``components:`` entries -> Components: copies (count, ``${i}``), fragments (``use``), ids, types, MMIO.

Each copy takes from the board's budget (MAX_COMPONENTS); a fragment's
wires go to ``Builder.fragment_wires``, after the board's own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from ..qemu.phases import Phase
from ..source import SourceLocation
from .builder_params import REWRITE_CHECK, reserved_param, typed_param
from .builder_values import Builder, copies_of, yaml_repr
from .builder_wires import wires_of
from .expr import ExprError
from .located import LMap, PathT, entry_location, format_path
from .model import QEMU_ID, U64_MAX, Component, EntryParts, Mmio
from .requires import failed_requirements


def _use(b: Builder, key: str, spec: Mapping[str, Any], env: Mapping[str, Any],
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
    sub = Builder(frag, b.file, b.problems)
    sub.left = b.left  # one budget for the whole board
    sub.in_fragment = True
    sub.system = b.system
    declared = frag.get("params", {})
    fenv: dict[str, Any] = {}
    for name, raw in declared.items():
        reserved_param(sub, name, ("i", "id"))
        try:
            fenv[name] = typed_param(raw)
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
                sub.err(("requires", failed.index, "check"), failed.message, REWRITE_CHECK)
            continue
        b.err((*path, "with") if "with" in spec else (*path, "use"), failed.message,
              f"{failed.check} (requires of {frag.pos[0]}) is false for this use's with: values", key=True)
    if failures:
        return ()  # its components would only repeat the failure as follow-on errors
    comps = components_of(sub, fenv, seen, start)
    b.fragment_wires += [replace(w, name=f"{key}.{w.name}", yaml_path=f"{key}: {w.yaml_path}")
                         for w in wires_of(sub, fenv)]
    return comps


def components_of(b: Builder, env: Mapping[str, Any], seen: dict[str, tuple[SourceLocation | None, Any]],
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
        for copy in copies_of(b, spec, env, path):
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


def _component(b: Builder, key: str, spec: Mapping[str, Any], env: Mapping[str, Any], path: PathT,
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


def _mmio(b: Builder, spec: Any, env: Mapping[str, Any], path: PathT) -> tuple[Mmio, ...]:
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


def _within(b: Builder, value: int | None, path: PathT, lo: int, hi: int, what: str) -> int | None:
    """``value`` when in [lo, hi] (QMP's type for it: x-sysbus-mmio-map's uint32 region, int32 priority,
    uint64 offset and size), else None with an error at ``path``: QEMU would refuse the step."""
    if value is None or lo <= value <= hi:
        return value
    b.err(path, f"{value} is below 0: not {what}" if value < 0 == lo else f"{value} is not {what} ({lo} to {hi})")
    return None

