"""The located tree: dicts and lists that remember where each key and value was written.

Every stage after the YAML reader finds positions here (``location_of``,
``entry_location``), names paths as the user writes them (``format_path``)
(the "did you mean" hints are ``errors.Hints``, one per load).
"""

from __future__ import annotations

from typing import Any

from ..source import SourceLocation

#: A position as stored in the tree: (file, line, col, include chain). Plain
#: tuples, turned into SourceLocation only when a message needs one: a large
#: board has a million of them.
Pos = tuple[str, int, int, tuple[SourceLocation, ...]]


def to_location(pos: Pos) -> SourceLocation:
    """The SourceLocation of a stored position."""
    return SourceLocation(*pos)


class LMap(dict[str, Any]):
    """A YAML mapping that remembers where it, each key and each value came from."""

    __slots__ = ("pos", "key_locs", "value_locs")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.key_locs: dict[str, Pos] = {}
        self.value_locs: dict[str, Pos] = {}

    @property
    def loc(self) -> SourceLocation:
        return to_location(self.pos)


class LSeq(list[Any]):
    """A YAML sequence that remembers where it and each item came from."""

    __slots__ = ("pos", "item_locs")

    def __init__(self, pos: Pos) -> None:
        super().__init__()
        self.pos = pos
        self.item_locs: list[Pos] = []

    @property
    def loc(self) -> SourceLocation:
        return to_location(self.pos)


PathT = tuple[str | int, ...]


def location_of(root: Any, path: PathT, *, key: bool = False) -> SourceLocation | None:
    """The location of the value at ``path`` (or of its key), else of the nearest ancestor."""
    node = root
    best: Pos | None = getattr(root, "pos", None)
    for i, part in enumerate(path):
        last = i == len(path) - 1
        if isinstance(node, LMap) and isinstance(part, str) and part in node:
            locs = node.key_locs if (key and last) else node.value_locs
            best = locs.get(part, best)
            node = node[part]
        elif isinstance(node, LSeq) and isinstance(part, int) and 0 <= part < len(node):
            best = node.item_locs[part]
            node = node[part]
        else:
            break
        if isinstance(node, (LMap, LSeq)) and not (key and last):
            best = node.pos
    return to_location(best) if best is not None else None


def entry_location(node: Any, part: str | int, *, key: bool = False) -> SourceLocation | None:
    """Location of ``node[part]`` (or of its key): a direct lookup, no path walk."""
    if isinstance(node, LMap) and isinstance(part, str) and part in node:
        return to_location((node.key_locs if key else node.value_locs)[part])
    if isinstance(node, LSeq) and isinstance(part, int) and 0 <= part < len(node):
        return to_location(node.item_locs[part])
    return getattr(node, "loc", None)


def format_path(path: PathT) -> str:
    """``components.uart0.mmio[0]`` style path for messages."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
