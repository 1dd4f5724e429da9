"""What a user-facing message is and how it is shown: a ``Problem`` (where, what, hint), escaped and sorted.

``printable`` keeps names and values from a file from driving the terminal;
``render_problems`` is a board's report (sorted, once each, kinds counted
after MAX_PER_KIND); ``render_notes`` the same for notes; ``Hints`` the
"did you mean" hints within one load's budget. The errors that carry
problems (``BoardError``) and the ``Collector`` that gathers them are in
``errors``, which re-exports these names.
"""

from __future__ import annotations

import difflib
import heapq
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .source import SourceLocation


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


def render_problems(found: Sequence[Problem]) -> str:
    """All problems, sorted by file, line, column, one block each.

    After MAX_PER_KIND problems of one kind (the same message but for names
    and numbers), the rest of that kind are counted in one line.
    """
    # Copies of a replicated entry repeat the same problem: show it once.
    problems = sorted(set(found), key=_sort_key)
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
    lines = render_problems(notes).splitlines() if notes else []
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
        close = self.ranked(word, choices, 1)
        return f"did you mean '{close[0][1]}'?" if close else None

    def ranked(self, word: str, choices: Any, n: int) -> list[tuple[float, str]]:
        """Up to ``n`` (similarity 0..1, name) of ``choices`` close to ``word``, best first: difflib's
        ``get_close_matches`` (cutoff 0.6) with its scores; [] once the budget is spent."""
        names = choices if hasattr(choices, "__len__") else list(choices)
        if len(names) > self.left:
            return []
        self.left -= len(names)
        matcher = difflib.SequenceMatcher()
        matcher.set_seq2(word)
        found = []
        for name in sorted(str(c) for c in names):
            matcher.set_seq1(name)
            if matcher.real_quick_ratio() >= 0.6 and matcher.quick_ratio() >= 0.6 and matcher.ratio() >= 0.6:
                found.append((matcher.ratio(), name))
        return heapq.nlargest(n, found)
