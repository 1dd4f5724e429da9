"""``wiring:`` entries -> Wires: line ends parsed (``comp.name[a..b]``), ranges run in parallel, copies made.

Every output and input of every copy takes from the board's budget
(MAX_WIRE_ENDS).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..source import SourceLocation
from .builder_values import Builder, copies_of
from .located import PathT, entry_location, format_path
from .model import MAX_COUNT, MAX_WIRE_ENDS, LineRef, Wire

#: A line end as written, with an optional range of indices: ``plic.unnamed-gpio-in[8..39]``.
_LINE_END = re.compile(r"^(?P<comp>[^.]+)\.(?P<name>[A-Za-z][A-Za-z0-9_-]*)"
                       r"(?:\[(?P<index>[0-9]+)(?:\.\.(?P<end>[0-9]+))?\])?$")


def _line(b: Builder, raw: Any, env: Mapping[str, Any], path: PathT,
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


def _ranges(b: Builder, ends: list[tuple[LineRef, int | None] | None], paths: list[PathT]) -> int | None:
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


def wires_of(b: Builder, env: Mapping[str, Any]) -> tuple[Wire, ...]:
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
        for copy in copies_of(b, spec, env, path, len(srcs_raw) + len(dsts_raw)):
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


def _take(b: Builder, path: PathT, ends: int) -> bool:
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

