"""The whole front half: board file -> validated Board -> Plan; the library entry points.

The stages (and networkx and jsonschema with them) are imported only when a
plan is actually computed: with the plan cache, `apply` of an unchanged board
starts without them.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import time
from dataclasses import replace
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from .steps import Plan

if TYPE_CHECKING:
    from ..board.includes import Document
    from ..board.model import Board
    from ..errors import Problem

#: Bump when the cached form (steps.plan_to_data) changes.
_CACHE_FORMAT = 7  # 3: files stamped by content hash; 4: the DTB's hash; 5: boot notes; 6: validation notes;
#                  7: machinedesc's own files stamped by status
_PACKAGE = Path(__file__).resolve().parents[1]  # all of machinedesc, not only plan/


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


def load_board(path: Path, overrides: Mapping[str, str] | None = None, catalog: Path | None = None, *,
               allow_host_access: bool = False) -> Board:
    """Load, schema-check and semantically check a board; raises BoardError with every problem.

    Unless ``allow_host_access``, anything in the board that would touch the
    host (see machinedesc.board.safety, safety_board) is one of those problems.
    """
    return _load_board(path, overrides, catalog, allow_host_access)[1]


def _load_board(path: Path, overrides: Mapping[str, str] | None, catalog: Path | None,
                allow_host_access: bool = False) -> tuple[Document, Board, list[Problem]]:
    """The document, its Board and the notes of the checks (what they could not check)."""
    from ..board.safety_board import check_board as check_host_access
    from ..board.checks import check_board
    from ..board.includes import load_document
    from ..board.builder import build_board
    from ..board.schema import usable_part, validate, validate_fragments
    from ..errors import Collector, Hints

    hints = Hints()  # one "did you mean" budget for the whole load
    doc = load_document(Path(path), catalog, hints, keep_going=True)
    problems = Collector(hints)
    problems.problems.extend(doc.problems)  # duplicate keys: reported with everything else
    broken = validate(doc.tree, problems)
    fragment_problems = len(problems.problems)
    validate_fragments(doc.fragments, problems)
    if len(problems.problems) > fragment_problems:
        problems.raise_if_any()  # a malformed fragment cannot be instantiated: stop with what is known
    tree = doc.tree
    if problems.problems:
        if broken is None:
            problems.raise_if_any()
        # Only some entries are malformed: check the others too, so that their
        # problems come in the same report (the board is then incomplete).
        assert broken is not None
        tree = usable_part(doc.tree, broken)
    # Model and semantic problems are reported together: all errors at once.
    board = build_board(tree, doc.file, overrides or {}, problems, doc.deleted, doc.fragments)
    check_board(board, problems)
    check_host_access(board, tree, problems, allow_host_access)
    problems.raise_if_any()
    return doc, board, problems.notes


def load_plan(path: Path, overrides: Mapping[str, str] | None = None, firmware: Sequence[Path] = (),
              catalog: Path | None = None, *, cache: bool = False, allow_host_access: bool = False,
              boot: Mapping[str, str] | None = None) -> Plan:
    """The Plan for a board file (``firmware``: ELF files to load); raises BoardError.

    ``boot`` holds the command line's boot options (``bios``, ``kernel``,
    ``initrd``, ``append``, ``dtb``: machinedesc.boot.setup), over the
    board's ``boot:`` section. With ``cache``, a plan computed before for the
    same board, files (images included), options and machinedesc is reused
    (see ``plan_cache_dir``).
    """
    boot = dict(boot or {})
    key = _cache_key(path, overrides, firmware, catalog, allow_host_access, boot) if cache else None
    if key is not None:
        cached = _cache_get(key)
        if cached is not None:
            return cached
    with _no_cycle_collection():
        files, plan = _plan(path, overrides, firmware, catalog, allow_host_access, boot)
    if key is not None:
        _cache_put(key, files, plan)
    return plan


def _plan(path: Path, overrides: Mapping[str, str] | None, firmware: Sequence[Path],
          catalog: Path | None, allow_host_access: bool = False,
          boot: Mapping[str, str] | None = None) -> tuple[tuple[Path, ...], Plan]:
    from ..boot.firmware import check_firmware
    from ..boot.setup import prepare
    from ..errors import Collector, render_notes
    from .graph import build_graph
    from .planner import make_plan

    doc, board, notes = _load_board(path, overrides, catalog, allow_host_access)
    problems = Collector()
    check_firmware(board, firmware, problems, booting=bool(boot))
    setup = prepare(board, boot or {}, problems)
    problems.raise_if_any()
    written = board
    if setup is not None:
        board = setup.board
    loads, boot_notes, files = (setup.loads, setup.notes, setup.files) if setup else ((), (), ())
    sg = build_graph(board, problems, firmware=len(firmware) + len(loads))
    problems.raise_if_any()
    assert sg is not None
    plan = make_plan(board, sg, [str(Path(f).resolve()) for f in firmware], loads, boot_notes, written)
    return (*doc.files, *files), replace(plan, notes=tuple(render_notes([*notes, *problems.notes])))


# ---------------------------------------------------------------- plan cache


#: How many plans the cache keeps (the most recently used): each --set, --append or boot file is a key.
KEEP_PLANS = 256


def plan_cache_dir() -> Path:
    """Where plans are cached: $MACHINEDESC_CACHE/plans, else $XDG_CACHE_HOME/machinedesc/plans."""
    from ..storage import cache_root

    return cache_root() / "plans"


def _stamp(path: Path) -> tuple[str, int, str]:
    # The content's hash, not the modification time: cp -p, tar and coarse
    # file-system clocks keep a file's mtime and size across an edit.
    data = path.read_bytes()
    return (str(path), len(data), hashlib.sha256(data).hexdigest())


#: Files changed this recently (ns) are stamped by content too: a file system's clock ticks in
#: milliseconds, so two writes within one tick can leave the same ctime (git's "racily clean" files).
RECENT_NS = 2_000_000_000


def _package_stamp() -> list[tuple[str, int, int, int, int, str]]:
    """(path, size, mtime_ns, ctime_ns, inode, digest) of machinedesc's sources, schema and type data, sorted.

    A plan depends on the code that made it: any change to these files makes
    every cached plan stale. Their status rather than their contents (a
    content hash of the 2.8 MB cost 4 to 8 ms of every apply's start-up, as
    much as QEMU's own start): a write sets a file's ctime, which no copy
    (cp -p, tar, rsync) or other tool can set back, and a replacement gives a
    new inode. ``digest`` is the content's sha256 for a file changed within
    RECENT_NS only, '' otherwise. A touch or a reinstall of the same files
    only plans once more.
    """
    found = []
    now = time.time_ns()
    folders = [str(_PACKAGE)]
    while folders:
        with os.scandir(folders.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        folders.append(entry.path)
                elif entry.name.endswith((".py", ".json", ".yaml")):
                    st = entry.stat()
                    recent = now - max(st.st_ctime_ns, st.st_mtime_ns) < RECENT_NS
                    digest = _stamp(Path(entry.path))[2] if recent else ""
                    found.append((entry.path, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, digest))
    return sorted(found)


def _cache_key(path: Path, overrides: Mapping[str, str] | None, firmware: Sequence[Path],
               catalog: Path | None, allow_host_access: bool, boot: Mapping[str, str]) -> str | None:
    from ..devicetree.dtc import dtc_identity

    try:
        # Boot files are named as given (resolved by the boot set-up); their contents are stamped with the plan.
        what = repr((_CACHE_FORMAT, str(Path(path).resolve()), str(Path.cwd()), sorted((overrides or {}).items()),
                     [str(Path(f).resolve()) for f in firmware], str(catalog.resolve()) if catalog else None,
                     allow_host_access, sorted(boot.items()), _package_stamp(), dtc_identity()))
    except (OSError, RuntimeError):  # RuntimeError: Path.resolve on a symbolic link loop (load_document reports it)
        return None
    return hashlib.sha256(what.encode()).hexdigest()[:32]


def _cache_get(key: str) -> Plan | None:
    # Plans are stored as JSON data, never pickles: reading a cache entry runs no code.
    from ..storage import cache_dir
    from .steps import plan_from_data

    directory = cache_dir("plans")
    if directory is None:
        return None
    try:
        with (directory / f"{key}.json").open("rb") as f:
            data = json.load(f)
        files, plan = data["files"], plan_from_data(data["plan"])
        if all(_stamp(Path(name)) == (name, size, digest) for name, size, digest in files):
            with contextlib.suppress(OSError):
                (directory / f"{key}.json").touch()  # recently used: kept by keep_newest
            return plan
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    return None


def _cache_put(key: str, files: Sequence[Path], plan: Plan) -> None:
    from ..storage import cache_dir, keep_newest, write_file
    from .steps import plan_to_data

    directory = cache_dir("plans", create=True)
    if directory is None:
        return
    try:
        data = json.dumps({"files": [_stamp(f) for f in files], "plan": plan_to_data(plan)},
                          separators=(",", ":"))
        write_file(directory / f"{key}.json", data.encode(), mode=0o600)
    except (OSError, TypeError, ValueError):
        pass  # a cache that cannot be written (or a plan value JSON cannot hold) is only slower
    keep_newest(directory, ".json", KEEP_PLANS)
    # Entries of machinedesc before plans were JSON (<key>.pickle) are never read again: without
    # this they stayed forever (404 of them beside the 256 plans on the development machine).
    keep_newest(directory, ".pickle", 0)
