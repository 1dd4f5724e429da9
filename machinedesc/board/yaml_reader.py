"""YAML -> located tree: ruamel.yaml events composed into dicts/lists that remember positions.

ruamel.yaml's C parser produces the events (its round-trip composer is pure
Python and too slow for 100,000-component boards, and its C composer recurses
without limit); composing them here also lets us refuse tags, duplicate keys,
alias bombs and excessive depth with exact positions, and read only regular
files within MAX_BOARD_BYTES. Includes are resolved in ``includes``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ruamel.yaml import events as ev
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from .. import storage
from ..errors import BoardError, InstallError, Problem, fail
from ..storage import FileProblem
from ..source import SourceLocation
from .located import LMap, LSeq, Pos, format_path, to_location

MAX_DEPTH = 64
#: Nodes that aliases may add to a document; a few real anchors stay far below.
MAX_ALIAS_NODES = 10_000
#: Bytes of YAML one load may read: the board and every file it extends or
#: includes, a file counted each time it is included. A board of 100,000
#: components written out in full is about 13 MiB.
MAX_BOARD_BYTES = 32 << 20
#: Integer literals beyond this many bits are refused where they are written
#: (values beyond 64 bits are refused where they are used, with their path).
MAX_INT_BITS = 128


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


class LiteralError(ValueError):
    """A plain scalar that is an integer too large to hold (the message says so)."""


def resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema.

    Raises:
        LiteralError: an integer beyond MAX_INT_BITS bits.
    """
    if text in _WORDS:
        return _WORDS[text]
    if text[0] not in _NUMBER_START:
        return text
    if _INT10.match(text):
        return _literal(text, text.lstrip("+-"), 10)
    if _INT16.match(text):
        return _literal(text, text[2:], 16)
    if _INT8.match(text):
        return _literal(text, text[2:], 8)
    if _FLOAT.match(text):
        return float(text)
    if _INF.match(text):
        return float("-inf") if text.startswith("-") else float("inf")
    if _NAN.match(text):
        return float("nan")
    return text


#: Digits of the largest MAX_INT_BITS-bit literal, per base (decimal: 2**128 has 39).
_MAX_DIGITS = {10: 39, 16: MAX_INT_BITS // 4, 8: (MAX_INT_BITS + 2) // 3}


def _literal(text: str, digits: str, base: int) -> int:
    # Python refuses to convert more than 4,300 decimal digits, and a huge
    # value would make every message that shows it huge: stop at the digits.
    significant = digits.lstrip("0")
    value = int(significant or "0", base) if len(significant) <= _MAX_DIGITS[base] else None
    if value is None or value.bit_length() > MAX_INT_BITS:
        shown = text if len(text) <= 40 else f"{text[:24]}…{text[-8:]}"
        raise LiteralError(f"{shown} ({len(significant):,} digits) does not fit in 64 bits")
    return -value if text.startswith("-") else value


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
#: What ``_Composer.other`` returns for an event that adds no value to the tree.
_SKIPPED = object()
_END = (ev.MappingEndEvent, ev.SequenceEndEvent)


class _Composer:
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


#: What the board layer says of an input that is not a regular file.
BOARD_FILES_HINT = "boards and the files they include must be regular files"


def check_regular(path: Path) -> os.stat_result:
    """``path``'s status, if it is a regular file; raises FileProblem (storage.check_regular, board wording)."""
    return storage.check_regular(path, BOARD_FILES_HINT)


def file_too_big(limit: int) -> FileProblem:
    return FileProblem(f"is larger than {limit >> 20} MiB, the most a board and its includes may hold",
                       "split the board, or replicate entries with count: instead of writing them out")


def read_limited(path: Path, limit: int) -> bytes:
    """The bytes of board file ``path``, at most ``limit`` (storage.read_regular, board wording).

    Raises:
        FileProblem: not a regular file, larger than ``limit``, or unreadable.
    """
    return storage.read_regular(path, limit, file_too_big(limit), BOARD_FILES_HINT)


def decode(data: bytes, display: str, chain: tuple[SourceLocation, ...] = ()) -> str:
    """UTF-8 ``data`` as text with universal newlines (as ``Path.read_text``); a located error if not UTF-8."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        # Lines as the parser counts them (\r\n and \r end lines too), columns in characters.
        before = data[: err.start].replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        line = before.count(b"\n") + 1
        col = len(before[before.rfind(b"\n") + 1:].decode("utf-8", "replace")) + 1
        fail(SourceLocation(display, line, col, chain), "", f"not UTF-8 text ({err.reason})",
             "save the file as UTF-8")
    return text.replace("\r\n", "\n").replace("\r", "\n") if "\r" in text else text


def parse_file(path: Path, display: str, chain: tuple[SourceLocation, ...] = (),
               limit: int | None = None, duplicates: list[Problem] | None = None) -> Any:
    """Read one YAML file into a located tree (no includes, no version check), at most ``limit`` bytes
    (default MAX_BOARD_BYTES); ``duplicates``: see ``parse_text``."""
    try:
        data = read_limited(path, MAX_BOARD_BYTES if limit is None else limit)
    except FileProblem as err:
        fail(SourceLocation(display, 1, 1, chain) if chain else None, "", f"{display}: {err.message}", err.hint)
    return parse_text(decode(data, display, chain), display, chain, duplicates)


#: Characters libyaml refuses (controls, U+FFFE/U+FFFF), and the line separators
#: NEL, LS and PS, which it takes as line breaks (YAML 1.1) where editors and
#: YAML 1.2 do not: every line number after one would be wrong.
_BAD_CHAR = re.compile("[^\t\n\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _check_characters(text: str, display: str, chain: tuple[SourceLocation, ...]) -> None:
    bad = _BAD_CHAR.search(text)
    if bad is None:
        return
    where = bad.start()
    line_start = text.rfind("\n", 0, where) + 1
    loc = SourceLocation(display, text.count("\n", 0, where) + 1, where - line_start + 1, chain)
    code = ord(bad[0])
    what = ("a line separator, which YAML readers disagree on" if code in (0x85, 0x2028, 0x2029)
            else "a control character" if code < 0xa0 else "a non-character")
    escape = f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    fail(loc, "", f"character U+{code:04X} ({what}) is not allowed in a board",
         f'remove it; in a double-quoted string write it as "{escape}"')


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


def parse_text(text: str, display: str, chain: tuple[SourceLocation, ...] = (),
               duplicates: list[Problem] | None = None) -> Any:
    """Parse YAML text into a located tree.

    Duplicate keys (the first value is kept) raise one BoardError listing all
    of them once the text is read; with ``duplicates``, they are appended to
    it instead and the tree is returned, for the caller to report them with
    the problems of the rest of the board.
    """
    _check_characters(text, display, chain)
    composer = _Composer(display, chain)
    try:
        root = composer.compose(yaml_events(text))
    except BoardError as err:
        # A fatal problem further on: report it with the duplicate keys before it.
        if composer.duplicates:
            raise BoardError([*composer.duplicates, *err.problems]) from None
        raise
    except ReaderError as err:
        # Not a MarkedYAMLError: its position is a byte offset (the characters
        # libyaml refuses are caught above; this stays as a safety net).
        before = text.encode("utf-8")[: err.position].decode("utf-8", "replace")
        loc = SourceLocation(display, before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1, chain)
        fail(loc, "", f"YAML reader error: {err.reason} (character U+{err.character:04X})")
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
    if duplicates is not None:
        duplicates.extend(composer.duplicates)
    elif composer.duplicates:
        raise BoardError(composer.duplicates)
    return root

