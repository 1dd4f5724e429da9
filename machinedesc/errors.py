"""Every error machinedesc raises on purpose, with its exit status: one root, one table.

``Exit`` is the table of exit statuses; every error class names its row
(``exit_code``), and ``cli`` prints the table in ``--help`` (``exit_table``)
and exits with ``exit_code`` in ``main``: the three cannot drift apart.

```
  MachinedescError (1)
   +- InstallError (1)         a part of machinedesc's installation is missing
   +- BoardError (2)           every problem of a board, file:line:col
   +- UsageError (2)           the command line
   +- QmpFileError (2)         a QMP file, file:line:col
   +- CapabilityError (3)      QEMU lacks a command, argument or device type
   +- QemuNotFoundError (3)    no QEMU binary
   +- UnknownTypeError (4)     QEMU has no device type the plan names (a StepError at its line)
   +- StepError (4)            a step failed, wrong phase, verification differs
   +- QemuError (5)            QEMU died, could not start, or did not answer
   |   +- QemuTimeoutError (5)
   +- ConsoleError (6)         the guest console could not be written
   +- QemuBuildError (7)       building (or locating) the patched QEMU failed
   +- Interrupted (128+signal) Ctrl-C, SIGTERM, SIGHUP
```
"""

from __future__ import annotations

import difflib
import enum
import re
import signal
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

from .source import SourceLocation


class Exit(enum.IntEnum):
    """machinedesc's exit statuses; ``EXIT_MEANINGS`` says what each means (the --help table)."""

    OK = 0
    INTERNAL = 1
    INVALID = 2
    CAPABILITY = 3
    STEP = 4
    QEMU = 5
    OUTPUT = 6
    BUILD = 7
    INTERRUPTED = 130


#: What each exit status means, as the --help table shows it (one entry per line).
EXIT_MEANINGS: Mapping[Exit, tuple[str, ...]] = {
    Exit.OK: ("the machine was built and the guest powered off (or --detach/--connect)",),
    Exit.INTERNAL: ("internal error (a bug: please report the traceback), or a",
                    "broken installation (the message says what to install)"),
    Exit.INVALID: ("invalid board, QMP file or usage",),
    Exit.CAPABILITY: ("QEMU lacks a capability (stock QEMU: run `machinedesc qemu build`)",),
    Exit.STEP: ("a step failed (or names a device type QEMU lacks), or the built",
                "machine differs from the board"),
    Exit.QEMU: ("QEMU died or stopped answering (timeout)",),
    Exit.OUTPUT: ("an output could not be written: the guest's console, or standard",
                  "output (disk full, I/O error)"),
    Exit.BUILD: ("`machinedesc qemu build` failed, or the patched QEMU cannot be located",),
    Exit.INTERRUPTED: ("interrupted (Ctrl-C); QEMU was shut down",),
}


def exit_table() -> str:
    """The ``Exit status:`` block of --help (``\\b``: click keeps its lines as they are)."""
    lines = ["\b", "Exit status:"]
    for code, meaning in EXIT_MEANINGS.items():
        lines.append(f"  {code.value:<4} {meaning[0]}")
        lines.extend(f"       {more}" for more in meaning[1:])
    return "\n".join(lines) + "\n"


class MachinedescError(Exception):
    """Root of every error machinedesc raises on purpose; ``exit_code`` is its row of ``Exit``."""

    exit_code: int = Exit.INTERNAL


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


#: Characters that would act on a terminal or hide text: C0 and C1 controls, DEL,
#: line/paragraph separators, the bidirectional controls, invisible characters (zero-width
#: space and joiners, word joiner, BOM, Arabic letter mark, Mongolian vowel separator: two
#: names that print alike are told apart); and lone surrogates (undecodable bytes of a file
#: name or argument), which cannot be printed.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u180e\u200b-\u200f\u2028\u2029\u202a-\u202e"
                     "\u2060-\u2064\u2066-\u2069\ufeff\ud800-\udfff]")
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


def printable_lines(text: str) -> str:
    """``text`` made printable line by line: its own line breaks kept (another program's
    messages, e.g. dtc's), everything else escaped as ``printable`` does."""
    return "\n".join(printable(line) for line in text.split("\n"))


@dataclass
class BoardError(MachinedescError):
    """The board (or its includes, or --set) is invalid; holds every problem found."""

    problems: list[Problem] = field(default_factory=list)

    exit_code = Exit.INVALID

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

    exit_code = Exit.INVALID


class InstallError(MachinedescError):
    """machinedesc's installation lacks a part it needs (the message says which to install)."""

    exit_code = Exit.INTERNAL


class InputFileError(MachinedescError):
    """A file given to a command (not a board) is malformed or refused; the message starts with ``file:line:col``.

    ``location`` line 0 means the whole file; ``message`` and ``hint`` are
    the text before escaping (names and values come from the file).
    """

    exit_code = Exit.INVALID

    def __init__(self, location: SourceLocation, message: str, hint: str | None = None) -> None:
        # Line 0: about the whole file. Names and values come from the file: escaped.
        where = str(location) if location.line else location.file
        text = printable(f"{where}: {message}")
        if hint:
            text += "\n" + printable(f"  hint: {hint}")
        super().__init__(text)
        self.location = location
        self.message = message
        self.hint = hint


class QmpFileError(InputFileError):
    """A QMP configuration file (``run``, ``import-qmp``) is malformed or refused."""


class DeviceTreeFileError(InputFileError):
    """A device tree (``import-dtb``'s DTS or DTB) is malformed or cannot become a board.

    Line 0 is the whole file, or a place in a DTB, which has no lines (the
    message then names the node's path).
    """


class CapabilityError(MachinedescError):
    """The QEMU binary lacks a command, argument or device type the plan needs."""

    exit_code = Exit.CAPABILITY


class QemuNotFoundError(MachinedescError):
    """No QEMU binary for the board's system could be found (a missing capability)."""

    exit_code = Exit.CAPABILITY


class UnknownTypeError(MachinedescError):
    """QEMU has every command the plan needs but not a device type it names: the user's mistake.

    ``types`` are the missing names, ``known`` the binary's device types (for
    a "did you mean"). The engine turns it into a StepError at the line of
    the first ``device_add`` that names one, so its row is ``Exit.STEP``.
    """

    exit_code = Exit.STEP

    def __init__(self, types: Sequence[str], known: frozenset[str]) -> None:
        super().__init__("QEMU has no device type " + ", ".join(f"'{t}'" for t in types))
        self.types = tuple(types)
        self.known = known


class StepError(MachinedescError):
    """A step failed, the machine was in the wrong phase, or verification found a difference.

    For a command QEMU refused, ``sent`` is the QMP message sent, ``received``
    QEMU's reply and ``error_class`` its error class (``GenericError``...),
    as qemu.qmp's ExecuteError holds them; all three are None otherwise.
    """

    exit_code = Exit.STEP

    def __init__(self, message: str, *, sent: Mapping[str, Any] | None = None,
                 received: Mapping[str, Any] | None = None, error_class: str | None = None) -> None:
        super().__init__(message)
        self.sent = sent
        self.received = received
        self.error_class = error_class


def stderr_block(tail: str) -> str:
    """``tail`` (QEMU's last stderr lines) as the indented block of an error message, '' if empty."""
    if not tail:
        return ""
    return "\n  QEMU stderr (last lines):\n" + "\n".join("    " + line for line in tail.splitlines())


class QemuError(MachinedescError):
    """QEMU could not be started, died, or stopped answering.

    ``message`` is what happened; ``stderr_tail`` QEMU's last stderr lines
    ('' if none or unknown), shown below it.
    """

    exit_code = Exit.QEMU

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(message + stderr_block(stderr_tail))
        self.message = message
        self.stderr_tail = stderr_tail


class QemuTimeoutError(QemuError):
    """QEMU did not answer within the timeout."""


class ConsoleExpectError(MachinedescError, AssertionError):
    """The guest console did not print what a program expected (``live.console.Console.expect``).

    Raised by the Python API and the pytest plugin only (no command expects
    console output); an ``AssertionError`` too, so pytest reports a failed
    check. ``console_tail`` is the console's last lines, ``stderr_tail``
    QEMU's; the message shows both.
    """

    exit_code = Exit.QEMU

    def __init__(self, message: str, console_tail: str = "", stderr_tail: str = "") -> None:
        shown = ("\n  console (last lines):\n" + "\n".join("    " + ln for ln in console_tail.splitlines())
                 if console_tail else "\n  console: (nothing printed)")
        super().__init__(message + shown + stderr_block(stderr_tail))
        self.message = message
        self.console_tail = console_tail
        self.stderr_tail = stderr_tail


class ConsoleError(MachinedescError):
    """The guest's console output could not be written (full disk, I/O error): output was lost."""

    exit_code = Exit.OUTPUT


class QemuBuildError(MachinedescError):
    """The patched QEMU's build script is missing or failed (``machinedesc qemu build``, ``qemu path``)."""

    exit_code = Exit.BUILD


class Interrupted(MachinedescError):
    """The user pressed Ctrl-C (or machinedesc got SIGTERM/SIGHUP); QEMU was shut down.

    ``exit_code`` is 128 + the signal's number, as a shell reports it (130 for SIGINT).
    """

    exit_code: int = Exit.INTERRUPTED

    def __init__(self, signum: int) -> None:
        name = signal.Signals(signum).name
        super().__init__(f"machinedesc: interrupted ({name})")
        self.signum = signum
        self.exit_code = 128 + signum


def fail(location: SourceLocation | None, path: str, message: str, hint: str | None = None) -> NoReturn:
    """Raise a BoardError with a single problem (for errors that stop loading at once)."""
    raise BoardError([Problem(location, path, message, hint)])


#: Names that one load's "did you mean" hints may compare in all (about 2 s of difflib): 50,000 broken
#: references among 50,000 ids would spend hours on hints that nobody reads
#: (after ten problems of a kind the rest are only counted).
MAX_HINT_WORK = 200_000


class Hints:
    """"did you mean" hints within a budget of names compared; one load shares one (pipeline makes it)."""

    def __init__(self, budget: int = MAX_HINT_WORK) -> None:
        #: Names that may still be compared.
        self.left = budget

    def did_you_mean(self, word: str, choices: Any) -> str | None:
        """A "did you mean 'x'?" hint, or None (also once the budget is spent)."""
        names = choices if hasattr(choices, "__len__") else list(choices)
        if len(names) > self.left:
            return None
        self.left -= len(names)
        close = difflib.get_close_matches(word, sorted(str(c) for c in names), n=1, cutoff=0.6)
        return f"did you mean '{close[0]}'?" if close else None


class Collector:
    """Gathers problems so that all errors of a file are reported at once.

    ``hints`` is the load's hint budget (a fresh one if none is given): the
    stages that add problems ask it for their "did you mean" hints.
    """

    def __init__(self, hints: Hints | None = None) -> None:
        self.problems: list[Problem] = []
        self.hints = hints if hints is not None else Hints()
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
