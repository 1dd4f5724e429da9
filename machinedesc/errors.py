"""The error types: one root, user errors carrying source locations, apply failures."""

from __future__ import annotations

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
        return "\n".join(lines)


@dataclass
class BoardError(MachinedescError):
    """The board (or its includes, or --set) is invalid; holds every problem found."""

    problems: list[Problem] = field(default_factory=list)

    exit_code = 2

    def __post_init__(self) -> None:
        super().__init__(self.render())

    def render(self) -> str:
        """All problems, sorted by file, line, column, one block each."""
        # Copies of a replicated entry repeat the same problem: show it once.
        return "\n".join(p.render() for p in sorted(set(self.problems), key=_sort_key))


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

    def add(self, location: SourceLocation | None, path: str, message: str, hint: str | None = None) -> None:
        self.problems.append(Problem(location, path, message, hint))

    def raise_if_any(self) -> None:
        """Raise a BoardError holding every problem collected so far."""
        if self.problems:
            raise BoardError(list(self.problems))
