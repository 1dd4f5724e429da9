"""Parser events -> one file's located tree: dicts and lists that remember where each key and value is written.

Composed here rather than by ruamel.yaml (its round-trip composer is pure
Python and too slow for 100,000-component boards, and its C composer
recurses without limit), iteratively, so that tags, duplicate keys, alias
bombs and excessive depth are refused with exact positions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from ruamel.yaml import events as ev

from ..errors import Problem, fail
from ..source import SourceLocation
from .located import LMap, LSeq, Pos, format_path, to_location
from .yaml_scalars import LiteralError, resolve_plain

#: How deeply collections may nest in a board file.
MAX_DEPTH = 64
#: Nodes that aliases may add to a document; a few real anchors stay far below.
MAX_ALIAS_NODES = 10_000


@dataclass
class _Frame:
    node: LMap | LSeq
    anchor: str | None
    path: str = ""
    pending_key: str | None = None
    pending_key_pos: Pos | None = None
    #: The pending key is a duplicate (reported): its value is dropped.
    duplicate: bool = False


_SKIP = (ev.StreamStartEvent, ev.StreamEndEvent, ev.DocumentEndEvent)
#: What ``Composer.other`` returns for an event that adds no value to the tree.
_SKIPPED = object()
_END = (ev.MappingEndEvent, ev.SequenceEndEvent)


class Composer:
    """Builds one file's located tree from parser events, iteratively."""

    def __init__(self, file: str, chain: tuple[SourceLocation, ...]) -> None:
        self.file = file
        self.chain = chain
        self.anchors: dict[str, Any] = {}
        self.alias_nodes = 0
        self.documents = 0
        #: Duplicate keys found so far: reported together once the file is read.
        self.duplicates: list[Problem] = []

    def loc(self, mark: Any) -> SourceLocation:
        return SourceLocation(self.file, mark.line + 1, mark.column + 1, self.chain)

    def compose(self, events: Iterator[Any]) -> Any:
        stack: list[_Frame] = []
        root: Any = None
        file, chain = self.file, self.chain
        scalar_event = ev.ScalarEvent
        for event in events:
            cls = type(event)
            mark = event.start_mark
            pos: Pos = (file, mark.line + 1, mark.column + 1, chain)
            try:
                if cls is scalar_event and event.tag is None and not event.anchor:
                    # The common case, kept short: a plain or quoted scalar.
                    value: Any = event.value if event.style else resolve_plain(event.value)
                elif cls in _END:
                    frame = stack.pop()
                    if frame.anchor:
                        self.anchors[frame.anchor] = frame.node
                    value, pos = frame.node, frame.node.pos
                else:
                    value = self.other(event, pos, stack)
                    if value is _SKIPPED:
                        continue
            except LiteralError as err:
                value = _literal_failed(stack, event, pos, err)
            if not stack:
                root = value
                continue
            frame = stack[-1]
            node = frame.node
            if type(node) is LSeq:
                node.append(value)
                node.item_locs.append(pos)
            elif frame.pending_key is None:
                self.key(frame, event, pos)
            elif frame.duplicate:
                frame.pending_key, frame.duplicate = None, False
            else:
                key = frame.pending_key
                lmap = cast(LMap, node)
                lmap[key] = value
                lmap.key_locs[key] = cast(Pos, frame.pending_key_pos)
                lmap.value_locs[key] = pos
                frame.pending_key = None
        return root

    def other(self, event: Any, pos: Pos, stack: list[_Frame]) -> Any:
        """Aliases, tagged or anchored scalars and collection starts (pushed onto ``stack``:
        _SKIPPED, like the events that carry no value)."""
        loc = to_location(pos)
        if isinstance(event, ev.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                fail(loc, "", "a board file holds one YAML document",
                     "remove the '---' separator and the second document")
            return _SKIPPED
        if isinstance(event, _SKIP):
            return _SKIPPED
        if isinstance(event, ev.AliasEvent):
            return self.alias(event, loc)
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            fail(loc, "", f"YAML tags are not allowed (found '{_short_tag(tag)}')",
                 "remove the tag and write a plain value")
        if isinstance(event, ev.ScalarEvent):
            # The non-specific tag '!' makes a plain scalar a string (YAML 1.2, 6.9.1): ! 0x1000 is '0x1000'.
            value = resolve_plain(event.value) if not event.style and tag is None else event.value
            if event.anchor:
                self.anchors[event.anchor] = value
            return value
        if not isinstance(event, (ev.MappingStartEvent, ev.SequenceStartEvent)):
            fail(loc, "", f"unexpected YAML event {type(event).__name__}")
        if len(stack) >= MAX_DEPTH:
            fail(loc, "", f"nesting deeper than {MAX_DEPTH} levels",
                 "flatten the structure; board files need only a few levels")
        frame = _Frame(LMap(pos) if isinstance(event, ev.MappingStartEvent) else LSeq(pos), event.anchor,
                       _child_path(stack[-1]) if stack else "")
        stack.append(frame)
        return _SKIPPED

    def alias(self, event: Any, loc: SourceLocation) -> Any:
        """The node an alias names, counting what aliases add (an alias bomb grows exponentially)."""
        if event.anchor not in self.anchors:
            fail(loc, "", f"unknown alias '*{event.anchor}'", "define the anchor '&name' before using it")
        target = self.anchors[event.anchor]
        self.alias_nodes += _count_nodes(target, MAX_ALIAS_NODES + 1)
        if self.alias_nodes > MAX_ALIAS_NODES:
            fail(loc, "", f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)",
                 "use fewer nested aliases; 'count:' replicates components")
        return target

    def key(self, frame: _Frame, event: Any, pos: Pos) -> None:
        """Take a mapping key: a scalar, once per mapping."""
        node = frame.node
        assert isinstance(node, LMap)
        if not isinstance(event, ev.ScalarEvent):
            fail(to_location(pos), "", "mapping keys must be plain strings")
        key = event.value
        if key in node:
            # Reported with every other duplicate of the file; the second value is dropped.
            first = node.key_locs[key]
            self.duplicates.append(Problem(
                to_location(pos), format_path((*([frame.path] if frame.path else []), key)),
                f"duplicate key '{key}' (first defined at line {first[1]})",
                "each key may appear once per mapping; merge the two entries"))
            frame.duplicate = True
        frame.pending_key, frame.pending_key_pos = key, pos


def _literal_failed(stack: list[_Frame], event: Any, pos: Pos, err: LiteralError) -> str:
    """A mapping key stays text whatever it looks like; anywhere else an oversized integer is an error."""
    if stack and type(stack[-1].node) is LMap and stack[-1].pending_key is None:
        return str(event.value)
    fail(to_location(pos), _child_path(stack[-1]) if stack else "", str(err))


def _child_path(parent: _Frame) -> str:
    """The YAML path of the collection being opened inside ``parent``."""
    if isinstance(parent.node, LSeq):
        return f"{parent.path}[{len(parent.node)}]"
    key = parent.pending_key or ""
    return f"{parent.path}.{key}" if parent.path else key


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:"):] if tag.startswith("tag:yaml.org,2002:") else tag


def _count_nodes(value: Any, limit: int) -> int:
    count, todo = 0, [value]
    while todo and count < limit:
        item = todo.pop()
        count += 1
        if isinstance(item, dict):
            todo.extend(item.values())
        elif isinstance(item, list):
            todo.extend(item)
    return count
