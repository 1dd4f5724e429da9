"""The whole front half: board file -> validated Board -> Plan; the library entry points.

The stages (and networkx and jsonschema with them) are imported only when a
plan is actually computed: with the plan cache, `apply` of an unchanged board
starts without them.
"""

from __future__ import annotations

import gc
import hashlib
import os
import pickle
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .plan import Plan

if TYPE_CHECKING:
    from .loader import Document
    from .model import Board

#: Bump when Plan's pickled form changes.
_CACHE_FORMAT = 1
_PACKAGE = Path(__file__).resolve().parent


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
    return _load_board(path, overrides, catalog)[1]


def _load_board(path: Path, overrides: Mapping[str, str] | None, catalog: Path | None) -> tuple[Document, Board]:
    from .checks import check_board
    from .errors import Collector
    from .loader import load_document
    from .model import build_board
    from .schema import validate

    doc = load_document(Path(path), catalog)
    problems = Collector()
    validate(doc.tree, problems)
    problems.raise_if_any()
    # Model and semantic problems are reported together: all errors at once.
    board = build_board(doc.tree, doc.file, overrides or {}, problems, doc.deleted)
    check_board(board, problems)
    problems.raise_if_any()
    return doc, board


def load_plan(path: Path, overrides: Mapping[str, str] | None = None, firmware: Sequence[Path] = (),
              catalog: Path | None = None, *, cache: bool = False) -> Plan:
    """The Plan for a board file (``firmware``: ELF files to load); raises BoardError.

    With ``cache``, a plan computed before for the same board, files, options
    and machinedesc is reused (see ``plan_cache_dir``).
    """
    key = _cache_key(path, overrides, firmware, catalog) if cache else None
    if key is not None:
        cached = _cache_get(key)
        if cached is not None:
            return cached
    with _no_cycle_collection():
        files, plan = _plan(path, overrides, firmware, catalog)
    if key is not None:
        _cache_put(key, files, plan)
    return plan


def _plan(path: Path, overrides: Mapping[str, str] | None, firmware: Sequence[Path],
          catalog: Path | None) -> tuple[tuple[Path, ...], Plan]:
    from .errors import Collector
    from .graph import build_graph
    from .planner import make_plan

    doc, board = _load_board(path, overrides, catalog)
    problems = Collector()
    sg = build_graph(board, problems, firmware=len(firmware))
    problems.raise_if_any()
    assert sg is not None
    return doc.files, make_plan(board, sg, [str(Path(f).resolve()) for f in firmware])


# ---------------------------------------------------------------- plan cache


def plan_cache_dir() -> Path:
    """Where plans are cached: $MACHINEDESC_CACHE/plans, else $XDG_CACHE_HOME/machinedesc/plans."""
    base = os.environ.get("MACHINEDESC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "machinedesc")
    return Path(base) / "plans"


def _stamp(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path), st.st_mtime_ns, st.st_size)


def _package_stamp() -> list[tuple[str, int, int]]:
    # A plan depends on the code that made it: any change to machinedesc's
    # sources, schema or type table makes every cached plan stale.
    return [_stamp(p) for p in sorted(_PACKAGE.rglob("*")) if p.suffix in (".py", ".json", ".yaml")]


def _cache_key(path: Path, overrides: Mapping[str, str] | None, firmware: Sequence[Path],
               catalog: Path | None) -> str | None:
    try:
        what = repr((_CACHE_FORMAT, str(Path(path).resolve()), str(Path.cwd()), sorted((overrides or {}).items()),
                     [str(Path(f).resolve()) for f in firmware], str(catalog.resolve()) if catalog else None,
                     _package_stamp()))
    except OSError:
        return None
    return hashlib.sha256(what.encode()).hexdigest()[:32]


def _cache_get(key: str) -> Plan | None:
    entry = plan_cache_dir() / f"{key}.pickle"
    try:
        with entry.open("rb") as f:
            files, plan = pickle.load(f)  # noqa: S301 - the user's own cache directory
        if all(_stamp(Path(name)) == (name, mtime, size) for name, mtime, size in files) and isinstance(plan, Plan):
            return plan
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError):
        pass
    return None


def _cache_put(key: str, files: Sequence[Path], plan: Plan) -> None:
    directory = plan_cache_dir()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        data = pickle.dumps(([_stamp(f) for f in files], plan), protocol=pickle.HIGHEST_PROTOCOL)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{key}.")
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, directory / f"{key}.pickle")
    except OSError:
        pass  # a cache that cannot be written is only slower
