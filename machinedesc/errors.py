"""The error types: one root, user errors carrying source locations, apply failures."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import NoReturn

from .source import SourceLocation


class MachinedescError(Exception):
    """Root of every error machinedesc raises on purpose."""

    exit_code = 1


@dataclass(frozen=True, order=True)
class Problem:
    """One user-facing finding: where, which YAML path, what, and a hint."""

    location: SourceLocation | None
    path: str
    message: str
    hint: str | None = None

    def render(self) -> str:
        """``file:line:col: path: message`` plus include chain and hint lines."""
        where = f"{self.location}: " if self.location else ""
        what = f"{self.path}: {self.message}" if self.path else self.message
        lines = [f"{where}{what}"]
        if self.location:
            lines.extend(self.location.describe_chain())
        if self.hint:
            lines.append(f"  hint: {self.hint}")
        # Names and values in a message come from the board: make them safe to print.
        return "\n".join(printable(line) for line in lines)

    @property
    def kind(self) -> str:
        """The message with its names and numbers left out: what problems of one kind share."""
        text = _SINGLE_QUOTED.sub("'…'", self.message)
        return _NUMBER.sub("…", _DOUBLE_QUOTED.sub('"…"', text))


#: Characters that would act on a terminal or hide text: C0 and C1 controls,
#: DEL, line/paragraph separators and the bidirectional overrides; and lone
#: surrogates (undecodable bytes of a file name or argument), which cannot be printed.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")
#: A message line longer than this is shortened in its middle.
MAX_LINE = 1000
#: Quoted names and values, and numbers: what varies between problems of one kind.
_SINGLE_QUOTED = re.compile(r"'[^']*'")
_DOUBLE_QUOTED = re.compile(r'"[^"]*"')
_NUMBER = re.compile(r"-?\b(?:0x[0-9a-fA-F]+|[0-9][0-9,]*)\b")
#: Problems of one kind shown before the rest are only counted.
MAX_PER_KIND = 10


_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(match: re.Match[str]) -> str:
    char = match[0]
    return _NAMED.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def printable(text: str) -> str:
    """``text`` with control characters escaped (``\\x1b``, ``\\u202e``) and its middle left
    out when longer than MAX_LINE characters, so a board cannot flood or drive the terminal."""
    text = _UNSAFE.sub(_escape, text)
    if len(text) > MAX_LINE:
        head, tail = MAX_LINE - 200, 100
        text = f"{text[:head]} …({len(text) - head - tail:,} characters left out)… {text[-tail:]}"
    return text


@dataclass
class BoardError(MachinedescError):
    """The board (or its includes, or --set) is invalid; holds every problem found."""

    problems: list[Problem] = field(default_factory=list)

    exit_code = 2

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, sorted by file, line, column, one block each.

        After MAX_PER_KIND problems of one kind (the same message but for names
        and numbers), the rest of that kind are counted in one line.
        """
        # Copies of a replicated entry repeat the same problem: show it once.
        problems = sorted(set(self.problems), key=_sort_key)
        kinds = [p.kind for p in problems]
        total = Counter(kinds)
        shown: Counter[str] = Counter()
        blocks = []
        for p, kind in zip(problems, kinds, strict=True):
            shown[kind] += 1
            if shown[kind] > MAX_PER_KIND:
                continue
            blocks.append(p.render())
            if shown[kind] == MAX_PER_KIND and total[kind] > MAX_PER_KIND:
                more = total[kind] - MAX_PER_KIND
                blocks.append(printable(f"... and {more:,} more error{'s' if more > 1 else ''} like: {kind}"))
        return "\n".join(blocks)


def render_notes(notes: list[Problem]) -> list[str]:
    """Notes as the lines ``validate`` and ``plan`` print on stderr: sorted, once each, kinds counted after ten."""
    lines = BoardError(list(notes)).render().splitlines() if notes else []
    words = {" more errors like: ": " more notes like: ", " more error like: ": " more note like: "}
    out = []
    for line in lines:
        if line.startswith("..."):
            for old, new in words.items():
                line = line.replace(old, new, 1)
        out.append(line if line.startswith((" ", "...")) else f"note: {line}")
    return out


def _sort_key(p: Problem) -> tuple[str, int, int, str, str]:
    loc = p.location
    return (loc.file, loc.line, loc.col, p.path, p.message) if loc else ("", 0, 0, p.path, p.message)


class UsageError(MachinedescError):
    """Bad command-line usage that click cannot detect (e.g. a malformed --set)."""

    exit_code = 2


class InstallError(MachinedescError):
    """machinedesc's installation lacks a part it needs (the message says which to install)."""

    exit_code = 1


def fail(location: SourceLocation | None, path: str, message: str, hint: str | None = None) -> NoReturn:
    """Raise a BoardError with a single problem (for errors that stop loading at once)."""
    raise BoardError([Problem(location, path, message, hint)])


class Collector:
    """Gathers problems so that all errors of a file are reported at once."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        #: Findings that are not errors: a check that could not be made, and why.
        self.notes: list[Problem] = []

    def note(self, location: SourceLocation | None, path: str, message: str, hint: str | None = None) -> None:
        """Record a note (shown on stderr as ``note:``; the board stays valid)."""
        self.notes.append(Problem(location, path, message, hint))

    def add(self, location: SourceLocation | None, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(location, path, message, hint))

    def raise_if_any(self) -> None:
        """Raise a BoardError holding every problem collected so far."""
        if self.problems:
            raise BoardError(list(self.problems))
