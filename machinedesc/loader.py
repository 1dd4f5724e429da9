"""YAML -> located tree: ruamel.yaml events composed into dicts/lists that remember positions.

ruamel.yaml's C parser produces the events (its round-trip composer is pure
Python and too slow for 100,000-component boards, and its C composer recurses
without limit); composing them here also lets us refuse tags, duplicate keys,
alias bombs and excessive depth with exact positions.  Includes are resolved
and merged here too (see docs/format.md, "Reuse").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml import events as ev
from ruamel.yaml.error import MarkedYAMLError

from .errors import BoardError, Collector, fail
from .source import SourceLocation

FORMAT_VERSION = 1
MAX_DEPTH = 64
#: Nodes that aliases may add to a document; a few real anchors stay far below.
MAX_ALIAS_NODES = 10_000


class LMap(dict[str, Any]):
    """A YAML mapping that remembers where it, each key and each value came from."""

    __slots__ = ("loc", "key_locs", "value_locs")

    def __init__(self, loc: SourceLocation) -> None:
        super().__init__()
        self.loc = loc
        self.key_locs: dict[str, SourceLocation] = {}
        self.value_locs: dict[str, SourceLocation] = {}


class LSeq(list[Any]):
    """A YAML sequence that remembers where it and each item came from."""

    __slots__ = ("loc", "item_locs")

    def __init__(self, loc: SourceLocation) -> None:
        super().__init__()
        self.loc = loc
        self.item_locs: list[SourceLocation] = []


PathT = tuple[str | int, ...]


def location_of(root: Any, path: PathT, *, key: bool = False) -> SourceLocation | None:
    """The location of the value at ``path`` (or of its key), else of the nearest ancestor."""
    node = root
    best: SourceLocation | None = getattr(root, "loc", None)
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
            best = node.loc
    return best


def format_path(path: PathT) -> str:
    """``components.uart0.mmio[0]`` style path for messages."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def did_you_mean(word: str, choices: Any) -> str | None:
    """A "did you mean 'x'?" hint, or None."""
    close = difflib.get_close_matches(word, sorted(str(c) for c in choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


# YAML 1.2 core schema, for plain scalars.
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT10 = re.compile(r"^[-+]?[0-9]+$")
_INT16 = re.compile(r"^0x[0-9a-fA-F]+$")
_INT8 = re.compile(r"^0o[0-7]+$")
_FLOAT = re.compile(r"^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?$")
_INF = re.compile(r"^[-+]?\.(?:inf|Inf|INF)$")
_NAN = re.compile(r"^\.(?:nan|NaN|NAN)$")


def resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema."""
    if _NULL.match(text):
        return None
    if text in _BOOL:
        return _BOOL[text]
    if _INT10.match(text):
        return int(text, 10)
    if _INT16.match(text):
        return int(text, 16)
    if _INT8.match(text):
        return int(text[2:], 8)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


@dataclass
class _Frame:
    node: LMap | LSeq
    anchor: str | None
    path: str = ""
    pending_key: str | None = None
    pending_key_loc: SourceLocation | None = None


class _Composer:
    """Builds one file's located tree from parser events, iteratively."""

    def __init__(self, file: str, chain: tuple[SourceLocation, ...]) -> None:
        self.file = file
        self.chain = chain
        self.anchors: dict[str, Any] = {}
        self.alias_nodes = 0

    def loc(self, mark: Any) -> SourceLocation:
        return SourceLocation(self.file, mark.line + 1, mark.column + 1, self.chain)

    def compose(self, events: Iterator[Any]) -> Any:
        stack: list[_Frame] = []
        root: Any = None
        documents = 0
        for event in events:
            if isinstance(event, ev.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    fail(self.loc(event.start_mark), "", "a board file holds one YAML document",
                         "remove the '---' separator and the second document")
                continue
            if isinstance(event, (ev.StreamStartEvent, ev.StreamEndEvent, ev.DocumentEndEvent)):
                continue
            if isinstance(event, (ev.MappingEndEvent, ev.SequenceEndEvent)):
                frame = stack.pop()
                if frame.anchor:
                    self.anchors[frame.anchor] = frame.node
                value: Any = frame.node
                loc = frame.node.loc
            else:
                value, loc = self.leaf_or_start(event, stack)
                if isinstance(value, _Frame):
                    value.path = _child_path(stack[-1]) if stack else ""
                    if len(stack) >= MAX_DEPTH:
                        fail(loc, "", f"nesting deeper than {MAX_DEPTH} levels",
                             "flatten the structure; board files need only a few levels")
                    stack.append(value)
                    continue
            if not stack:
                root = value
            else:
                self.attach(stack[-1], value, loc, event)
        return root

    def leaf_or_start(self, event: Any, stack: list[_Frame]) -> tuple[Any, SourceLocation]:
        loc = self.loc(event.start_mark)
        if isinstance(event, ev.AliasEvent):
            if event.anchor not in self.anchors:
                fail(loc, "", f"unknown alias '*{event.anchor}'", "define the anchor '&name' before using it")
            target = self.anchors[event.anchor]
            self.alias_nodes += _count_nodes(target, MAX_ALIAS_NODES + 1)
            if self.alias_nodes > MAX_ALIAS_NODES:
                fail(loc, "", f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)",
                     "use fewer nested aliases; 'count:' replicates components")
            return target, loc
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            fail(loc, "", f"YAML tags are not allowed (found '{_short_tag(tag)}')",
                 "remove the tag and write a plain value")
        if isinstance(event, ev.ScalarEvent):
            style = event.style
            value = resolve_plain(event.value) if not style else event.value
            if event.anchor:
                self.anchors[event.anchor] = value
            return value, loc
        if isinstance(event, ev.MappingStartEvent):
            return _Frame(LMap(loc), event.anchor), loc
        if isinstance(event, ev.SequenceStartEvent):
            return _Frame(LSeq(loc), event.anchor), loc
        fail(loc, "", f"unexpected YAML event {type(event).__name__}")

    def attach(self, frame: _Frame, value: Any, loc: SourceLocation, event: Any) -> None:
        node = frame.node
        if isinstance(node, LSeq):
            node.append(value)
            node.item_locs.append(loc)
            return
        if frame.pending_key is None:
            if not isinstance(event, ev.ScalarEvent):
                fail(loc, "", "mapping keys must be plain strings")
            key = event.value
            if key in node:
                first = node.key_locs[key]
                fail(loc, format_path((*([frame.path] if frame.path else []), key)),
                     f"duplicate key '{key}' (first defined at line {first.line})",
                     "each key may appear once per mapping; merge the two entries")
            frame.pending_key, frame.pending_key_loc = key, loc
            return
        key = frame.pending_key
        assert frame.pending_key_loc is not None
        node[key] = value
        node.key_locs[key] = frame.pending_key_loc
        node.value_locs[key] = loc
        frame.pending_key = None


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


def parse_file(path: Path, display: str, chain: tuple[SourceLocation, ...] = ()) -> Any:
    """Read one YAML file into a located tree (no includes, no version check)."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        fail(SourceLocation(display, 1, 1, chain), "", f"not UTF-8 text ({err.reason})")
    except OSError as err:
        fail(SourceLocation(display, 1, 1, chain) if chain else None, "",
             f"{display}: cannot read: {err.strerror}")
    return parse_text(text, display, chain)


def parse_text(text: str, display: str, chain: tuple[SourceLocation, ...] = ()) -> Any:
    """Parse YAML text into a located tree."""
    composer = _Composer(display, chain)
    try:
        return composer.compose(YAML(typ="safe", pure=False).parse(text))
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        loc = composer.loc(mark) if mark else SourceLocation(display, 1, 1, chain)
        problem = err.problem or err.context or "invalid YAML"
        context = err.context or ""
        if err.problem and err.context and err.context_mark and err.context_mark is not mark:
            problem += f" ({context} started at {err.context_mark.line + 1}:{err.context_mark.column + 1})"
        hint = ("inside [...] or {...}, quote values that contain [ ] { } or ${...}, "
                "e.g. 'uart0.sysbus-irq[0]'" if "flow" in context else None)
        fail(loc, "", f"YAML syntax error: {problem}", hint)


# ---------------------------------------------------------------- includes


@dataclass(frozen=True)
class Document:
    """A board after includes are merged: the tree, its file, and the catalog root."""

    tree: LMap
    file: str
    catalog: Path


def check_version(tree: Any, display: str, chain: tuple[SourceLocation, ...]) -> LMap:
    """Refuse anything but a mapping whose ``machinedesc`` key is 1 (before the schema runs)."""
    if not isinstance(tree, LMap):
        loc = getattr(tree, "loc", None) or SourceLocation(display, 1, 1, chain)
        fail(loc, "", "a board file must be a YAML mapping starting with 'machinedesc: 1'")
    if "machinedesc" not in tree:
        fail(tree.loc, "", "missing 'machinedesc: 1' header",
             "add 'machinedesc: 1' as the first line so the format version is explicit")
    version = tree["machinedesc"]
    if isinstance(version, str) and version.strip() == str(FORMAT_VERSION):
        fail(tree.value_locs["machinedesc"], "machinedesc",
             f"the format version must be the integer {FORMAT_VERSION}, not the string {version!r}",
             f"write machinedesc: {FORMAT_VERSION} without quotes")
    if version != FORMAT_VERSION or isinstance(version, bool):
        fail(tree.value_locs["machinedesc"], "machinedesc",
             f"unsupported format version {version!r}: this machinedesc reads version {FORMAT_VERSION}")
    return tree


def display_name(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def load_document(path: Path, catalog: Path | None = None) -> Document:
    """Load a board and everything it extends/includes, merged (docs/format.md, "Reuse")."""
    path = Path(path)
    root = (catalog or path.parent).resolve()
    display = display_name(path)
    tree = _load_merged(path, display, root, (), ())
    return Document(tree, display, root)


def _load_merged(path: Path, display: str, root: Path, chain: tuple[SourceLocation, ...],
                 stack: tuple[Path, ...]) -> LMap:
    tree = check_version(parse_file(path, display, chain), display, chain)
    resolved = path.resolve()
    bases: list[LMap] = []
    for key in ("extends", "include"):
        if key not in tree:
            continue
        entries = tree[key]
        items: list[tuple[Any, SourceLocation]]
        if isinstance(entries, LSeq):
            items = list(zip(entries, entries.item_locs))
        else:
            items = [(entries, tree.value_locs[key])]
        for name, loc in items:
            if not isinstance(name, str) or not name:
                fail(loc, key, "expected a file name (or a list of them), relative to this file")
            target = (resolved.parent / name).resolve()
            if not target.is_relative_to(root):
                fail(loc, key, f"'{name}' is outside the catalog root {display_name(root)}",
                     "includes must stay inside the catalog (use --catalog to widen it)")
            if target in stack or target == resolved:
                cycle = " -> ".join(display_name(p) for p in (*stack, resolved, target))
                fail(loc, key, f"include loop: {cycle}")
            if not target.is_file():
                siblings = [p.name for p in target.parent.glob("*.yaml")] if target.parent.is_dir() else []
                close = did_you_mean(Path(name).name, siblings)
                prefix = str(Path(name).parent)
                if close and prefix != ".":
                    close = close.replace("'", f"'{prefix}/", 1)
                fail(loc, key, f"'{name}' not found", close)
            bases.append(_load_merged(target, display_name(target), root, (loc, *chain), (*stack, resolved)))
    own = LMap(tree.loc)
    for key, value in tree.items():
        if key not in ("extends", "include"):
            own[key] = value
            own.key_locs[key] = tree.key_locs[key]
            own.value_locs[key] = tree.value_locs[key]
    if not bases:
        return own
    problems = Collector()
    merged = bases[0]
    for layer in (*bases[1:], own):
        merged = merge(merged, layer, (), problems)
    problems.raise_if_any()
    return merged


def merge(base: LMap, over: LMap, path: PathT, problems: Collector) -> LMap:
    """Deep-merge ``over`` onto ``base``: maps merge, lists and scalars replace, null deletes."""
    out = LMap(over.loc)
    for key, value in base.items():
        out[key] = value
        out.key_locs[key] = base.key_locs[key]
        out.value_locs[key] = base.value_locs[key]
    for key, value in over.items():
        if value is None:
            if key in out:
                del out[key]
                del out.key_locs[key]
                del out.value_locs[key]
            else:
                problems.add(over.key_locs[key], format_path((*path, key)),
                             "null deletes an inherited entry, but nothing with this name is inherited",
                             did_you_mean(key, base.keys()))
            continue
        if isinstance(value, LMap) and isinstance(out.get(key), LMap):
            out[key] = merge(out[key], value, (*path, key), problems)
        else:
            out[key] = value
        out.key_locs[key] = over.key_locs[key]
        out.value_locs[key] = over.value_locs[key]
    return out


def raise_problems(problems: Collector) -> None:
    """Raise the collected problems (helper for callers that gather across stages)."""
    if problems.problems:
        raise BoardError(list(problems.problems))
