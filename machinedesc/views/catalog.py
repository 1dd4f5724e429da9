"""``machinedesc list``: every board of a catalog directory as one row, the broken ones with their first error.

A row is read the way ``validate`` reads a board (includes, schema, checks,
the planner's ordering), with the board's directory as its catalog root.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..board.includes import display_name
from ..board.located import LMap, LSeq
from ..board.yaml_reader import MAX_BOARD_BYTES, parse_file
from ..errors import BoardError, UsageError, printable
from ..plan.pipeline import load_board
from .machine import cpu_types, human_size, memory_total, plan_of


@dataclass(frozen=True)
class Row:
    """One board of the catalog. ``error`` is its first problem (``file:line:col: message``), or ""."""

    file: str
    name: str
    system: str
    cpus: dict[str, int]
    memory_bytes: int | None
    extends: list[str]
    summary: str
    steps: int | None
    error: str = ""


def _extends(path: Path) -> list[str]:
    """What the board file itself names under ``extends:`` (its own line, not its bases')."""
    try:
        tree = parse_file(path, display_name(path), (), MAX_BOARD_BYTES)
    except BoardError:
        return []
    value = tree.get("extends") if isinstance(tree, LMap) else None
    if isinstance(value, LSeq | list):
        return [str(v) for v in value]
    return [str(value)] if isinstance(value, str) else []


def read_row(path: Path, *, allow_host_access: bool = False) -> Row:
    """The row of one board file; never raises BoardError (the error becomes the row's ``error``)."""
    extends = _extends(path)
    try:
        board = load_board(path, allow_host_access=allow_host_access)
        steps = len(plan_of(board).steps)
    except BoardError as err:
        problems = sorted(set(err.problems), key=lambda p: (
            (p.location.file, p.location.line, p.location.col) if p.location else ("", 0, 0), p.path, p.message))
        first = problems[0].render().splitlines()[0] if problems else str(err)
        more = f" (and {len(problems) - 1:,} more)" if len(problems) > 1 else ""
        return Row(display_name(path), path.stem, "", {}, None, extends, "", None, first + more)
    return Row(board.file, board.name, board.system, cpu_types(board), memory_total(board), extends,
               board.summary, steps)


def read_catalog(directory: Path, *, allow_host_access: bool = False) -> list[Row]:
    """A row for every ``*.yaml`` directly in ``directory``, by file name; UsageError if it is no directory."""
    if not directory.is_dir():
        raise UsageError(printable(f"machinedesc: {directory} is not a directory") + "\n  hint: name the "
                         "directory that holds your boards: machinedesc list DIRECTORY (default: boards/ of the "
                         "working directory)")
    files = sorted(directory.glob("*.yaml"), key=lambda p: (p.stem, p.name))
    return [read_row(p, allow_host_access=allow_host_access) for p in files]


def render_table(rows: list[Row]) -> str:
    """The catalog as an aligned text table, one board a line, ending in a newline."""
    header = ("NAME", "SYSTEM", "CPUS", "MEMORY", "STEPS", "EXTENDS", "SUMMARY")
    table: list[tuple[str, ...]] = [header]
    for r in rows:
        # Copies of one board keep its name: then the file tells the rows apart.
        name = r.name if Path(r.file).stem == r.name else f"{r.name} ({Path(r.file).name})"
        if r.error:
            table.append((name, "-", "-", "-", "-", ", ".join(r.extends) or "-", f"INVALID: {r.error}"))
            continue
        cpus = ", ".join(f"{n} x {t}" for t, n in r.cpus.items()) or "-"
        table.append((name, r.system, cpus, human_size(r.memory_bytes) if r.memory_bytes else "-",
                      str(r.steps), ", ".join(r.extends) or "-", r.summary))
    widths = [max(len(line[i]) for line in table) for i in range(len(header) - 1)]
    lines = ["  ".join([*(cell.ljust(w) for cell, w in zip(line, widths, strict=False)), line[-1]]).rstrip()
             for line in table]
    valid = sum(1 for r in rows if not r.error)
    lines.append(f"{len(rows)} board{'s' if len(rows) != 1 else ''}, {valid} valid, {len(rows) - valid} invalid")
    return "\n".join(printable(line) for line in lines) + "\n"


def render_json(rows: list[Row]) -> str:
    """The catalog as a JSON array of rows (``Row``'s fields), ending in a newline."""
    data: list[dict[str, Any]] = [asdict(r) for r in rows]
    return json.dumps(data, indent=2) + "\n"
