"""Every error machinedesc raises on purpose, with its exit status: one root, one table.

``Exit`` is the table of exit statuses; every error class names its row
(``exit_code``), and ``cli`` prints the table in ``--help`` (``exit_table``)
and exits with ``exit_code`` in ``main``: the three cannot drift apart.
What a problem is and how it is printed (``Problem``, ``printable``, the
report's order) is ``messages``; the names are importable from here too.

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

import enum
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NoReturn

# What a message is and how it is shown lives in ``messages``; the names are
# re-exported here, where every stage has always imported them from.
from .messages import MAX_HINT_WORK as MAX_HINT_WORK
from .messages import MAX_LINE as MAX_LINE
from .messages import MAX_PER_KIND as MAX_PER_KIND
from .messages import Hints as Hints
from .messages import Problem as Problem
from .messages import printable as printable
from .messages import printable_lines as printable_lines
from .messages import render_notes as render_notes
from .messages import render_problems
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


@dataclass
class BoardError(MachinedescError):
    """The board (or its includes, or --set) is invalid; holds every problem found."""

    problems: list[Problem] = field(default_factory=list)

    exit_code = Exit.INVALID

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, sorted by file, line, column, one block each (``render_problems``)."""
        return render_problems(self.problems)


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
