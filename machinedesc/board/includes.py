"""Includes and merge: a board file and everything it extends/includes, merged into one located tree.

The rules (order, precedence, maps deep-merge, lists replace, null deletes,
paths may not escape the catalog root) are in docs/format.md, "Reuse".
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from ..errors import BoardError, Collector, Hints, Problem, fail
from ..source import SourceLocation
from ..storage import FileProblem
from .located import LMap, LSeq, PathT, format_path, to_location
from .yaml_reader import MAX_BOARD_BYTES, check_regular, file_too_big, parse_file

FORMAT_VERSION = 1
#: extends/include entries one load may follow, counted each time a file is
#: included: a fan-out of includes grows exponentially with its depth.
MAX_INCLUDES = 1_000
#: How deep extends/include may chain (a board -> its base -> ...); each level
#: is a Python call (and a merge), so a chain of 999 raised RecursionError.
MAX_INCLUDE_DEPTH = 64


@dataclass(frozen=True)
class Document:
    """A board after includes are merged: the tree, and the file named on the command line."""

    tree: LMap
    file: str
    #: Entries that a layer deleted with null, by path: for hints when the
    #: board still refers to one.
    deleted: dict[PathT, SourceLocation] = field(default_factory=dict)
    #: Every file the board was read from (itself, its includes and fragments).
    files: tuple[Path, ...] = ()
    #: The fragment file each component entry with ``use`` names, by the entry's
    #: key: its tree, positions chained to the ``use`` (docs/format.md, "Fragments").
    fragments: dict[str, LMap] = field(default_factory=dict)
    #: Problems that did not stop the load (duplicate keys, with ``keep_going``).
    problems: tuple[Problem, ...] = ()


def check_version(tree: Any, display: str, chain: tuple[SourceLocation, ...]) -> LMap:
    """Refuse anything but a mapping whose ``machinedesc`` key is 1 (before the schema runs)."""
    if not isinstance(tree, LMap):
        loc = getattr(tree, "loc", None) or SourceLocation(display, 1, 1, chain)
        fail(loc, "", "a board file must be a YAML mapping starting with 'machinedesc: 1'")
    if "machinedesc" not in tree:
        fail(tree.loc, "", "missing 'machinedesc: 1' header",
             "add 'machinedesc: 1' as the first line so the format version is explicit")
    version = tree["machinedesc"]
    if isinstance(version, str) and version.strip() == str(FORMAT_VERSION):
        fail(to_location(tree.value_locs["machinedesc"]), "machinedesc",
             f"the format version must be the integer {FORMAT_VERSION}, not the string {version!r}",
             f"write machinedesc: {FORMAT_VERSION} without quotes")
    if version != FORMAT_VERSION or isinstance(version, bool):
        fail(to_location(tree.value_locs["machinedesc"]), "machinedesc",
             f"unsupported format version {version!r}: this machinedesc reads version {FORMAT_VERSION}")
    return tree


def real_path(path: Path) -> Path:
    """``path`` absolute, with symbolic links resolved; a link loop stays in it (its stat fails
    with ELOOP) instead of raising RuntimeError as ``Path.resolve`` does."""
    return Path(os.path.realpath(path))


def display_name(path: Path) -> str:
    """How a file is named in messages: relative to the working directory when inside it."""
    try:
        return str(real_path(path).relative_to(real_path(Path.cwd())))
    except ValueError:
        return str(path)


def load_document(path: Path, catalog: Path | None = None, hints: Hints | None = None, *,
                  keep_going: bool = False) -> Document:
    """Load a board and everything it extends/includes, merged (docs/format.md, "Reuse").

    Each file is read and parsed once per load, however often it is included;
    the load reads at most MAX_BOARD_BYTES and follows at most MAX_INCLUDES
    extends/include entries.  ``hints`` is the load's "did you mean" budget
    (the later stages of the load share it; a fresh one if None).  Duplicate
    keys raise a BoardError listing every one of them; with ``keep_going``
    they are in ``Document.problems`` instead (the first value of each key
    is kept), for the caller to report with the problems of the rest of the
    board.
    """
    path = Path(path)
    loader = _IncludeLoader(real_path(catalog or path.parent), hints if hints is not None else Hints())
    try:
        tree = loader.load(path, display_name(path), (), ())
    except BoardError as err:
        if loader.duplicates:
            raise BoardError([*loader.duplicates, *err.problems]) from None
        raise
    if loader.duplicates and not keep_going:
        raise BoardError(list(loader.duplicates))
    fragments = loader.fragments(tree)
    return Document(tree, display_name(path), loader.deleted, tuple(loader.files), fragments,
                    tuple(loader.duplicates))


class _IncludeLoader:
    """One load's state: files parsed so far, what was deleted, and the budgets."""

    def __init__(self, root: Path, hints: Hints) -> None:
        self.root = root
        self.hints = hints
        self.deleted: dict[PathT, SourceLocation] = {}
        self.files: list[Path] = []
        #: Each file's version-checked tree, with the include chain it was parsed with.
        self.parsed: dict[Path, tuple[LMap, tuple[SourceLocation, ...]]] = {}
        self.bytes_left = MAX_BOARD_BYTES
        self.includes = 0
        #: Duplicate keys of every file read so far.
        self.duplicates: list[Problem] = []

    def tree_of(self, path: Path, resolved: Path, display: str, chain: tuple[SourceLocation, ...]) -> LMap:
        """The file's tree, its positions carrying ``chain``; parsed on first use, copied after."""
        try:
            size = check_regular(resolved).st_size
        except FileProblem as err:
            fail(SourceLocation(display, 1, 1, chain) if chain else None, "", f"{display}: {err.message}", err.hint)
        if size > MAX_BOARD_BYTES:
            fail(SourceLocation(display, 1, 1, chain) if chain else None, "",
                 f"{display}: {file_too_big(MAX_BOARD_BYTES).message}", file_too_big(MAX_BOARD_BYTES).hint)
        if size > self.bytes_left:
            fail(SourceLocation(display, 1, 1, chain) if chain else None, "",
                 f"{display}: the board and the files it includes hold more than {MAX_BOARD_BYTES >> 20} MiB, "
                 "counting a file each time it is included",
                 "include big fragments once; replicate entries with count: instead of writing them out")
        self.bytes_left -= size
        if resolved in self.parsed:
            tree, parsed_chain = self.parsed[resolved]
            return tree if parsed_chain == chain else _rechain(tree, chain)
        tree = check_version(parse_file(path, display, chain, min(self.bytes_left + size, MAX_BOARD_BYTES),
                                        self.duplicates), display, chain)
        self.parsed[resolved] = (tree, chain)
        self.files.append(resolved)
        return tree

    def load(self, path: Path, display: str, chain: tuple[SourceLocation, ...], stack: tuple[Path, ...]) -> LMap:
        """The merged tree of ``path`` and what it extends and includes."""
        resolved = real_path(path)
        tree = self.tree_of(path, resolved, display, chain)
        bases: list[LMap] = []
        for key in ("extends", "include"):
            if key not in tree:
                continue
            entries = tree[key]
            items: list[tuple[Any, SourceLocation]]
            if isinstance(entries, LSeq):
                items = [(e, to_location(p)) for e, p in zip(entries, entries.item_locs, strict=True)]
            else:
                items = [(entries, to_location(tree.value_locs[key]))]
            for name, loc in items:
                target = self.target(name, loc, key, resolved, stack)
                # The include site joins the flat chain without a chain of its own (source.py says why).
                site = SourceLocation(loc.file, loc.line, loc.col)
                bases.append(self.load(target, display_name(target), (site, *chain), (*stack, resolved)))
        own = LMap(tree.pos)
        for key, value in tree.items():
            if key not in ("extends", "include"):
                own[key] = value
                own.key_locs[key] = tree.key_locs[key]
                own.value_locs[key] = tree.value_locs[key]
        if not bases:
            return own
        problems = Collector(self.hints)
        merged = bases[0]
        for layer in (*bases[1:], own):
            merged = merge(merged, layer, (), problems, self.deleted)
        problems.raise_if_any()
        return merged

    def fragments(self, tree: LMap) -> dict[str, LMap]:
        """The fragment file of each component entry with ``use``, read (once per file) with the
        entry's ``use`` as its include site. Entries the schema will refuse are skipped here."""
        comps = tree.get("components")
        out: dict[str, LMap] = {}
        for key, spec in comps.items() if isinstance(comps, LMap) else ():
            if not isinstance(spec, LMap) or not isinstance(spec.get("use"), str):
                continue
            loc = to_location(spec.value_locs["use"])
            target = self.target(spec["use"], loc, f"components.{key}.use", real_path(Path(loc.file)), ())
            site = SourceLocation(loc.file, loc.line, loc.col)
            out[key] = self.tree_of(target, target, display_name(target), (site, *loc.chain))
        return out

    def target(self, name: Any, loc: SourceLocation, key: str, resolved: Path, stack: tuple[Path, ...]) -> Path:
        """The file an extends/include entry names, checked: inside the root, no loop, a regular file."""
        if not isinstance(name, str) or not name:
            fail(loc, key, "expected a file name (or a list of them), relative to this file")
        self.includes += 1
        if self.includes > MAX_INCLUDES:
            fail(loc, key, f"more than {MAX_INCLUDES:,} extends/include entries to follow (a file's entries "
                 "count each time the file is included)", "include each fragment once, from one place")
        if "\0" in name:
            fail(loc, key, f"'{name}' is not a file name: it holds a NUL character")
        if len(stack) + 1 >= MAX_INCLUDE_DEPTH:
            fail(loc, key, f"extends/include chains deeper than {MAX_INCLUDE_DEPTH} files",
                 "include fragments from one place instead of chaining them")
        target = real_path(resolved.parent / name)
        if not target.is_relative_to(self.root):
            fail(loc, key, f"'{name}' is outside the catalog root {display_name(self.root)}",
                 "includes must stay inside the catalog (use --catalog to widen it)")
        if target in stack or target == resolved:
            cycle = " -> ".join(display_name(p) for p in (*stack, resolved, target))
            fail(loc, key, f"include loop: {cycle}")
        if not os.path.lexists(target):
            hint = _sibling_hint(name, target, self.hints)
            if hint is None and key.endswith(".use"):  # a fragment (key components.ID.use)
                hint = _fragment_hint(name, resolved.parent)
            fail(loc, key, f"'{name}' not found", hint)
        try:
            check_regular(target)
        except FileProblem as err:
            fail(loc, key, err.about(name), err.hint)
        return target


def _sibling_hint(name: str, target: Path, hints: Hints) -> str | None:
    """"did you mean" among the .yaml files beside a missing include, if its directory can be listed."""
    try:
        siblings = [p.name for p in target.parent.glob("*.yaml")] if target.parent.is_dir() else []
    except OSError:  # e.g. a name too long for the system: no hint
        return None
    close = hints.did_you_mean(Path(name).name, siblings)
    prefix = str(Path(name).parent)
    if close and prefix != ".":
        close = close.replace("'", f"'{prefix}/", 1)
    return close


#: The catalog of a checkout (boards/, beside the package): where the shipped fragments are.
CHECKOUT_CATALOG = Path(__file__).resolve().parents[2] / "boards"


def _fragment_hint(name: str, board_dir: Path) -> str | None:
    """What to do about a missing fragment that the checkout's catalog has: ``use:`` is relative to
    the board, so a board kept outside the catalog needs copies (docs/format.md, "Fragments")."""
    shipped = CHECKOUT_CATALOG / name
    if not shipped.is_file() or real_path(board_dir).is_relative_to(real_path(CHECKOUT_CATALOG)):
        return None
    where = display_name(board_dir)
    return (f"fragments are read relative to the board ({where}/), and the catalog's {name} is "
            f"{shipped}: copy the catalog's fragments beside the board (cp -r {shipped.parent} {where}/)")


def _rechain(tree: LMap, chain: tuple[SourceLocation, ...]) -> LMap:
    """A copy of a parsed tree whose positions carry ``chain``: a file included again, elsewhere.

    Iterative (depth is bounded, width is not); aliased nodes stay shared.
    """
    copies: dict[int, LMap | LSeq] = {}
    todo: list[tuple[LMap | LSeq, LMap | LSeq]] = []

    def copy(node: LMap | LSeq) -> LMap | LSeq:
        done = copies.get(id(node))
        if done is None:
            p = node.pos
            done = copies[id(node)] = (LMap if type(node) is LMap else LSeq)((p[0], p[1], p[2], chain))
            todo.append((node, done))
        return done

    root = copy(tree)
    while todo:
        node, out = todo.pop()
        if type(node) is LMap:
            lmap = cast(LMap, out)
            lmap.update({k: copy(v) if type(v) is LMap or type(v) is LSeq else v for k, v in node.items()})
            lmap.key_locs = {k: (p[0], p[1], p[2], chain) for k, p in node.key_locs.items()}
            lmap.value_locs = {k: (p[0], p[1], p[2], chain) for k, p in node.value_locs.items()}
        else:
            lseq = cast(LSeq, out)
            lseq.extend([copy(v) if type(v) is LMap or type(v) is LSeq else v for v in node])
            lseq.item_locs = [(p[0], p[1], p[2], chain) for p in cast(LSeq, node).item_locs]
    return cast(LMap, root)


def merge(base: LMap, over: LMap, path: PathT, problems: Collector,
          deleted: dict[PathT, SourceLocation] | None = None) -> LMap:
    """Deep-merge ``over`` onto ``base``: maps merge, lists and scalars replace, null deletes."""
    out = LMap(over.pos)
    for key, value in base.items():
        out[key] = value
        out.key_locs[key] = base.key_locs[key]
        out.value_locs[key] = base.value_locs[key]
    for key, value in over.items():
        if value is None:
            if key in out:
                del out[key]
                del out.key_locs[key]
                del out.value_locs[key]
                if deleted is not None:
                    deleted[(*path, key)] = to_location(over.key_locs[key])
            else:
                problems.add(to_location(over.key_locs[key]), format_path((*path, key)),
                             "null deletes an inherited entry, but nothing with this name is inherited",
                             problems.hints.did_you_mean(key, base.keys()))
            continue
        if isinstance(value, LMap) and isinstance(out.get(key), LMap):
            out[key] = merge(out[key], value, (*path, key), problems, deleted)
        else:
            out[key] = value
        out.key_locs[key] = over.key_locs[key]
        out.value_locs[key] = over.value_locs[key]
    return out

