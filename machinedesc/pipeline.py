"""The whole front half: board file -> validated Board -> Plan; the library entry points."""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

from .checks import check_board
from .errors import Collector
from .graph import build_graph
from .loader import load_document
from .model import Board, build_board
from .plan import Plan
from .planner import make_plan
from .schema import validate


@contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause the cyclic GC: a large board allocates millions of acyclic objects,
    and repeated full collections over them cost a third of the time."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_board(path: Path, overrides: Mapping[str, str] | None = None, catalog: Path | None = None) -> Board:
    """Load, schema-check and semantically check a board; raises BoardError with every problem."""
    doc = load_document(Path(path), catalog)
    problems = Collector()
    validate(doc.tree, problems)
    problems.raise_if_any()
    # Model and semantic problems are reported together: all errors at once.
    board = build_board(doc.tree, doc.file, overrides or {}, problems, doc.deleted)
    check_board(board, problems)
    problems.raise_if_any()
    return board


def load_plan(path: Path, overrides: Mapping[str, str] | None = None, firmware: Sequence[Path] = (),
              catalog: Path | None = None) -> Plan:
    """The Plan for a board file (``firmware``: ELF files to load); raises BoardError."""
    with _no_cycle_collection():
        return _plan(path, overrides, firmware, catalog)


def _plan(path: Path, overrides: Mapping[str, str] | None, firmware: Sequence[Path],
          catalog: Path | None) -> Plan:
    board = load_board(path, overrides, catalog)
    problems = Collector()
    sg = build_graph(board, problems, firmware=len(firmware))
    problems.raise_if_any()
    assert sg is not None
    return make_plan(board, sg, [str(Path(f).resolve()) for f in firmware])
