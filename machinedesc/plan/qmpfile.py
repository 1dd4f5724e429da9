"""QMP configuration files: parse (and format) one QMP command per line in qmp-shell syntax.

A QMP configuration file is the seed RFC's "configuration file": one command
per line, ``command key=value ...``, in the order it must be sent.  This is
machinedesc's own parser; qmp-shell's is private to it and not meant for
scripts.  The rules, chosen to read every line qmp-shell reads the same way:

* A line whose first non-blank character is ``#`` is a comment; blank lines
  are ignored.  Comments of the form ``# key: value`` before the first command
  form the *header* (``# system: riscv64``, ``# qemu: qemu-system-riscv64 ...``);
  ``# phase: NAME`` anywhere marks the machine phase of the commands after it.
* Tokens are split exactly as qmp-shell splits them: on whitespace, except
  inside ``"..."`` or ``'...'`` runs (so ``{"a": "b c"}`` is one token only if
  written without bare spaces: ``{"a":"b c"}``).
* Values are read like qmp-shell reads them: a Python ``int()``-able value is
  an integer, ``true``/``false`` (any case) are booleans, a value starting with
  ``{`` or ``[`` is JSON.  There are no hex, float or null literals.
* Two deliberate differences from qmp-shell, both for scripts:
  - a value starting with ``{`` or ``[`` that is not valid JSON is an error
    (qmp-shell silently sends it as a string), and a value written as a JSON
    string, ``"like this"``, is that string without its quotes (qmp-shell
    keeps the quotes) - the only way to write a string with blanks, or a
    string that would otherwise read as a number or a boolean;
  - a dotted key nests *only that key*: ``cmd a.b=1 c=2`` gives
    ``{"a": {"b": 1}, "c": 2}``, while qmp-shell, due to a bug, nests every
    later argument too (``{"a": {"b": 1, "c": 2}}``).  Keys sharing a prefix
    merge (``a.b=1 a.c=2``); using a key both as a leaf and as a prefix, or
    twice, is an error.
* qmp-shell's ``transaction( ... )`` blocks are not supported; write
  ``transaction actions=[...]``.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import QmpFileError
from ..qemu.phases import PHASE_NAMES, Phase
from ..source import SourceLocation
from .steps import Step, StepKind

# qmp-shell's token expression (qemu.qmp.qmp_shell.QMPShell._build_cmd), with
# one change: inside quotes a backslash is only ever an escape. qmp-shell's
# `\\.|[^"]` lets a backslash match either way, which backtracks
# exponentially on a quote that never closes (40 backslashes: "for ever");
# the strings both read (valid JSON strings) are the same.
_TOKEN = re.compile(r"""(?:[^\s"']|"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')+""")
#: How deeply a JSON value may nest (as a board may: board.yaml_compose.MAX_DEPTH).
MAX_JSON_DEPTH = 64
#: The largest QMP file run reads: a plan of 100,000 components is about 60 MiB.
MAX_FILE_BYTES = 64 << 20
#: The longest line: one command; even a large JSON value stays far below.
MAX_LINE_CHARS = 1 << 20
_HEADER = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_-]*)\s*:\s?(.*)$")
_KEY = re.compile(r"[^.=\s]+(?:\.[^.=\s]+)*")

@dataclass(frozen=True)
class QmpFile:
    """A parsed QMP configuration file: header comments and commands in order.

    Each command is a ``Step`` of kind RAW located at its line (and column),
    in the phase of the ``# phase:`` comment before it, if any.
    """

    path: str
    header: Mapping[str, str] = field(default_factory=dict)
    commands: tuple[Step, ...] = ()
    #: Where each header line is (for messages about its value).
    header_locations: Mapping[str, SourceLocation] = field(default_factory=dict)

    def header_location(self, key: str) -> SourceLocation:
        """Where the ``# key:`` header line is (line 0 if it has none)."""
        return self.header_locations.get(key, SourceLocation(self.path, 0, 0))

    @property
    def qemu_argv(self) -> list[str] | None:
        """The ``# qemu:`` header split like a shell would, or None if there is none.

        Raises QmpFileError at the header line when its quotes do not balance.
        """
        line = self.header.get("qemu")
        if line is None:
            return None
        try:
            return shlex.split(line)
        except ValueError as exc:
            raise QmpFileError(self.header_location("qemu"), f"cannot split the '# qemu:' command line: {exc}",
                               "quote arguments with blanks like a shell does: '...' or \"...\"") from None

    @property
    def system(self) -> str | None:
        """The ``# system:`` header, else the suffix of the ``qemu-system-X`` binary."""
        system = self.header.get("system")
        if system:
            return system
        argv = self.qemu_argv
        if argv:
            name = Path(argv[0]).name
            if name.startswith("qemu-system-"):
                return name[len("qemu-system-"):]
        return None


def parse_value(text: str, location: SourceLocation | None = None) -> Any:
    """Read one value the way qmp-shell does (see the module docstring).

    Raises QmpFileError for a ``{``/``[`` value that is not JSON, or a
    ``"..."`` value that is not a valid JSON string, when ``location`` is given;
    without a location a plain ValueError.
    """
    try:
        return int(text)
    except ValueError:
        pass
    if text.lower() == "true":
        return True
    if text.lower() == "false":
        return False
    if text.startswith(("{", "[")) or (len(text) >= 2 and text[0] == text[-1] == '"'):
        what = "JSON string" if text.startswith('"') else "JSON value"
        try:
            value = json.loads(text, parse_constant=_refuse_constant)
            if _json_depth(value) > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            try:
                json.dumps(value, ensure_ascii=False).encode("utf-8")
            except UnicodeEncodeError:
                raise ValueError("a lone surrogate (\\ud800-\\udfff) is not text that QEMU can read") from None
            return value
        except (ValueError, RecursionError) as exc:
            reason: object = exc
            if isinstance(exc, RecursionError):
                reason = f"nested deeper than {MAX_JSON_DEPTH} levels"
            elif isinstance(exc, json.JSONDecodeError):
                reason = exc.msg.lower()
                if location is not None:  # point at the offending character, not the value's start
                    location = SourceLocation(location.file, location.line, location.col + exc.pos, location.chain)
            if location is None:
                raise ValueError(f"invalid {what} {text[:80]!r}: {reason}") from None
            raise QmpFileError(location, f"invalid {what}: {reason}") from None
    return text


def _refuse_constant(name: str) -> Any:
    # Python's json module reads NaN, Infinity and -Infinity, which are not
    # JSON and which QEMU's JSON parser refuses.
    raise ValueError(f"{name} is not a JSON number")


def _json_depth(value: Any) -> int:
    """How many arrays/objects deep ``value`` nests (iteratively: no recursion limit)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, dict):
            items: list[Any] = list(item.values())
        elif isinstance(item, list):
            items = item
        else:
            continue
        deepest = max(deepest, depth)
        todo.extend((child, depth + 1) for child in items)
    return deepest


def _set_key(arguments: dict[str, Any], key: str, value: Any, location: SourceLocation) -> None:
    parts = key.split(".")
    node = arguments
    for depth, part in enumerate(parts[:-1]):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise QmpFileError(location, f"'{'.'.join(parts[:depth + 1])}' is used both as a value and as an object")
        node = child
    leaf = parts[-1]
    if leaf in node:
        if isinstance(node[leaf], dict):
            raise QmpFileError(location, f"'{key}' is used both as a value and as an object")
        raise QmpFileError(location, f"'{key}' is given twice")
    node[leaf] = value


def parse_line(text: str, location: SourceLocation, phase: Phase | None = None) -> Step | None:
    """Parse one command line; None for a blank line.  ``location.col`` is ignored.

    Raises QmpFileError naming the column of the offending token.
    """
    tokens = list(_TOKEN.finditer(text))

    def at(col0: int) -> SourceLocation:
        return SourceLocation(location.file, location.line, col0 + 1, location.chain)

    _check_covered(text, tokens, at)
    if not tokens:
        return None

    first = tokens[0]
    command = first.group(0)
    if command in ("transaction(", ")"):
        raise QmpFileError(
            at(first.start()),
            "qmp-shell transaction blocks are not supported",
            "write one line: transaction actions=[{\"type\":...,\"data\":{...}}]",
        )
    if "=" in command:
        raise QmpFileError(at(first.start()), f"expected a command name, got '{command}'")
    arguments: dict[str, Any] = {}
    for tok in tokens[1:]:
        key, sep, raw = tok.group(0).partition("=")
        if not sep:
            raise QmpFileError(
                at(tok.start()), f"expected key=value, got '{tok.group(0)}'",
                "comments must be on their own line, starting with '#'" if tok.group(0).startswith("#") else None,
            )
        if not _KEY.fullmatch(key):
            raise QmpFileError(at(tok.start()), f"invalid argument name '{key}'")
        value = parse_value(raw, at(tok.start() + len(key) + 1))
        _set_key(arguments, key, value, at(tok.start()))
    return Step(phase, StepKind.RAW, command, arguments, at(first.start()))


def _check_covered(text: str, tokens: list[re.Match[str]], at: Any) -> None:
    """Every non-blank character belongs to a token; else a quote is left open there."""
    end = 0
    for tok in [*tokens, None]:
        start = tok.start() if tok is not None else len(text)
        gap = text[end:start]
        if gap.strip():
            col0 = end + (len(gap) - len(gap.lstrip()))
            raise QmpFileError(at(col0), f"unterminated quote {text[col0]}...",
                               "close the quote, and escape quotes inside it with a backslash")
        if tok is not None:
            end = tok.end()


def parse(text: str, filename: str) -> QmpFile:
    """Parse a whole QMP configuration file.  Raises QmpFileError at the first error."""
    header: dict[str, str] = {}
    header_locations: dict[str, SourceLocation] = {}
    commands: list[Step] = []
    phase: Phase | None = None
    # Lines end at '\n' (and '\r\n') only, as editors count them: str.splitlines()
    # would also break at \x0b, \x0c, \x1c-\x1e, \x85 and shift every line number.
    if text.startswith("\ufeff"):  # a byte-order mark some editors write
        text = text[1:]
    for lineno, raw in enumerate(text.split("\n"), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        if len(line) > MAX_LINE_CHARS:
            raise QmpFileError(SourceLocation(filename, lineno, 1),
                               f"a line of {len(line):,} characters: at most {MAX_LINE_CHARS:,} are read")
        stripped = line.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            m = _HEADER.match(stripped)
            if not m:
                continue
            key, value = m.group(1).lower(), m.group(2).strip()
            if key == "phase":
                if value not in PHASE_NAMES:
                    col = line.index("#") + 1
                    raise QmpFileError(
                        SourceLocation(filename, lineno, col),
                        f"unknown phase '{value}'",
                        "one of: " + ", ".join(sorted(PHASE_NAMES)),
                    )
                phase = Phase.named(value)
            elif not commands:
                where = SourceLocation(filename, lineno, line.index("#") + 1)
                if key in header:  # the first would win unseen, whatever the second says
                    raise QmpFileError(where, f"a second '# {key}:' header (the first is at line "
                                              f"{header_locations[key].line})", "keep one")
                header[key] = value
                header_locations[key] = where
            continue
        cmd = parse_line(line, SourceLocation(filename, lineno, 1), phase)
        if cmd is not None:
            commands.append(cmd)
    return QmpFile(filename, header, tuple(commands), header_locations)


def load(path: Path) -> QmpFile:
    """Read and parse ``path``, a regular file of at most MAX_FILE_BYTES.

    Raises QmpFileError (also for an unreadable file, a FIFO, a device...).
    """
    from ..storage import FileProblem, read_regular

    try:
        data = read_regular(path, MAX_FILE_BYTES, FileProblem(f"is larger than {MAX_FILE_BYTES >> 20} MiB, "
                                                              "the most run reads"))
    except FileProblem as exc:
        raise QmpFileError(SourceLocation(str(path), 0, 0), exc.message, exc.hint) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[:exc.start]
        line, col = before.count(b"\n") + 1, exc.start - (before.rfind(b"\n") + 1) + 1
        raise QmpFileError(SourceLocation(str(path), line, col), f"not UTF-8 text ({exc.reason})",
                           "save the file as UTF-8") from None
    return parse(text, str(path))


def format_value(value: Any) -> str:
    """Write a value so that ``parse_value`` reads it back (and qmp-shell too when possible).

    Strings are written bare unless they contain blanks or quotes or would
    read back as another type; then they are JSON-quoted (which qmp-shell
    does not unquote).  Floats and None have no literal and are refused.
    """
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        bare_ok = (
            value != ""
            and value.isprintable()  # control and bidi characters go JSON-escaped, never raw
            and not any(c.isspace() or c in "\"'" for c in value)
            and not value.startswith(("{", "["))
            and parse_value(value) == value
        )
        return value if bare_ok else json.dumps(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    raise ValueError(f"no QMP configuration file literal for {value!r}")


def format_command(command: str, arguments: Mapping[str, Any]) -> str:
    """One line ``command key=value ...``; nested objects are written as JSON values."""
    parts = [command]
    parts.extend(f"{key}={format_value(val)}" for key, val in arguments.items())
    return " ".join(parts)
