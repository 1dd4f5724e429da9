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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ruamel.yaml import events as ev
from ruamel.yaml.error import MarkedYAMLError

from .errors import Collector, InstallError, fail
from .source import SourceLocation

FORMAT_VERSION = 1
MAX_DEPTH = 64
#: Nodes that aliases may add to a document; a few real anchors stay far below.
MAX_ALIAS_NODES = 10_000


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


_WORDS: dict[str, Any] = {"~": None, "null": None, "Null": None, "NULL": None, "": None, **_BOOL}
_NUMBER_START = frozenset("0123456789+-.")


def resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema."""
    if text in _WORDS:
        return _WORDS[text]
    if text[0] not in _NUMBER_START:
        return text
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
    pending_key_pos: Pos | None = None


_SKIP = (ev.StreamStartEvent, ev.StreamEndEvent, ev.DocumentEndEvent)
_END = (ev.MappingEndEvent, ev.SequenceEndEvent)


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
        file, chain = self.file, self.chain
        scalar_event = ev.ScalarEvent
        for event in events:
            cls = type(event)
            mark = event.start_mark
            pos: Pos = (file, mark.line + 1, mark.column + 1, chain)
            if cls is scalar_event and event.tag is None and not event.anchor:
                # The common case, kept short: a plain or quoted scalar.
                value: Any = event.value if event.style else resolve_plain(event.value)
            elif cls is ev.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    fail(to_location(pos), "", "a board file holds one YAML document",
                         "remove the '---' separator and the second document")
                continue
            elif cls in _SKIP:
                continue
            elif cls in _END:
                frame = stack.pop()
                if frame.anchor:
                    self.anchors[frame.anchor] = frame.node
                value, pos = frame.node, frame.node.pos
            else:
                value = self.other(event, pos)
                if isinstance(value, _Frame):
                    value.path = _child_path(stack[-1]) if stack else ""
                    if len(stack) >= MAX_DEPTH:
                        fail(to_location(pos), "", f"nesting deeper than {MAX_DEPTH} levels",
                             "flatten the structure; board files need only a few levels")
                    stack.append(value)
                    continue
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
            else:
                key = frame.pending_key
                lmap = cast(LMap, node)
                lmap[key] = value
                lmap.key_locs[key] = cast(Pos, frame.pending_key_pos)
                lmap.value_locs[key] = pos
                frame.pending_key = None
        return root

    def other(self, event: Any, pos: Pos) -> Any:
        """Aliases, tagged or anchored scalars, and collection starts."""
        loc = to_location(pos)
        if isinstance(event, ev.AliasEvent):
            if event.anchor not in self.anchors:
                fail(loc, "", f"unknown alias '*{event.anchor}'", "define the anchor '&name' before using it")
            target = self.anchors[event.anchor]
            self.alias_nodes += _count_nodes(target, MAX_ALIAS_NODES + 1)
            if self.alias_nodes > MAX_ALIAS_NODES:
                fail(loc, "", f"aliases expand to more than {MAX_ALIAS_NODES} nodes (an alias bomb?)",
                     "use fewer nested aliases; 'count:' replicates components")
            return target
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!":
            fail(loc, "", f"YAML tags are not allowed (found '{_short_tag(tag)}')",
                 "remove the tag and write a plain value")
        if isinstance(event, ev.ScalarEvent):
            value = resolve_plain(event.value) if not event.style else event.value
            if event.anchor:
                self.anchors[event.anchor] = value
            return value
        if isinstance(event, ev.MappingStartEvent):
            return _Frame(LMap(pos), event.anchor)
        if isinstance(event, ev.SequenceStartEvent):
            return _Frame(LSeq(pos), event.anchor)
        fail(loc, "", f"unexpected YAML event {type(event).__name__}")

    def key(self, frame: _Frame, event: Any, pos: Pos) -> None:
        """Take a mapping key: a scalar, once per mapping."""
        node = frame.node
        assert isinstance(node, LMap)
        if not isinstance(event, ev.ScalarEvent):
            fail(to_location(pos), "", "mapping keys must be plain strings")
        key = event.value
        if key in node:
            first = node.key_locs[key]
            fail(to_location(pos), format_path((*([frame.path] if frame.path else []), key)),
                 f"duplicate key '{key}' (first defined at line {first[1]})",
                 "each key may appear once per mapping; merge the two entries")
        frame.pending_key, frame.pending_key_pos = key, pos


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
        before = err.object[: err.start]
        line = before.count(b"\n") + 1
        col = err.start - (before.rfind(b"\n") + 1) + 1
        fail(SourceLocation(display, line, col, chain), "", f"not UTF-8 text ({err.reason})",
             "save the file as UTF-8")
    except OSError as err:
        fail(SourceLocation(display, 1, 1, chain) if chain else None, "",
             f"{display}: cannot read: {err.strerror}")
    return parse_text(text, display, chain)


def yaml_events(text: str) -> Iterator[Any]:
    """The parser events of ``text``, from ruamel.yaml's C parser (libyaml) only.

    ruamel.yaml falls back to its pure-Python parser without a word when the C
    one is missing; that parser is five times slower and words its errors
    differently, so board messages would depend on the install. machinedesc
    refuses to run without the C parser instead (docs/format.md, "The YAML
    reader").

    Raises:
        InstallError: ``ruamel.yaml.clib`` (the C parser) is not installed.
        MarkedYAMLError: the text is not valid YAML (from the parser).
    """
    try:
        from _ruamel_yaml import CParser  # the extension module of ruamel.yaml.clib
    except ImportError as err:
        raise InstallError(
            f"ruamel.yaml's C parser is not installed ({err}): machinedesc reads boards with it only; "
            "install the locked versions with `bash scripts/install.sh`, or "
            "`pip install 'ruamel.yaml<0.19' ruamel.yaml.clib`") from None
    parser = CParser(text)
    try:
        while parser.check_event():
            yield parser.get_event()
    finally:
        parser.dispose()


def parse_text(text: str, display: str, chain: tuple[SourceLocation, ...] = ()) -> Any:
    """Parse YAML text into a located tree."""
    composer = _Composer(display, chain)
    try:
        return composer.compose(yaml_events(text))
    except MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        loc = composer.loc(mark) if mark else SourceLocation(display, 1, 1, chain)
        problem = err.problem or err.context or "invalid YAML"
        context = err.context or ""
        if err.problem and err.context and err.context_mark and err.context_mark is not mark:
            problem += f" ({context} started at {err.context_mark.line + 1}:{err.context_mark.column + 1})"
        hint = ("inside [...] or {...}, quote values that contain [ ] { } or ${...}, "
                "e.g. 'uart0.sysbus-irq[0]'" if "flow" in context else None)
        if "tab" in problem or "'\\t'" in problem:
            hint = "YAML indents with spaces, not tabs"
        fail(loc, "", f"YAML syntax error: {problem}", hint)


# ---------------------------------------------------------------- includes


@dataclass(frozen=True)
class Document:
    """A board after includes are merged: the tree, and the file named on the command line."""

    tree: LMap
    file: str
    #: Entries that a layer deleted with null, by path: for hints when the
    #: board still refers to one.
    deleted: dict[PathT, SourceLocation] = field(default_factory=dict)
    #: Every file the board was read from (itself and its includes).
    files: tuple[Path, ...] = ()


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
        fail(to_location(tree.value_locs["machinedesc"]), "machinedesc",
             f"the format version must be the integer {FORMAT_VERSION}, not the string {version!r}",
             f"write machinedesc: {FORMAT_VERSION} without quotes")
    if version != FORMAT_VERSION or isinstance(version, bool):
        fail(to_location(tree.value_locs["machinedesc"]), "machinedesc",
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
    deleted: dict[PathT, SourceLocation] = {}
    files: list[Path] = []
    tree = _load_merged(path, display, root, (), (), deleted, files)
    return Document(tree, display, deleted, tuple(files))


def _load_merged(path: Path, display: str, root: Path, chain: tuple[SourceLocation, ...],
                 stack: tuple[Path, ...], deleted: dict[PathT, SourceLocation], files: list[Path]) -> LMap:
    tree = check_version(parse_file(path, display, chain), display, chain)
    resolved = path.resolve()
    files.append(resolved)
    bases: list[LMap] = []
    for key in ("extends", "include"):
        if key not in tree:
            continue
        entries = tree[key]
        items: list[tuple[Any, SourceLocation]]
        if isinstance(entries, LSeq):
            items = [(e, to_location(p)) for e, p in zip(entries, entries.item_locs, strict=True)]
        else:
            items = [(entries, to_location(tree.value_locs[key]))]
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
            bases.append(_load_merged(target, display_name(target), root, (loc, *chain), (*stack, resolved),
                                      deleted, files))
    own = LMap(tree.pos)
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
        merged = merge(merged, layer, (), problems, deleted)
    problems.raise_if_any()
    return merged


def merge(base: LMap, over: LMap, path: PathT, problems: Collector,
          deleted: dict[PathT, SourceLocation] | None = None) -> LMap:
    """Deep-merge ``over`` onto ``base``: maps merge, lists and scalars replace, null deletes."""
    out = LMap(over.pos)
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
                if deleted is not None:
                    deleted[(*path, key)] = to_location(over.key_locs[key])
            else:
                problems.add(to_location(over.key_locs[key]), format_path((*path, key)),
                             "null deletes an inherited entry, but nothing with this name is inherited",
                             did_you_mean(key, base.keys()))
            continue
        if isinstance(value, LMap) and isinstance(out.get(key), LMap):
            out[key] = merge(out[key], value, (*path, key), problems, deleted)
        else:
            out[key] = value
        out.key_locs[key] = over.key_locs[key]
        out.value_locs[key] = over.value_locs[key]
    return out

