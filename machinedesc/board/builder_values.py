"""The builder's state and value typing: a located value -> a typed one (sizes, 64-bit integers) or a problem.

``Builder`` carries the tree being built, the Collector, and what the board
may still expand to; the builder_* modules take one and report through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import Collector
from .expr import ExprError, parse_size, substitute
from .located import LMap, PathT, format_path, location_of
from .model import MAX_COMPONENTS, MAX_COUNT, MAX_WIRE_ENDS, S64_MIN, U64_MAX, Wire


class Builder:
    """One tree being built (a board or a fragment): its problems, budget and fragments."""

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


def copies_of(b: Builder, spec: Mapping[str, Any], env: Mapping[str, Any], path: PathT,
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


def yaml_repr(value: Any) -> str:
    """A value as the board would spell it (true, null, 'text'), for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)
