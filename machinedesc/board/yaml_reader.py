"""YAML file -> located tree: the file read (regular files within MAX_BOARD_BYTES, UTF-8), parsed, composed.

ruamel.yaml's C parser (libyaml, and only it) produces the events;
``yaml_compose`` composes them into dicts/lists that remember positions,
``yaml_scalars`` types the plain scalars. Includes are resolved in
``includes``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.reader import ReaderError

from .. import storage
from ..errors import BoardError, InstallError, Problem, fail
from ..storage import FileProblem
from ..source import SourceLocation
from .yaml_compose import Composer

#: Bytes of YAML one load may read: the board and every file it extends or
#: includes, a file counted each time it is included. A board of 100,000
#: components written out in full is about 13 MiB.
MAX_BOARD_BYTES = 32 << 20


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
    composer = Composer(display, chain)
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

